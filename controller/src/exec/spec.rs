//! From a plan to the executor's jobs.
//!
//! The executor consumes the plan as the change board saw it: the scripts, the order, the
//! timeouts and the predictions all come from the [`Plan`]; the inventory only supplies how
//! to reach each server, and the change file the local installer files. Nothing is
//! re-planned here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use poolpatch_inventory::{Fqdn, Inventory, Product};
use poolpatch_plans::Change;
use poolpatch_plans::plan::{Plan, PlannedStep};
use poolpatch_plans::procedure::{Procedure, StepKind};
use poolpatch_plans::safety::{Estate, Limits};

use super::run::{PlannedJob, RunSpec};
use super::server::{InstallerSource, OutagePolicy, ServerJob};
use crate::journal::WatchdogAction;

/// How long to keep trying to reach a server that dropped or restarted, when the caller
/// does not say: the threshold, since past it the server is in breach anyway and an
/// operator must step in.
fn default_reconnect_within(plan: &Plan) -> Duration {
    plan.policy.threshold
}

/// Pause between attempts to reach a server that dropped or restarted: a tenth of the
/// connect timeout (at least 100 ms), and never more than a hundredth of the budget, so
/// that a rehearsal whose plan is compressed (the connect timeout is not) does not spend
/// its budget waiting between attempts.
fn reconnect_every(plan: &Plan) -> Duration {
    (plan.policy.connect_timeout / 10)
        .max(Duration::from_millis(100))
        .min(plan.policy.budget / 100)
}

/// Builds the run of every server the plan schedules, in the plan's order.
///
/// Fails if the plan names a server or pool the inventory does not have (the plan was made
/// from another inventory) or a product without an installer in the change.
pub fn run_spec(plan: &Plan, inventory: &Inventory, change: &Change) -> Result<RunSpec, String> {
    let scope = change.scope.index();
    let limits = Limits {
        max_pools: usize::try_from(plan.policy.max_concurrent_pools).unwrap_or(usize::MAX),
        budget: plan.policy.budget,
        threshold: plan.policy.threshold,
    };
    let estate = Arc::new(Estate::new(inventory, |p, s| scope.contains(p, s), limits));
    let mut jobs = Vec::new();
    for sp in plan.scheduled() {
        let fqdn =
            Fqdn::parse(&sp.fqdn).map_err(|e| format!("the plan names `{}`: {e}", sp.fqdn))?;
        let server = inventory
            .server(&fqdn)
            .ok_or_else(|| format!("the plan names {fqdn}, which the inventory does not have: was the plan made from another inventory?"))?;
        let id = estate
            .server_id(&fqdn)
            .ok_or_else(|| format!("{fqdn} is not in the estate"))?;
        let pool = estate
            .pool_id(&server.pool)
            .ok_or_else(|| format!("the pool of {fqdn} is not in the estate"))?;
        let product = Product::from_name(&sp.product)
            .ok_or_else(|| format!("{fqdn}: unknown product `{}` in the plan", sp.product))?;
        let installer =
            change.update.installers.get(&product).ok_or_else(|| {
                format!("{fqdn}: the change has no installer for {}", product.name())
            })?;
        let steps = |v: &[PlannedStep]| v.iter().map(|p| p.step.clone()).collect::<Vec<_>>();
        let procedure = Procedure {
            preflight: steps(&sp.steps.preflight),
            outage: steps(&sp.steps.outage),
            recovery: steps(&sp.steps.recovery),
            reboot: sp.steps.reboot.step.clone(),
        };
        let mut step_timeouts: BTreeMap<StepKind, Duration> = BTreeMap::new();
        for p in sp
            .steps
            .preflight
            .iter()
            .chain(&sp.steps.outage)
            .chain(&sp.steps.recovery)
            .chain(std::iter::once(&sp.steps.reboot))
        {
            step_timeouts.insert(p.step.kind, p.timeout);
        }
        let job = ServerJob {
            server: server.clone(),
            procedure,
            installer: InstallerSource {
                local: installer.file.clone(),
                remote: sp.installer.path.clone(),
                sha256: sp.installer.sha256.clone(),
                min_free_bytes: sp.installer.min_free_bytes,
            },
            step_timeouts,
            default_step_timeout: plan.policy.budget,
            product,
            target_version: sp.target_version.clone(),
        };
        jobs.push(PlannedJob {
            job: Arc::new(job),
            id,
            pool,
            predicted_outage: sp.outage.predicted,
        });
    }
    Ok(RunSpec {
        jobs,
        estate,
        policy: OutagePolicy {
            budget: plan.policy.budget,
            threshold: plan.policy.threshold,
            on_budget: match plan.policy.on_budget_exhausted {
                poolpatch_plans::change::OnBudgetExhausted::Restore => WatchdogAction::Restore,
                poolpatch_plans::change::OnBudgetExhausted::Finish => WatchdogAction::Finish,
            },
            reconnect_within: default_reconnect_within(plan),
            on_stop: match plan.policy.on_stop {
                poolpatch_plans::change::OnBudgetExhausted::Restore => WatchdogAction::Restore,
                poolpatch_plans::change::OnBudgetExhausted::Finish => WatchdogAction::Finish,
            },
            reconnect_every: reconnect_every(plan),
        },
        on_failure: plan.policy.on_failure,
        preflight_parallel: 8,
        gates: super::gates::Gates::from_plan(plan),
    })
}
