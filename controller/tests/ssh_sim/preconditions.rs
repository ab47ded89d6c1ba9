//! The simulated host refuses what a real server refuses, and says why.

use std::time::Duration;

use poolpatch::remote::{ExitOutcome, RemoteError, RemoteHost, SshConnector, SshOptions};
use poolpatch::sim::{SimDurations, SimEventKind, SimHost};
use poolpatch_inventory::{Product, Role};
use poolpatch_plans::procedure::{FinalStep, Procedure, Step};

use crate::helpers::*;

const T: Duration = Duration::from_secs(10);
const CU: &[u8] = b"MZ the cumulative update";

async fn ee_host(
    address: &str,
    lab: &Lab,
) -> (
    SimHost,
    poolpatch::sim::SimListener,
    poolpatch_inventory::Server,
    Procedure,
) {
    let role = back_end(true);
    let cfg = config("be01.ams.contoso.com", role.clone(), Product::Sfb2015, lab)
        .with_file(SFB_INSTALLER, CU.to_vec())
        .with_durations(SimDurations::instant());
    let (host, listener, server) = start_tcp(cfg, role, address, lab).await;
    let p = procedure_for(
        &server,
        Product::Sfb2015,
        SFB_INSTALLER,
        CU,
        FinalStep::StartServices,
    );
    (host, listener, server, p)
}

/// The step 11 script the procedure would send to a server with `role`.
fn database_step(role: Role, lab: &Lab) -> Step {
    let srv = server("x.ams.contoso.com", role, "127.0.0.1", 22, lab);
    procedure_for(
        &srv,
        Product::Sfb2015,
        SFB_INSTALLER,
        CU,
        FinalStep::StartServices,
    )
    .outage[5]
        .clone()
}

async fn expect_refusal(remote: &dyn RemoteHost, step: &Step, code: i32, words: &str) {
    let out = run(remote, step, T).await;
    assert_eq!(out.exit, ExitOutcome::Code(code), "{}", out.stderr_text());
    assert!(
        out.stderr_text().contains(words),
        "expected {words:?} in: {}",
        out.stderr_text()
    );
}

#[tokio::test]
async fn the_installer_refuses_while_services_or_w3svc_run() {
    let lab = Lab::new();
    let (host, _l, server, p) = ee_host("127.0.0.43", &lab).await;
    let remote = connect(&server).await.expect("connects");
    let [stop, stop_w3svc, install, ..] = &p.outage[..] else {
        panic!("the procedure has its outage steps");
    };

    expect_refusal(&*remote, install, 1603, "Lync Server services are running").await;
    assert_ok(stop, &run(&*remote, stop, T).await);
    expect_refusal(&*remote, install, 1603, "w3svc").await;
    assert!(!host.state().update_installed);
    assert_ok(stop_w3svc, &run(&*remote, stop_w3svc, T).await);
    assert_ok(install, &run(&*remote, install, T).await);
    assert!(host.state().update_installed);

    let refused = host
        .record()
        .iter()
        .filter(|e| matches!(e.kind, SimEventKind::ActionRefused { .. }))
        .count();
    assert_eq!(refused, 2);
}

#[tokio::test]
async fn database_update_is_refused_before_the_install_and_in_the_wrong_variant() {
    let lab = Lab::new();
    let (host, _l, server, p) = ee_host("127.0.0.44", &lab).await;
    let remote = connect(&server).await.expect("connects");
    let db = &p.outage[5];

    expect_refusal(&*remote, db, 1, "the update is not installed").await;
    for step in &p.outage[..3] {
        assert_ok(step, &run(&*remote, step, T).await);
    }
    let standard = database_step(Role::StandardEdition, &lab);
    expect_refusal(
        &*remote,
        &standard,
        1,
        "-LocalDatabases is for Standard Edition",
    )
    .await;
    let not_excluded = database_step(back_end(false), &lab);
    expect_refusal(&*remote, &not_excluded, 1, "-ExcludeCollocatedStores").await;
    let other_sql = database_step(
        Role::BackEnd {
            sql_server: fqdn("sql99.ams.contoso.com"),
            mirror: None,
            collocated_databases: vec![poolpatch_inventory::CollocatedDatabase::Archiving],
        },
        &lab,
    );
    expect_refusal(&*remote, &other_sql, 1, "is not the SQL Server").await;
    assert!(!host.state().databases_updated);

    assert_ok(db, &run(&*remote, db, T).await);
    assert!(host.state().databases_updated);
}

#[tokio::test]
async fn a_standard_edition_server_refuses_configured_databases() {
    let lab = Lab::new();
    let cfg = config(
        "se01.ams.contoso.com",
        Role::StandardEdition,
        Product::Sfb2015,
        &lab,
    )
    .with_file(SFB_INSTALLER, CU.to_vec())
    .with_durations(SimDurations::instant());
    let (host, _l, server) = start_tcp(cfg, Role::StandardEdition, "127.0.0.45", &lab).await;
    let remote = connect(&server).await.expect("connects");
    let p = procedure_for(
        &server,
        Product::Sfb2015,
        SFB_INSTALLER,
        CU,
        FinalStep::StartServices,
    );
    for step in &p.outage[..3] {
        assert_ok(step, &run(&*remote, step, T).await);
    }
    let enterprise = database_step(back_end(false), &lab);
    expect_refusal(
        &*remote,
        &enterprise,
        1,
        "-ConfiguredDatabases is for Enterprise",
    )
    .await;
    assert!(!host.state().databases_updated);
}

#[tokio::test]
async fn wrong_product_module_unknown_lines_and_missing_membership() {
    let lab = Lab::new();
    let role = back_end(false);
    let mut cfg = config("be02.ams.contoso.com", role.clone(), Product::Sfb2015, &lab)
        .with_durations(SimDurations::instant());
    cfg.cs_administrator = false;
    let (host, _l, server) = start_tcp(cfg, role, "127.0.0.46", &lab).await;
    let remote = connect(&server).await.expect("connects");

    // The Lync 2013 procedure on a Skype for Business server: its module does not exist.
    let lync = procedure_for(
        &server,
        Product::Lync2013,
        LYNC_INSTALLER,
        CU,
        FinalStep::StartServices,
    );
    expect_refusal(&*remote, &lync.outage[0], 1, "'Lync' was not loaded").await;
    assert!(host.state().services_running());

    let out = remote
        .run(
            &poolpatch::remote::command_line(
                poolpatch_inventory::RemoteShell::Powershell,
                "Remove-Item -Recurse C:\\\nexit 0\n",
            ),
            T,
        )
        .await;
    assert_eq!(out.exit, ExitOutcome::Code(127));
    assert!(
        out.stderr_text()
            .contains("does not know this command: Remove-Item")
    );

    let groups = run(&*remote, &lync.preflight[0], T).await;
    assert_ok(&lync.preflight[0], &groups);
    assert!(!groups.stdout_text().contains("CSAdministrator"));
    assert!(groups.stdout_text().contains("CONTOSO\\Domain Users"));
}

#[tokio::test]
async fn a_key_that_is_not_authorized_is_refused_at_logon() {
    let lab = Lab::new();
    let other = Lab::new();
    let role = back_end(false);
    let cfg = config("be03.ams.contoso.com", role.clone(), Product::Sfb2015, &lab);
    let (host, _l, mut server) = start_tcp(cfg, role, "127.0.0.47", &lab).await;
    server.ssh.auth = poolpatch_inventory::SshAuth::IdentityFile(other.identity.clone());
    let err = match SshConnector::new(SshOptions::default())
        .connect_tcp(&server)
        .await
    {
        Ok(_) => panic!("an unauthorized key logged on"),
        Err(e) => e,
    };
    assert!(matches!(err, RemoteError::Auth { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("svc-poolpatch") && text.contains("authorized_keys"),
        "{text}"
    );
    assert!(
        text.contains(&other.identity.display().to_string()),
        "{text}"
    );
    let record = host.record();
    assert!(
        record
            .iter()
            .any(|e| matches!(e.kind, SimEventKind::LogonRefused { .. }))
    );
    assert!(
        !record
            .iter()
            .any(|e| matches!(e.kind, SimEventKind::LoggedOn { .. }))
    );
}
