//! Building a [`Report`] from a plan and a journal (or from a plan alone).
//!
//! Where each server stands comes from [`crate::status::derive`], the one reading of the
//! journal's state machine; this module adds the timings (outage spans, every step against
//! its estimate), watchdog actions, breaches, failures with their output, and the reasons
//! servers are not patched.

use std::collections::BTreeMap;
use std::time::Duration;

use poolpatch_plans::Plan;
use poolpatch_plans::plan::{PlannedRole, ServerPlan};
use poolpatch_plans::procedure::StepKind;

mod explain;
mod journal;

use explain::{breach_report, not_patched_entry, not_scheduled_entry};
use journal::{Scale, Seen, collect};

use super::fmt::offset;
use super::{
    Actual, Counts, LongestOutage, Outcome, Overall, PolicyInfo, PoolReport, Predicted,
    PredictedWindow, REPORT_SCHEMA, Report, ReportKind, RoleInfo, RunInfo, ServerReport,
    ServerResult, Source, Span, StepReport, percent,
};
use crate::journal::{ExitRecord, Journal};
use crate::status::{self, ServerState};

/// How a run's report is built.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOptions {
    /// The run directory, as shown in the report.
    pub run_dir: Option<String>,
    /// A rehearsal's speed: the journal's durations are multiplied by it.
    pub rehearsal_speed: Option<f64>,
}

pub(super) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn role_info(role: &PlannedRole) -> RoleInfo {
    let (kind, mirror_role, mirror_partner) = match role {
        PlannedRole::BackEnd {
            mirror_role,
            mirror_partner,
            ..
        } => ("back-end", mirror_role.clone(), mirror_partner.clone()),
        PlannedRole::StandardEdition => ("standard-edition", None, None),
    };
    RoleInfo {
        kind: kind.to_string(),
        mirror_role,
        mirror_partner,
        description: role.describe(),
    }
}

fn estimate(plan: Option<&ServerPlan>, kind: StepKind, recovery: bool) -> Option<u64> {
    let steps = &plan?.steps;
    let found = if recovery {
        steps.recovery.iter().find(|s| s.step.kind == kind)
    } else {
        steps
            .preflight
            .iter()
            .chain(&steps.outage)
            .find(|s| s.step.kind == kind)
            .or((steps.reboot.step.kind == kind).then_some(&steps.reboot))
    };
    found.map(|s| ms(s.estimate))
}

fn predicted(s: &ServerPlan) -> Predicted {
    let o = &s.outage;
    Predicted {
        scheduled: s.window.is_some(),
        window: s.window.map(|w| PredictedWindow {
            start_ms: ms(w.start),
            outage_start_ms: ms(w.outage_start),
            end_ms: ms(w.end),
        }),
        outage_ms: ms(o.predicted),
        budget_ms: ms(o.budget),
        threshold_ms: ms(o.threshold),
        budget_used_pct: percent(ms(o.predicted), ms(o.budget)),
        verdict: o.verdict.name().to_string(),
    }
}

fn planned_outage_steps(s: &ServerPlan) -> Vec<StepKind> {
    s.steps.outage.iter().map(|p| p.step.kind).collect()
}

fn policy(plan: &Plan) -> PolicyInfo {
    let p = &plan.policy;
    PolicyInfo {
        budget_ms: ms(p.budget),
        threshold_ms: ms(p.threshold),
        on_budget_exhausted: p.on_budget_exhausted.name().to_string(),
        on_failure: p.on_failure.name().to_string(),
        max_concurrent_pools: p.max_concurrent_pools,
    }
}

fn pool_base(plan: &Plan, p: &poolpatch_plans::plan::PoolPlan) -> PoolReport {
    PoolReport {
        fqdn: p.fqdn.clone(),
        site: p.site.clone(),
        edition: p.edition.clone(),
        product: p.product.clone(),
        plan_status: p.status.name().to_string(),
        backup_pool: p.backup_pool.clone(),
        after: p.after.clone(),
        front_ends: p.front_ends.clone(),
        servers: p.servers.clone(),
        out_of_scope: plan
            .out_of_scope
            .iter()
            .filter(|o| o.pool == p.fqdn)
            .map(|o| o.fqdn.clone())
            .collect(),
        servers_done: 0,
        predicted: {
            let mine = plan.scheduled().filter(|s| s.pool == p.fqdn);
            let (mut start, mut end) = (None::<u64>, None::<u64>);
            for w in mine.filter_map(|s| s.window) {
                let (a, b) = (ms(w.outage_start), ms(w.end));
                start = Some(start.map_or(a, |x| x.min(a)));
                end = Some(end.map_or(b, |x| x.max(b)));
            }
            start.zip(end).map(|(a, b)| Span::new(a, b))
        },
        actual: None,
        breaches: 0,
        halted: None,
    }
}

/// The report of a plan alone: the prediction the change board approves.
pub fn from_plan(plan: &Plan) -> Report {
    let servers: Vec<ServerReport> = plan
        .servers
        .iter()
        .map(|s| ServerReport {
            fqdn: s.fqdn.clone(),
            pool: s.pool.clone(),
            site: s.site.clone(),
            role: role_info(&s.role),
            result: if s.window.is_some() {
                ServerResult::Scheduled
            } else {
                ServerResult::NotScheduled
            },
            predicted: predicted(s),
            actual: None,
            steps: s
                .steps
                .outage
                .iter()
                .map(|p| StepReport {
                    kind: p.step.kind,
                    recovery: false,
                    started_ms: p.at.map(ms),
                    duration_ms: None,
                    estimate_ms: Some(ms(p.estimate)),
                    delta_ms: None,
                    exit: None,
                    ok: None,
                    note: None,
                })
                .collect(),
            watchdog: Vec::new(),
            breaches: Vec::new(),
            reboot_requested: false,
            failure: None,
            left_to_do: planned_outage_steps(s),
        })
        .collect();
    let not_patched = plan.not_scheduled().map(not_scheduled_entry).collect();
    let counts = Counts {
        scheduled: plan.totals.servers_scheduled,
        not_scheduled: plan.totals.servers_not_scheduled,
        ..Counts::default()
    };
    let longest_outage = servers
        .iter()
        .filter(|s| s.result == ServerResult::Scheduled)
        .max_by_key(|s| s.predicted.outage_ms)
        .map(|s| LongestOutage {
            server: s.fqdn.clone(),
            outage_ms: s.predicted.outage_ms,
            budget_used_pct: s.predicted.budget_used_pct,
        });
    Report {
        schema: REPORT_SCHEMA.to_string(),
        kind: ReportKind::Plan,
        change: plan.change.name.clone(),
        source: Source {
            run_dir: None,
            plan_schema: plan.schema.clone(),
            journal_records: 0,
            journal_torn_last_line: None,
            rehearsal_speed: None,
        },
        run: None,
        policy: policy(plan),
        overall: Overall {
            outcome: Outcome::Planned,
            predicted_duration_ms: ms(plan.totals.duration),
            actual_duration_ms: None,
            servers_in_scope: plan.totals.servers_in_scope,
            servers_scheduled: plan.totals.servers_scheduled,
            servers_out_of_scope: plan.totals.servers_out_of_scope,
            counts,
            breaches: 0,
            watchdog_actions: 0,
            longest_outage,
        },
        pools: plan.pools.iter().map(|p| pool_base(plan, p)).collect(),
        servers,
        breaches: Vec::new(),
        not_patched,
        log: Vec::new(),
        notes: plan.notes.clone(),
        warnings: Vec::new(),
    }
}

/// The report of a run: the plan it carried out and its journal.
pub fn from_run(plan: &Plan, journal: &Journal, options: &RunOptions) -> Report {
    let speed = options
        .rehearsal_speed
        .filter(|s| s.is_finite() && *s >= 1.0);
    let scale = Scale(speed.unwrap_or(1.0));
    let status = status::derive(journal, Some(plan));
    let (mut seen, events) = collect(journal, scale);
    let states: BTreeMap<&str, &ServerState> = status
        .servers
        .iter()
        .map(|(n, s)| (n.as_str(), s))
        .collect();
    let budget_ms = ms(plan.policy.budget);
    let end_ms = events.last_ms;

    let mut warnings = Vec::new();
    if let Some(l) = journal.torn_last_line {
        warnings.push(format!(
            "The journal's last line ({l}) was torn by a crash and is ignored: this report shows every event before it."
        ));
    }
    if !status.finished {
        warnings.push(format!(
            "The run has not finished: the journal ends at {} without the run's end (it is still running, or the controller stopped). Servers in flight may still be down.",
            offset(end_ms)
        ));
    }

    let mut servers = Vec::new();
    let mut names: Vec<&str> = plan.servers.iter().map(|s| s.fqdn.as_str()).collect();
    for (n, _) in &status.servers {
        if !names.contains(&n.as_str()) {
            warnings.push(format!(
                "{n} appears in the journal but not in the plan: the journal and plan.json may be of different runs."
            ));
            names.push(n.as_str());
        }
    }
    for name in names {
        let sp = plan.servers.iter().find(|s| s.fqdn == name);
        let st = states.get(name).copied();
        let s = seen.remove(name).unwrap_or_default();
        servers.push(server_report(name, sp, st, s, budget_ms, end_ms));
    }

    let mut pools: Vec<PoolReport> = plan.pools.iter().map(|p| pool_base(plan, p)).collect();
    for pool in &mut pools {
        let mine: Vec<&ServerReport> = servers.iter().filter(|s| s.pool == pool.fqdn).collect();
        pool.servers_done = mine
            .iter()
            .filter(|s| s.result == ServerResult::Done)
            .count();
        pool.breaches = mine.iter().map(|s| s.breaches.len()).sum();
        let started: Vec<&super::Actual> = mine
            .iter()
            .filter_map(|s| s.actual.as_ref())
            .filter(|a| a.outage_start_ms.is_some())
            .collect();
        let start = started.iter().filter_map(|a| a.outage_start_ms).min();
        let end = started.iter().map(|a| a.last_event_ms).max();
        if let (Some(a), Some(b)) = (start, end) {
            pool.actual = Some(Span::new(a, b));
        }
        pool.halted = events.pool_halts.get(&pool.fqdn).cloned();
    }

    let breaches = events
        .breaches
        .iter()
        .map(|(server, pool, at, at_ms, down_ms)| {
            let s = servers.iter().find(|s| &s.fqdn == server);
            breach_report(plan, s, server, pool, *at, *at_ms, *down_ms)
        })
        .collect::<Vec<_>>();

    let not_patched = servers
        .iter()
        .filter(|s| s.result != ServerResult::Done)
        .map(|s| not_patched_entry(plan, s, &status, &events, end_ms))
        .collect();

    let mut counts = Counts::default();
    for s in &servers {
        match s.result {
            ServerResult::Done => counts.done += 1,
            ServerResult::Failed => counts.failed += 1,
            ServerResult::BudgetExhausted => counts.budget_exhausted += 1,
            ServerResult::Skipped => counts.skipped += 1,
            ServerResult::InFlight => counts.in_flight += 1,
            ServerResult::NotStarted => counts.not_started += 1,
            ServerResult::NotScheduled => counts.not_scheduled += 1,
            ServerResult::Scheduled => counts.scheduled += 1,
        }
    }
    let outcome = if !breaches.is_empty() {
        Outcome::Breach
    } else if !status.finished {
        Outcome::NotFinished
    } else if counts.done == servers.len() {
        Outcome::Complete
    } else {
        Outcome::Incomplete
    };
    let longest_outage = servers
        .iter()
        .filter_map(|s| {
            let a = s.actual.as_ref()?;
            let o = a.outage_ms.or(a.down_at_least_ms)?;
            Some((s, o, a.budget_used_pct))
        })
        .max_by_key(|(_, o, _)| *o)
        .map(|(s, o, pct)| LongestOutage {
            server: s.fqdn.clone(),
            outage_ms: o,
            budget_used_pct: pct,
        });
    Report {
        schema: REPORT_SCHEMA.to_string(),
        kind: ReportKind::Run,
        change: if status.change.is_empty() {
            plan.change.name.clone()
        } else {
            status.change.clone()
        },
        source: Source {
            run_dir: options.run_dir.clone(),
            plan_schema: plan.schema.clone(),
            journal_records: journal.records.len(),
            journal_torn_last_line: journal.torn_last_line,
            rehearsal_speed: speed,
        },
        run: Some(RunInfo {
            operator: status.operator.clone(),
            started_at: status.started,
            last_event_at: status.last_event,
            finished: status.finished,
            halted: status.halted.clone(),
        }),
        policy: policy(plan),
        overall: Overall {
            outcome,
            predicted_duration_ms: ms(plan.totals.duration),
            actual_duration_ms: (!journal.records.is_empty()).then_some(end_ms),
            servers_in_scope: plan.totals.servers_in_scope,
            servers_scheduled: plan.totals.servers_scheduled,
            servers_out_of_scope: plan.totals.servers_out_of_scope,
            counts,
            breaches: breaches.len(),
            watchdog_actions: servers.iter().map(|s| s.watchdog.len()).sum(),
            longest_outage,
        },
        pools,
        servers,
        breaches,
        not_patched,
        log: events.log.clone(),
        notes: plan.notes.clone(),
        warnings,
    }
}

fn server_report(
    name: &str,
    sp: Option<&ServerPlan>,
    st: Option<&ServerState>,
    mut s: Seen,
    budget_ms: u64,
    end_ms: u64,
) -> ServerReport {
    let scheduled = sp.is_some_and(|p| p.window.is_some());
    let result = match st {
        Some(ServerState::Done { .. }) => ServerResult::Done,
        Some(ServerState::Failed { .. }) => ServerResult::Failed,
        Some(ServerState::BudgetExhausted { .. }) => ServerResult::BudgetExhausted,
        Some(ServerState::Skipped { .. }) => ServerResult::Skipped,
        Some(ServerState::InFlight { .. }) => ServerResult::InFlight,
        Some(ServerState::Pending | ServerState::Ready) | None if !scheduled && sp.is_some() => {
            ServerResult::NotScheduled
        }
        Some(ServerState::Pending | ServerState::Ready) | None => ServerResult::NotStarted,
    };
    for step in &mut s.steps {
        step.estimate_ms = estimate(sp, step.kind, step.recovery);
        let completed = !matches!(step.exit, Some(ExitRecord::Unknown { .. }));
        if let (Some(d), Some(e), true) = (step.duration_ms, step.estimate_ms, completed) {
            step.delta_ms =
                Some(i64::try_from(d).unwrap_or(i64::MAX) - i64::try_from(e).unwrap_or(0));
        }
    }
    let actual = s.first_ms.map(|first| {
        let down_at_least_ms = match (s.outage_start, s.outage_end) {
            (Some(a), None) => Some(end_ms.saturating_sub(a)),
            _ => None,
        };
        let down = s.outage_ms.or(down_at_least_ms);
        Actual {
            started_ms: first,
            preflight_end_ms: s.preflight_end,
            last_event_ms: s.last_ms,
            outage_start_ms: s.outage_start,
            outage_end_ms: s.outage_end,
            outage_ms: s.outage_ms,
            down_at_least_ms,
            budget_used_pct: down.and_then(|d| percent(d, budget_ms)),
        }
    });
    let planned = sp.map(planned_outage_steps).unwrap_or_default();
    let left_to_do = match (result, st) {
        (ServerResult::Done, _) => Vec::new(),
        (_, Some(ServerState::BudgetExhausted { remaining })) => remaining.clone(),
        (ServerResult::Failed | ServerResult::InFlight, _) => planned
            .into_iter()
            .filter(|k| !s.done_ok.contains(k))
            .collect(),
        _ => planned,
    };
    let (fqdn, pool, site, role, pred) = match sp {
        Some(p) => (
            p.fqdn.clone(),
            p.pool.clone(),
            p.site.clone(),
            role_info(&p.role),
            predicted(p),
        ),
        None => (
            name.to_string(),
            s.pool.clone().unwrap_or_default(),
            String::new(),
            RoleInfo {
                kind: "unknown".into(),
                mirror_role: None,
                mirror_partner: None,
                description: "not in the plan".into(),
            },
            Predicted {
                scheduled: false,
                window: None,
                outage_ms: 0,
                budget_ms,
                threshold_ms: 0,
                budget_used_pct: None,
                verdict: "unknown".into(),
            },
        ),
    };
    ServerReport {
        fqdn,
        pool,
        site,
        role,
        result,
        predicted: pred,
        actual,
        steps: s.steps,
        watchdog: s.watchdog,
        breaches: s.breaches,
        reboot_requested: s.reboot,
        failure: s.failure,
        left_to_do,
    }
}
