//! End to end, when things go wrong: the real controller over real SSH (127.0.0.x) against
//! simulated back ends, with time compressed ×1000 (a plan minute takes 60 ms). Faults are
//! injected per host; every check of what happened on a server is made from the simulated
//! host's own record, and the journal is checked to tell the same story as the report.
//!
//! Timing checks only compare with the change's budget and threshold (compressed), with
//! margins of a minute or more of plan time; exact times are checked under tokio's paused
//! clock in `watchdog_paused.rs`.

use std::sync::Arc;
use std::time::Duration;

use poolpatch::exec::ServerOutcome;
use poolpatch::journal::{Event, ExitRecord, WatchdogAction};
use poolpatch::remote::known_hosts::known_hosts_line;
use poolpatch::sim::{
    ActionKind, Customize, Fault, FaultEffect, SimDurations, SimEventKind, SimHost, SimHostConfig,
    random_ed25519_key,
};
use poolpatch_plans::Change;
use poolpatch_plans::change::OnFailure;
use poolpatch_plans::procedure::StepKind;
use poolpatch_tests::{
    COMPRESS, DOCUMENTED, Rehearsed, assert_went_on_after_the_restart, example, host_actions,
    installer_finished, outage_actions, rehearse, rehearse_with, scope_pools,
};
use russh::keys::HashAlg;

/// The mirror side of pool01.ams: the first server of its pool to be patched.
const BE: &str = "be02.ams.contoso.com";
/// The principal of pool01.ams: patched only after the mirror side.
const PRINCIPAL: &str = "be01.ams.contoso.com";
const POOL: &str = "pool01.ams.contoso.com";
/// pool02.ams comes `after:` pool01.ams.
const AFTER: &str = "be03.ams.contoso.com";
/// Servers of other pools, which must not care about pool01.ams.
const TOKYO: &str = "be01.tyo.contoso.com";
const BRANCH: &str = "se01.nyc.contoso.com";

/// The example change, restricted to pool01.ams, the pool after it, and two independent
/// pools (keeps each rehearsal to about 40 plan minutes).
fn change() -> (poolpatch_inventory::Inventory, Change) {
    let (inventory, mut change) = example();
    scope_pools(
        &mut change,
        &[
            POOL,
            "pool02.ams.contoso.com",
            "pool01.tyo.contoso.com",
            BRANCH,
        ],
    );
    (inventory, change)
}

/// Changes the host of `fqdn` only.
fn on(
    fqdn: &'static str,
    f: impl Fn(SimHostConfig) -> SimHostConfig + Send + Sync + 'static,
) -> Option<Customize> {
    Some(Arc::new(move |server, config| {
        if server.fqdn.as_str() == fqdn {
            f(config)
        } else {
            config
        }
    }))
}

fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

/// Whether the host only ever saw preflight checks (its outage never started).
fn preflight_only(host: &SimHost) -> bool {
    host_actions(host).iter().all(|k| {
        matches!(
            k,
            ActionKind::Groups | ActionKind::FileHash | ActionKind::FreeDisk
        )
    })
}

/// The pool of the failed server halted: its other server saw its preflight only and was
/// skipped; the pool after it never started; the other pools finished.
fn assert_only_the_pool_halted(r: &Rehearsed) {
    let j = r.journal();
    j.one(
        "pool halt",
        |e| matches!(e, Event::PoolHalted { pool, .. } if pool == POOL),
    );
    for server in [PRINCIPAL, AFTER] {
        assert!(
            preflight_only(&r.host(server)),
            "{server}: {:?}",
            host_actions(&r.host(server))
        );
        assert!(
            matches!(r.outcome(server), ServerOutcome::Skipped { .. }),
            "{server}: {:?}",
            r.outcome(server)
        );
    }
    let ServerOutcome::Skipped { reason } = r.outcome(PRINCIPAL) else {
        unreachable!()
    };
    assert!(reason.contains("halted"), "{reason}");
    for server in [TOKYO, BRANCH] {
        assert!(
            matches!(
                r.outcome(server),
                ServerOutcome::Done { overrun: false, .. }
            ),
            "{server}: {:?}",
            r.outcome(server)
        );
        assert_eq!(outage_actions(&r.host(server)), DOCUMENTED, "{server}");
    }
}

/// The failed server is back: services and w3svc running, its one outage over.
fn assert_back(host: &SimHost) {
    let state = host.state();
    assert!(state.services_running() && state.w3svc_running, "{state:?}");
    assert!(host.outages().iter().all(|o| o.end.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_installer_fires_the_watchdog_and_services_are_back_before_the_threshold() {
    let (inventory, change) = change();
    // Plan minutes exactly (not the rehearsal's 80% speed): 30s, 5s, then a 26-minute
    // installer across the budget; restored (5s + 30s + 5s) by 27m15s, well before 30m.
    let slow = on(BE, |c| {
        c.with_durations(SimDurations {
            stop_services: Duration::from_secs(30),
            start_services: Duration::from_secs(30),
            install: mins(26),
            ..SimDurations::scaled(1.0 / COMPRESS)
        })
    });
    let r = rehearse(&inventory, &change, slow).await;
    let j = r.journal();

    let dog = j.one("watchdog", |e| matches!(e, Event::Watchdog { .. }));
    let Event::Watchdog {
        server,
        action,
        remaining,
        ..
    } = &dog.event
    else {
        unreachable!()
    };
    assert_eq!((server.as_str(), *action), (BE, WatchdogAction::Restore));
    assert_eq!(
        remaining[0],
        StepKind::InstallUpdate,
        "during the installer"
    );
    let after_install = vec![
        StepKind::StopServicesAgain,
        StepKind::StartW3svc,
        StepKind::UpdateDatabases,
        StepKind::StartServices,
    ];
    j.one("budget exhausted", |e| {
        *e == Event::ServerBudgetExhausted {
            server: BE.into(),
            remaining: after_install.clone(),
        }
    });
    assert_eq!(
        *r.outcome(BE),
        ServerOutcome::BudgetExhausted {
            remaining: after_install,
            restored: true
        }
    );

    // The host's side: the installer was not interrupted; then services came back at once
    // (no further step of the procedure), before the threshold.
    let host = r.host(BE);
    assert!(installer_finished(&host, 0));
    assert_eq!(
        outage_actions(&host),
        [
            ActionKind::StopServices,
            ActionKind::StopW3svc,
            ActionKind::Install,
            ActionKind::StartW3svc,
            ActionKind::StartServices,
            ActionKind::VerifyServices,
        ]
    );
    assert_back(&host);
    let outages = host.outages();
    assert_eq!(outages.len(), 1);
    let down = outages[0].end.unwrap() - outages[0].start;
    assert!(
        down > r.plan.policy.budget && down < r.plan.policy.threshold,
        "down {down:?}: past the budget {:?}, within the threshold {:?}",
        r.plan.policy.budget,
        r.plan.policy.threshold
    );
    assert_eq!(r.report.breaches, 0);
    assert_only_the_pool_halted(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_restores_services_and_halts_the_pool() {
    let (inventory, change) = change();
    // Step 9, the second Stop-CsWindowsService, fails after the update is installed: w3svc
    // is stopped, so the recovery has everything to bring back.
    let failing = on(BE, |c| {
        c.with_fault(
            Fault::new(
                ActionKind::StopServices,
                FaultEffect::Fail {
                    exit_code: 1,
                    stderr: "Stop-CsWindowsService : Service \"RTCSRV\" did not stop within the time-out period.\r\n".into(),
                },
            )
            .on_occurrence(2),
        )
    });
    let r = rehearse(&inventory, &change, failing).await;
    let j = r.journal();

    let ServerOutcome::Failed {
        step,
        reason,
        restored,
    } = r.outcome(BE)
    else {
        panic!("{:?}", r.outcome(BE));
    };
    assert_eq!(
        (*step, *restored),
        (Some(StepKind::StopServicesAgain), true)
    );
    assert!(
        reason.contains("Stop-CsWindowsService") && reason.contains("did not stop"),
        "the reason names the step and its error: {reason}"
    );
    j.one(
        "failure",
        |e| matches!(e, Event::ServerFailed { server, restored: true, .. } if server == BE),
    );
    let host = r.host(BE);
    assert_eq!(
        outage_actions(&host),
        [
            ActionKind::StopServices,
            ActionKind::StopW3svc,
            ActionKind::Install,
            ActionKind::StopServices,
            ActionKind::StartW3svc,
            ActionKind::StartServices,
            ActionKind::VerifyServices,
        ],
        "recovery right after the failed step; the databases were not touched"
    );
    assert_back(&host);
    assert!(host.state().update_installed && !host.state().databases_updated);
    assert_only_the_pool_halted(&r);
    assert!(r.report.summary.halted.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_halt_all_no_new_server_starts_anywhere() {
    let (inventory, mut change) = change();
    change.on_failure = OnFailure::HaltAll;
    let failing = on(BE, |c| {
        c.with_fault(Fault::new(
            ActionKind::UpdateDatabases,
            FaultEffect::Fail {
                exit_code: 1,
                stderr: "Install-CsDatabase : Cannot connect to SQL Server.\r\n".into(),
            },
        ))
    });
    let r = rehearse(&inventory, &change, failing).await;
    let j = r.journal();

    assert!(matches!(
        r.outcome(BE),
        ServerOutcome::Failed {
            step: Some(StepKind::UpdateDatabases),
            restored: true,
            ..
        }
    ));
    assert_back(&r.host(BE));
    let failed = j.one(
        "failure",
        |e| matches!(e, Event::ServerFailed { server, .. } if server == BE),
    );
    // Every outage started before the failure; servers in flight then finished.
    let started = j.find(|e| matches!(e, Event::OutageStarted { .. }));
    assert!(started.iter().all(|s| s.seq < failed.seq), "{started:#?}");
    let halted = r.report.summary.halted.as_deref().unwrap_or_default();
    assert!(halted.contains("halt-all"), "{halted}");
    for (server, host) in r.rehearsal.estate.hosts() {
        let fqdn = server.fqdn.as_str();
        if !r.report.summary.outcomes.contains_key(&server.fqdn) {
            continue; // out of scope
        }
        let went_down = j.outages_started().iter().any(|s| s == fqdn);
        match r.outcome(fqdn) {
            ServerOutcome::Skipped { reason } => {
                assert!(!went_down && preflight_only(host), "{fqdn}");
                assert!(
                    reason.contains("halt-all") || reason.contains("halted"),
                    "{fqdn}: {reason}"
                );
            }
            ServerOutcome::Done { .. } => {
                assert!(went_down, "{fqdn}");
                assert_eq!(outage_actions(host), DOCUMENTED, "{fqdn}");
            }
            other => assert_eq!(fqdn, BE, "{fqdn}: {other:?}"),
        }
    }
    // At least the principal and the server after the halt never started.
    for server in [PRINCIPAL, AFTER, BRANCH] {
        assert!(preflight_only(&r.host(server)), "{server}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_lost_during_the_installer_is_unknown_then_restored_once_back() {
    let (inventory, change) = change();
    let drop = on(BE, |c| {
        c.with_fault(Fault::new(ActionKind::Install, FaultEffect::DropConnection))
    });
    let r = rehearse(&inventory, &change, drop).await;
    let j = r.journal();

    // The installer's outcome is unknown, never success.
    let install = j.one("installer end", |e| {
        matches!(e, Event::StepFinished { server, step: StepKind::InstallUpdate, .. } if server == BE)
    });
    let Event::StepFinished { exit, ok, .. } = &install.event else {
        unreachable!()
    };
    assert!(!ok);
    let ExitRecord::Unknown { reason } = exit else {
        panic!("a lost connection gives no exit code: {exit:?}");
    };
    assert!(reason.contains("connection was lost"), "{reason}");
    assert!(matches!(
        r.outcome(BE),
        ServerOutcome::Failed {
            step: Some(StepKind::InstallUpdate),
            restored: true,
            ..
        }
    ));

    // The host's side: connections dropped mid-install; poolpatch connected again and ran
    // the recovery over the new connection.
    let host = r.host(BE);
    let record = host.record();
    let dropped = record
        .iter()
        .position(|e| matches!(e.kind, SimEventKind::ConnectionsDropped { .. }))
        .expect("the host dropped its connections");
    assert!(
        record[dropped..]
            .iter()
            .any(|e| e.kind == SimEventKind::Connected),
        "a new connection after the drop"
    );
    assert_eq!(
        outage_actions(&host),
        [
            ActionKind::StopServices,
            ActionKind::StopW3svc,
            ActionKind::Install,
            ActionKind::StartW3svc,
            ActionKind::StartServices,
            ActionKind::VerifyServices,
        ]
    );
    // Recovery waited for the installer, which went on after the connection dropped:
    // services started only once it had finished.
    let installed = record
        .iter()
        .position(|e| {
            matches!(&e.kind, SimEventKind::ActionFinished { action, .. }
                if action.kind() == ActionKind::Install)
        })
        .expect("the installer finished on the host");
    let restarted = record
        .iter()
        .position(|e| {
            matches!(&e.kind, SimEventKind::ActionStarted { action, .. }
                if action.kind() == ActionKind::StartW3svc)
        })
        .expect("recovery started w3svc");
    assert!(
        installed < restarted,
        "services started under a running installer"
    );
    assert_back(&host);
    assert_only_the_pool_halted(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installer_exit_3010_restarts_the_server_and_the_procedure_goes_on() {
    let (inventory, mut change) = example();
    scope_pools(&mut change, &[POOL]);
    let reboot = on(BE, |c| {
        c.with_fault(Fault::new(ActionKind::Install, FaultEffect::RebootRequired))
    });
    let r = rehearse(&inventory, &change, reboot).await;
    let j = r.journal();

    j.one("reboot request", |e| {
        *e == Event::RebootRequested { server: BE.into() }
    });
    assert!(
        matches!(r.outcome(BE), ServerOutcome::Done { .. }),
        "{:?}",
        r.outcome(BE)
    );
    let host = r.host(BE);
    assert_went_on_after_the_restart(&host);
    assert!(matches!(r.outcome(PRINCIPAL), ServerOutcome::Done { .. }));
    assert_eq!(r.report.breaches, 0);
}

/// The fingerprint of a host's key as messages show it.
fn fingerprint(host: &SimHost) -> String {
    host.public_key().fingerprint(HashAlg::Sha256).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_changed_host_keys_are_refused_for_the_whole_run() {
    let (inventory, change) = change();
    let mut changed_line = 0;
    let r = rehearse_with(&inventory, &change, None, |rehearsal| {
        // Tokyo's key is missing from known_hosts; the branch's recorded key is another.
        let path = rehearsal.estate.known_hosts();
        let text = std::fs::read_to_string(path).unwrap();
        let line_of = |fqdn: &str| {
            let s = rehearsal.estate.server(fqdn).unwrap();
            rehearsal
                .estate
                .host(fqdn)
                .unwrap()
                .known_hosts_line(&s.ssh.address, s.ssh.port)
        };
        let (tokyo, branch) = (line_of(TOKYO), line_of(BRANCH));
        let s = rehearsal.estate.server(BRANCH).unwrap();
        let other = known_hosts_line(
            &s.ssh.address,
            s.ssh.port,
            random_ed25519_key().public_key(),
        );
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| *l != tokyo)
            .map(|l| if l == branch { other.as_str() } else { l })
            .collect();
        changed_line = 1 + lines.iter().position(|l| *l == other).unwrap();
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    })
    .await;
    let j = r.journal();
    let known_hosts = r.rehearsal.estate.known_hosts().display().to_string();

    let reason_of = |server: &str| {
        let failed = j.one(
            "preflight failure",
            |e| matches!(e, Event::PreflightFailed { server: s, .. } if s == server),
        );
        let Event::PreflightFailed { reason, .. } = &failed.event else {
            unreachable!()
        };
        reason.clone()
    };
    let unknown = reason_of(TOKYO);
    assert!(
        unknown.contains("not known")
            && unknown.contains(&fingerprint(&r.host(TOKYO)))
            && unknown.contains(&known_hosts),
        "names the key's fingerprint and the file: {unknown}"
    );
    let changed = reason_of(BRANCH);
    assert!(
        changed.contains("CHANGED")
            && changed.contains(&fingerprint(&r.host(BRANCH)))
            && changed.contains(&format!("{known_hosts}:{changed_line}")),
        "names the offered key, the file and the line: {changed}"
    );
    for server in [TOKYO, BRANCH] {
        let ServerOutcome::Skipped { reason } = r.outcome(server) else {
            panic!("{server}: {:?}", r.outcome(server));
        };
        assert!(reason.starts_with("preflight failed"), "{reason}");
        // Refused before logging on: the host never ran anything.
        let host = r.host(server);
        assert_eq!(host.commands(), [], "{server}");
        assert!(
            !host
                .record()
                .iter()
                .any(|e| matches!(e.kind, SimEventKind::LoggedOn { .. })),
            "{server}: never logged on"
        );
        assert!(host.outages().is_empty());
    }
    // The rest of the run went on.
    for server in [BE, PRINCIPAL, AFTER] {
        assert!(
            matches!(r.outcome(server), ServerOutcome::Done { .. }),
            "{server}: {:?}",
            r.outcome(server)
        );
        assert_eq!(outage_actions(&r.host(server)), DOCUMENTED);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_preflight_skips_the_server_with_the_reason() {
    let (inventory, change) = change();
    let customize: Customize = Arc::new(|server, mut c| {
        match server.fqdn.as_str() {
            TOKYO => c.cs_administrator = false,
            BRANCH => c.free_bytes = 1_000_000_000,
            _ => {}
        }
        c
    });
    let r = rehearse(&inventory, &change, Some(customize)).await;
    let j = r.journal();

    let reason_of = |server: &str| {
        let ServerOutcome::Skipped { reason } = r.outcome(server) else {
            panic!("{server}: {:?}", r.outcome(server));
        };
        j.one(
            "preflight failure",
            |e| matches!(e, Event::PreflightFailed { server: s, .. } if s == server),
        );
        reason.clone()
    };
    let not_admin = reason_of(TOKYO);
    assert!(
        not_admin.contains("svc-poolpatch") && not_admin.contains("CsAdministrator"),
        "{not_admin}"
    );
    let no_space = reason_of(BRANCH);
    assert!(
        no_space.contains("free") && no_space.contains("4.0 GiB needed"),
        "{no_space}"
    );
    for server in [TOKYO, BRANCH] {
        let host = r.host(server);
        assert!(preflight_only(&host), "{server}: {:?}", host_actions(&host));
        assert!(host.outages().is_empty() && host.state().services_running());
    }
    assert!(!host_actions(&r.host(TOKYO)).contains(&ActionKind::FileHash));
    for server in [BE, PRINCIPAL, AFTER] {
        assert!(
            matches!(r.outcome(server), ServerOutcome::Done { .. }),
            "{server}: {:?}",
            r.outcome(server)
        );
    }
}
