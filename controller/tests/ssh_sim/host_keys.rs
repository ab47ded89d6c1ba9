//! Host keys are checked strictly against known_hosts: unknown and changed keys are refused
//! with messages that say what to do; `accept_new_host_keys` records only keys of hosts
//! that have none.

use poolpatch::remote::{RemoteError, SshConnector, SshOptions};
use poolpatch::sim::{SimDurations, SimEventKind, SimHost, random_ed25519_key};
use poolpatch_inventory::{Product, Server};
use russh::keys::HashAlg;

use crate::helpers::*;

async fn untrusted_host(
    address: &str,
    lab: &Lab,
) -> (SimHost, poolpatch::sim::SimListener, Server) {
    let role = back_end(false);
    let cfg = config("be01.nyc.contoso.com", role.clone(), Product::Sfb2019, lab)
        .with_durations(SimDurations::instant());
    let (host, listener, server) = start_tcp(cfg, role, address, lab).await;
    // start_tcp trusted it: forget that.
    std::fs::remove_file(&lab.known_hosts).expect("known_hosts removed");
    (host, listener, server)
}

fn connector(accept_new: bool) -> SshConnector {
    SshConnector::new(SshOptions {
        accept_new_host_keys: accept_new,
        ..SshOptions::default()
    })
}

async fn refusal(server: &Server, accept_new: bool) -> RemoteError {
    match connector(accept_new).connect_tcp(server).await {
        Ok(_) => panic!("connected to {} despite its host key", server.fqdn),
        Err(e) => e,
    }
}

#[tokio::test]
async fn an_unknown_host_key_is_refused_with_the_line_to_add() {
    let lab = Lab::new();
    let (host, _l, server) = untrusted_host("127.0.0.51", &lab).await;
    let err = refusal(&server, false).await;
    let RemoteError::HostKeyUnknown {
        ref fingerprint,
        ref known_hosts_line,
        ..
    } = err
    else {
        panic!("expected an unknown host key, got {err}");
    };
    let expected = host.public_key().fingerprint(HashAlg::Sha256).to_string();
    assert_eq!(fingerprint, &format!("ssh-ed25519 {expected}"));
    assert_eq!(
        known_hosts_line,
        &host.known_hosts_line(&server.ssh.address, server.ssh.port)
    );
    let text = err.to_string();
    for needed in [
        "127.0.0.51",
        &format!("port {}", server.ssh.port),
        &expected,
        &lab.known_hosts.display().to_string(),
        known_hosts_line.as_str(),
        "--accept-new-host-keys",
    ] {
        assert!(text.contains(needed), "{needed:?} missing from: {text}");
    }
    assert!(!lab.known_hosts.exists(), "nothing was recorded");
    assert!(
        !host
            .record()
            .iter()
            .any(|e| matches!(e.kind, SimEventKind::LoggedOn { .. })),
        "refused before logging on"
    );
}

#[tokio::test]
async fn a_changed_host_key_is_refused_naming_the_file_and_line_and_is_never_learned() {
    let lab = Lab::new();
    let (_host, _l, server) = untrusted_host("127.0.0.52", &lab).await;
    let impostor = random_ed25519_key();
    let recorded = format!(
        "# poolpatch test estate\n{}\n{}\n",
        poolpatch::remote::known_hosts::known_hosts_line("127.0.0.99", 22, impostor.public_key()),
        poolpatch::remote::known_hosts::known_hosts_line(
            &server.ssh.address,
            server.ssh.port,
            impostor.public_key()
        ),
    );
    std::fs::write(&lab.known_hosts, &recorded).expect("known_hosts written");

    for accept_new in [false, true] {
        let err = refusal(&server, accept_new).await;
        let RemoteError::HostKeyChanged { line, ref file, .. } = err else {
            panic!("expected a changed host key, got {err}");
        };
        assert_eq!(line, 3, "the line an operator edits counts the comment");
        assert_eq!(file, &lab.known_hosts);
        let text = err.to_string();
        assert!(text.contains("CHANGED"), "{text}");
        assert!(
            text.contains(&format!("{}:3", lab.known_hosts.display())),
            "{text}"
        );
        assert_eq!(
            std::fs::read_to_string(&lab.known_hosts).expect("readable"),
            recorded,
            "a changed key is never learned"
        );
    }
}

#[tokio::test]
async fn accept_new_records_the_key_of_a_host_that_has_none() {
    let lab = Lab::new();
    let (host, _l, server) = untrusted_host("127.0.0.53", &lab).await;
    connector(true)
        .connect_tcp(&server)
        .await
        .expect("a new host is accepted");
    let text = std::fs::read_to_string(&lab.known_hosts).expect("the key was recorded");
    assert_eq!(
        text.trim(),
        host.known_hosts_line(&server.ssh.address, server.ssh.port)
    );
    // From now on the strict check knows it.
    connector(false)
        .connect_tcp(&server)
        .await
        .expect("the recorded key matches");
}
