//! Resume after a crash: the controller is killed at every step boundary and in the middle
//! of every step of a server's procedure; `resume` then finishes the run. Checked from the
//! simulated hosts' own records: every server completed the procedure in the documented
//! order (the hosts refuse anything out of order), each outage was measured from its true
//! start, and no exclusion rule was broken.
//!
//! Tokio's paused clock over in-memory SSH: real minutes, no real waiting.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use poolpatch::exec::{RunContext, RunReport, ServerOutcome, carry_out, resume_run};
use poolpatch::journal::{self, Event};
use poolpatch::remote::{Connector as _, command_line};
use poolpatch::sim::{Customize, SimDurations, SimEventKind, SimHost};
use poolpatch_plans::Change;
use poolpatch_plans::procedure::StepKind;
use poolpatch_tests::{Simulation, example, overlap, scope_pools};
use tokio::time::Instant;

/// Where the controller dies.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// Just after the step was sent (in the middle of it).
    During(StepKind),
    /// Just after the step ended (at the boundary with the next).
    After(StepKind),
}

const VICTIM: &str = "be02.ams.contoso.com";

fn estate() -> (poolpatch_inventory::Inventory, Change) {
    let (inventory, mut change) = example();
    // pool01.ams (mirror be02, then principal be01) and pool02.ams, which comes after it.
    scope_pools(
        &mut change,
        &["pool01.ams.contoso.com", "pool02.ams.contoso.com"],
    );
    (inventory, change)
}

/// Hosts report the change's target version once updated.
fn versions(change: &Change) -> Customize {
    let by_product: std::collections::BTreeMap<_, _> = change
        .update
        .installers
        .iter()
        .map(|(p, i)| (*p, i.version.clone()))
        .collect();
    Arc::new(move |_server, mut config| {
        if let Some(v) = by_product.get(&config.product) {
            config.version_after = v.clone();
        }
        config
    })
}

fn wall(t0: Instant) -> Timestamp {
    let d = SignedDuration::try_from(Instant::now() - t0).unwrap_or(SignedDuration::ZERO);
    Timestamp::UNIX_EPOCH.checked_add(d).expect("in range")
}

fn hit(kill: Kill, e: &Event) -> bool {
    match (kill, e) {
        (
            Kill::During(k),
            Event::StepStarted {
                server,
                step,
                recovery: false,
                ..
            },
        )
        | (
            Kill::After(k),
            Event::StepFinished {
                server,
                step,
                recovery: false,
                ..
            },
        ) => server == VICTIM && *step == k,
        _ => false,
    }
}

/// Starts the run, kills it at `kill` (aborting the controller: its tasks and connections
/// die, the hosts go on), optionally lets `meddle` touch the hosts, then resumes it.
async fn crash_and_resume(
    kill: Kill,
    by_hand: bool,
    tear_journal: bool,
) -> (Simulation, RunReport) {
    let (inventory, change) = estate();
    let sim = Simulation::new(
        &inventory,
        &change,
        SimDurations::default(),
        Some(versions(&change)),
    );
    let plan = poolpatch_plans::plan(&sim.inventory, &change);
    let t0 = Instant::now();
    let ctx = sim.context();
    let run_dir = ctx.run_dir.clone();
    let (inv, ch, connector, c) = (
        sim.inventory.clone(),
        change.clone(),
        sim.connector.clone(),
        ctx.clone(),
    );
    let controller = tokio::spawn(async move {
        let (_tx, rx) = tokio::sync::watch::channel(false);
        carry_out(&plan, &inv, &ch, connector, &c, rx).await
    });
    // Watch the journal, as a person tailing it would, and kill at the point.
    let mut killed = false;
    for _ in 0..100_000 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Ok(j) = journal::read(&run_dir)
            && j.records.iter().any(|r| hit(kill, &r.event))
        {
            controller.abort();
            killed = true;
            break;
        }
        if controller.is_finished() {
            break;
        }
    }
    assert!(killed, "{kill:?}: the run never reached the kill point");
    let _ = controller.await;
    // Nothing ran after the kill: the journal does not end the run.
    let j = journal::read(&run_dir).expect("journal");
    assert!(
        !j.records
            .iter()
            .any(|r| matches!(r.event, Event::RunFinished { .. }))
    );

    if by_hand {
        start_services_by_hand(&sim).await;
    }
    if tear_journal {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(run_dir.join(journal::JOURNAL_FILE))
            .expect("journal");
        f.write_all(b"{\"v\":1,\"seq\":99999,\"at\":\"20")
            .expect("tear");
    }
    // A minute later, an operator resumes.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let ctx = RunContext {
        now: wall(t0),
        ..ctx
    };
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let report = resume_run(&sim.inventory, &change, sim.connector.clone(), &ctx, rx)
        .await
        .unwrap_or_else(|e| panic!("{kill:?}: resume: {e}"));
    (sim, report)
}

/// The checks every crash must pass.
fn check(kill: Kill, sim: &Simulation, report: &RunReport, change: &Change) {
    let what = format!("{kill:?}");
    for (fqdn, outcome) in &report.summary.outcomes {
        assert!(
            matches!(outcome, ServerOutcome::Done { .. }),
            "{what}: {fqdn} ended {outcome:?}"
        );
    }
    assert_eq!(report.summary.done(), 3, "{what}");
    assert_eq!(report.breaches, 0, "{what}");
    let targets: std::collections::BTreeMap<_, _> = change
        .update
        .installers
        .iter()
        .map(|(p, i)| (*p, i.version.clone()))
        .collect();
    for (fqdn, host) in &sim.hosts {
        if !report.summary.outcomes.keys().any(|f| f.as_str() == fqdn) {
            continue;
        }
        let st = host.state();
        assert_eq!(
            st.version,
            targets[&host.config().product],
            "{what}: {fqdn} updated"
        );
        assert!(st.databases_updated, "{what}: {fqdn} databases");
        assert!(
            st.services_running() && st.w3svc_running,
            "{what}: {fqdn} running"
        );
        // The hosts refuse anything out of order (installer while services run, databases
        // before the update, the wrong variant): nothing was refused.
        let refused: Vec<_> = host
            .record()
            .into_iter()
            .filter(|e| matches!(e.kind, SimEventKind::ActionRefused { .. }))
            .collect();
        assert!(refused.is_empty(), "{what}: {fqdn}: refused {refused:?}");
        assert!(
            host.outages().iter().all(|o| o.end.is_some()),
            "{what}: {fqdn}"
        );
    }
    // The outage of the killed server was measured from its true start: the journal's
    // outage is at least what the host lived through (not restarted at resume).
    let victim = &sim.hosts[VICTIM];
    let host_outage = victim
        .outages()
        .iter()
        .map(|o| o.duration(Instant::now()))
        .max()
        .unwrap_or_default();
    let j = journal::read(&sim.run_dir()).expect("journal");
    let journaled = j
        .records
        .iter()
        .filter_map(|r| match &r.event {
            Event::OutageEnded { server, outage_ms } if server == VICTIM => Some(*outage_ms),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    assert!(
        Duration::from_millis(journaled) + Duration::from_secs(2) >= host_outage,
        "{what}: journaled outage {journaled} ms, the host was down {host_outage:?}"
    );
    // Exclusion rules, from the hosts' records: one back end of pool01.ams at a time, the
    // mirror side first, pool02.ams only after pool01.ams.
    let (be01, be02, be03) = (
        sim.hosts["be01.ams.contoso.com"].outages(),
        victim.outages(),
        sim.hosts["be03.ams.contoso.com"].outages(),
    );
    for a in &be01 {
        for b in &be02 {
            assert!(!overlap(a, b), "{what}: be01 and be02 down together");
        }
    }
    let last_end = |o: &[poolpatch::sim::Outage]| o.iter().filter_map(|x| x.end).max();
    let first_start = |o: &[poolpatch::sim::Outage]| o.iter().map(|x| x.start).min();
    assert!(
        last_end(&be02) <= first_start(&be01),
        "{what}: mirror side first"
    );
    assert!(
        last_end(&be01).max(last_end(&be02)) <= first_start(&be03),
        "{what}: pool02 after pool01"
    );
    // The journal of the whole run reads back whole, with the resume in it.
    assert!(
        j.records
            .iter()
            .any(|r| matches!(r.event, Event::RunResumed { .. }))
    );
    assert!(matches!(
        j.records.last().map(|r| &r.event),
        Some(Event::RunFinished { .. })
    ));
}

const OUTAGE: [StepKind; 7] = [
    StepKind::StopServices,
    StepKind::StopW3svc,
    StepKind::InstallUpdate,
    StepKind::StopServicesAgain,
    StepKind::StartW3svc,
    StepKind::UpdateDatabases,
    StepKind::StartServices,
];

#[tokio::test(start_paused = true)]
async fn killed_at_every_step_boundary_and_mid_step_then_resumed() {
    let (_, change) = estate();
    let mut points = vec![Kill::During(StepKind::CheckGroups)];
    for k in OUTAGE {
        points.push(Kill::During(k));
        points.push(Kill::After(k));
    }
    for kill in points {
        let (sim, report) = crash_and_resume(kill, false, false).await;
        check(kill, &sim, &report, &change);
        for h in sim.hosts.values() {
            h.shutdown();
        }
    }
}

#[tokio::test(start_paused = true)]
async fn killed_mid_install_the_installer_finishes_and_resume_follows_the_host() {
    let (_, change) = estate();
    let kill = Kill::During(StepKind::InstallUpdate);
    let (sim, report) = crash_and_resume(kill, false, false).await;
    check(kill, &sim, &report, &change);
    let j = journal::read(&sim.run_dir()).expect("journal");
    let resumed = j
        .records
        .iter()
        .find_map(|r| match &r.event {
            Event::ServerResumed {
                server,
                found,
                continue_with,
                note,
            } if server == VICTIM => Some((found.clone(), *continue_with, note.clone())),
            _ => None,
        })
        .expect("the victim was resumed");
    // The installer ran on after the controller died; resume did not run it twice.
    assert!(resumed.0.contains("(updated)"), "{resumed:?}");
    assert_eq!(resumed.1, Some(StepKind::StopServicesAgain), "{resumed:?}");
    assert!(
        resumed.2.contains("did not see the installer finish"),
        "{resumed:?}"
    );
    let installs = sim.hosts[VICTIM]
        .record()
        .into_iter()
        .filter(|e| {
            matches!(&e.kind, SimEventKind::ActionStarted { action, .. }
                if action.kind() == poolpatch::sim::ActionKind::Install)
        })
        .count();
    assert_eq!(installs, 1, "the installer ran once");
}

/// An operator starts the services on the killed server by hand, over SSH.
async fn start_services_by_hand(sim: &Simulation) {
    let host: &SimHost = &sim.hosts[VICTIM];
    let server = sim
        .inventory
        .servers()
        .find(|s| s.fqdn.as_str() == VICTIM)
        .expect("victim")
        .clone();
    let script =
        "Import-Module 'SkypeForBusiness'\nStart-CsWindowsService\nnet start w3svc\nexit 0\n";
    let line = command_line(server.ssh.shell, script);
    let h = sim
        .connector
        .connect(&server)
        .await
        .expect("connect by hand");
    let out = h.run(&line, Duration::from_secs(600)).await;
    assert!(host.state().services_running(), "started by hand: {out:?}");
}

#[tokio::test(start_paused = true)]
async fn services_started_by_hand_resume_follows_the_host_and_says_so() {
    let (_, change) = estate();
    let kill = Kill::After(StepKind::StopServicesAgain);
    let (sim, report) = crash_and_resume(kill, true, true).await;
    check(kill, &sim, &report, &change);
    let j = journal::read(&sim.run_dir()).expect("journal");
    let note = j
        .records
        .iter()
        .find_map(|r| match &r.event {
            Event::ServerResumed {
                server,
                note,
                continue_with,
                ..
            } if server == VICTIM => Some((note.clone(), *continue_with)),
            _ => None,
        })
        .expect("resumed");
    assert!(note.0.contains("running"), "{note:?}");
    assert_eq!(
        note.1,
        Some(StepKind::StopServicesAgain),
        "the databases are still to do"
    );
    // The torn line the crash left was cut off and reported.
    assert!(j.records.iter().any(|r| matches!(
        r.event,
        Event::RunResumed {
            torn_line_dropped: Some(_),
            ..
        }
    )));
    assert_eq!(j.torn_last_line, None);
}
