//! The SSH client against a real OpenSSH sshd on 127.0.0.71, with a ForceCommand script
//! playing the Windows side of the procedure.
//!
//! Mandatory in CI (the `CI` environment variable): without `/usr/sbin/sshd` the test fails
//! there. Elsewhere it prints a loud SKIPPED line and returns. To run it on Debian/Ubuntu:
//! `apt-get install -y openssh-server`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

mod common;

use common::{SSHD, free_port, sh, start_sshd};
use poolpatch::remote::{
    Connector, ExitOutcome, RemoteError, RemoteHost, SshConnector, SshOptions, command_line,
};
use poolpatch::sim::{sha256_hex, write_identity_file};
use poolpatch_inventory::{
    CollocatedDatabase, Fqdn, Pos, Product, RemoteShell, Role, Server, SshAuth, SshEndpoint,
};
use poolpatch_plans::procedure::{FinalStep, InstallerOnHost, Step, procedure};

const ADDRESS: &str = "127.0.0.71";
const T: Duration = Duration::from_secs(30);

fn server(port: u16, auth: SshAuth, known_hosts: PathBuf) -> Server {
    let user = sh("id", &["-un"]).trim().to_string();
    Server {
        fqdn: Fqdn::parse("be01.nyc.contoso.com").expect("fqdn"),
        pool: Fqdn::parse("pool01.nyc.contoso.com").expect("fqdn"),
        role: Role::BackEnd {
            sql_server: Fqdn::parse("sql01.ams.contoso.com").expect("fqdn"),
            mirror: None,
            collocated_databases: vec![CollocatedDatabase::Monitoring],
        },
        ssh: SshEndpoint {
            address: ADDRESS.into(),
            port,
            user,
            auth,
            known_hosts,
            shell: RemoteShell::Powershell,
        },
        pos: Pos::START,
    }
}

async fn run(host: &dyn RemoteHost, step: &Step) -> poolpatch::remote::ExecOutput {
    let out = host
        .run(&command_line(RemoteShell::Powershell, &step.script), T)
        .await;
    assert!(
        out.exit.is_success(&step.ok_exit_codes),
        "{}: {}\nstdout: {}\nstderr: {}",
        step.kind.name(),
        out.exit,
        out.stdout_text(),
        out.stderr_text()
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_procedure_against_openssh() {
    if !Path::new(SSHD).exists() {
        if std::env::var_os("CI").is_some() {
            panic!(
                "{SSHD} not found: the OpenSSH interop test is mandatory in CI (apt-get install -y openssh-server)"
            );
        }
        eprintln!("SKIPPED: {SSHD} not found — interop test did not run");
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let d = dir.path();
    let identity = d.join("id_ed25519");
    let client_key = write_identity_file(&identity).expect("client key");
    let rsa = d.join("id_rsa");
    sh(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "rsa",
            "-b",
            "2048",
            "-N",
            "",
            "-f",
            &rsa.display().to_string(),
        ],
    );
    let authorized = format!(
        "{}\n{}",
        client_key.to_openssh().expect("encodes"),
        std::fs::read_to_string(d.join("id_rsa.pub")).expect("rsa pub")
    );
    let port = free_port(ADDRESS);
    let _sshd = start_sshd(d, ADDRESS, port, &authorized);
    let known_hosts = d.join("known_hosts");
    let srv = server(
        port,
        SshAuth::IdentityFile(identity.clone()),
        known_hosts.clone(),
    );
    let strict = SshConnector::new(SshOptions::default());

    // Unknown host key: refused, with OpenSSH's own fingerprint of its key.
    let err = match strict.connect(&srv).await {
        Ok(_) => panic!("connected to an unknown host"),
        Err(e) => e,
    };
    let RemoteError::HostKeyUnknown {
        ref known_hosts_line,
        ..
    } = err
    else {
        panic!("expected an unknown host key: {err}");
    };
    let openssh_fp = sh(
        "ssh-keygen",
        &[
            "-l",
            "-E",
            "sha256",
            "-f",
            &d.join("ssh_host_ed25519_key.pub").display().to_string(),
        ],
    );
    let sha = openssh_fp.split_whitespace().nth(1).expect("a fingerprint");
    assert!(err.to_string().contains(sha), "{err} lacks {sha}");
    std::fs::write(&known_hosts, format!("{known_hosts_line}\n")).expect("known_hosts");

    let remote = strict
        .connect(&srv)
        .await
        .expect("connects with the recorded key");
    let bytes: Vec<u8> = (0..2_000_000u32).map(|i| (i % 253) as u8).collect();
    let local = d.join("cu.exe");
    std::fs::write(&local, &bytes).expect("installer");
    let remote_path = d
        .join("files/SkypeServerUpdateInstaller.exe")
        .display()
        .to_string();
    remote
        .upload(&local, &remote_path)
        .await
        .expect("SFTP upload");
    remote
        .upload(&local, &remote_path)
        .await
        .expect("SFTP upload replaces");
    assert_eq!(std::fs::read(&remote_path).expect("uploaded"), bytes);

    let installer = InstallerOnHost {
        path: remote_path.clone(),
        sha256: sha256_hex(&bytes),
        min_free_bytes: 1,
    };
    let p = procedure(&srv, Product::Sfb2015, &installer, FinalStep::StartServices);
    // The installer refuses while services run (1603 on Windows; a POSIX exit status is
    // one byte, so the stand-in's code differs: only "failed" and the reason matter).
    let early = remote
        .run(
            &command_line(RemoteShell::Powershell, &p.outage[2].script),
            T,
        )
        .await;
    assert!(
        matches!(early.exit, ExitOutcome::Code(c) if c != 0),
        "{}",
        early.exit
    );
    assert!(early.stderr_text().contains("services are running"));
    let hash = run(&*remote, &p.preflight[1]).await;
    assert_eq!(hash.stdout_text().trim(), installer.sha256.to_uppercase());
    for step in p.preflight.iter().chain(&p.outage) {
        run(&*remote, step).await;
    }
    let log = std::fs::read_to_string(d.join("state/log")).expect("the host's log");
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        [
            "services=Stopped",
            "w3svc=Stopped",
            "installed=yes",
            "services=Stopped",
            "w3svc=Running",
            "databases=updated",
            "services=Running"
        ]
    );

    // An RSA key logs on too (rsa-sha2: OpenSSH 9 refuses SHA-1 signatures).
    let with_rsa = server(port, SshAuth::IdentityFile(rsa), known_hosts.clone());
    let rsa_remote = strict.connect(&with_rsa).await.expect("RSA logon");
    run(&*rsa_remote, &p.preflight[0]).await;

    // And through an ssh-agent started here (stopped by its pid).
    let sock = d.join("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&sock)
        .stdout(Stdio::null())
        .spawn()
        .expect("ssh-agent starts");
    for _ in 0..200 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let added = Command::new("ssh-add")
        .arg(&identity)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .expect("ssh-add runs");
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let via_agent = SshConnector::new(SshOptions {
        agent_socket: Some(sock.clone()),
        ..SshOptions::default()
    });
    let agent_remote: Arc<dyn RemoteHost> = via_agent
        .connect(&server(port, SshAuth::Agent, known_hosts.clone()))
        .await
        .expect("agent logon");
    run(&*agent_remote, &p.preflight[0]).await;
    let _ = agent.kill();
    let _ = agent.wait();
}
