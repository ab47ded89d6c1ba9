//! `poolpatch run` (the built binary) against a real OpenSSH sshd on 127.0.0.73 whose
//! ForceCommand script plays a Standard Edition server: an inventory and a change file as
//! an operator writes them, the installer uploaded over SFTP during preflight, and the
//! whole procedure carried out, with the fake host's own state as the witness.
//!
//! Mandatory in CI (the `CI` environment variable): without `/usr/sbin/sshd` the test fails
//! there. Elsewhere it prints a loud SKIPPED line and returns.

mod common;

use std::path::Path;
use std::process::Command;

use common::{free_port, known_hosts_line, sh, sshd_available, start_sshd};
use poolpatch::journal::{self, Event};
use poolpatch::sim::{sha256_hex, write_identity_file};
use poolpatch_plans::procedure::StepKind;

const ADDRESS: &str = "127.0.0.73";

fn yaml_path(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "''"))
}

#[test]
fn poolpatch_run_patches_a_standard_edition_server_over_openssh() {
    if !sshd_available("the `poolpatch run` test against OpenSSH") {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let d = dir.path();
    let identity = d.join("id_ed25519");
    let client_key = write_identity_file(&identity).expect("client key");
    let port = free_port(ADDRESS);
    let _sshd = start_sshd(d, ADDRESS, port, &client_key.to_openssh().expect("encodes"));
    std::fs::write(d.join("role"), "standard").expect("role");
    let known_hosts = d.join("known_hosts");
    std::fs::write(
        &known_hosts,
        format!("{}\n", known_hosts_line(d, ADDRESS, port)),
    )
    .expect("known_hosts");

    let installer = d.join("cu").join("SkypeServerUpdateInstaller.exe");
    std::fs::create_dir_all(installer.parent().expect("parent")).expect("cu dir");
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&installer, &bytes).expect("installer");

    let user = sh("id", &["-un"]).trim().to_string();
    let inventory = d.join("estate.yaml");
    std::fs::write(
        &inventory,
        format!(
            "version: 1
defaults:
  ssh:
    user: {user}
    identity_file: {identity}
    known_hosts: {known_hosts}
    shell: powershell
sites:
  - name: amsterdam
    time_zone: Europe/Amsterdam
pools:
  - fqdn: se01.ams.contoso.com
    site: amsterdam
    edition: standard
    product: sfb2015
    server:
      ssh: {{ address: {ADDRESS}, port: {port} }}
",
            identity = yaml_path(&identity),
            known_hosts = yaml_path(&known_hosts),
        ),
    )
    .expect("inventory");
    let change = d.join("change.yaml");
    std::fs::write(
        &change,
        format!(
            "version: 1
name: \"SfB 2015 CU over OpenSSH\"
update:
  remote_dir: {remote_dir}
  min_free_space: 1MiB
  installers:
    sfb2015:
      file: {file}
      sha256: {sha}
      version: \"6.0.9319.690\"
",
            remote_dir = yaml_path(&d.join("files")),
            file = yaml_path(&installer),
            sha = sha256_hex(&bytes),
        ),
    )
    .expect("change");

    let run_dir = d.join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_poolpatch"))
        .arg("run")
        .arg("--inventory")
        .arg(&inventory)
        .arg("--change")
        .arg(&change)
        .arg("--run-dir")
        .arg(&run_dir)
        .arg("--plain")
        .env_remove("RUST_LOG")
        .output()
        .expect("poolpatch runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let sshd_log = std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}\nsshd.log:\n{sshd_log}"
    );
    assert!(
        stdout.contains("1 done, 0 failed or restored unfinished, 0 skipped, 0 breaches"),
        "{stdout}"
    );

    // The journal: preflight found no installer, uploaded it, checked it again; then the
    // documented procedure in order, each step successful.
    let records = journal::read(&run_dir).expect("the journal").records;
    let mut seen = Vec::new();
    for r in &records {
        match &r.event {
            Event::StepFinished {
                step, ok, recovery, ..
            } => {
                assert!(!recovery, "no recovery step: {:?}", r.event);
                seen.push(format!(
                    "{}{}",
                    step.name(),
                    if *ok { "" } else { " (failed)" }
                ));
            }
            Event::Uploaded { path, bytes: n, .. } => {
                assert_eq!(*n, bytes.len() as u64);
                seen.push(format!("uploaded {path}"));
            }
            _ => {}
        }
    }
    let staged = d.join("files/SkypeServerUpdateInstaller.exe");
    assert_eq!(
        seen,
        [
            StepKind::CheckGroups.name().to_string(),
            format!("{} (failed)", StepKind::CheckInstaller.name()),
            format!("uploaded {}", staged.display()),
            StepKind::CheckInstaller.name().to_string(),
            StepKind::CheckDisk.name().to_string(),
            StepKind::StopServices.name().to_string(),
            StepKind::StopW3svc.name().to_string(),
            StepKind::InstallUpdate.name().to_string(),
            StepKind::StopServicesAgain.name().to_string(),
            StepKind::StartW3svc.name().to_string(),
            StepKind::UpdateDatabases.name().to_string(),
            StepKind::StartServices.name().to_string(),
        ]
    );
    assert!(
        records.iter().any(|r| matches!(&r.event, Event::StepStarted { step: StepKind::UpdateDatabases, command, .. } if command == "Install-CsDatabase -Update -LocalDatabases")),
        "the database step is the Standard Edition one"
    );
    assert!(records.iter().any(
        |r| matches!(&r.event, Event::ServerDone { server, .. } if server == "se01.ams.contoso.com")
    ));
    assert!(matches!(
        records.last().map(|r| &r.event),
        Some(Event::RunFinished {
            done: 1,
            failed: 0,
            skipped: 0,
            breaches: 0
        })
    ));

    // The host's own record: the installer arrived intact, and the state went through the
    // procedure to services running, update installed, databases updated locally.
    assert_eq!(std::fs::read(&staged).expect("staged installer"), bytes);
    let log = std::fs::read_to_string(d.join("state/log")).expect("the host's log");
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        [
            "services=Stopped",
            "w3svc=Stopped",
            "installed=yes",
            "services=Stopped",
            "w3svc=Running",
            "databases=updated -LocalDatabases",
            "services=Running"
        ]
    );
    let state = |name: &str| {
        std::fs::read_to_string(d.join("state").join(name))
            .unwrap_or_else(|e| panic!("state/{name}: {e}"))
    };
    assert_eq!(state("services"), "Running");
    assert_eq!(state("w3svc"), "Running");
    assert_eq!(state("installed"), "yes");

    // And `poolpatch status` reads the same run as finished and complete.
    let status = Command::new(env!("CARGO_BIN_EXE_poolpatch"))
        .arg("status")
        .arg("--run")
        .arg(&run_dir)
        .output()
        .expect("poolpatch status runs");
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(0), "{text}");
    assert!(text.contains("— finished"), "{text}");
    assert!(text.contains("servers:  1 done, 0 in flight"), "{text}");
}
