//! The outage watchdog and the breach alarm under tokio's paused clock.
//!
//! The real executor talks real SSH to simulated back ends over in-memory streams
//! (`tokio::io::duplex`), with realistic, uncompressed durations: a 27-minute installer is
//! 27 minutes on tokio's clock, and a whole 45-minute run costs well under a second. Since
//! the clock only moves when every task waits, the times in the journal are exact: the
//! watchdog fires at exactly the budget (25m) and the breach alarm at exactly the threshold
//! (30m) of the change file.

use std::sync::Arc;
use std::time::Duration;

use poolpatch::exec::{ServerOutcome, carry_out};
use poolpatch::journal::{Event, ExitRecord, Record, WatchdogAction};
use poolpatch::sim::{ActionKind, Customize, Fault, FaultEffect, SimDurations, SimHostConfig};
use poolpatch_plans::change::OnBudgetExhausted;
use poolpatch_plans::procedure::StepKind;
use poolpatch_tests::{
    DOCUMENTED, Journaled, Simulated, Simulation, assert_went_on_after_the_restart, example,
    installer_finished, outage_actions, scope_pools, simulate,
};

/// The mirror side of pool01.ams: the first server of its pool to be patched.
const BE: &str = "be02.ams.contoso.com";
/// The principal of pool01.ams: patched only after the mirror side.
const PRINCIPAL: &str = "be01.ams.contoso.com";
const POOL: &str = "pool01.ams.contoso.com";

const SEC: u64 = 1_000;
const MIN: u64 = 60 * SEC;
/// The change file's budget and threshold, in milliseconds.
const BUDGET_MS: u64 = 25 * MIN;
const THRESHOLD_MS: u64 = 30 * MIN;

fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
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

/// Shorter service stops and starts than the defaults, so that a slow installer's outage
/// can end between the budget and the threshold.
fn quick_services(mut c: SimHostConfig) -> SimHostConfig {
    c.durations.stop_services = Duration::from_secs(30);
    c.durations.start_services = Duration::from_secs(60);
    c
}

/// The only `OutageStarted` of `server`.
fn outage_started<'a>(j: &'a Journaled, server: &str) -> &'a Record {
    j.one(
        "outage start",
        |e| matches!(e, Event::OutageStarted { server: s, .. } if s == server),
    )
}

/// Milliseconds from `server`'s outage start to `r`, by the run's clock.
fn into_outage(j: &Journaled, server: &str, r: &Record) -> u64 {
    r.elapsed_ms - outage_started(j, server).elapsed_ms
}

/// The steps of `server` as started, in order, with whether each was a recovery step.
fn steps_started(j: &Journaled, server: &str) -> Vec<(StepKind, bool)> {
    j.of(server)
        .filter_map(|e| match e {
            Event::StepStarted { step, recovery, .. } if step.in_outage() => {
                Some((*step, *recovery))
            }
            _ => None,
        })
        .collect()
}

/// The only `StepFinished` of `server` for `step` (`recovery` or not).
fn step_finished<'a>(j: &'a Journaled, server: &str, step: StepKind, recovery: bool) -> &'a Record {
    j.one(&format!("{server} {} finished", step.name()), |e| {
        matches!(e, Event::StepFinished { server: s, step: k, recovery: r, .. }
            if s == server && *k == step && *r == recovery)
    })
}

/// The principal of the pool never started: it saw its preflight only, and was skipped
/// because its pool halted.
fn assert_principal_never_started(r: &Simulated) {
    assert_eq!(
        outage_actions(&r.host(PRINCIPAL)),
        [],
        "{PRINCIPAL} never went down"
    );
    let ServerOutcome::Skipped { reason } = r.outcome(PRINCIPAL) else {
        panic!("{PRINCIPAL}: {:?}", r.outcome(PRINCIPAL));
    };
    assert!(reason.contains("halted"), "{reason}");
    let j = r.journal();
    j.one(
        "pool halt",
        |e| matches!(e, Event::PoolHalted { pool, .. } if pool == POOL),
    );
}

const AFTER_INSTALL: [StepKind; 4] = [
    StepKind::StopServicesAgain,
    StepKind::StartW3svc,
    StepKind::UpdateDatabases,
    StepKind::StartServices,
];

#[tokio::test(start_paused = true)]
async fn a_slow_installer_is_waited_for_then_services_are_restored_before_the_threshold() {
    let (inventory, change) = example();
    // 30s to stop services, 5s for w3svc, then a 27-minute installer: the budget (25m)
    // runs out while it runs; it must not be interrupted.
    let slow = on(BE, |c| {
        let mut c = quick_services(c);
        c.durations.install = mins(27);
        c
    });
    let r = simulate(&inventory, &change, SimDurations::default(), slow).await;
    let j = r.journal();

    // The watchdog fired at exactly the budget, with the installer still to finish.
    let dog = j.one("watchdog", |e| matches!(e, Event::Watchdog { .. }));
    let mut remaining = vec![StepKind::InstallUpdate];
    remaining.extend(AFTER_INSTALL);
    assert_eq!(
        dog.event,
        Event::Watchdog {
            server: BE.into(),
            action: WatchdogAction::Restore,
            remaining,
            down_ms: BUDGET_MS,
        }
    );
    assert_eq!(into_outage(&j, BE, dog), BUDGET_MS);

    // The installer was not interrupted: it ran its 27 minutes and succeeded, after the
    // watchdog fired.
    let install = step_finished(&j, BE, StepKind::InstallUpdate, false);
    assert!(install.seq > dog.seq);
    let Event::StepFinished {
        exit, duration_ms, ..
    } = &install.event
    else {
        unreachable!()
    };
    assert_eq!(*exit, ExitRecord::Code { code: 0 });
    assert_eq!(*duration_ms, 27 * MIN);
    let host = r.host(BE);
    assert!(
        installer_finished(&host, 0),
        "the host ran the installer to its end"
    );

    // Then the procedure stopped advancing: services were restored at once.
    assert_eq!(
        steps_started(&j, BE),
        [
            (StepKind::StopServices, false),
            (StepKind::StopW3svc, false),
            (StepKind::InstallUpdate, false),
            (StepKind::StartW3svc, true),
            (StepKind::StartServices, true),
        ]
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
    j.one("budget exhausted", |e| {
        *e == Event::ServerBudgetExhausted {
            server: BE.into(),
            remaining: AFTER_INSTALL.to_vec(),
        }
    });
    assert_eq!(
        *r.outcome(BE),
        ServerOutcome::BudgetExhausted {
            remaining: AFTER_INSTALL.to_vec(),
            restored: true
        }
    );
    // 30s + 5s + 27m, then net start w3svc (5s), Start-CsWindowsService (60s) and the
    // check (5s): back at 28m45s, before the threshold.
    j.one("outage end", |e| {
        *e == Event::OutageEnded {
            server: BE.into(),
            outage_ms: 28 * MIN + 45 * SEC,
        }
    });
    // The host agrees: one outage, longer than the budget, ended before the threshold.
    let outages = host.outages();
    assert_eq!(outages.len(), 1);
    let down = outages[0].end.expect("services are running again") - outages[0].start;
    assert!(down > mins(25) && down < mins(30), "{down:?}");
    let state = host.state();
    assert!(state.services_running() && state.w3svc_running);
    assert!(state.update_installed && !state.databases_updated);
    assert!(j.find(|e| matches!(e, Event::Breach { .. })).is_empty());
    assert_eq!(r.report.breaches, 0);

    // No further server of the pool started; pool02.ams comes after it, so it never starts
    // either. Every other pool finished, in the documented order.
    assert_principal_never_started(&r);
    let after = "be03.ams.contoso.com";
    assert_eq!(outage_actions(&r.host(after)), []);
    assert!(matches!(*r.outcome(after), ServerOutcome::Skipped { .. }));
    for (fqdn, outcome) in &r.report.summary.outcomes {
        if [BE, PRINCIPAL, after].contains(&fqdn.as_str()) {
            continue;
        }
        assert!(
            matches!(outcome, ServerOutcome::Done { overrun: false, .. }),
            "{fqdn}: {outcome:?}"
        );
        assert_eq!(outage_actions(&r.host(fqdn.as_str())), DOCUMENTED, "{fqdn}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_server_still_down_at_the_threshold_is_one_breach() {
    let (inventory, mut change) = example();
    scope_pools(&mut change, &[POOL]);
    // A 31-minute installer: the watchdog waits for it at 25m, the threshold passes at
    // 30m while it still runs, and two recovery steps follow.
    let slower = on(BE, |c| {
        let mut c = quick_services(c);
        c.durations.install = mins(31);
        c
    });
    let r = simulate(&inventory, &change, SimDurations::default(), slower).await;
    let j = r.journal();

    let dog = j.one("watchdog", |e| matches!(e, Event::Watchdog { .. }));
    assert_eq!(into_outage(&j, BE, dog), BUDGET_MS);
    let breach = j.one("breach", |e| matches!(e, Event::Breach { .. }));
    assert_eq!(
        breach.event,
        Event::Breach {
            server: BE.into(),
            pool: POOL.into(),
            down_ms: THRESHOLD_MS,
        }
    );
    assert_eq!(into_outage(&j, BE, breach), THRESHOLD_MS);
    let install = step_finished(&j, BE, StepKind::InstallUpdate, false);
    assert!(dog.seq < breach.seq && breach.seq < install.seq);
    assert_eq!(r.report.breaches, 1);

    // Restored after the installer: 30s + 5s + 31m + 5s + 60s + 5s.
    j.one("outage end", |e| {
        *e == Event::OutageEnded {
            server: BE.into(),
            outage_ms: 32 * MIN + 45 * SEC,
        }
    });
    assert_eq!(
        *r.outcome(BE),
        ServerOutcome::BudgetExhausted {
            remaining: AFTER_INSTALL.to_vec(),
            restored: true
        }
    );
    let host = r.host(BE);
    let outages = host.outages();
    assert_eq!(outages.len(), 1);
    let down = outages[0].end.expect("services are running again") - outages[0].start;
    assert!(
        down > mins(30),
        "the host was down past the threshold: {down:?}"
    );
    assert!(host.state().services_running());
    assert_principal_never_started(&r);
}

#[tokio::test(start_paused = true)]
async fn with_finish_the_procedure_completes_and_the_overrun_is_journaled() {
    let (inventory, mut change) = example();
    scope_pools(&mut change, &[POOL]);
    change.outage.on_budget_exhausted = OnBudgetExhausted::Finish;
    // A 19-minute installer: the budget runs out during Install-CsDatabase (22m10s to
    // 27m10s); the procedure completes at 29m15s, before the threshold.
    let slow = on(BE, |mut c| {
        c.durations.install = mins(19);
        c.durations.update_databases = mins(5);
        c
    });
    let r = simulate(&inventory, &change, SimDurations::default(), slow).await;
    let j = r.journal();

    let dog = j.one("watchdog", |e| matches!(e, Event::Watchdog { .. }));
    assert_eq!(
        dog.event,
        Event::Watchdog {
            server: BE.into(),
            action: WatchdogAction::Finish,
            remaining: vec![StepKind::UpdateDatabases, StepKind::StartServices],
            down_ms: BUDGET_MS,
        }
    );
    assert_eq!(into_outage(&j, BE, dog), BUDGET_MS);
    let outage = 29 * MIN + 15 * SEC;
    j.one("done", |e| {
        *e == Event::ServerDone {
            server: BE.into(),
            outage_ms: outage,
        }
    });
    assert_eq!(
        *r.outcome(BE),
        ServerOutcome::Done {
            outage: Duration::from_millis(outage),
            overrun: true
        }
    );
    // Nothing was cut short and nothing was restored early: the documented procedure, and
    // no recovery step.
    let host = r.host(BE);
    assert_eq!(outage_actions(&host), DOCUMENTED);
    assert!(steps_started(&j, BE).iter().all(|(_, recovery)| !recovery));
    assert!(host.state().databases_updated && host.state().services_running());
    assert!(j.find(|e| matches!(e, Event::Breach { .. })).is_empty());

    // Done, so the pool goes on: the principal is patched, within its budget.
    assert!(matches!(
        *r.outcome(PRINCIPAL),
        ServerOutcome::Done { overrun: false, .. }
    ));
    assert_eq!(outage_actions(&r.host(PRINCIPAL)), DOCUMENTED);
    assert_eq!(r.report.summary.halted, None);
}

#[tokio::test(start_paused = true)]
async fn an_interruptible_step_hanging_past_the_budget_is_abandoned_and_services_restored() {
    let (inventory, mut change) = example();
    scope_pools(&mut change, &[POOL]);
    let hang = on(BE, |c| {
        c.with_fault(Fault::new(ActionKind::StopW3svc, FaultEffect::Hang))
    });
    let r = simulate(&inventory, &change, SimDurations::default(), hang).await;
    let j = r.journal();

    let rest = vec![
        StepKind::StopW3svc,
        StepKind::InstallUpdate,
        StepKind::StopServicesAgain,
        StepKind::StartW3svc,
        StepKind::UpdateDatabases,
        StepKind::StartServices,
    ];
    let dog = j.one("watchdog", |e| matches!(e, Event::Watchdog { .. }));
    assert_eq!(
        dog.event,
        Event::Watchdog {
            server: BE.into(),
            action: WatchdogAction::Restore,
            remaining: rest.clone(),
            down_ms: BUDGET_MS,
        }
    );
    // net stop w3svc was abandoned at the budget (its own timeout was later).
    let stop = step_finished(&j, BE, StepKind::StopW3svc, false);
    assert_eq!(stop.elapsed_ms, dog.elapsed_ms);
    let Event::StepFinished { exit, ok, .. } = &stop.event else {
        unreachable!()
    };
    assert!(!ok);
    assert!(
        matches!(exit, ExitRecord::Unknown { reason } if reason.contains("abandoned")),
        "{exit:?}"
    );
    // Restored at once: net start w3svc (already running: fine) and Start-CsWindowsService
    // with its check, 5s + 125s after the budget.
    assert_eq!(
        steps_started(&j, BE),
        [
            (StepKind::StopServices, false),
            (StepKind::StopW3svc, false),
            (StepKind::StartW3svc, true),
            (StepKind::StartServices, true),
        ]
    );
    j.one("outage end", |e| {
        *e == Event::OutageEnded {
            server: BE.into(),
            outage_ms: BUDGET_MS + 130 * SEC,
        }
    });
    assert_eq!(
        *r.outcome(BE),
        ServerOutcome::BudgetExhausted {
            remaining: rest,
            restored: true
        }
    );
    let host = r.host(BE);
    assert!(
        !outage_actions(&host).contains(&ActionKind::Install),
        "the installer never ran"
    );
    let state = host.state();
    assert!(state.services_running() && !state.update_installed);
    let outages = host.outages();
    assert_eq!(outages.len(), 1);
    let down = outages[0].end.expect("services are running again") - outages[0].start;
    assert!(down > mins(25) && down < mins(30), "{down:?}");
    assert_principal_never_started(&r);
}

#[tokio::test(start_paused = true)]
async fn the_watchdog_never_abandons_the_recovery() {
    let (inventory, mut change) = example();
    scope_pools(&mut change, &[POOL]);
    // Install-CsDatabase fails at 24m10s; recovery's Start-CsWindowsService (2 minutes)
    // runs across the budget. The watchdog must let it finish and the check run: only then
    // are services known to be back.
    let failing = on(BE, |mut c| {
        c.durations.install = mins(18);
        c.durations.update_databases = mins(3);
        c.with_fault(Fault::new(
            ActionKind::UpdateDatabases,
            FaultEffect::Fail {
                exit_code: 1,
                stderr: "Install-CsDatabase : the SQL Server instance did not answer".into(),
            },
        ))
    });
    let r = simulate(&inventory, &change, SimDurations::default(), failing).await;
    let j = r.journal();

    let failed = step_finished(&j, BE, StepKind::UpdateDatabases, false);
    assert_eq!(into_outage(&j, BE, failed), 24 * MIN + 10 * SEC);
    let dog = j.one("watchdog", |e| matches!(e, Event::Watchdog { .. }));
    assert_eq!(
        dog.event,
        Event::Watchdog {
            server: BE.into(),
            action: WatchdogAction::Restore,
            remaining: vec![],
            down_ms: BUDGET_MS,
        }
    );
    let start = step_finished(&j, BE, StepKind::StartServices, true);
    assert!(start.seq > dog.seq, "the watchdog fired during recovery");
    let Event::StepFinished {
        exit,
        ok,
        duration_ms,
        ..
    } = &start.event
    else {
        unreachable!()
    };
    assert_eq!((exit, *ok), (&ExitRecord::Code { code: 0 }, true));
    assert_eq!(*duration_ms, 125 * SEC);
    j.one("outage end", |e| {
        *e == Event::OutageEnded {
            server: BE.into(),
            outage_ms: 26 * MIN + 20 * SEC,
        }
    });
    let ServerOutcome::Failed {
        step,
        reason,
        restored,
    } = r.outcome(BE)
    else {
        panic!("{:?}", r.outcome(BE));
    };
    assert_eq!((*step, *restored), (Some(StepKind::UpdateDatabases), true));
    assert!(reason.contains("did not answer"), "{reason}");
    let host = r.host(BE);
    assert!(host.state().services_running());
    assert!(host.outages()[0].end.is_some());
    assert_principal_never_started(&r);
}

#[tokio::test(start_paused = true)]
async fn a_reboot_requested_by_the_installer_is_done_and_the_procedure_goes_on() {
    let (inventory, mut change) = example();
    scope_pools(&mut change, &[POOL]);
    let reboot = on(BE, |mut c| {
        c.durations.install = mins(8);
        c.with_fault(Fault::new(ActionKind::Install, FaultEffect::RebootRequired))
    });
    let r = simulate(&inventory, &change, SimDurations::default(), reboot).await;
    let j = r.journal();

    j.one("reboot request", |e| {
        *e == Event::RebootRequested { server: BE.into() }
    });
    assert_eq!(
        steps_started(&j, BE),
        [
            (StepKind::StopServices, false),
            (StepKind::StopW3svc, false),
            (StepKind::InstallUpdate, false),
            (StepKind::Reboot, false),
            (StepKind::StopServicesAgain, false),
            (StepKind::StartW3svc, false),
            (StepKind::UpdateDatabases, false),
            (StepKind::StartServices, false),
        ]
    );
    assert!(matches!(
        *r.outcome(BE),
        ServerOutcome::Done { overrun: false, .. }
    ));
    // The host's side: the installer exited 3010, the host restarted, poolpatch connected
    // again and went on with step 9.
    let host = r.host(BE);
    assert_went_on_after_the_restart(&host);
    assert!(matches!(
        *r.outcome(PRINCIPAL),
        ServerOutcome::Done { overrun: false, .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn a_slow_boot_past_the_budget_is_waited_for_then_services_are_restored() {
    let (inventory, mut change) = example();
    scope_pools(&mut change, &[POOL]);
    // The installer asks for a restart at 9m35s; the host needs 4m + 12m to come back, so
    // the budget runs out while it is unreachable. A reconnection is never abandoned: once
    // the host is back, the watchdog restores instead of going on with step 9.
    let slow_boot = on(BE, |mut c| {
        c.durations.install = mins(8);
        c.with_fault(Fault::new(ActionKind::Install, FaultEffect::RebootRequired))
            .with_fault(Fault::new(
                ActionKind::Restart,
                FaultEffect::SlowBoot(mins(12)),
            ))
    });
    let r = simulate(&inventory, &change, SimDurations::default(), slow_boot).await;
    let j = r.journal();

    let dog = j.one("watchdog", |e| matches!(e, Event::Watchdog { .. }));
    assert_eq!(
        dog.event,
        Event::Watchdog {
            server: BE.into(),
            action: WatchdogAction::Restore,
            remaining: vec![],
            down_ms: BUDGET_MS,
        }
    );
    assert_eq!(
        steps_started(&j, BE),
        [
            (StepKind::StopServices, false),
            (StepKind::StopW3svc, false),
            (StepKind::InstallUpdate, false),
            (StepKind::Reboot, false),
            (StepKind::StartW3svc, true),
            (StepKind::StartServices, true),
        ]
    );
    assert_eq!(
        *r.outcome(BE),
        ServerOutcome::BudgetExhausted {
            remaining: AFTER_INSTALL.to_vec(),
            restored: true
        }
    );
    let end = j.one(
        "outage end",
        |e| matches!(e, Event::OutageEnded { server, .. } if server == BE),
    );
    let Event::OutageEnded { outage_ms, .. } = end.event else {
        unreachable!()
    };
    assert!(
        outage_ms > BUDGET_MS && outage_ms < THRESHOLD_MS,
        "{outage_ms}"
    );
    assert!(j.find(|e| matches!(e, Event::Breach { .. })).is_empty());
    let state = r.host(BE).state();
    assert!(state.services_running() && state.update_installed && !state.databases_updated);
    assert_principal_never_started(&r);
}

/// A caller that never stops a run may drop the stop channel's sender. The run loop must
/// then stop watching the channel rather than spin on it: a spinning task never lets the
/// paused clock advance (and burns a core on a real one), so the run would never end.
#[test]
fn a_run_whose_stop_sender_is_gone_still_ends() {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("runtime");
        let report = rt.block_on(async {
            let (inventory, mut change) = example();
            scope_pools(&mut change, &["se01.ams.contoso.com"]);
            let sim = Simulation::new(&inventory, &change, SimDurations::default(), None);
            let plan = poolpatch_plans::plan(&sim.inventory, &change);
            let (_, never) = tokio::sync::watch::channel(false);
            carry_out(
                &plan,
                &sim.inventory,
                &change,
                sim.connector.clone(),
                &sim.context(),
                never,
            )
            .await
            .expect("the run starts")
        });
        let _ = done_tx.send(report);
    });
    // A guard against a hang, not a measure of speed: the run takes well under a second.
    let report = done_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the run ended");
    assert_eq!(report.summary.done(), 1, "{:?}", report.summary);
}
