//! Steering a running controller: `poolpatch ctl pause|resume|abort` (the control file),
//! under tokio's paused clock against simulated hosts.

use std::time::Duration;

use poolpatch::exec::control::{Command, send};
use poolpatch::exec::{RunReport, ServerOutcome, carry_out};
use poolpatch::journal::{self, Event, Record};
use poolpatch::sim::SimDurations;
use poolpatch_tests::{Simulation, example};

/// Waits (in virtual time) until the journal has a record matching `f`.
async fn until(run_dir: &std::path::Path, f: impl Fn(&Event) -> bool) -> Vec<Record> {
    for _ in 0..100_000 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Ok(j) = journal::read(run_dir)
            && j.records.iter().any(|r| f(&r.event))
        {
            return j.records;
        }
    }
    panic!("the journal never showed the awaited event");
}

fn position(records: &[Record], f: impl Fn(&Event) -> bool) -> usize {
    records.iter().position(|r| f(&r.event)).expect("event")
}

async fn start(
    sim: &Simulation,
    change: &poolpatch_plans::Change,
) -> tokio::task::JoinHandle<RunReport> {
    let plan = poolpatch_plans::plan(&sim.inventory, change);
    let (inv, ch, conn, ctx) = (
        sim.inventory.clone(),
        change.clone(),
        sim.connector.clone(),
        sim.context(),
    );
    tokio::spawn(async move {
        let (_tx, rx) = tokio::sync::watch::channel(false);
        carry_out(&plan, &inv, &ch, conn, &ctx, rx)
            .await
            .expect("run starts")
    })
}

#[tokio::test(start_paused = true)]
async fn pause_starts_nothing_new_until_resumed() {
    let (inventory, change) = example();
    let sim = Simulation::new(&inventory, &change, SimDurations::default(), None);
    let run = start(&sim, &change).await;
    let dir = sim.run_dir();
    until(&dir, |e| matches!(e, Event::OutageStarted { .. })).await;
    send(&dir, Command::Pause, "alice@ops").expect("pause");
    until(&dir, |e| matches!(e, Event::Paused { .. })).await;
    // Hours pass while paused: servers in flight end, nothing new starts.
    tokio::time::sleep(Duration::from_secs(3 * 3600)).await;
    let paused = journal::read(&dir).expect("journal").records;
    let p = position(&paused, |e| matches!(e, Event::Paused { .. }));
    assert!(
        !paused[p..]
            .iter()
            .any(|r| matches!(r.event, Event::OutageStarted { .. })),
        "no outage starts while paused"
    );
    assert!(
        paused[p..]
            .iter()
            .any(|r| matches!(r.event, Event::ServerDone { .. })),
        "servers in flight finish"
    );
    send(&dir, Command::Resume, "alice@ops").expect("resume");
    let report = run.await.expect("run");
    assert_eq!(report.summary.done(), 10, "{:#?}", report.summary.outcomes);
    let all = journal::read(&dir).expect("journal").records;
    assert!(
        all.iter()
            .any(|r| matches!(&r.event, Event::Unpaused { by } if by == "alice@ops"))
    );
}

#[tokio::test(start_paused = true)]
async fn abort_finishes_servers_in_flight_and_starts_no_other() {
    let (inventory, change) = example();
    let sim = Simulation::new(&inventory, &change, SimDurations::default(), None);
    let run = start(&sim, &change).await;
    let dir = sim.run_dir();
    until(&dir, |e| matches!(e, Event::OutageStarted { .. })).await;
    send(&dir, Command::Abort, "bob@ops").expect("abort");
    let report = run.await.expect("run");
    let records = journal::read(&dir).expect("journal").records;
    let a = position(&records, |e| matches!(e, Event::AbortRequested { .. }));
    assert!(
        !records[a..]
            .iter()
            .any(|r| matches!(r.event, Event::OutageStarted { .. }))
    );
    let started: Vec<&str> = records[..a]
        .iter()
        .filter_map(|r| match &r.event {
            Event::OutageStarted { server, .. } => Some(server.as_str()),
            _ => None,
        })
        .collect();
    assert!(!started.is_empty());
    for (fqdn, outcome) in &report.summary.outcomes {
        if started.contains(&fqdn.as_str()) {
            assert!(
                matches!(outcome, ServerOutcome::Done { .. }),
                "{fqdn}: in flight, finished"
            );
        } else {
            assert!(
                matches!(outcome, ServerOutcome::Skipped { reason } if reason.contains("stopped")),
                "{fqdn}: {outcome:?}"
            );
        }
    }
    // No server is left down.
    for (fqdn, host) in &sim.hosts {
        assert!(host.state().services_running(), "{fqdn} left down");
    }
    assert!(report.summary.halted.is_some());
}

#[tokio::test(start_paused = true)]
async fn abort_with_on_stop_restore_restores_servers_in_flight() {
    let (inventory, mut change) = example();
    change.outage.on_stop = poolpatch_plans::change::OnBudgetExhausted::Restore;
    let sim = Simulation::new(&inventory, &change, SimDurations::default(), None);
    let run = start(&sim, &change).await;
    let dir = sim.run_dir();
    // Abort once the first server's services are stopping: it is mid-procedure.
    let records = until(&dir, |e| {
        matches!(
            e,
            Event::StepFinished {
                step: poolpatch_plans::procedure::StepKind::StopW3svc,
                ..
            }
        )
    })
    .await;
    let victim = records
        .iter()
        .find_map(|r| match &r.event {
            Event::OutageStarted { server, .. } => Some(server.clone()),
            _ => None,
        })
        .expect("a server in flight");
    send(&dir, Command::Abort, "carol@ops").expect("abort");
    let report = run.await.expect("run");
    let outcome = report
        .summary
        .outcomes
        .get(&poolpatch_inventory::Fqdn::parse(&victim).unwrap())
        .expect("victim");
    match outcome {
        ServerOutcome::Failed {
            reason,
            restored: true,
            ..
        } => {
            assert!(reason.contains("on_stop: restore"), "{reason}");
        }
        // The installer is never interrupted: if the abort came during it, the server is
        // restored right after it, or finished if the rest was already done.
        other => panic!("{victim}: {other:?}"),
    }
    for (fqdn, host) in &sim.hosts {
        assert!(host.state().services_running(), "{fqdn} left down");
    }
}
