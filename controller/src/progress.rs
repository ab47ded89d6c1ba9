//! What the operator sees while a run goes on.
//!
//! On a terminal: one live line per pool with its current server, step, and the outage
//! elapsed against the budget (indicatif). Elsewhere (a log file, CI, a systemd unit): one
//! plain line per event, which reads well in a log. Both are fed from the recorder's
//! broadcast, so they show exactly what the journal holds.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::task::JoinHandle;

use crate::journal::{Event, ExitRecord, Record};

/// How to show progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Live bars (stderr is a terminal).
    Live,
    /// One plain line per event on stderr.
    Lines,
    /// Nothing.
    Quiet,
}

impl ProgressMode {
    /// Live on a terminal, lines otherwise.
    pub fn detect() -> ProgressMode {
        if std::io::stderr().is_terminal() {
            ProgressMode::Live
        } else {
            ProgressMode::Lines
        }
    }
}

/// A one-line description of a journal record, as the plain progress and `status` show it.
pub fn describe(record: &Record) -> String {
    let t = record.at.strftime("%H:%M:%S");
    let what = match &record.event {
        Event::RunStarted {
            change, servers, ..
        } => format!("run started: {change}, {servers} servers"),
        Event::RunResumed {
            operator,
            torn_line_dropped,
        } => format!(
            "run RESUMED by {operator}{}",
            torn_line_dropped
                .map(|l| format!(" (torn journal line {l} dropped)"))
                .unwrap_or_default()
        ),
        Event::ServerResumed {
            server,
            found,
            continue_with,
            note,
        } => format!(
            "{server}: resumed: found {found}; {}{}",
            continue_with.map_or_else(
                || "ending the outage".to_string(),
                |k| format!("going on with {}", k.name())
            ),
            if note.is_empty() {
                String::new()
            } else {
                format!(" ({note})")
            }
        ),
        Event::WaitingForWindow {
            server,
            calendar,
            until,
        } => format!(
            "{server}: waiting for its maintenance window ({calendar}) until {}",
            until.strftime("%Y-%m-%d %H:%M UTC")
        ),
        Event::StageBaking { stage, until } => format!(
            "stage {stage}: all servers done; baking until {} (health checks repeat)",
            until.strftime("%Y-%m-%d %H:%M:%S UTC")
        ),
        Event::HealthChecked { stage, ok, detail } => format!(
            "stage {stage}: health {}{}",
            if *ok { "ok" } else { "FAILED" },
            if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            }
        ),
        Event::StagePassed { stage } => format!("stage {stage} PASSED"),
        Event::StageFailed { stage, reason } => format!("stage {stage} FAILED: {reason}"),
        Event::Paused { by } => format!("run PAUSED by {by}: no new server starts"),
        Event::Unpaused { by } => format!("run goes on (resumed by {by})"),
        Event::AbortRequested { by } => format!(
            "run ABORTED by {by}: no new server starts; servers in flight finish or are restored"
        ),
        Event::NotificationFailed { url, about, error } => {
            format!("notification of {about} to {url} failed: {error}")
        }
        Event::PreflightPassed { server, .. } => format!("{server}: preflight passed"),
        Event::PreflightFailed { server, reason } => {
            format!("{server}: PREFLIGHT FAILED: {reason}")
        }
        Event::Uploaded {
            server,
            path,
            bytes,
        } => format!("{server}: uploaded installer to {path} ({bytes} bytes)"),
        Event::StepStarted {
            server,
            step,
            recovery,
            command,
        } => format!(
            "{server}: {}{} started: {command}",
            if *recovery { "recovery " } else { "" },
            step.name()
        ),
        Event::StepFinished {
            server,
            step,
            exit,
            ok,
            duration_ms,
            ..
        } => format!(
            "{server}: {} {} ({}, {})",
            step.name(),
            if *ok { "ok" } else { "FAILED" },
            exit_text(exit),
            secs(*duration_ms)
        ),
        Event::OutageStarted { server, pool } => {
            format!("{server}: OUTAGE STARTED (pool {pool} has no back end)")
        }
        Event::OutageEnded { server, outage_ms } => {
            format!("{server}: outage ended after {}", secs(*outage_ms))
        }
        Event::Watchdog {
            server,
            action,
            remaining,
            down_ms,
        } => format!(
            "{server}: WATCHDOG at the budget after {} down: {:?}; not done: {}",
            secs(*down_ms),
            action,
            remaining
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Event::Breach {
            server,
            pool,
            down_ms,
        } => format!(
            "{server}: *** BREACH *** pool {pool} back end down {}: users are in resiliency mode",
            secs(*down_ms)
        ),
        Event::RebootRequested { server } => {
            format!("{server}: installer asked for a reboot; restarting")
        }
        Event::ServerDone { server, outage_ms } => {
            format!("{server}: DONE (outage {})", secs(*outage_ms))
        }
        Event::ServerBudgetExhausted { server, remaining } => format!(
            "{server}: BUDGET EXHAUSTED, services restored; left to do: {}",
            remaining
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Event::ServerFailed {
            server,
            reason,
            restored,
            ..
        } => format!(
            "{server}: FAILED ({}): {reason}",
            if *restored {
                "services restored"
            } else {
                "SERVICES NOT RESTORED"
            }
        ),
        Event::ServerSkipped { server, reason } => format!("{server}: skipped: {reason}"),
        Event::PoolHalted { pool, reason } => format!("pool {pool} HALTED: {reason}"),
        Event::RunHalted { reason } => format!("run HALTED: {reason}"),
        Event::RunFinished {
            done,
            failed,
            skipped,
            breaches,
        } => format!(
            "run finished: {done} done, {failed} failed, {skipped} skipped, {breaches} breaches"
        ),
    };
    format!("{t} {what}")
}

fn exit_text(e: &ExitRecord) -> String {
    match e {
        ExitRecord::Code { code } => format!("exit {code}"),
        ExitRecord::Signal { signal } => format!("signal {signal}"),
        ExitRecord::Unknown { reason } => format!("outcome unknown: {reason}"),
    }
}

fn secs(ms: u64) -> String {
    humantime::format_duration(Duration::from_millis(ms / 100 * 100)).to_string()
}

/// Shows progress from `rx` until the channel closes. `pool_of` maps servers to pools and
/// `budget` is the per-server budget shown against the outage clock.
pub fn spawn(
    mode: ProgressMode,
    mut rx: broadcast::Receiver<Record>,
    pool_of: BTreeMap<String, String>,
    budget: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut live = (mode == ProgressMode::Live).then(|| Live::new(budget));
        let mut ticker = tokio::time::interval(Duration::from_millis(200));
        loop {
            let record = tokio::select! {
                r = rx.recv() => r,
                _ = ticker.tick() => {
                    if let Some(l) = &mut live { l.tick(); }
                    continue;
                }
            };
            match record {
                Ok(r) => match mode {
                    ProgressMode::Quiet => {}
                    ProgressMode::Lines => {
                        let mut err = std::io::stderr().lock();
                        let _ = writeln!(err, "{}", describe(&r));
                    }
                    ProgressMode::Live => {
                        if let Some(l) = &mut live {
                            l.update(&r, &pool_of);
                        }
                    }
                },
                Err(RecvError::Lagged(n)) => {
                    if mode == ProgressMode::Lines {
                        eprintln!(
                            "(progress display skipped {n} events; the journal has them all)"
                        );
                    }
                }
                Err(RecvError::Closed) => break,
            }
        }
        if let Some(l) = live {
            l.finish();
        }
    })
}

struct PoolLine {
    bar: ProgressBar,
    server: String,
    step: String,
    down_since: Option<tokio::time::Instant>,
}

struct Live {
    multi: MultiProgress,
    pools: BTreeMap<String, PoolLine>,
    budget: Duration,
}

impl Live {
    fn new(budget: Duration) -> Live {
        Live {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            pools: BTreeMap::new(),
            budget,
        }
    }

    fn line(&mut self, pool: &str) -> &mut PoolLine {
        let multi = &self.multi;
        self.pools.entry(pool.to_string()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new_spinner());
            // The template is a constant known to parse.
            if let Ok(style) = ProgressStyle::with_template("{spinner} {prefix:32} {wide_msg}") {
                bar.set_style(style);
            }
            bar.set_prefix(pool.to_string());
            PoolLine {
                bar,
                server: String::new(),
                step: "waiting".into(),
                down_since: None,
            }
        })
    }

    fn update(&mut self, r: &Record, pool_of: &BTreeMap<String, String>) {
        let important = matches!(
            r.event,
            Event::Breach { .. }
                | Event::Watchdog { .. }
                | Event::ServerFailed { .. }
                | Event::PoolHalted { .. }
                | Event::RunHalted { .. }
                | Event::PreflightFailed { .. }
                | Event::ServerDone { .. }
                | Event::ServerBudgetExhausted { .. }
        );
        if important {
            let _ = self.multi.println(describe(r));
        }
        let Some(server) = r.event.server() else {
            return;
        };
        let Some(pool) = pool_of.get(server).cloned() else {
            return;
        };
        let server = server.to_string();
        let line = self.line(&pool);
        match &r.event {
            Event::StepStarted { step, recovery, .. } => {
                line.server = server;
                line.step = format!(
                    "{}{}",
                    if *recovery { "recovery " } else { "" },
                    step.name()
                );
            }
            Event::OutageStarted { .. } => line.down_since = Some(tokio::time::Instant::now()),
            Event::OutageEnded { .. } => line.down_since = None,
            Event::ServerDone { .. } => line.step = "done".into(),
            Event::ServerFailed { .. } | Event::ServerBudgetExhausted { .. } => {
                line.step = "halted".into();
            }
            _ => {}
        }
        self.tick();
    }

    fn tick(&mut self) {
        let budget = self.budget;
        for line in self.pools.values() {
            let outage = match line.down_since {
                Some(t) => {
                    let d = t.elapsed();
                    format!(
                        "  DOWN {} / budget {}",
                        humantime::format_duration(Duration::from_secs(d.as_secs())),
                        humantime::format_duration(budget)
                    )
                }
                None => String::new(),
            };
            line.bar
                .set_message(format!("{} {}{}", line.server, line.step, outage));
            line.bar.tick();
        }
    }

    fn finish(self) {
        for line in self.pools.values() {
            line.bar.finish();
        }
    }
}
