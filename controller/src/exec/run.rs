//! The run loop: carries out a plan across the estate.
//!
//! Servers start in the plan's order, each as soon as the safety rules allow it (one back
//! end down per pool, mirror partners and paired pools never down together, `after:`
//! ordering, the concurrent-pools limit). Preflight of every server runs ahead, while earlier
//! servers are patched, so it costs no outage time; a server whose preflight failed never
//! starts. A failed server halts its pool (or the whole run, per the change file); servers
//! already in flight always finish or are restored.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use poolpatch_inventory::Fqdn;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::recorder::Recorder;
use super::server::{OutagePolicy, ServerJob, ServerOutcome, ServerRun};
use crate::journal::Event;
use crate::remote::{Connector, RemoteHost};

/// What happens to other pools when a server fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Start no further server in the failed server's pool; other pools go on.
    HaltPool,
    /// Start no further server anywhere.
    HaltAll,
}

/// Who is down and which pools are busy, as the safety rules see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    /// Servers whose outage is under way.
    pub down: BTreeSet<Fqdn>,
    /// Pools with a server started and servers still to go.
    pub in_progress: BTreeSet<Fqdn>,
    /// Pools whose every server in scope is patched.
    pub done: BTreeSet<Fqdn>,
}

/// The safety rules, asked before every start. Implemented by the plan's safety module.
pub trait StartGuard: Send + Sync {
    /// `Ok` if `server` may start now, else why not.
    fn may_start(&self, server: &Fqdn, activity: &Activity) -> Result<(), String>;
}

/// What the run needs: the jobs in plan order and the change's policies.
#[derive(Clone)]
pub struct RunSpec {
    /// Servers to patch, in the plan's order.
    pub jobs: Vec<Arc<ServerJob>>,
    /// Outage budget, threshold and watchdog policy.
    pub policy: OutagePolicy,
    /// Failure policy.
    pub on_failure: OnFailure,
    /// How many servers may be in preflight at once.
    pub preflight_parallel: usize,
}

/// How a run ended, per server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Outcome of every server that started or was skipped, by FQDN.
    pub outcomes: BTreeMap<Fqdn, ServerOutcome>,
    /// Whether the run halted before its scope was done.
    pub halted: Option<String>,
}

impl RunSummary {
    /// Servers patched.
    pub fn done(&self) -> usize {
        self.outcomes
            .values()
            .filter(|o| matches!(o, ServerOutcome::Done { .. }))
            .count()
    }
    /// Servers that failed or were restored unfinished.
    pub fn failed(&self) -> usize {
        self.outcomes
            .values()
            .filter(|o| {
                matches!(
                    o,
                    ServerOutcome::Failed { .. } | ServerOutcome::BudgetExhausted { .. }
                )
            })
            .count()
    }
    /// Servers never started.
    pub fn skipped(&self) -> usize {
        self.outcomes
            .values()
            .filter(|o| matches!(o, ServerOutcome::Skipped { .. }))
            .count()
    }
}

#[derive(Debug)]
enum JobState {
    Preflight,
    Ready,
    Running,
    Finished,
}

enum TaskResult {
    Preflight(usize, Result<Option<Arc<dyn RemoteHost>>, String>),
    Outage(usize, ServerOutcome),
}

/// Carries out `spec`. `stop` turning true means: start nothing new, let servers in flight
/// finish (or be restored), then return.
pub async fn run(
    spec: RunSpec,
    guard: Arc<dyn StartGuard>,
    connector: Arc<dyn Connector>,
    recorder: Recorder,
    mut stop: watch::Receiver<bool>,
) -> RunSummary {
    let n = spec.jobs.len();
    let mut state: Vec<JobState> = (0..n).map(|_| JobState::Preflight).collect();
    let mut hosts: Vec<Option<Arc<dyn RemoteHost>>> = (0..n).map(|_| None).collect();
    let mut summary = RunSummary::default();
    let mut activity = Activity::default();
    let mut halted_pools: BTreeMap<Fqdn, String> = BTreeMap::new();
    let mut tasks: JoinSet<TaskResult> = JoinSet::new();

    // Pools' servers still to finish, to know when a pool is done or idle.
    let mut left_in_pool: BTreeMap<Fqdn, usize> = BTreeMap::new();
    for j in &spec.jobs {
        *left_in_pool.entry(j.server.pool.clone()).or_default() += 1;
    }
    let mut failed_pools: BTreeSet<Fqdn> = BTreeSet::new();
    let mut running_in_pool: BTreeMap<Fqdn, usize> = BTreeMap::new();

    let preflight_slots = Arc::new(Semaphore::new(spec.preflight_parallel.max(1)));
    for (i, job) in spec.jobs.iter().enumerate() {
        let job = job.clone();
        let recorder = recorder.clone();
        let connector = connector.clone();
        let slots = preflight_slots.clone();
        let policy = spec.policy;
        tasks.spawn(async move {
            // The semaphore is never closed, so acquire only fails if it were.
            let _permit = slots.acquire_owned().await;
            let mut r = ServerRun::new(&job, policy, &recorder, connector.as_ref(), None);
            let res = r.preflight().await.map(|_| ());
            TaskResult::Preflight(i, res.map(|()| r.into_host()))
        });
    }

    let mut stopping: Option<String> = None;
    loop {
        if stopping.is_none() && *stop.borrow() {
            stopping = Some("stopped by the operator".to_string());
        }
        // Start what may start, in plan order.
        if stopping.is_none() {
            for i in 0..n {
                if !matches!(state[i], JobState::Ready) {
                    continue;
                }
                let job = &spec.jobs[i];
                let pool = &job.server.pool;
                if halted_pools.contains_key(pool) {
                    continue;
                }
                if guard.may_start(&job.server.fqdn, &activity).is_err() {
                    continue;
                }
                state[i] = JobState::Running;
                activity.down.insert(job.server.fqdn.clone());
                activity.in_progress.insert(pool.clone());
                *running_in_pool.entry(pool.clone()).or_default() += 1;
                let job = job.clone();
                let recorder = recorder.clone();
                let connector = connector.clone();
                let host = hosts[i].take();
                let policy = spec.policy;
                tasks.spawn(async move {
                    let mut r = ServerRun::new(&job, policy, &recorder, connector.as_ref(), host);
                    TaskResult::Outage(i, r.outage().await)
                });
            }
        }

        let next = tokio::select! {
            t = tasks.join_next() => t,
            _ = stop.changed(), if stopping.is_none() => continue,
        };
        let Some(joined) = next else { break };
        let result = match joined {
            Ok(r) => r,
            Err(e) => {
                // A task panicked: that is a bug; the server's state is unknown.
                tracing::error!(error = %e, "an executor task failed");
                stopping.get_or_insert_with(|| format!("internal error: {e}"));
                continue;
            }
        };
        match result {
            TaskResult::Preflight(i, Ok(host)) => {
                hosts[i] = host;
                state[i] = JobState::Ready;
            }
            TaskResult::Preflight(i, Err(reason)) => {
                state[i] = JobState::Finished;
                let job = &spec.jobs[i];
                recorder.record(Event::ServerSkipped {
                    server: job.server.fqdn.to_string(),
                    reason: format!("preflight failed: {reason}"),
                });
                summary.outcomes.insert(
                    job.server.fqdn.clone(),
                    ServerOutcome::Skipped {
                        reason: format!("preflight failed: {reason}"),
                    },
                );
                // A pool with a server that cannot be patched is never complete.
                failed_pools.insert(job.server.pool.clone());
                if let Some(left) = left_in_pool.get_mut(&job.server.pool) {
                    *left = left.saturating_sub(1);
                }
            }
            TaskResult::Outage(i, outcome) => {
                state[i] = JobState::Finished;
                let job = &spec.jobs[i];
                let pool = job.server.pool.clone();
                if let Some(r) = running_in_pool.get_mut(&pool) {
                    *r = r.saturating_sub(1);
                }
                if let Some(left) = left_in_pool.get_mut(&pool) {
                    *left = left.saturating_sub(1);
                }
                if outcome.services_up() {
                    activity.down.remove(&job.server.fqdn);
                }
                // A server left down stays in `down`: nothing that conflicts with it may
                // start for the rest of the run.
                if !matches!(outcome, ServerOutcome::Done { .. }) {
                    failed_pools.insert(pool.clone());
                    let reason = format!("{} did not complete", job.server.fqdn);
                    halted_pools.entry(pool.clone()).or_insert_with(|| {
                        recorder.record(Event::PoolHalted {
                            pool: pool.to_string(),
                            reason: reason.clone(),
                        });
                        reason.clone()
                    });
                    if spec.on_failure == OnFailure::HaltAll && stopping.is_none() {
                        stopping = Some(format!("{reason}; the change file says halt-all"));
                    }
                }
                summary.outcomes.insert(job.server.fqdn.clone(), outcome);
            }
        }
        refresh_pools(
            &mut activity,
            &left_in_pool,
            &running_in_pool,
            &halted_pools,
            &failed_pools,
        );
    }

    // Whatever never started: say why.
    for (i, job) in spec.jobs.iter().enumerate() {
        if matches!(state[i], JobState::Finished) {
            continue;
        }
        let pool = &job.server.pool;
        let reason = if let Some(r) = &stopping {
            format!("not started: {r}")
        } else if let Some(r) = halted_pools.get(pool) {
            format!("not started: pool {pool} halted ({r})")
        } else {
            match guard.may_start(&job.server.fqdn, &activity) {
                Err(why) => format!("not started: {why}"),
                Ok(()) => "not started".to_string(),
            }
        };
        recorder.record(Event::ServerSkipped {
            server: job.server.fqdn.to_string(),
            reason: reason.clone(),
        });
        summary
            .outcomes
            .insert(job.server.fqdn.clone(), ServerOutcome::Skipped { reason });
    }
    summary.halted = stopping.or_else(|| {
        (!halted_pools.is_empty()).then(|| {
            format!(
                "halted pools: {}",
                halted_pools
                    .keys()
                    .map(Fqdn::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    });
    summary
}

/// A pool is in progress while a server of it runs, or while it has started and still has
/// servers to go and is not halted; it is done when every server of it is patched.
fn refresh_pools(
    activity: &mut Activity,
    left: &BTreeMap<Fqdn, usize>,
    running: &BTreeMap<Fqdn, usize>,
    halted: &BTreeMap<Fqdn, String>,
    failed: &BTreeSet<Fqdn>,
) {
    activity.in_progress.retain(|pool| {
        let running = running.get(pool).copied().unwrap_or(0) > 0;
        let to_go = left.get(pool).copied().unwrap_or(0) > 0 && !halted.contains_key(pool);
        running || to_go
    });
    for (pool, n) in left {
        if *n == 0 && !failed.contains(pool) {
            activity.done.insert(pool.clone());
        }
    }
}
