//! The journal of a run with every kind of ending, under tokio's paused clock: every line
//! is a versioned record, sequence numbers are contiguous, `RunStarted` comes first and
//! `RunFinished` last, and `poolpatch status` derives from it (and from any part of it, as
//! after a crash) what the run's report says.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poolpatch::exec::{ServerOutcome, carry_out};
use poolpatch::journal::{self, Event, Journal, WatchdogAction};
use poolpatch::remote::{BoxFuture, Connector, ExecOutput, RemoteError, RemoteHost};
use poolpatch::sim::{ActionKind, Customize, Fault, FaultEffect, SimDurations};
use poolpatch::status::{self, ServerState};
use poolpatch_inventory::Server;
use poolpatch_plans::procedure::StepKind;
use poolpatch_tests::{Simulation, example, simulate};

const SLOW: &str = "be02.ams.contoso.com";
const BREACH: &str = "be01.nyc.contoso.com";
const FAILING: &str = "be01.tyo.contoso.com";
const NOT_ADMIN: &str = "se01.nyc.contoso.com";
const REBOOT: &str = "se02.nyc.contoso.com";

fn faults() -> Customize {
    Arc::new(|server, mut c| {
        match server.fqdn.as_str() {
            SLOW => {
                c.durations.stop_services = Duration::from_secs(30);
                c.durations.start_services = Duration::from_secs(60);
                c.durations.install = Duration::from_secs(27 * 60);
            }
            BREACH => c.durations.install = Duration::from_secs(31 * 60),
            FAILING => {
                c = c.with_fault(Fault::new(
                    ActionKind::UpdateDatabases,
                    FaultEffect::Fail {
                        exit_code: 1,
                        stderr: "Install-CsDatabase : Cannot connect to SQL Server.\r\n".into(),
                    },
                ));
            }
            NOT_ADMIN => c.cs_administrator = false,
            REBOOT => {
                c.durations.install = Duration::from_secs(8 * 60);
                c = c.with_fault(Fault::new(ActionKind::Install, FaultEffect::RebootRequired));
            }
            _ => {}
        }
        c
    })
}

/// What a server's state must be after the journal's first records, by the events alone.
fn expected_state(records: &[journal::Record], server: &str) -> &'static str {
    let mut state = "pending";
    for r in records {
        if r.event.server() != Some(server) {
            continue;
        }
        state = match (&r.event, state) {
            (Event::PreflightPassed { .. }, "pending") => "ready",
            (Event::OutageStarted { .. }, _) => "in-flight",
            (Event::ServerDone { .. }, _) => "done",
            (Event::ServerBudgetExhausted { .. }, _) => "budget-exhausted",
            (Event::ServerFailed { .. }, _) => "failed",
            (Event::ServerSkipped { .. }, _) => "skipped",
            (_, s) => s,
        };
    }
    state
}

fn state_name(s: &ServerState) -> &'static str {
    match s {
        ServerState::Pending => "pending",
        ServerState::Ready => "ready",
        ServerState::InFlight { .. } => "in-flight",
        ServerState::Done { .. } => "done",
        ServerState::BudgetExhausted { .. } => "budget-exhausted",
        ServerState::Failed { .. } => "failed",
        ServerState::Skipped { .. } => "skipped",
    }
}

#[tokio::test(start_paused = true)]
async fn the_journal_is_complete_and_status_derives_the_run_from_it() {
    let (inventory, change) = example();
    let r = simulate(&inventory, &change, SimDurations::default(), Some(faults())).await;
    // Reading checks: every line parses, contiguous sequence numbers, times never go back,
    // RunStarted first and RunFinished last; and the journal agrees with the report.
    let j = r.journal();

    // Every kind of ending is in this run.
    let outcome = |s: &str| r.outcome(s).clone();
    assert!(matches!(
        outcome(SLOW),
        ServerOutcome::BudgetExhausted { restored: true, .. }
    ));
    assert!(matches!(
        outcome(BREACH),
        ServerOutcome::BudgetExhausted { restored: true, .. }
    ));
    assert!(matches!(
        outcome(FAILING),
        ServerOutcome::Failed { restored: true, .. }
    ));
    assert!(matches!(outcome(NOT_ADMIN), ServerOutcome::Skipped { .. }));
    assert!(matches!(outcome(REBOOT), ServerOutcome::Done { .. }));
    assert!(r.report.summary.done() >= 2);
    assert_eq!(r.report.breaches, 1);

    // Each line on disk is one JSON object with the record's fields and a version.
    let text = std::fs::read_to_string(&r.report.journal).unwrap();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for key in ["v", "seq", "at", "elapsed_ms", "event"] {
            assert!(v.get(key).is_some(), "{key} in {line}");
        }
        assert_eq!(v["v"], journal::RECORD_VERSION);
    }

    // `poolpatch status` derives the outcome of every server of the plan, in plan order.
    let st = status::read(&r.run_dir()).expect("status reads the run directory");
    assert!(st.finished && st.torn_last_line.is_none());
    assert_eq!(st.halted, r.report.summary.halted);
    assert_eq!(st.breaches, [(BREACH.to_string(), 30 * 60 * 1000)]);
    let mut watchdog = st.watchdog.clone();
    watchdog.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        watchdog,
        [
            (BREACH.to_string(), WatchdogAction::Restore),
            (SLOW.to_string(), WatchdogAction::Restore),
        ]
    );
    let plan_order: Vec<&str> = r.plan.scheduled().map(|s| s.fqdn.as_str()).collect();
    let status_order: Vec<&str> = st.servers.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(status_order, plan_order);
    for (server, state) in &st.servers {
        let o = outcome(server);
        let agrees = match (state, &o) {
            (ServerState::Done { outage_ms }, ServerOutcome::Done { outage, .. }) => {
                *outage_ms == outage.as_millis() as u64
            }
            (
                ServerState::BudgetExhausted { remaining: a },
                ServerOutcome::BudgetExhausted {
                    remaining: b,
                    restored: true,
                },
            ) => a == b,
            (
                ServerState::Failed {
                    reason: a,
                    restored: x,
                },
                ServerOutcome::Failed {
                    reason: b,
                    restored: y,
                    ..
                },
            ) => a == b && x == y,
            (ServerState::Skipped { reason: a }, ServerOutcome::Skipped { reason: b }) => a == b,
            _ => false,
        };
        assert!(agrees, "{server}: status {state:?}, outcome {o:?}");
    }
    assert_eq!(st.in_flight().count(), 0);

    // After a crash the journal ends anywhere: from every prefix, status still derives
    // where each server stood, and never calls the run finished.
    let records = &j.records;
    for k in 0..records.len() {
        let prefix = Journal {
            records: records[..k].to_vec(),
            torn_last_line: None,
        };
        let st = status::derive(&prefix, Some(&r.plan));
        assert!(!st.finished, "after {k} records");
        for (server, state) in &st.servers {
            assert_eq!(
                state_name(state),
                expected_state(&records[..k], server),
                "{server} after {k} records"
            );
        }
    }
    // A torn last line (the crash hit mid-write) is dropped and reported.
    let cut = text.len() - 10;
    let torn = journal::parse("journal.jsonl", &text.as_bytes()[..cut]).unwrap();
    assert_eq!(torn.records.len(), records.len() - 1);
    assert_eq!(torn.torn_last_line, Some(records.len()));
    assert!(!status::derive(&torn, Some(&r.plan)).finished);
}

/// A connector that, before each command goes out, reads the journal on disk: the event
/// announcing the command must be durable by then.
struct DurableFirst {
    inner: Arc<dyn Connector>,
    run_dir: PathBuf,
    /// Commands checked, and what was wrong.
    seen: Arc<Mutex<(usize, Vec<String>)>>,
}

struct DurableFirstHost {
    inner: Arc<dyn RemoteHost>,
    server: String,
    run_dir: PathBuf,
    seen: Arc<Mutex<(usize, Vec<String>)>>,
}

impl Connector for DurableFirst {
    fn connect<'a>(
        &'a self,
        server: &'a Server,
    ) -> BoxFuture<'a, Result<Arc<dyn RemoteHost>, RemoteError>> {
        Box::pin(async move {
            let inner = self.inner.connect(server).await?;
            Ok(Arc::new(DurableFirstHost {
                inner,
                server: server.fqdn.to_string(),
                run_dir: self.run_dir.clone(),
                seen: self.seen.clone(),
            }) as Arc<dyn RemoteHost>)
        })
    }
}

/// What is wrong with the server's journaled events as the next command goes out.
fn not_durable_before(run_dir: &Path, server: &str) -> Option<String> {
    let records = journal::read(run_dir).expect("the journal reads").records;
    let mine: Vec<&Event> = records
        .iter()
        .map(|r| &r.event)
        .filter(|e| e.server() == Some(server))
        .collect();
    match mine.last() {
        Some(Event::StepStarted {
            step: StepKind::StopServices,
            recovery: false,
            ..
        }) if !mine
            .iter()
            .any(|e| matches!(e, Event::OutageStarted { .. })) =>
        {
            Some(format!(
                "{server}: services stopped before OutageStarted was on disk"
            ))
        }
        Some(Event::StepStarted { .. }) => None,
        last => Some(format!(
            "{server}: a command went out before its StepStarted was on disk (last on disk: {last:?})"
        )),
    }
}

impl RemoteHost for DurableFirstHost {
    fn run<'a>(&'a self, line: &'a str, timeout: Duration) -> BoxFuture<'a, ExecOutput> {
        let wrong = not_durable_before(&self.run_dir, &self.server);
        {
            let mut seen = self.seen.lock().unwrap();
            seen.0 += 1;
            seen.1.extend(wrong);
        }
        self.inner.run(line, timeout)
    }

    fn upload<'a>(
        &'a self,
        local: &'a Path,
        remote: &'a str,
    ) -> BoxFuture<'a, Result<(), RemoteError>> {
        self.inner.upload(local, remote)
    }

    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}

#[tokio::test(start_paused = true)]
async fn every_command_goes_out_after_the_event_announcing_it_is_durable() {
    let (inventory, change) = example();
    let sim = Simulation::new(&inventory, &change, SimDurations::default(), Some(faults()));
    let plan = poolpatch_plans::plan(&sim.inventory, &change);
    let seen = Arc::new(Mutex::new((0, Vec::new())));
    let connector = Arc::new(DurableFirst {
        inner: sim.connector.clone(),
        run_dir: sim.run_dir(),
        seen: seen.clone(),
    });
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let report = carry_out(
        &plan,
        &sim.inventory,
        &change,
        connector,
        &sim.context(),
        rx,
    )
    .await
    .expect("the run starts");
    for host in sim.hosts.values() {
        host.shutdown();
    }
    // The run took every path: preflight, outages, a restart, failures and recoveries.
    assert!(report.summary.done() >= 2 && report.summary.failed() >= 2);
    let (commands, wrong) = std::mem::take(&mut *seen.lock().unwrap());
    assert!(commands > 50, "{commands} commands");
    assert_eq!(wrong, Vec::<String>::new());
}
