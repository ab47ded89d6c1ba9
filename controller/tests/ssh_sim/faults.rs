//! Lost connections, hangs and restarts: the outcome is Unknown, never success; and time is
//! tokio's, so simulated minutes cost no real time under a paused clock.

use std::sync::Arc;
use std::time::Duration;

use poolpatch::remote::{Connector, ExitOutcome, SshOptions};
use poolpatch::sim::{
    ActionKind, Fault, FaultEffect, InMemoryConnector, SimDurations, SimEventKind, SimHost,
    SimHostConfig,
};
use poolpatch_inventory::{Product, Server};
use poolpatch_plans::procedure::{EXIT_REBOOT_REQUIRED, FinalStep, StepKind};
use tokio::time::Instant;

use crate::helpers::*;

const CU: &[u8] = b"MZ update";

#[tokio::test]
async fn a_host_dropping_mid_step_gives_unknown_and_the_step_still_completes_there() {
    let lab = Lab::new();
    let role = back_end(false);
    let cfg = config("be01.ams.contoso.com", role.clone(), Product::Sfb2015, &lab)
        .with_file(SFB_INSTALLER, CU.to_vec())
        .with_durations(SimDurations::scaled(0.0002))
        .with_fault(Fault::new(ActionKind::Install, FaultEffect::DropConnection));
    let (host, _l, server) = start_tcp(cfg, role, "127.0.0.54", &lab).await;
    let p = procedure_for(
        &server,
        Product::Sfb2015,
        SFB_INSTALLER,
        CU,
        FinalStep::StartServices,
    );
    let remote = connect(&server).await.expect("connects");
    for step in &p.outage[..2] {
        assert_ok(step, &run(&*remote, step, Duration::from_secs(10)).await);
    }
    let out = run(&*remote, &p.outage[2], Duration::from_secs(10)).await;
    let ExitOutcome::Unknown(why) = &out.exit else {
        panic!(
            "a dropped connection must not give an exit code: {}",
            out.exit
        );
    };
    assert!(why.contains("connection was lost"), "{why}");
    assert!(!out.exit.is_success(&p.outage[2].ok_exit_codes));
    assert!(remote.is_closed());

    // The installer ran on: the host finishes it although nobody hears the result.
    for _ in 0..200 {
        if host.state().update_installed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(host.state().update_installed);
    let record = host.record();
    assert!(
        record
            .iter()
            .any(|e| matches!(e.kind, SimEventKind::ConnectionsDropped { .. }))
    );
    assert!(record.iter().any(|e| matches!(
        e.kind,
        SimEventKind::FaultInjected {
            action: ActionKind::Install,
            ..
        }
    )));
    // A new connection works and the next step can go on.
    let again = reconnect(&server, 50, Duration::from_millis(10)).await;
    assert_ok(
        &p.outage[3],
        &run(&*again, &p.outage[3], Duration::from_secs(10)).await,
    );
}

/// A host served in memory through a `dyn Connector`, and the server that reaches it.
fn in_memory(cfg: SimHostConfig, lab: &Lab) -> (SimHost, Server, Arc<dyn Connector>) {
    let role = cfg.role.clone();
    let host = SimHost::new(cfg.authorize(lab.client_key.clone()));
    let srv = server(&host.config().fqdn.clone(), role, "127.0.0.61", 22, lab);
    let connector = InMemoryConnector::new(SshOptions::default());
    connector.add(host.clone());
    connector.trust(&srv).expect("known_hosts written");
    (host, srv, Arc::new(connector))
}

#[tokio::test(start_paused = true)]
async fn a_hanging_step_times_out_as_unknown_and_the_connection_stays_usable() {
    let lab = Lab::new();
    let cfg = config(
        "be02.ams.contoso.com",
        back_end(false),
        Product::Sfb2015,
        &lab,
    )
    .with_fault(Fault::new(ActionKind::StopW3svc, FaultEffect::Hang));
    let (host, server, connector) = in_memory(cfg, &lab);
    let p = procedure_for(
        &server,
        Product::Sfb2015,
        SFB_INSTALLER,
        CU,
        FinalStep::StartServices,
    );
    let remote = connector
        .connect(&server)
        .await
        .expect("connects in memory");
    let out = run(&*remote, &p.outage[1], Duration::from_secs(600)).await;
    assert_eq!(
        out.exit,
        ExitOutcome::Unknown("timed out after 10m; the remote command may still be running".into())
    );
    assert!(out.duration >= Duration::from_secs(600));
    assert!(
        out.duration < Duration::from_secs(601),
        "{:?}",
        out.duration
    );
    assert!(
        host.state().w3svc_running,
        "the hung command changed nothing"
    );
    assert!(!remote.is_closed());
    let groups = run(&*remote, &p.preflight[0], Duration::from_secs(60)).await;
    assert_ok(&p.preflight[0], &groups);
}

#[tokio::test(start_paused = true)]
async fn simulated_minutes_cost_no_real_time_through_a_requested_restart() {
    let lab = Lab::new();
    let durations = SimDurations {
        install: Duration::from_secs(10 * 60),
        ..SimDurations::default()
    };
    let cfg = config(
        "be03.ams.contoso.com",
        back_end(true),
        Product::Sfb2015,
        &lab,
    )
    .with_file(SFB_INSTALLER, CU.to_vec())
    .with_durations(durations.clone())
    .with_fault(Fault::new(ActionKind::Install, FaultEffect::RebootRequired))
    .with_fault(Fault::new(
        ActionKind::Restart,
        FaultEffect::SlowBoot(Duration::from_secs(120)),
    ));
    let (host, server, connector) = in_memory(cfg, &lab);
    let p = procedure_for(
        &server,
        Product::Sfb2015,
        SFB_INSTALLER,
        CU,
        FinalStep::StartServices,
    );
    let started = Instant::now();
    let mut remote = connector
        .connect(&server)
        .await
        .expect("connects in memory");
    let limit = Duration::from_secs(3600);
    for step in &p.outage[..2] {
        assert_ok(step, &run(&*remote, step, limit).await);
    }
    let install = run(&*remote, &p.outage[2], limit).await;
    assert_eq!(install.exit, ExitOutcome::Code(EXIT_REBOOT_REQUIRED));
    assert!(install.duration >= Duration::from_secs(600));
    assert!(
        install.duration < Duration::from_secs(601),
        "{:?}",
        install.duration
    );
    assert!(host.state().reboot_pending);
    // The database step is refused until the restart.
    let refused = run(&*remote, &p.outage[5], limit).await;
    assert_eq!(refused.exit, ExitOutcome::Code(1));
    assert!(refused.stderr_text().contains("restart is pending"));

    assert_ok(&p.reboot, &run(&*remote, &p.reboot, limit).await);
    while !remote.is_closed() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let down_at = Instant::now();
    loop {
        match connector.connect(&server).await {
            Ok(h) => {
                remote = h;
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(10)).await,
        }
    }
    let unreachable = down_at.elapsed();
    // 4 minutes of downtime plus the slow boot's 2, within one retry interval.
    assert!(unreachable >= Duration::from_secs(360), "{unreachable:?}");
    assert!(unreachable <= Duration::from_secs(371), "{unreachable:?}");
    for step in &p.outage[3..] {
        let out = run(&*remote, step, limit).await;
        if step.kind == StepKind::StartW3svc {
            // w3svc started by itself at boot: `net start` says so with exit 2.
            assert_eq!(out.exit, ExitOutcome::Code(2), "{}", out.stderr_text());
            continue;
        }
        assert_ok(step, &out);
    }
    let state = host.state();
    assert!(state.update_installed && state.databases_updated && !state.reboot_pending);
    assert!(state.services_running());

    // Two outages: the first ends when services start at boot, the second is steps 9–end.
    let outages = host.outages();
    assert_eq!(outages.len(), 2, "{outages:?}");
    let first = outages[0].duration(Instant::now());
    assert!(
        first >= Duration::from_secs(90 + 5 + 600 + 5 + 360),
        "{first:?}"
    );
    let total = started.elapsed();
    assert!(total >= Duration::from_secs(1300), "{total:?}");
}
