//! Where a run stands, derived from its journal (and the plan kept beside it).
//!
//! Nothing here asks a host: it is what the controller recorded. A server whose outage
//! started and did not end is *in flight* — if the controller is gone, that server may
//! still be down and needs a look (or `poolpatch resume`, in a later version).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use poolpatch_plans::Plan;
use poolpatch_plans::procedure::StepKind;

use crate::exec::PLAN_FILE;
use crate::journal::{self, Event, Journal, ReadError, WatchdogAction};

/// Where one server stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerState {
    /// Not started yet.
    Pending,
    /// Preflight passed; waiting for its turn.
    Ready,
    /// Its outage started and has not ended: services are (or may be) down.
    InFlight {
        /// The last step sent.
        step: Option<StepKind>,
        /// Whether that step ended.
        step_finished: bool,
    },
    /// Patched, services verified running.
    Done {
        /// Its outage in milliseconds.
        outage_ms: u64,
    },
    /// Restored after the budget ran out; the update is not complete.
    BudgetExhausted {
        /// Steps left to do.
        remaining: Vec<StepKind>,
    },
    /// Failed.
    Failed {
        /// Why.
        reason: String,
        /// Whether services were verified running again.
        restored: bool,
    },
    /// Not started, and will not be in this run.
    Skipped {
        /// Why.
        reason: String,
    },
}

/// A run's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStatus {
    /// The change's name.
    pub change: String,
    /// Who started it.
    pub operator: String,
    /// When it started.
    pub started: Option<jiff::Timestamp>,
    /// When its last event was recorded.
    pub last_event: Option<jiff::Timestamp>,
    /// Whether the journal ends with the run's end.
    pub finished: bool,
    /// Why the run halted, if it did.
    pub halted: Option<String>,
    /// Every server of the plan (or seen in the journal), in plan order.
    pub servers: Vec<(String, ServerState)>,
    /// Breaches: server and how long it was down.
    pub breaches: Vec<(String, u64)>,
    /// Watchdog actions: server and action.
    pub watchdog: Vec<(String, WatchdogAction)>,
    /// The journal's torn last line, if one was dropped.
    pub torn_last_line: Option<usize>,
    /// Servers waiting for a maintenance window (not started since): server, calendar, when.
    pub waiting: Vec<(String, String, jiff::Timestamp)>,
    /// Whether the run is paused (`poolpatch ctl pause`), and by whom.
    pub paused: Option<String>,
}

/// Reads the run directory's journal and plan.
pub fn read(run_dir: &Path) -> Result<RunStatus, ReadError> {
    let journal = journal::read(run_dir)?;
    let plan = std::fs::read_to_string(run_dir.join(PLAN_FILE))
        .ok()
        .and_then(|t| Plan::from_json(&t).ok());
    Ok(derive(&journal, plan.as_ref()))
}

/// Derives the state from a journal and the plan.
pub fn derive(journal: &Journal, plan: Option<&Plan>) -> RunStatus {
    let mut status = RunStatus {
        change: String::new(),
        operator: String::new(),
        started: None,
        last_event: journal.records.last().map(|r| r.at),
        finished: false,
        halted: None,
        servers: Vec::new(),
        breaches: Vec::new(),
        watchdog: Vec::new(),
        torn_last_line: journal.torn_last_line,
        waiting: Vec::new(),
        paused: None,
    };
    let mut waiting: BTreeMap<String, (String, jiff::Timestamp)> = BTreeMap::new();
    let mut order: Vec<String> = plan
        .map(|p| p.scheduled().map(|s| s.fqdn.clone()).collect())
        .unwrap_or_default();
    let mut state: BTreeMap<String, ServerState> = order
        .iter()
        .map(|s| (s.clone(), ServerState::Pending))
        .collect();
    for r in &journal.records {
        if let Some(server) = r.event.server()
            && !state.contains_key(server)
        {
            order.push(server.to_string());
            state.insert(server.to_string(), ServerState::Pending);
        }
        match &r.event {
            Event::RunStarted {
                change, operator, ..
            } => {
                status.change = change.clone();
                status.operator = operator.clone();
                status.started = Some(r.at);
            }
            Event::PreflightPassed { server, .. } => {
                set(&mut state, server, |s| {
                    if *s == ServerState::Pending {
                        *s = ServerState::Ready;
                    }
                });
            }
            Event::StepStarted { server, step, .. } => set(&mut state, server, |s| {
                if let ServerState::InFlight {
                    step: st,
                    step_finished,
                } = s
                {
                    *st = Some(*step);
                    *step_finished = false;
                }
            }),
            Event::StepFinished { server, .. } => set(&mut state, server, |s| {
                if let ServerState::InFlight { step_finished, .. } = s {
                    *step_finished = true;
                }
            }),
            Event::ServerDone { server, outage_ms } => set(&mut state, server, |s| {
                *s = ServerState::Done {
                    outage_ms: *outage_ms,
                };
            }),
            Event::ServerBudgetExhausted { server, remaining } => {
                set(&mut state, server, |s| {
                    *s = ServerState::BudgetExhausted {
                        remaining: remaining.clone(),
                    };
                });
            }
            Event::ServerFailed {
                server,
                reason,
                restored,
                ..
            } => set(&mut state, server, |s| {
                *s = ServerState::Failed {
                    reason: reason.clone(),
                    restored: *restored,
                };
            }),
            Event::Breach {
                server, down_ms, ..
            } => status.breaches.push((server.clone(), *down_ms)),
            Event::Watchdog { server, action, .. } => {
                status.watchdog.push((server.clone(), *action));
            }
            Event::RunHalted { reason } => status.halted = Some(reason.clone()),
            Event::RunResumed { .. } => status.halted = None,
            Event::WaitingForWindow {
                server,
                calendar,
                until,
            } => {
                waiting.insert(server.clone(), (calendar.clone(), *until));
            }
            Event::OutageStarted { server, .. } | Event::ServerSkipped { server, .. } => {
                waiting.remove(server);
                if let Event::OutageStarted { .. } = &r.event {
                    set(&mut state, server, |s| {
                        *s = ServerState::InFlight {
                            step: None,
                            step_finished: false,
                        };
                    });
                } else if let Event::ServerSkipped { reason, .. } = &r.event {
                    set(&mut state, server, |s| {
                        *s = ServerState::Skipped {
                            reason: reason.clone(),
                        };
                    });
                }
            }
            Event::Paused { by } => status.paused = Some(by.clone()),
            Event::Unpaused { .. } => status.paused = None,
            Event::RunFinished { .. } => status.finished = true,
            _ => {}
        }
    }
    if !status.finished {
        status.waiting = waiting
            .into_iter()
            .map(|(server, (calendar, until))| (server, calendar, until))
            .collect();
        status.waiting.sort_by_key(|w| w.2);
    }
    status.servers = order
        .into_iter()
        .map(|s| {
            let st = state.remove(&s).unwrap_or(ServerState::Pending);
            (s, st)
        })
        .collect();
    status
}

fn set(state: &mut BTreeMap<String, ServerState>, server: &str, f: impl FnOnce(&mut ServerState)) {
    if let Some(s) = state.get_mut(server) {
        f(s);
    }
}

impl RunStatus {
    /// Servers whose outage started and did not end.
    pub fn in_flight(&self) -> impl Iterator<Item = &str> {
        self.servers
            .iter()
            .filter(|(_, s)| matches!(s, ServerState::InFlight { .. }))
            .map(|(n, _)| n.as_str())
    }

    /// What `poolpatch resume` would do first, for a run that did not finish.
    pub fn resume_preview(&self) -> String {
        let in_flight: Vec<&str> = self.in_flight().collect();
        let next: Vec<&str> = self
            .servers
            .iter()
            .filter(|(_, s)| {
                matches!(
                    s,
                    ServerState::Pending | ServerState::Ready | ServerState::Skipped { .. }
                )
            })
            .map(|(n, _)| n.as_str())
            .take(3)
            .collect();
        let mut out = String::from(
            "Resumable (if the controller is gone): poolpatch resume --run <this run dir> would first\n",
        );
        if in_flight.is_empty() {
            out.push_str("  - find no server in flight;\n");
        } else {
            out.push_str(&format!(
                "  - ask {} where it really is (services, w3svc, a running installer, version, databases) and go on from there, the outage clock running from the journaled start;\n",
                in_flight.join(", ")
            ));
        }
        if next.is_empty() {
            out.push_str("  - then end the run: no server is left to start.\n");
        } else {
            out.push_str(&format!(
                "  - then start, in the plan's order: {}{}.\n",
                next.join(", "),
                if next.len() == 3 { ", …" } else { "" }
            ));
        }
        if !in_flight.is_empty() {
            out.push_str("Servers IN FLIGHT may be down now: if nobody resumes, check them (Get-CsWindowsService; net start w3svc and Start-CsWindowsService if needed; docs/usage/runbook.md).\n");
        }
        out
    }

    /// The status as text for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let state = if self.finished {
            "finished"
        } else if self.started.is_some() {
            "NOT FINISHED (running, or the controller stopped without finishing)"
        } else {
            "empty journal"
        };
        let _ = writeln!(out, "run:      {} — {state}", self.change);
        if !self.operator.is_empty() {
            let _ = writeln!(
                out,
                "started:  {} by {}",
                fmt_ts(self.started),
                self.operator
            );
        }
        let _ = writeln!(out, "last:     {}", fmt_ts(self.last_event));
        if let Some(h) = &self.halted {
            let _ = writeln!(out, "halted:   {h}");
        }
        if let Some(by) = &self.paused {
            let _ = writeln!(
                out,
                "PAUSED:   by {by} (poolpatch ctl resume --run <this run dir>)"
            );
        }
        if let Some((server, calendar, until)) = self.waiting.first() {
            let _ = writeln!(
                out,
                "next:     window of {calendar} opens {} ({server} waits for it{})",
                until.strftime("%Y-%m-%d %H:%M UTC"),
                if self.waiting.len() > 1 {
                    format!(", and {} more", self.waiting.len() - 1)
                } else {
                    String::new()
                }
            );
        }
        if let Some(l) = self.torn_last_line {
            let _ = writeln!(
                out,
                "journal:  the last line ({l}) was torn by a crash and is ignored"
            );
        }
        let count = |f: fn(&ServerState) -> bool| self.servers.iter().filter(|(_, s)| f(s)).count();
        let _ = writeln!(
            out,
            "servers:  {} done, {} in flight, {} failed or restored unfinished, {} skipped, {} pending",
            count(|s| matches!(s, ServerState::Done { .. })),
            count(|s| matches!(s, ServerState::InFlight { .. })),
            count(|s| matches!(
                s,
                ServerState::Failed { .. } | ServerState::BudgetExhausted { .. }
            )),
            count(|s| matches!(s, ServerState::Skipped { .. })),
            count(|s| matches!(s, ServerState::Pending | ServerState::Ready)),
        );
        if self.breaches.is_empty() {
            let _ = writeln!(out, "breaches: none");
        } else {
            for (s, ms) in &self.breaches {
                let _ = writeln!(
                    out,
                    "BREACH:   {s} was down {} (resiliency threshold reached)",
                    humantime::format_duration(std::time::Duration::from_millis(*ms / 1000 * 1000))
                );
            }
        }
        for (s, a) in &self.watchdog {
            let _ = writeln!(out, "watchdog: {s}: {a:?} at the budget");
        }
        let _ = writeln!(out);
        for (name, st) in &self.servers {
            let line = match st {
                ServerState::Pending => "pending".to_string(),
                ServerState::Ready => "preflight passed, waiting for its turn".to_string(),
                ServerState::InFlight {
                    step,
                    step_finished,
                } => format!(
                    "IN FLIGHT: services down; {}",
                    match step {
                        Some(k) if *step_finished => format!("last step {} ended", k.name()),
                        Some(k) => format!("step {} running", k.name()),
                        None => "stopping services".to_string(),
                    }
                ),
                ServerState::Done { outage_ms } => format!(
                    "done, outage {}",
                    humantime::format_duration(std::time::Duration::from_millis(
                        *outage_ms / 100 * 100
                    ))
                ),
                ServerState::BudgetExhausted { remaining } => format!(
                    "budget exhausted, services restored; left to do: {}",
                    remaining
                        .iter()
                        .map(|k| k.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                ServerState::Failed { reason, restored } => format!(
                    "FAILED ({}): {reason}",
                    if *restored {
                        "services restored"
                    } else {
                        "SERVICES NOT RESTORED"
                    }
                ),
                ServerState::Skipped { reason } => format!("skipped: {reason}"),
            };
            let _ = writeln!(out, "  {name:<32} {line}");
        }
        if !self.finished && self.started.is_some() {
            let _ = writeln!(out, "\n{}", self.resume_preview());
        }
        out
    }
}

fn fmt_ts(t: Option<jiff::Timestamp>) -> String {
    t.map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Record;

    fn rec(seq: u64, event: Event) -> Record {
        Record {
            v: 1,
            seq,
            at: jiff::Timestamp::UNIX_EPOCH,
            elapsed_ms: 0,
            event,
        }
    }

    #[test]
    fn a_waiting_run_shows_its_next_window_and_a_pause() {
        let until: jiff::Timestamp = "2026-11-28T21:00:00Z".parse().unwrap();
        let journal = Journal {
            records: vec![
                rec(
                    0,
                    Event::WaitingForWindow {
                        server: "be01.ams.contoso.com".into(),
                        calendar: "site amsterdam".into(),
                        until,
                    },
                ),
                rec(1, Event::Paused { by: "alice".into() }),
            ],
            torn_last_line: None,
        };
        let s = derive(&journal, None);
        let text = s.to_text();
        assert!(
            text.contains("next:     window of site amsterdam opens 2026-11-28 21:00 UTC (be01.ams.contoso.com waits for it)"),
            "{text}"
        );
        assert!(text.contains("PAUSED:   by alice"), "{text}");
        // Once the server starts, it no longer waits.
        let mut j = journal.clone();
        j.records.push(rec(
            2,
            Event::OutageStarted {
                server: "be01.ams.contoso.com".into(),
                pool: "pool01.ams.contoso.com".into(),
            },
        ));
        assert!(derive(&j, None).waiting.is_empty());
    }
}
