//! Why: breaches explained in words, and the reason each server is not patched.

use poolpatch_plans::Plan;
use poolpatch_plans::plan::ServerPlan;
use poolpatch_plans::procedure::StepKind;

use super::journal::Events;
use super::ms;
use crate::journal::WatchdogAction;
use crate::report::fmt::{dur, offset};
use crate::report::{BreachReport, NotPatched, ServerReport, ServerResult};
use crate::status::{self, ServerState};

pub(super) fn not_scheduled_entry(s: &ServerPlan) -> NotPatched {
    let (reason, fix) = match &s.not_scheduled {
        Some(n) => (
            format!("not scheduled ({}): {}", n.reason.name(), n.message),
            n.fix.clone(),
        ),
        None => ("not scheduled".to_string(), None),
    };
    NotPatched {
        server: s.fqdn.clone(),
        pool: s.pool.clone(),
        result: ServerResult::NotScheduled,
        source: "plan".into(),
        reason,
        fix,
    }
}

pub(super) fn breach_report(
    plan: &Plan,
    s: Option<&ServerReport>,
    server: &str,
    pool: &str,
    at: jiff::Timestamp,
    at_ms: u64,
    down_ms: u64,
) -> BreachReport {
    let site = s
        .map(|s| s.site.clone())
        .filter(|x| !x.is_empty())
        .or_else(|| {
            plan.pools
                .iter()
                .find(|p| p.fqdn == pool)
                .map(|p| p.site.clone())
        })
        .unwrap_or_default();
    let actual = s.and_then(|s| s.actual.as_ref());
    let outage_ms = actual.and_then(|a| a.outage_ms);
    let still_down =
        actual.is_some_and(|a| a.outage_start_ms.is_some() && a.outage_end_ms.is_none());
    let watchdog = s
        .and_then(|s| s.watchdog.iter().find(|w| w.at_ms <= at_ms))
        .map(|w| w.action);
    let threshold = ms(plan.policy.threshold);
    let mut explanation = format!(
        "{server} (pool {pool}, site {site}) was down for the whole {} resiliency threshold: the breach was journaled at {} into the run ({}), {} into its outage.",
        dur(threshold),
        offset(at_ms),
        at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        dur(down_ms),
    );
    match (outage_ms, still_down) {
        (Some(o), _) => explanation.push_str(&format!(
            " Its outage lasted {} in all, {} beyond the threshold.",
            dur(o),
            dur(o.saturating_sub(threshold))
        )),
        (None, true) => explanation.push_str(" The journal ends with it still down."),
        (None, false) => {}
    }
    match watchdog {
        Some(WatchdogAction::Restore) => explanation
            .push_str(" The watchdog had begun restoring services at the budget; they were not back before the threshold (a step that must not be interrupted, or the recovery itself, took that long)."),
        Some(WatchdogAction::Finish) => explanation
            .push_str(" The watchdog's policy at the budget was to finish the procedure."),
        None => {}
    }
    BreachReport {
        server: server.to_string(),
        pool: pool.to_string(),
        site,
        at,
        at_ms,
        down_ms,
        outage_ms,
        still_down,
        watchdog,
        explanation,
    }
}

pub(super) fn not_patched_entry(
    plan: &Plan,
    s: &ServerReport,
    status: &status::RunStatus,
    events: &Events,
    end_ms: u64,
) -> NotPatched {
    let entry = |source: &str, reason: String| NotPatched {
        server: s.fqdn.clone(),
        pool: s.pool.clone(),
        result: s.result,
        source: source.into(),
        reason,
        fix: None,
    };
    let steps = |k: &[StepKind]| k.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ");
    match s.result {
        ServerResult::NotScheduled => match plan.servers.iter().find(|p| p.fqdn == s.fqdn) {
            Some(p) => not_scheduled_entry(p),
            None => entry("plan", "not in the plan".into()),
        },
        ServerResult::Failed => {
            let f = s.failure.as_ref();
            let mut reason = match f {
                Some(f) => match f.step {
                    Some(k) => format!("failed at {}: {}", k.name(), f.reason),
                    None => format!("failed: {}", f.reason),
                },
                None => "failed".into(),
            };
            if f.is_some_and(|f| !f.restored) {
                reason.push_str(" (services NOT restored: check the server now)");
            }
            entry("journal", reason)
        }
        ServerResult::BudgetExhausted => {
            let down = s
                .actual
                .as_ref()
                .and_then(|a| a.outage_ms)
                .map(|d| format!(" after {} down", dur(d)))
                .unwrap_or_default();
            entry(
                "journal",
                format!(
                    "the outage budget ran out; services were restored{down}; left to do: {}",
                    steps(&s.left_to_do)
                ),
            )
        }
        ServerResult::Skipped => {
            let reason = status
                .servers
                .iter()
                .find_map(|(n, st)| match st {
                    ServerState::Skipped { reason } if *n == s.fqdn => Some(reason.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            entry("journal", format!("skipped: {reason}"))
        }
        ServerResult::InFlight => {
            let since = s
                .actual
                .as_ref()
                .and_then(|a| a.outage_start_ms)
                .map(offset)
                .unwrap_or_else(|| "-".into());
            entry(
                "run",
                format!(
                    "in flight: its outage started at {since} and the journal ends at {} before it ended; it may still be down (see the runbook)",
                    offset(end_ms)
                ),
            )
        }
        ServerResult::NotStarted | ServerResult::Scheduled | ServerResult::Done => {
            let reason = if !status.finished {
                "not started yet: the run has not finished".to_string()
            } else if let Some(h) = events.pool_halts.get(&s.pool) {
                format!("never started: its pool was halted ({h})")
            } else if let Some(h) = &status.halted {
                format!("never started: the run halted ({h})")
            } else {
                "never started: the run ended before its turn".to_string()
            };
            entry("run", reason)
        }
    }
}
