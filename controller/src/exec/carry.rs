//! Carrying out a plan from start to end: the run directory, the journal's first and last
//! events, progress, and the run loop. `poolpatch run`, `poolpatch demo` and the end-to-end
//! tests all go through [`carry_out`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use poolpatch_inventory::Inventory;
use poolpatch_plans::{Change, Plan};
use tokio::sync::watch;

use super::control;
use super::recorder::{Recorder, RunClock};
use super::resume::earlier_from;
use super::run::{Earlier, RunSpec, RunSummary, run};
use super::spec::run_spec;
use crate::journal::{self, Event, JournalWriter};
use crate::progress::{self, ProgressMode};
use crate::remote::Connector;

/// The plan a run carries out, kept beside its journal.
pub const PLAN_FILE: &str = "plan.json";

/// Where and how a run happens.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The run directory (created; must not hold a journal yet).
    pub run_dir: PathBuf,
    /// The inventory file, as named by the operator.
    pub inventory_file: String,
    /// The change file, as named by the operator.
    pub change_file: String,
    /// The time the run starts at (injected: rehearsals may pretend).
    pub now: Timestamp,
    /// How much faster than real time the run's wall clock goes: 1 for real runs; a
    /// compressed rehearsal uses its compression, so maintenance windows come in time.
    pub clock_speed: f64,
    /// Who runs it.
    pub operator: String,
    /// Whether the hosts are simulated (the journal says so; history ignores such runs).
    pub rehearsal: bool,
    /// How progress is shown.
    pub progress: ProgressMode,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Per-server outcomes.
    pub summary: RunSummary,
    /// Threshold breaches journaled.
    pub breaches: usize,
    /// The journal file.
    pub journal: PathBuf,
    /// How many batches of records were written to the journal, one sync each (group
    /// commit: fewer than the records when events come together).
    pub journal_syncs: u64,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The run directory already holds a journal, or cannot be written.
    #[error("cannot use the run directory {dir}: {reason}")]
    RunDir {
        /// The directory.
        dir: String,
        /// Why.
        reason: String,
    },
    /// The plan does not fit the inventory or change.
    #[error("the plan cannot be carried out: {0}")]
    Plan(String),
}

/// Carries out `plan`: creates the run directory with `plan.json` and the journal, runs
/// every scheduled server, and journals how the run ended. `stop` turning true stops
/// starting new servers (servers in flight finish or are restored).
pub async fn carry_out(
    plan: &Plan,
    inventory: &Inventory,
    change: &Change,
    connector: Arc<dyn Connector>,
    ctx: &RunContext,
    stop: watch::Receiver<bool>,
) -> Result<RunReport, StartError> {
    let spec = run_spec(plan, inventory, change).map_err(StartError::Plan)?;
    let dir_err = |e: std::io::Error| StartError::RunDir {
        dir: ctx.run_dir.display().to_string(),
        reason: e.to_string(),
    };
    if ctx.run_dir.join(journal::JOURNAL_FILE).exists() {
        return Err(StartError::RunDir {
            dir: ctx.run_dir.display().to_string(),
            reason: "it already holds a journal (a run directory is used once; pick a new one)"
                .into(),
        });
    }
    std::fs::create_dir_all(&ctx.run_dir).map_err(dir_err)?;
    std::fs::write(ctx.run_dir.join(PLAN_FILE), plan.to_json()).map_err(dir_err)?;
    let writer = JournalWriter::create(&ctx.run_dir).map_err(dir_err)?;
    let journal_path = writer.path().to_path_buf();
    let recorder = Recorder::new(
        writer,
        RunClock::starting_at(ctx.now).with_speed(ctx.clock_speed),
    );
    let display = show_progress(&spec, &recorder, plan, ctx.progress);
    // Webhooks (`notify:`) beside the display: awaiting it waits for their last deliveries.
    let display = crate::notify::attach(&change.notify, plan, &recorder, ctx, display);
    let _ = recorder
        .record(Event::RunStarted {
            change: plan.change.name.clone(),
            inventory: ctx.inventory_file.clone(),
            change_file: ctx.change_file.clone(),
            servers: spec.jobs.len(),
            operator: ctx.operator.clone(),
            rehearsal: ctx.rehearsal,
        })
        .await;
    Ok(drive(
        spec,
        connector,
        recorder,
        display,
        stop,
        Earlier::default(),
        ctx,
        journal_path,
    )
    .await)
}

/// Goes on with the run in `ctx.run_dir` after its controller stopped (killed, machine
/// restarted): reopens the journal (a torn last line is cut off and reported), reads what
/// the run left, resumes the servers that were in flight from what their hosts say, and
/// carries out the rest of its plan (`plan.json`, never re-planned).
pub async fn resume_run(
    inventory: &Inventory,
    change: &Change,
    connector: Arc<dyn Connector>,
    ctx: &RunContext,
    stop: watch::Receiver<bool>,
) -> Result<RunReport, StartError> {
    let dir = ctx.run_dir.display().to_string();
    let plan_text =
        std::fs::read_to_string(ctx.run_dir.join(PLAN_FILE)).map_err(|e| StartError::RunDir {
            dir: dir.clone(),
            reason: format!("cannot read its {PLAN_FILE}: {e}"),
        })?;
    let plan = Plan::from_json(&plan_text).map_err(|e| StartError::RunDir {
        dir: dir.clone(),
        reason: format!("its {PLAN_FILE} is not a plan this poolpatch reads: {e}"),
    })?;
    resume_plan(&plan, inventory, change, connector, ctx, stop).await
}

/// [`resume_run`] with the run's plan already at hand (a rehearsal keeps its compressed
/// plan in memory: `plan.json` holds whole seconds).
pub async fn resume_plan(
    plan: &Plan,
    inventory: &Inventory,
    change: &Change,
    connector: Arc<dyn Connector>,
    ctx: &RunContext,
    stop: watch::Receiver<bool>,
) -> Result<RunReport, StartError> {
    let dir = ctx.run_dir.display().to_string();
    let (journal, writer) =
        JournalWriter::reopen(&ctx.run_dir).map_err(|e| StartError::RunDir {
            dir: dir.clone(),
            reason: e.to_string(),
        })?;
    if journal
        .records
        .iter()
        .any(|r| matches!(r.event, Event::RunFinished { .. }))
    {
        return Err(StartError::RunDir {
            dir,
            reason: "the run finished: there is nothing to resume (see poolpatch status)".into(),
        });
    }
    let started = journal
        .records
        .iter()
        .find(|r| matches!(r.event, Event::RunStarted { .. }))
        .map_or(ctx.now, |r| r.at);
    let spec = run_spec(plan, inventory, change).map_err(StartError::Plan)?;
    let mut earlier = earlier_from(&journal, ctx.now);
    // The journal's times are the run clock's; outage clocks count real time, which a
    // rehearsal's faster clock outruns (a real run's speed is 1).
    let speed = if ctx.clock_speed.is_finite() && ctx.clock_speed >= 1.0 {
        ctx.clock_speed
    } else {
        1.0
    };
    for f in earlier.in_flight.values_mut() {
        f.down_for = f.down_for.div_f64(speed);
    }
    let journal_path = writer.path().to_path_buf();
    let recorder = Recorder::new(
        writer,
        RunClock::continuing(started, ctx.now, ctx.clock_speed),
    );
    let display = show_progress(&spec, &recorder, plan, ctx.progress);
    // Webhooks (`notify:`) beside the display: awaiting it waits for their last deliveries.
    let display = crate::notify::attach(&change.notify, plan, &recorder, ctx, display);
    let _ = recorder
        .record(Event::RunResumed {
            operator: ctx.operator.clone(),
            torn_line_dropped: journal.torn_last_line,
        })
        .await;
    Ok(drive(
        spec,
        connector,
        recorder,
        display,
        stop,
        earlier,
        ctx,
        journal_path,
    )
    .await)
}

fn show_progress(
    spec: &RunSpec,
    recorder: &Recorder,
    plan: &Plan,
    mode: ProgressMode,
) -> tokio::task::JoinHandle<()> {
    let pool_of: BTreeMap<String, String> = spec
        .jobs
        .iter()
        .map(|j| (j.job.server.fqdn.to_string(), j.job.server.pool.to_string()))
        .collect();
    progress::spawn(mode, recorder.subscribe(), pool_of, plan.policy.budget)
}

/// Runs the loop and journals how the run ended.
#[allow(clippy::too_many_arguments)]
async fn drive(
    spec: RunSpec,
    connector: Arc<dyn Connector>,
    recorder: Recorder,
    display: tokio::task::JoinHandle<()>,
    stop: watch::Receiver<bool>,
    earlier: Earlier,
    ctx: &RunContext,
    journal_path: PathBuf,
) -> RunReport {
    // The caller's stop (signals) and `poolpatch ctl` (the control file) both steer the run.
    let (pause_tx, pause_rx) = watch::channel(false);
    let (abort_tx, abort_rx) = watch::channel(false);
    let abort_tx = Arc::new(abort_tx);
    let (done_tx, done_rx) = watch::channel(false);
    let merge = {
        let abort = abort_tx.clone();
        let mut stop = stop;
        tokio::spawn(async move {
            loop {
                if *stop.borrow() {
                    let _ = abort.send(true);
                    return;
                }
                if stop.changed().await.is_err() {
                    return;
                }
            }
        })
    };
    let watcher = tokio::spawn(control::watch_file(
        ctx.run_dir.clone(),
        recorder.clone(),
        pause_tx,
        abort_tx,
        done_rx,
    ));
    let summary = run(
        spec,
        connector,
        recorder.clone(),
        abort_rx,
        pause_rx,
        earlier,
    )
    .await;
    let _ = done_tx.send(true);
    let _ = watcher.await;
    merge.abort();
    if let Some(reason) = &summary.halted {
        let _ = recorder
            .record(Event::RunHalted {
                reason: reason.clone(),
            })
            .await;
    }
    let breaches = count_breaches(&ctx.run_dir);
    let _ = recorder
        .record(Event::RunFinished {
            done: summary.done(),
            failed: summary.failed(),
            skipped: summary.skipped(),
            breaches,
        })
        .await;
    // Every event above was awaited; this also waits for any recorded without waiting.
    recorder.flush().await;
    let journal_syncs = recorder.syncs();
    // Close the broadcast so the display ends, then wait for it to print the last lines
    // (the batch writer lets go of it as soon as it has told observers of the last batch).
    drop(recorder);
    let _ = display.await;
    RunReport {
        summary,
        breaches,
        journal: journal_path,
        journal_syncs,
    }
}

fn count_breaches(run_dir: &Path) -> usize {
    journal::read(run_dir)
        .map(|j| {
            j.records
                .iter()
                .filter(|r| matches!(r.event, Event::Breach { .. }))
                .count()
        })
        .unwrap_or(0)
}
