//! The whole documented procedure, over real SSH on 127.0.0.x, for each role.

use std::time::Duration;

use poolpatch::sim::{ActionKind as A, DatabaseUpdate, SimDurations, SimEventKind, sha256_hex};
use poolpatch_inventory::{Product, Role};
use poolpatch_plans::procedure::FinalStep;

use crate::helpers::*;

const STEP_TIMEOUT: Duration = Duration::from_secs(30);

fn database_update(host: &poolpatch::sim::SimHost) -> Vec<DatabaseUpdate> {
    host.record()
        .into_iter()
        .filter_map(|e| match e.kind {
            SimEventKind::DatabasesUpdated { update } => Some(update),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn full_procedure_on_an_enterprise_back_end_with_collocated_databases() {
    let lab = Lab::new();
    let bytes = b"MZ Skype for Business Server 2015 CU ".repeat(4000);
    let role = back_end(true);
    let cfg = config("be01.ams.contoso.com", role.clone(), Product::Sfb2015, &lab)
        .expect_installer(&bytes)
        .with_durations(SimDurations::scaled(0.0002));
    let (host, _listener, server) = start_tcp(cfg, role, "127.0.0.41", &lab).await;
    let remote = connect(&server)
        .await
        .expect("connects with a trusted host key");
    remote
        .upload(&lab.file("cu.exe", &bytes), SFB_INSTALLER_SFTP)
        .await
        .expect("the installer is staged over SFTP");

    let p = procedure_for(
        &server,
        Product::Sfb2015,
        SFB_INSTALLER,
        &bytes,
        FinalStep::StartServices,
    );
    let groups = run(&*remote, &p.preflight[0], STEP_TIMEOUT).await;
    assert_ok(&p.preflight[0], &groups);
    assert!(
        groups
            .stdout_text()
            .contains("\"CONTOSO\\CSAdministrator\"")
    );
    let hash = run(&*remote, &p.preflight[1], STEP_TIMEOUT).await;
    assert_ok(&p.preflight[1], &hash);
    assert_eq!(hash.stdout_text().trim(), sha256_hex(&bytes).to_uppercase());
    let disk = run(&*remote, &p.preflight[2], STEP_TIMEOUT).await;
    assert_ok(&p.preflight[2], &disk);
    let free: u64 = disk
        .stdout_text()
        .trim()
        .parse()
        .expect("a number of bytes");
    assert!(free > 1 << 30);

    for step in &p.outage {
        let out = run(&*remote, step, STEP_TIMEOUT).await;
        assert_ok(step, &out);
    }

    // The host's own account of what happened.
    let commands = host.commands();
    let kinds: Vec<Vec<A>> = commands.iter().map(|c| c.kinds()).collect();
    assert_eq!(
        kinds,
        [
            vec![A::Groups],
            vec![A::FileHash],
            vec![A::FreeDisk],
            vec![A::StopServices],
            vec![A::StopW3svc],
            vec![A::Install],
            vec![A::StopServices],
            vec![A::StartW3svc],
            vec![A::UpdateDatabases],
            vec![A::StartServices, A::VerifyServices],
        ]
    );
    assert!(commands.iter().all(|c| c.exit_code == Some(0)));
    let sent: Vec<&str> = p
        .preflight
        .iter()
        .chain(&p.outage)
        .map(|s| s.script.as_str())
        .collect();
    let received: Vec<&str> = commands.iter().map(|c| c.script.as_str()).collect();
    assert_eq!(
        received, sent,
        "the host decoded exactly the plan's scripts"
    );

    let db = database_update(&host);
    assert_eq!(db.len(), 1);
    assert!(db[0].update && db[0].configured_databases && db[0].exclude_collocated_stores);
    assert!(!db[0].local_databases);
    assert_eq!(db[0].sql_server.as_deref(), Some("sql01.ams.contoso.com"));

    let outages = host.outages();
    assert_eq!(outages.len(), 1, "{outages:?}");
    let stop_sent = commands[3].received;
    let verified = commands[9].finished.expect("the last step finished");
    assert!(outages[0].start >= stop_sent);
    assert!(outages[0].end.is_some_and(|end| end <= verified));

    let state = host.state();
    assert!(state.update_installed && state.databases_updated && !state.reboot_pending);
    assert!(state.services_running() && state.w3svc_running);
}

#[tokio::test]
async fn full_procedure_on_a_standard_edition_server_ending_with_a_restart() {
    let lab = Lab::new();
    let bytes = b"MZ Lync Server 2013 CU ".repeat(1000);
    let cfg = config(
        "se01.tyo.contoso.com",
        Role::StandardEdition,
        Product::Lync2013,
        &lab,
    )
    .with_file(LYNC_INSTALLER, bytes.clone())
    .expect_installer(&bytes)
    .with_durations(SimDurations::scaled(0.0002));
    let (host, _listener, server) = start_tcp(cfg, Role::StandardEdition, "127.0.0.42", &lab).await;
    let p = procedure_for(
        &server,
        Product::Lync2013,
        LYNC_INSTALLER,
        &bytes,
        FinalStep::Reboot,
    );
    let mut remote = connect(&server).await.expect("connects");
    for step in &p.preflight {
        assert_ok(step, &run(&*remote, step, STEP_TIMEOUT).await);
    }
    for step in &p.outage {
        let out = run(&*remote, step, STEP_TIMEOUT).await;
        if step.kind == poolpatch_plans::procedure::StepKind::Reboot {
            // Either the exit status arrives before the connection drops, or it does not.
            assert!(
                out.exit.code().is_none_or(|c| c == 0),
                "restart: {}",
                out.exit
            );
            for _ in 0..400 {
                if remote.is_closed() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert!(remote.is_closed(), "the restart dropped the connection");
            remote = reconnect(&server, 400, Duration::from_millis(5)).await;
            continue;
        }
        assert_ok(step, &out);
    }

    let kinds: Vec<Vec<A>> = host.commands().iter().map(|c| c.kinds()).collect();
    assert_eq!(
        &kinds[3..],
        [
            vec![A::StopServices],
            vec![A::StopW3svc],
            vec![A::Install],
            vec![A::StopServices],
            vec![A::StartW3svc],
            vec![A::UpdateDatabases],
            vec![A::Restart],
            vec![A::StartServices, A::VerifyServices],
        ]
    );
    let db = database_update(&host);
    assert_eq!(db.len(), 1);
    assert!(db[0].update && db[0].local_databases && !db[0].configured_databases);
    assert_eq!(db[0].sql_server, None);

    let record = host.record();
    let at = |wanted: fn(&SimEventKind) -> bool| record.iter().position(|e| wanted(&e.kind));
    let down = at(|k| matches!(k, SimEventKind::RebootStarted)).expect("restarted");
    let up = at(|k| matches!(k, SimEventKind::HostUp)).expect("came back");
    assert!(down < up);
    assert!(
        record
            .iter()
            .any(|e| matches!(e.kind, SimEventKind::ConnectionRefused)),
        "a connection was tried while the host was down"
    );
    // Services came back on their own at boot: the outage ended then.
    let outages = host.outages();
    assert_eq!(outages.len(), 1);
    let services_back = record[up..]
        .iter()
        .find(|e| matches!(e.kind, SimEventKind::ServicesRunning))
        .expect("services started at boot");
    assert_eq!(outages[0].end, Some(services_back.at));
    let state = host.state();
    assert!(state.update_installed && state.databases_updated);
    assert!(state.services_running() && state.w3svc_running && state.up);
}
