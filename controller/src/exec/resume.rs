//! What a stopped run left, read from its journal, for `poolpatch resume`.
//!
//! - servers that ended (done, failed, restored unfinished) are not run again;
//! - servers whose outage started and did not end are *in flight*: resume asks each host
//!   where it really is and goes on from there, with the outage clock running from the
//!   journaled start;
//! - servers that never started (pending, or skipped: stopped, preflight failed) are tried
//!   again, in the plan's order, unless their pool was halted.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use poolpatch_inventory::Fqdn;
use poolpatch_plans::procedure::StepKind;

use super::run::Earlier;
use super::server::{InFlight, ServerOutcome};
use crate::journal::{Event, Journal, WatchdogAction};

/// Reads what the journal says each server went through, as of `now`.
pub fn earlier_from(journal: &Journal, now: Timestamp) -> Earlier {
    #[derive(Default)]
    struct Seen {
        outage_started: Option<Timestamp>,
        outage_open: bool,
        watchdog: Option<WatchdogAction>,
        breached: bool,
        finished_ok: Vec<StepKind>,
        ended: Option<ServerOutcome>,
    }
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let mut earlier = Earlier::default();
    for r in &journal.records {
        if let Event::PoolHalted { pool, reason } = &r.event
            && let Ok(p) = Fqdn::parse(pool)
        {
            earlier.halted_pools.insert(p, reason.clone());
        }
        let Some(server) = r.event.server() else {
            continue;
        };
        let s = seen.entry(server.to_string()).or_default();
        match &r.event {
            Event::OutageStarted { .. } => {
                *s = Seen {
                    outage_started: Some(r.at),
                    outage_open: true,
                    ..Seen::default()
                };
            }
            Event::OutageEnded { .. } => s.outage_open = false,
            Event::Watchdog { action, .. } => s.watchdog = Some(*action),
            Event::Breach { .. } => s.breached = true,
            Event::StepFinished {
                step,
                ok: true,
                recovery: false,
                ..
            } => s.finished_ok.push(*step),
            Event::ServerDone { outage_ms, .. } => {
                s.ended = Some(ServerOutcome::Done {
                    outage: Duration::from_millis(*outage_ms),
                    overrun: s.watchdog == Some(WatchdogAction::Finish),
                });
            }
            Event::ServerBudgetExhausted { remaining, .. } => {
                s.ended = Some(ServerOutcome::BudgetExhausted {
                    remaining: remaining.clone(),
                    restored: true,
                });
            }
            Event::ServerFailed {
                step,
                reason,
                restored,
                ..
            } => {
                // A failure after a budget exhaustion (services not restored) overrides it.
                s.ended = Some(ServerOutcome::Failed {
                    step: *step,
                    reason: reason.clone(),
                    restored: *restored,
                });
            }
            _ => {}
        }
    }
    for (server, s) in seen {
        let Ok(fqdn) = Fqdn::parse(&server) else {
            continue;
        };
        if let Some(outcome) = s.ended {
            earlier.outcomes.insert(fqdn, outcome);
        } else if s.outage_open
            && let Some(started) = s.outage_started
        {
            let down_for = Duration::try_from(now.duration_since(started)).unwrap_or_default();
            earlier.in_flight.insert(
                fqdn,
                InFlight {
                    down_for,
                    watchdog: s.watchdog,
                    breached: s.breached,
                    finished_ok: s.finished_ok,
                },
            );
        }
    }
    earlier
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{ExitRecord, Record};

    fn rec(seq: u64, secs: i64, event: Event) -> Record {
        Record {
            v: 1,
            seq,
            at: Timestamp::from_second(secs).unwrap(),
            elapsed_ms: 0,
            event,
        }
    }

    fn finished(server: &str, step: StepKind) -> Event {
        Event::StepFinished {
            server: server.into(),
            step,
            recovery: false,
            exit: ExitRecord::Code { code: 0 },
            ok: true,
            duration_ms: 1,
            stdout_tail: String::new(),
            stderr_tail: String::new(),
        }
    }

    #[test]
    fn ended_in_flight_and_never_started_servers() {
        let a = "be01.ams.contoso.com";
        let b = "be02.ams.contoso.com";
        let c = "se01.nyc.contoso.com";
        let journal = Journal {
            records: vec![
                rec(
                    0,
                    1000,
                    Event::OutageStarted {
                        server: a.into(),
                        pool: "p.contoso.com".into(),
                    },
                ),
                rec(1, 1100, finished(a, StepKind::StopServices)),
                rec(
                    2,
                    1500,
                    Event::OutageEnded {
                        server: a.into(),
                        outage_ms: 500_000,
                    },
                ),
                rec(
                    3,
                    1500,
                    Event::ServerDone {
                        server: a.into(),
                        outage_ms: 500_000,
                    },
                ),
                rec(
                    4,
                    2000,
                    Event::OutageStarted {
                        server: b.into(),
                        pool: "p.contoso.com".into(),
                    },
                ),
                rec(5, 2100, finished(b, StepKind::StopServices)),
                rec(6, 2200, finished(b, StepKind::StopW3svc)),
                rec(
                    7,
                    2200,
                    Event::ServerSkipped {
                        server: c.into(),
                        reason: "not started: stopped by the operator".into(),
                    },
                ),
                rec(
                    8,
                    2300,
                    Event::PoolHalted {
                        pool: "q.contoso.com".into(),
                        reason: "x failed".into(),
                    },
                ),
            ],
            torn_last_line: None,
        };
        let e = earlier_from(&journal, Timestamp::from_second(2600).unwrap());
        assert!(matches!(
            e.outcomes[&Fqdn::parse(a).unwrap()],
            ServerOutcome::Done { overrun: false, .. }
        ));
        let f = &e.in_flight[&Fqdn::parse(b).unwrap()];
        assert_eq!(
            f.down_for,
            Duration::from_secs(600),
            "the clock runs from the journaled start"
        );
        assert_eq!(f.finished_ok, [StepKind::StopServices, StepKind::StopW3svc]);
        assert!(
            !e.outcomes.contains_key(&Fqdn::parse(c).unwrap()),
            "a skipped server is tried again"
        );
        assert!(
            e.halted_pools
                .contains_key(&Fqdn::parse("q.contoso.com").unwrap())
        );
    }
}
