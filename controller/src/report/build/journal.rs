//! The journal read per server: steps with their durations, outage spans, watchdog
//! actions, breaches, failures with the failing step's output; and run-wide events.

use std::collections::BTreeMap;

use poolpatch_plans::procedure::StepKind;

use crate::journal::{Event, ExitRecord, Journal};
use crate::report::{Failure, LogEntry, ServerBreach, StepReport, WatchdogReport};

/// Milliseconds of the journal in the plan's time.
#[derive(Debug, Clone, Copy)]
pub(super) struct Scale(pub(super) f64);

impl Scale {
    pub(super) fn ms(self, v: u64) -> u64 {
        if self.0 == 1.0 {
            v
        } else {
            // `as` saturates: an absurd value cannot panic.
            (v as f64 * self.0).round() as u64
        }
    }
}

/// What the journal says about one server.
#[derive(Debug, Default)]
pub(super) struct Seen {
    pub(super) first_ms: Option<u64>,
    pub(super) last_ms: u64,
    pub(super) pool: Option<String>,
    pub(super) steps: Vec<StepReport>,
    /// Kinds of outage steps (not recovery) that ended well.
    pub(super) done_ok: Vec<StepKind>,
    pub(super) outage_start: Option<u64>,
    pub(super) outage_end: Option<u64>,
    pub(super) outage_ms: Option<u64>,
    pub(super) watchdog: Vec<WatchdogReport>,
    pub(super) breaches: Vec<ServerBreach>,
    pub(super) reboot: bool,
    pub(super) failure: Option<Failure>,
    /// The last step that did not end well, with its output tails.
    pub(super) last_bad: Option<(StepKind, String, String)>,
    pub(super) preflight_passed: bool,
    pub(super) preflight_end: Option<u64>,
}

/// Run-wide events.
#[derive(Debug, Default)]
pub(super) struct Events {
    pub(super) last_ms: u64,
    pub(super) pool_halts: BTreeMap<String, String>,
    /// Server, pool, clock time, offset, down for.
    pub(super) breaches: Vec<(String, String, jiff::Timestamp, u64, u64)>,
    /// What happened to the run as a whole, in order.
    pub(super) log: Vec<LogEntry>,
}

fn utc(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// The run-level events worth a line in the report's run log: (event, server, text).
fn log_line(e: &Event) -> Option<(&'static str, Option<&str>, String)> {
    Some(match e {
        Event::RunStarted {
            operator, servers, ..
        } => (
            "run-started",
            None,
            format!("run started by {operator}, {servers} server(s) scheduled"),
        ),
        Event::RunResumed {
            operator,
            torn_line_dropped,
        } => (
            "run-resumed",
            None,
            match torn_line_dropped {
                Some(l) => format!(
                    "run resumed by {operator} after its controller stopped (a torn journal line {l} was dropped)"
                ),
                None => format!("run resumed by {operator} after its controller stopped"),
            },
        ),
        Event::ServerResumed {
            server,
            found,
            continue_with,
            note,
        } => (
            "server-resumed",
            Some(server),
            format!(
                "found {found}; goes on with {}{}",
                continue_with.map_or("ending the outage", |k| k.name()),
                if note.is_empty() {
                    String::new()
                } else {
                    format!(" ({note})")
                }
            ),
        ),
        Event::WaitingForWindow {
            server,
            calendar,
            until,
        } => (
            "waiting-for-window",
            Some(server),
            format!(
                "waits for its maintenance window ({calendar}) until {}",
                utc(*until)
            ),
        ),
        Event::StageBaking { stage, until } => (
            "stage-baking",
            None,
            format!("stage {stage} bakes until {}", utc(*until)),
        ),
        Event::HealthChecked {
            stage,
            ok: false,
            detail,
        } => (
            "health-check-failed",
            None,
            format!("stage {stage}: health check failed: {detail}"),
        ),
        Event::StagePassed { stage } => ("stage-passed", None, format!("stage {stage} passed")),
        Event::StageFailed { stage, reason } => (
            "stage-failed",
            None,
            format!("stage {stage} failed: {reason}"),
        ),
        Event::Paused { by } => (
            "paused",
            None,
            format!("paused by {by}: no new server starts"),
        ),
        Event::Unpaused { by } => ("unpaused", None, format!("resumed by {by}")),
        Event::AbortRequested { by } => (
            "abort-requested",
            None,
            format!("abort requested by {by}: no new server starts"),
        ),
        Event::NotificationFailed { url, about, error } => (
            "notification-failed",
            None,
            format!("notification about {about} to {url} failed: {error}"),
        ),
        Event::PoolHalted { pool, reason } => {
            ("pool-halted", None, format!("pool {pool} halted: {reason}"))
        }
        Event::RunHalted { reason } => ("run-halted", None, format!("run halted: {reason}")),
        Event::RunFinished {
            done,
            failed,
            skipped,
            breaches,
        } => (
            "run-finished",
            None,
            format!(
                "run finished: {done} done, {failed} failed or restored unfinished, {skipped} skipped, {breaches} breach(es)"
            ),
        ),
        _ => return None,
    })
}

/// Reads the journal's events per server.
pub(super) fn collect(journal: &Journal, scale: Scale) -> (BTreeMap<String, Seen>, Events) {
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let mut ev = Events::default();
    for r in &journal.records {
        let at = scale.ms(r.elapsed_ms);
        ev.last_ms = ev.last_ms.max(at);
        if let Some((event, server, text)) = log_line(&r.event) {
            ev.log.push(LogEntry {
                at: r.at,
                at_ms: at,
                event: event.to_string(),
                server: server.map(str::to_string),
                text,
            });
        }
        match &r.event {
            Event::PoolHalted { pool, reason } => {
                ev.pool_halts.insert(pool.clone(), reason.clone());
            }
            Event::Breach {
                server,
                pool,
                down_ms,
            } => ev
                .breaches
                .push((server.clone(), pool.clone(), r.at, at, scale.ms(*down_ms))),
            _ => {}
        }
        let Some(server) = r.event.server() else {
            continue;
        };
        let s = seen.entry(server.to_string()).or_default();
        s.first_ms = Some(s.first_ms.map_or(at, |f| f.min(at)));
        s.last_ms = s.last_ms.max(at);
        match &r.event {
            Event::PreflightPassed { .. } => {
                s.preflight_passed = true;
                s.preflight_end = Some(at);
            }
            Event::PreflightFailed { .. } => s.preflight_end = Some(at),
            Event::Uploaded { .. } => {
                // A failed installer check before an upload found it not staged yet.
                if let Some(last) = s.steps.last_mut()
                    && last.kind == StepKind::CheckInstaller
                    && last.ok == Some(false)
                {
                    last.note = Some("not staged yet; uploaded".into());
                }
            }
            Event::StepStarted { step, recovery, .. } => s.steps.push(StepReport {
                kind: *step,
                recovery: *recovery,
                started_ms: Some(at),
                duration_ms: None,
                estimate_ms: None,
                delta_ms: None,
                exit: None,
                ok: None,
                note: None,
            }),
            Event::StepFinished {
                step,
                recovery,
                exit,
                ok,
                duration_ms,
                stdout_tail,
                stderr_tail,
                ..
            } => {
                let d = scale.ms(*duration_ms);
                let open = s
                    .steps
                    .iter_mut()
                    .rev()
                    .find(|x| x.kind == *step && x.recovery == *recovery && x.exit.is_none());
                let entry = match open {
                    Some(e) => e,
                    None => {
                        s.steps.push(StepReport {
                            kind: *step,
                            recovery: *recovery,
                            started_ms: Some(at.saturating_sub(d)),
                            duration_ms: None,
                            estimate_ms: None,
                            delta_ms: None,
                            exit: None,
                            ok: None,
                            note: None,
                        });
                        let last = s.steps.len() - 1;
                        &mut s.steps[last]
                    }
                };
                // An abandoned or lost step has no duration of its own: it ran until
                // its end was journaled.
                let d = match exit {
                    ExitRecord::Unknown { .. } => {
                        d.max(at.saturating_sub(entry.started_ms.unwrap_or(at)))
                    }
                    _ => d,
                };
                entry.duration_ms = Some(d);
                entry.exit = Some(exit.clone());
                entry.ok = Some(*ok);
                if *ok && !*recovery {
                    s.done_ok.push(*step);
                }
                if !*ok {
                    s.last_bad = Some((*step, stdout_tail.clone(), stderr_tail.clone()));
                }
            }
            Event::OutageStarted { pool, .. } => {
                s.pool = Some(pool.clone());
                s.outage_start = Some(at);
            }
            Event::OutageEnded { outage_ms, .. } => {
                s.outage_end = Some(at);
                s.outage_ms = Some(scale.ms(*outage_ms));
            }
            Event::ServerDone { outage_ms, .. } => {
                s.outage_ms = Some(scale.ms(*outage_ms));
            }
            Event::Watchdog {
                action,
                remaining,
                down_ms,
                ..
            } => s.watchdog.push(WatchdogReport {
                at_ms: at,
                action: *action,
                down_ms: scale.ms(*down_ms),
                remaining: remaining.clone(),
            }),
            Event::Breach { down_ms, .. } => s.breaches.push(ServerBreach {
                at_ms: at,
                down_ms: scale.ms(*down_ms),
            }),
            Event::RebootRequested { .. } => s.reboot = true,
            Event::ServerFailed {
                step,
                reason,
                restored,
                ..
            } => {
                let (stdout_tail, stderr_tail) = match &s.last_bad {
                    Some((_, o, e)) => (o.clone(), e.clone()),
                    None => (String::new(), String::new()),
                };
                s.failure = Some(Failure {
                    step: *step,
                    reason: reason.clone(),
                    restored: *restored,
                    stdout_tail,
                    stderr_tail,
                });
            }
            _ => {}
        }
    }
    (seen, ev)
}
