//! Building the plan: estimates and verdicts per server, the schedule, and the assembly of
//! the [`Plan`] value. Pure: no clock, no file, no environment; every collection is walked in
//! inventory, priority or timeline order, so the same inputs give the same plan.

use std::time::Duration;

use poolpatch_inventory::{Inventory, Pool, Role, Server};

use super::advice;
use super::timing::Setup;
use super::{
    ChangeInfo, InstallerInfo, NotScheduled, NotScheduledReason, OutOfScope, OutagePrediction,
    PLAN_SCHEMA, Plan, PlannedRole, PlannedStep, PlannedSteps, Policy, PoolPlan, PoolPlanStatus,
    ServerPlan, ServerWindow, Totals, Verdict, Window,
};
use crate::change::Change;
use crate::estimates::Estimator;
use crate::history::History;
use crate::procedure::{
    FinalStep, InstallerOnHost, Procedure, Step, installer_file_name, procedure,
};
use crate::safety::{Estate, Limits, ServerId};
use crate::schedule::{Job, Unscheduled, pool_priority, server_order, simulate_with};

/// Everything a plan is built from. Later inputs (the history of past runs, `now` for
/// maintenance windows) become fields here, so callers that use [`PlanInput::new`] keep
/// compiling.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct PlanInput<'a> {
    /// The validated inventory.
    pub inventory: &'a Inventory,
    /// The validated change (ideally also checked with `Change::check_against`).
    pub change: &'a Change,
    /// The history of past runs the estimates learn from, if any (see
    /// [`crate::history`]).
    pub history: Option<&'a History>,
    /// When the plan starts (rounded up to whole seconds): maintenance windows and blackouts
    /// are placed from it. Without it, servers bound by windows or blackouts are not
    /// scheduled (`needs-start-time`); the CLI passes the current time by default.
    pub now: Option<jiff::Timestamp>,
}

impl<'a> PlanInput<'a> {
    /// The inputs of a plan.
    pub fn new(inventory: &'a Inventory, change: &'a Change) -> Self {
        PlanInput {
            inventory,
            change,
            history: None,
            now: None,
        }
    }

    /// The same inputs, starting at `now` (see [`PlanInput::now`]).
    pub fn starting_at(mut self, now: jiff::Timestamp) -> Self {
        self.now = Some(now);
        self
    }

    /// The same inputs, with estimates that learn from `history`.
    pub fn with_history(mut self, history: &'a History) -> Self {
        self.history = Some(history);
        self
    }
}

/// Plans `change` over `inventory`. Pure and deterministic: the same inputs give the same
/// plan, and the same JSON bytes.
pub fn plan(inventory: &Inventory, change: &Change) -> Plan {
    plan_with(&PlanInput::new(inventory, change))
}

/// A server in scope while the plan is being built.
struct Work {
    target_version: String,
    role: PlannedRole,
    installer: InstallerOnHost,
    steps: PlannedSteps,
    preflight: Duration,
    outage: OutagePrediction,
    impact: super::Impact,
    reason: Option<NotScheduled>,
}

/// [`plan`] with all inputs in one value.
pub fn plan_with(input: &PlanInput<'_>) -> Plan {
    let PlanInput {
        inventory, change, ..
    } = *input;
    let scope = change.scope.index();
    let limits = Limits {
        max_pools: usize::try_from(change.concurrency.pools).unwrap_or(usize::MAX),
        budget: change.outage.budget,
        threshold: change.outage.threshold,
    };
    let estate = Estate::new(inventory, |p, s| scope.contains(p, s), limits);
    let estimator = Estimator::with_history(change, input.history);
    let pairs: Vec<(&Pool, &Server)> = inventory
        .pools
        .iter()
        .flat_map(|p| p.servers.iter().map(move |s| (p, s)))
        .collect();

    let in_scope = |i: usize| {
        estate
            .server_at(i)
            .and_then(|id| estate.server(id))
            .is_some_and(|n| n.in_scope)
    };
    let now = input.now.map(whole_seconds);
    let setup = Setup::new(inventory, change, &pairs, in_scope, now);

    // Each server on its own: steps, estimates, prediction, verdict.
    let mut work: Vec<Option<Work>> = pairs
        .iter()
        .enumerate()
        .map(|(i, (pool, server))| {
            in_scope(i).then(|| server_work(change, &estimator, pool, server))
        })
        .collect();

    // Stages and windows: a server in no stage, or whose slot fits no window, cannot go.
    for (i, w) in work.iter_mut().enumerate() {
        if let Some(w) = w.as_mut().filter(|w| w.reason.is_none()) {
            w.reason = setup.static_reason(i, w.preflight + w.outage.predicted);
        }
    }

    // A principal whose mirror side cannot go cannot go either (rolling order).
    loop {
        let mut changed = false;
        for i in 0..work.len() {
            let Some(id) = estate.server_at(i) else {
                continue;
            };
            let Some(node) = estate.server(id) else {
                continue;
            };
            if work[i].as_ref().is_none_or(|w| w.reason.is_some()) {
                continue;
            }
            let blocked = node.mirror_first.iter().find_map(|m| {
                work[m.index()]
                    .as_ref()
                    .and_then(|w| w.reason.as_ref())
                    .map(|r| (*m, r.clone()))
            });
            if let (Some((m, why)), Some(w)) = (blocked, work[i].as_mut()) {
                let mirror = &pairs[m.index()].1.fqdn;
                w.reason = Some(NotScheduled {
                    reason: NotScheduledReason::MirrorSideNotScheduled,
                    message: format!(
                        "its mirror side {mirror} is not scheduled ({}), and SQL Server's rolling order updates the mirror first",
                        why.message
                    ),
                    fix: Some(match why.fix {
                        Some(f) => format!("schedule {mirror} first: {f}"),
                        None => format!("schedule {mirror} first"),
                    }),
                });
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }

    // The schedule.
    let sequences: Vec<Vec<Job>> = estate
        .pools()
        .iter()
        .map(|p| {
            let ready: Vec<ServerId> = p
                .servers
                .iter()
                .copied()
                .filter(|s| work[s.index()].as_ref().is_some_and(|w| w.reason.is_none()))
                .collect();
            server_order(&estate, &ready)
                .into_iter()
                .filter_map(|s| {
                    let w = work[s.index()].as_ref()?;
                    Some(Job {
                        server: s,
                        preflight: w.preflight,
                        outage: w.outage.predicted,
                    })
                })
                .collect()
        })
        .collect();
    let priority = pool_priority(&estate);
    let schedule = simulate_with(&estate, &priority, &sequences, &setup.timing);
    for (id, why) in &schedule.unscheduled {
        let pool = &pairs[id.index()].0.fqdn;
        let reason = match why {
            Unscheduled::WaitsForPool { after } => {
                let after = estate
                    .pool(*after)
                    .map_or_else(String::new, |p| p.fqdn.to_string());
                NotScheduled {
                    reason: NotScheduledReason::WaitsForPool,
                    message: format!(
                        "pool {pool} comes after pool {after} (`after:`), which this plan does not complete"
                    ),
                    fix: Some(format!("see why the servers of {after} are not scheduled")),
                }
            }
            Unscheduled::Refused { blocked, refusal } if blocked == id => NotScheduled {
                reason: NotScheduledReason::Blocked,
                message: refusal.to_string(),
                fix: None,
            },
            Unscheduled::Refused { blocked, refusal } => NotScheduled {
                reason: NotScheduledReason::Blocked,
                message: format!(
                    "it follows {} in pool {pool}, which cannot start: {refusal}",
                    pairs[blocked.index()].1.fqdn
                ),
                fix: None,
            },
            Unscheduled::NoWindow { blocked, from } => {
                let slot = |i: usize| {
                    work[i]
                        .as_ref()
                        .map_or(Duration::ZERO, |w| w.preflight + w.outage.predicted)
                };
                let why = setup.no_window_left(blocked.index(), slot(blocked.index()), *from);
                if blocked == id {
                    why
                } else {
                    NotScheduled {
                        message: format!(
                            "it follows {} in pool {pool}, which cannot start: {}",
                            pairs[blocked.index()].1.fqdn,
                            why.message
                        ),
                        ..why
                    }
                }
            }
            Unscheduled::WaitsForStage { stage } => setup.waits_for_stage(id.index(), *stage),
        };
        if let Some(w) = work[id.index()].as_mut() {
            w.reason = Some(reason);
        }
    }

    // Assembly: scheduled servers in timeline order, then the others in inventory order.
    let mut servers = Vec::with_capacity(work.len());
    let mut pool_servers: Vec<Vec<String>> = vec![Vec::new(); inventory.pools.len()];
    let mut pool_windows: Vec<Option<Window>> = vec![None; inventory.pools.len()];
    let mut duration = Duration::ZERO;
    for slot in &schedule.slots {
        let i = slot.server.index();
        let Some(w) = work[i].take() else { continue };
        let (pool, server) = pairs[i];
        let window = ServerWindow {
            start: slot.start,
            outage_start: slot.outage_start,
            end: slot.end,
        };
        duration = duration.max(slot.end);
        let pw = &mut pool_windows[slot.pool.index()];
        *pw = Some(match *pw {
            Some(x) => Window {
                start: x.start.min(slot.start),
                end: x.end.max(slot.end),
            },
            None => Window {
                start: slot.start,
                end: slot.end,
            },
        });
        pool_servers[slot.pool.index()].push(server.fqdn.to_string());
        servers.push(server_plan(pool, server, w, Some(window)));
    }
    let servers_scheduled = servers.len();
    let mut out_of_scope = Vec::new();
    let mut i = 0;
    for (pi, pool) in inventory.pools.iter().enumerate() {
        for server in &pool.servers {
            match work[i].take() {
                Some(w) => {
                    pool_servers[pi].push(server.fqdn.to_string());
                    servers.push(server_plan(pool, server, w, None));
                }
                None if !in_scope(i) => out_of_scope.push(OutOfScope {
                    fqdn: server.fqdn.to_string(),
                    pool: pool.fqdn.to_string(),
                    site: pool.site.clone(),
                }),
                None => {}
            }
            i += 1;
        }
    }

    let pools: Vec<PoolPlan> = priority
        .iter()
        .filter_map(|id| {
            let pool = inventory.pools.get(id.index())?;
            let node = estate.pool(*id)?;
            let listed = std::mem::take(&mut pool_servers[id.index()]);
            let window = pool_windows[id.index()];
            let scheduled = schedule.slots.iter().filter(|s| s.pool == *id).count();
            let status = if node.in_scope == 0 {
                PoolPlanStatus::OutOfScope
            } else if scheduled == 0 {
                PoolPlanStatus::NotScheduled
            } else if scheduled < node.in_scope {
                PoolPlanStatus::Partial
            } else {
                PoolPlanStatus::Complete
            };
            Some(PoolPlan {
                fqdn: pool.fqdn.to_string(),
                site: pool.site.clone(),
                edition: pool.edition.name().to_string(),
                product: pool.product.name().to_string(),
                backup_pool: pool.backup_pool.as_ref().map(ToString::to_string),
                after: pool.after.iter().map(ToString::to_string).collect(),
                front_ends: pool.front_ends.iter().map(|f| f.fqdn.to_string()).collect(),
                status,
                servers: listed,
                window,
            })
        })
        .collect();

    let totals = Totals {
        duration,
        servers_in_scope: servers.len(),
        servers_scheduled,
        servers_not_scheduled: servers.len() - servers_scheduled,
        servers_out_of_scope: out_of_scope.len(),
        pools_in_scope: estate.pools().iter().filter(|p| p.in_scope > 0).count(),
    };
    let mut notes = advice::notes(inventory, change, &estate, &servers);
    notes.extend(advice::history_notes(input.history, &servers));
    notes.extend(setup.notes());
    let index: std::collections::HashMap<&str, usize> = pairs
        .iter()
        .enumerate()
        .map(|(i, (_, s))| (s.fqdn.as_str(), i))
        .collect();
    setup.annotate(&mut servers, |f| index.get(f).copied());
    let stages = setup.stage_plans(&schedule, &servers);
    Plan {
        schema: PLAN_SCHEMA.to_string(),
        starts_at: now,
        change: change_info(change),
        policy: Policy {
            threshold: change.outage.threshold,
            budget: change.outage.budget,
            on_budget_exhausted: change.outage.on_budget_exhausted,
            on_stop: change.outage.on_stop,
            on_failure: change.on_failure,
            max_concurrent_pools: change.concurrency.pools,
            final_step: change.final_step,
            connect_timeout: change.timeouts.connect,
            failure_limit: setup.failure_limit(totals.servers_in_scope),
        },
        totals,
        pools,
        stages,
        windows: setup.windows_plan(),
        servers,
        out_of_scope,
        notes,
    }
}

/// `t` rounded up to a whole second: plan offsets are whole seconds.
fn whole_seconds(t: jiff::Timestamp) -> jiff::Timestamp {
    if t.subsec_nanosecond() == 0 {
        return t;
    }
    jiff::Timestamp::from_second(t.as_second().saturating_add(1)).unwrap_or(t)
}

fn change_info(change: &Change) -> ChangeInfo {
    ChangeInfo {
        name: change.name.clone(),
        format_version: change.version,
        remote_dir: change.update.remote_dir.path.clone(),
        remote_dir_style: change.update.remote_dir.style,
        min_free_bytes: change.update.min_free_bytes,
        installers: change
            .update
            .installers
            .iter()
            .map(|(product, i)| InstallerInfo {
                product: product.name().to_string(),
                local_file: i.file_as_written.clone(),
                remote_path: change.update.remote_dir.join(installer_file_name(*product)),
                sha256: i.sha256.clone(),
                version: i.version.clone(),
            })
            .collect(),
    }
}

fn server_plan(pool: &Pool, server: &Server, w: Work, window: Option<ServerWindow>) -> ServerPlan {
    let mut steps = w.steps;
    if let Some(win) = window {
        let mut at = win.start;
        for s in &mut steps.preflight {
            s.at = Some(at);
            at += s.estimate;
        }
        let mut at = win.outage_start;
        for s in &mut steps.outage {
            s.at = Some(at);
            at += s.estimate;
        }
    }
    ServerPlan {
        fqdn: server.fqdn.to_string(),
        pool: pool.fqdn.to_string(),
        site: pool.site.clone(),
        time_zone: String::new(),
        product: pool.product.name().to_string(),
        target_version: w.target_version,
        role: w.role,
        installer: w.installer,
        window,
        stage: None,
        calendar: None,
        maintenance_window: None,
        not_scheduled: w.reason,
        outage: w.outage,
        impact: w.impact,
        steps,
    }
}

fn server_work(change: &Change, estimator: &Estimator<'_>, pool: &Pool, server: &Server) -> Work {
    let installer_entry = change.update.installers.get(&pool.product);
    let installer = InstallerOnHost {
        path: change
            .update
            .remote_dir
            .join(installer_file_name(pool.product)),
        sha256: installer_entry
            .map(|i| i.sha256.clone())
            .unwrap_or_default(),
        min_free_bytes: change.update.min_free_bytes,
    };
    let Procedure {
        preflight,
        outage,
        recovery,
        reboot,
    } = procedure(server, pool.product, &installer, change.final_step);
    let planned = |step: Step| {
        let e = estimator.estimate(&pool.fqdn, &server.fqdn, step.kind);
        PlannedStep {
            estimate: e.duration,
            estimate_source: e.source,
            timeout: change.step_timeout(step.kind),
            at: None,
            step,
        }
    };
    let steps = PlannedSteps {
        preflight: preflight.into_iter().map(planned).collect(),
        outage: outage.into_iter().map(planned).collect(),
        recovery: recovery.into_iter().map(planned).collect(),
        reboot: planned(reboot),
    };
    let sum = |s: &[PlannedStep]| s.iter().map(|s| s.estimate).sum::<Duration>();
    let predicted = sum(&steps.outage);
    let (budget, threshold) = (change.outage.budget, change.outage.threshold);
    let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let verdict = if predicted < budget {
        Verdict::Fits
    } else {
        Verdict::OverBudget
    };
    let outage_prediction = OutagePrediction {
        predicted,
        budget,
        threshold,
        margin_secs: secs(budget) - secs(predicted),
        verdict,
        if_reboot_requested: (change.final_step != FinalStep::Reboot)
            .then(|| predicted + steps.reboot.estimate),
        restore_by: budget.saturating_sub(sum(&steps.recovery)),
    };
    let reason = if installer_entry.is_none() {
        Some(NotScheduled {
            reason: NotScheduledReason::NoInstaller,
            message: format!(
                "the change has no installer for {} ({})",
                pool.product.name(),
                pool.product.display_name()
            ),
            fix: Some(format!(
                "add `{}: {{ file: ..., sha256: ... }}` under `update.installers`",
                pool.product.name()
            )),
        })
    } else if budget >= threshold {
        Some(NotScheduled {
            reason: NotScheduledReason::Blocked,
            message: crate::safety::Refusal::BudgetNotBelowThreshold { budget, threshold }
                .to_string(),
            fix: Some("set `outage.budget` below `outage.threshold`".into()),
        })
    } else if verdict == Verdict::OverBudget {
        Some(NotScheduled {
            reason: NotScheduledReason::OverBudget,
            message: crate::safety::Refusal::OutageNotBelowBudget {
                server: server.fqdn.to_string(),
                predicted,
                budget,
            }
            .to_string(),
            fix: Some(advice::over_budget_fix(
                predicted,
                budget,
                threshold,
                &steps.outage,
                change.final_step,
            )),
        })
    } else {
        None
    };
    Work {
        target_version: installer_entry
            .map(|i| i.version.clone())
            .unwrap_or_default(),
        role: planned_role(&server.role),
        installer,
        impact: advice::impact(pool, server, predicted, threshold),
        preflight: sum(&steps.preflight),
        outage: outage_prediction,
        steps,
        reason,
    }
}

fn planned_role(role: &Role) -> PlannedRole {
    match role {
        Role::BackEnd {
            sql_server,
            mirror,
            collocated_databases,
        } => PlannedRole::BackEnd {
            sql_server: sql_server.to_string(),
            mirror_role: mirror.as_ref().map(|m| m.role.name().to_string()),
            mirror_partner: mirror.as_ref().map(|m| m.partner.to_string()),
            collocated_databases: collocated_databases
                .iter()
                .map(|d| d.name().to_string())
                .collect(),
        },
        Role::StandardEdition => PlannedRole::StandardEdition,
    }
}
