//! The run loop: carries out a plan across the estate.
//!
//! Servers start in the plan's order, each as soon as the safety rules allow it. The rules
//! are the plan's own ([`poolpatch_plans::safety`]): the executor asks the same [`Estate`]
//! the scheduler asked, against what it has observed (one back end down per pool, mirror
//! partners and paired pools never down together, `after:` ordering, the concurrent-pools
//! limit, the budget). Preflight of every server runs ahead, while earlier servers are
//! patched, so it costs no outage time; a server whose preflight failed never starts. A
//! failed server halts its pool (or the whole run, per the change file); servers already in
//! flight always finish or are restored.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use poolpatch_inventory::Fqdn;
use poolpatch_plans::change::OnFailure;
use poolpatch_plans::safety::{Estate, EstateState, PoolId, PoolStatus, ServerId};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::gates::{Gates, StageGate, StageState, WindowGate};
use super::recorder::Recorder;
use super::server::{InFlight, OutagePolicy, ServerJob, ServerOutcome, ServerRun};
use crate::journal::Event;
use crate::remote::{Connector, RemoteHost};

/// One server to patch, with what the rules need to know about it.
#[derive(Debug, Clone)]
pub struct PlannedJob {
    /// The job.
    pub job: Arc<ServerJob>,
    /// Its id in the safety rules' estate.
    pub id: ServerId,
    /// Its pool's id.
    pub pool: PoolId,
    /// Its predicted outage (the rules refuse a start that does not fit the budget).
    pub predicted_outage: Duration,
}

/// What the run needs: the jobs in plan order, the rules, and the change's policies.
#[derive(Clone)]
pub struct RunSpec {
    /// Servers to patch, in the plan's order.
    pub jobs: Vec<PlannedJob>,
    /// The safety rules over the inventory, with the change's scope and limits.
    pub estate: Arc<Estate>,
    /// Outage budget, threshold and watchdog policy.
    pub policy: OutagePolicy,
    /// Failure policy.
    pub on_failure: OnFailure,
    /// How many servers may be in preflight at once.
    pub preflight_parallel: usize,
    /// Maintenance windows, canary stages and the failure limit, from the plan.
    pub gates: Gates,
}

/// How a run ended, per server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Outcome of every server of the plan, by FQDN.
    pub outcomes: BTreeMap<Fqdn, ServerOutcome>,
    /// Why the run stopped before its scope was done, if it did.
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

/// What an earlier part of the run left, when a run is resumed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Earlier {
    /// Servers that ended (done, failed, restored unfinished) before the controller stopped.
    pub outcomes: BTreeMap<Fqdn, ServerOutcome>,
    /// Servers whose outage started and did not end.
    pub in_flight: BTreeMap<Fqdn, InFlight>,
    /// Pools halted before, with the reason.
    pub halted_pools: BTreeMap<Fqdn, String>,
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
    Health(usize, Result<(), String>),
}

/// Carries out `spec`. `stop` turning true means: start nothing new, let servers in flight
/// finish (or be restored), then return. While `pause` is true, nothing new starts either,
/// but the run waits to be resumed.
///
/// `earlier` is empty for a new run; for a resumed run, its finished servers are not run
/// again, its servers in flight are resumed at once (asking each host where it is), and its
/// halted pools stay halted.
pub async fn run(
    spec: RunSpec,
    connector: Arc<dyn Connector>,
    recorder: Recorder,
    mut stop: watch::Receiver<bool>,
    mut pause: watch::Receiver<bool>,
    earlier: Earlier,
) -> RunSummary {
    let n = spec.jobs.len();
    let mut state: Vec<JobState> = (0..n).map(|_| JobState::Preflight).collect();
    let mut hosts: Vec<Option<Arc<dyn RemoteHost>>> = (0..n).map(|_| None).collect();
    let mut summary = RunSummary::default();
    let estate = spec.estate.clone();
    let mut rules = EstateState::new(&estate);
    let mut halted_pools: BTreeMap<PoolId, String> = BTreeMap::new();
    let mut tasks: JoinSet<TaskResult> = JoinSet::new();

    let preflight_slots = Arc::new(Semaphore::new(spec.preflight_parallel.max(1)));
    let mut preflights = Vec::with_capacity(n);
    for (pool, reason) in &earlier.halted_pools {
        if let Some(p) = estate.pool_id(pool) {
            halted_pools.insert(p, reason.clone());
            rules.halt_pool(p);
        }
    }
    for (i, planned) in spec.jobs.iter().enumerate() {
        let fqdn = &planned.job.server.fqdn;
        if let Some(outcome) = earlier.outcomes.get(fqdn) {
            // Ended before: tell the rules what it left (a server left down stays down).
            state[i] = JobState::Finished;
            if !matches!(outcome, ServerOutcome::Skipped { .. }) {
                rules.begin(&estate, planned.id);
                if outcome.services_up() {
                    rules.end(
                        &estate,
                        planned.id,
                        matches!(outcome, ServerOutcome::Done { .. }),
                    );
                }
            }
            summary.outcomes.insert(fqdn.clone(), outcome.clone());
            continue;
        }
        if let Some(in_flight) = earlier.in_flight.get(fqdn).cloned() {
            state[i] = JobState::Running;
            rules.begin(&estate, planned.id);
            let job = planned.job.clone();
            let recorder = recorder.clone();
            let connector = connector.clone();
            let policy = spec.policy;
            let stop_rx = stop.clone();
            tasks.spawn(async move {
                let mut r = ServerRun::new(&job, policy, &recorder, connector.as_ref(), None);
                if policy.on_stop == crate::journal::WatchdogAction::Restore {
                    r = r.restoring_on(stop_rx);
                }
                TaskResult::Outage(i, r.resume_outage(&in_flight).await)
            });
            continue;
        }
        let job = planned.job.clone();
        let recorder = recorder.clone();
        let connector = connector.clone();
        let slots = preflight_slots.clone();
        let policy = spec.policy;
        preflights.push(tasks.spawn(async move {
            // The semaphore is never closed, so acquire only fails if it were.
            let _permit = slots.acquire_owned().await;
            let mut r = ServerRun::new(&job, policy, &recorder, connector.as_ref(), None);
            let res = r.preflight().await.map(|_| ());
            TaskResult::Preflight(i, res.map(|()| r.into_host()))
        }));
    }

    // A resumed run may start with pools whose servers all ended: release them.
    release_idle_pools(&spec, &state, &mut rules);
    let mut stopping: Option<String> = None;
    // Once every sender is gone, nobody can ask to stop: `changed` would be ready forever.
    let mut stop_open = true;
    let mut pause_open = true;
    let clock = recorder.clock();
    let mut gates = spec.gates.clone();
    let mut waiting_for_window = std::collections::BTreeSet::new();
    let mut health_running = std::collections::BTreeSet::new();
    let mut failed_servers = 0usize;
    loop {
        // When the next window opens or a health check is due: the loop wakes up then.
        let mut wakeup: Option<tokio::time::Instant> = None;
        let paused = *pause.borrow();
        if stopping.is_none() {
            start_health_checks(
                &spec,
                &mut gates,
                &mut health_running,
                &mut tasks,
                &recorder,
                &connector,
                &mut wakeup,
            );
        }
        if stopping.is_none() && *stop.borrow() {
            stopping = Some("stopped by the operator".to_string());
        }
        if stopping.is_some() {
            // Preflights touch no service: stop them rather than wait for uploads.
            for p in preflights.drain(..) {
                p.abort();
            }
        }
        // Start what may start, strictly in plan order: a server waits until every server
        // before it in the plan has started or will not start, so the run follows the
        // order the change board approved; only the timing moves.
        if stopping.is_none() && !paused {
            for i in 0..n {
                match state[i] {
                    JobState::Finished | JobState::Running => continue,
                    JobState::Preflight => break,
                    JobState::Ready => {}
                }
                let planned = &spec.jobs[i];
                if let Some(why) = halted_pools.get(&planned.pool) {
                    let reason = format!("not started: its pool halted ({why})");
                    skip(&recorder, &mut summary, &mut state[i], planned, reason).await;
                    continue;
                }
                let fqdn = &planned.job.server.fqdn;
                match gates.stage(gates.stage_of(fqdn)) {
                    StageGate::Open => {}
                    StageGate::Wait => break,
                    StageGate::Never(why) => {
                        skip(
                            &recorder,
                            &mut summary,
                            &mut state[i],
                            planned,
                            format!("not started: {why}"),
                        )
                        .await;
                        continue;
                    }
                }
                match gates.window(fqdn, planned.predicted_outage, clock.now()) {
                    WindowGate::Open => {}
                    WindowGate::WaitUntil { calendar, opens_at } => {
                        if waiting_for_window.insert((i, opens_at)) {
                            let _ = recorder
                                .record(Event::WaitingForWindow {
                                    server: fqdn.to_string(),
                                    calendar,
                                    until: opens_at,
                                })
                                .await;
                        }
                        let at = clock.instant_at(opens_at);
                        wakeup = Some(wakeup.map_or(at, |w| w.min(at)));
                        break;
                    }
                    WindowGate::Never { reason } => {
                        skip(
                            &recorder,
                            &mut summary,
                            &mut state[i],
                            planned,
                            format!("not started: {reason}"),
                        )
                        .await;
                        continue;
                    }
                }
                if estate
                    .may_start(&rules, planned.id, planned.predicted_outage)
                    .is_err()
                {
                    break;
                }
                state[i] = JobState::Running;
                rules.begin(&estate, planned.id);
                let job = planned.job.clone();
                let recorder = recorder.clone();
                let connector = connector.clone();
                let host = hosts[i].take();
                let policy = spec.policy;
                let stop_rx = stop.clone();
                tasks.spawn(async move {
                    let mut r = ServerRun::new(&job, policy, &recorder, connector.as_ref(), host);
                    if policy.on_stop == crate::journal::WatchdogAction::Restore {
                        r = r.restoring_on(stop_rx);
                    }
                    TaskResult::Outage(i, r.outage().await)
                });
            }
            // Nothing runs and nothing is in preflight: the next server in plan order can
            // never start (the rules refuse it for good, e.g. a server it conflicts with
            // was left down). Skip it, with the rule's reason, and go on.
            if tasks.is_empty()
                && wakeup.is_none()
                && let Some(i) = state.iter().position(|s| matches!(s, JobState::Ready))
            {
                let planned = &spec.jobs[i];
                let reason = match estate.may_start(&rules, planned.id, planned.predicted_outage) {
                    Err(why) => format!("not started: {why}"),
                    Ok(()) => "not started".to_string(),
                };
                skip(&recorder, &mut summary, &mut state[i], planned, reason).await;
                release_idle_pools(&spec, &state, &mut rules);
                continue;
            }
        }

        if tasks.is_empty() && paused && stopping.is_none() && pause_open {
            // Paused with nothing running: wait to be resumed (or stopped).
            tokio::select! {
                changed = pause.changed() => pause_open = changed.is_ok(),
                changed = stop.changed(), if stop_open => stop_open = changed.is_ok(),
            }
            continue;
        }
        if tasks.is_empty() {
            // Nothing runs: wait for the next window or health check, unless stopping.
            let Some(at) = wakeup.filter(|_| stopping.is_none()) else {
                break;
            };
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                changed = stop.changed(), if stop_open => stop_open = changed.is_ok(),
            }
            continue;
        }
        let far = tokio::time::Instant::now() + std::time::Duration::from_secs(86_400);
        let next = tokio::select! {
            t = tasks.join_next() => t,
            _ = tokio::time::sleep_until(wakeup.unwrap_or(far)), if wakeup.is_some() => continue,
            changed = stop.changed(), if stopping.is_none() && stop_open => {
                stop_open = changed.is_ok();
                continue;
            }
            changed = pause.changed(), if pause_open => {
                pause_open = changed.is_ok();
                continue;
            }
        };
        let Some(joined) = next else { break };
        let result = match joined {
            Ok(r) => r,
            Err(e) if e.is_cancelled() => continue,
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
                let job = &spec.jobs[i].job;
                let _ = recorder
                    .record(Event::ServerSkipped {
                        server: job.server.fqdn.to_string(),
                        reason: format!("preflight failed: {reason}"),
                    })
                    .await;
                summary.outcomes.insert(
                    job.server.fqdn.clone(),
                    ServerOutcome::Skipped {
                        reason: format!("preflight failed: {reason}"),
                    },
                );
            }
            TaskResult::Outage(i, outcome) => {
                state[i] = JobState::Finished;
                let planned = &spec.jobs[i];
                let job = &planned.job;
                // A server left down stays down for the rules: nothing that conflicts with
                // it may start for the rest of the run.
                if outcome.services_up() {
                    let patched = matches!(outcome, ServerOutcome::Done { .. });
                    rules.end(&estate, planned.id, patched);
                }
                if !matches!(outcome, ServerOutcome::Done { .. }) {
                    let pool = job.server.pool.to_string();
                    let reason = format!("{} did not complete", job.server.fqdn);
                    if let std::collections::btree_map::Entry::Vacant(e) =
                        halted_pools.entry(planned.pool)
                    {
                        e.insert(reason.clone());
                        let _ = recorder
                            .record(Event::PoolHalted {
                                pool,
                                reason: reason.clone(),
                            })
                            .await;
                    }
                    rules.halt_pool(planned.pool);
                    if spec.on_failure == OnFailure::HaltAll && stopping.is_none() {
                        stopping = Some(format!("{reason}; the change file says halt-all"));
                    }
                }
                if !matches!(outcome, ServerOutcome::Done { .. }) {
                    failed_servers += 1;
                    if let Some(limit) = gates.failure_limit
                        && failed_servers >= limit
                        && stopping.is_none()
                    {
                        stopping = Some(format!(
                            "the failure limit is reached: {failed_servers} server(s) failed (limit {limit})"
                        ));
                    }
                }
                summary.outcomes.insert(job.server.fqdn.clone(), outcome);
            }
            TaskResult::Health(k, result) => {
                health_running.remove(&k);
                let now = clock.now();
                let stage = &mut gates.stages[k];
                match result {
                    Ok(()) => {
                        let _ = recorder
                            .record(Event::HealthChecked {
                                stage: stage.name.clone(),
                                ok: true,
                                detail: String::new(),
                            })
                            .await;
                        if let StageState::Baking { until, next_check } = &mut stage.state {
                            if now >= *until {
                                stage.state = StageState::Passed;
                                let _ = recorder
                                    .record(Event::StagePassed {
                                        stage: stage.name.clone(),
                                    })
                                    .await;
                            } else {
                                let step = stage.bake / 4;
                                let next = now
                                    .checked_add(
                                        jiff::SignedDuration::try_from(step).unwrap_or_default(),
                                    )
                                    .unwrap_or(*until);
                                *next_check = next.min(*until);
                            }
                        }
                    }
                    Err(detail) => {
                        let _ = recorder
                            .record(Event::HealthChecked {
                                stage: stage.name.clone(),
                                ok: false,
                                detail: detail.clone(),
                            })
                            .await;
                        let reason = format!("health failed during the bake: {detail}");
                        let _ = recorder
                            .record(Event::StageFailed {
                                stage: stage.name.clone(),
                                reason: reason.clone(),
                            })
                            .await;
                        stopping.get_or_insert(format!("stage {} failed: {reason}", stage.name));
                        stage.state = StageState::Failed(reason);
                    }
                }
            }
        }
        advance_stages(
            &spec,
            &state,
            &summary,
            &mut gates,
            &recorder,
            clock.now(),
            &mut stopping,
        )
        .await;
        release_idle_pools(&spec, &state, &mut rules);
    }
    // Whatever never started: say why.
    for (i, planned) in spec.jobs.iter().enumerate() {
        if matches!(state[i], JobState::Finished) {
            continue;
        }
        let reason = if let Some(r) = &stopping {
            format!("not started: {r}")
        } else if let Some(r) = halted_pools.get(&planned.pool) {
            format!("not started: its pool halted ({r})")
        } else {
            match estate.may_start(&rules, planned.id, planned.predicted_outage) {
                Err(why) => format!("not started: {why}"),
                Ok(()) => "not started".to_string(),
            }
        };
        skip(&recorder, &mut summary, &mut state[i], planned, reason).await;
    }
    summary.halted = stopping.or_else(|| {
        (!halted_pools.is_empty()).then(|| {
            format!(
                "halted pools: {}",
                halted_pools
                    .keys()
                    .filter_map(|p| estate.pool(*p).map(|n| n.fqdn.to_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    });
    summary
}

/// A pool in progress whose servers are all finished, or will never start (their preflight
/// failed), is halted for the rules: it holds no slot and blocks no paired pool, and pools
/// that must come after it never start.
/// A stage whose servers have all ended either starts its bake (all done) or fails.
async fn advance_stages(
    spec: &RunSpec,
    state: &[JobState],
    summary: &RunSummary,
    gates: &mut Gates,
    recorder: &Recorder,
    now: jiff::Timestamp,
    stopping: &mut Option<String>,
) {
    let index: BTreeMap<&Fqdn, usize> = spec
        .jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (&j.job.server.fqdn, i))
        .collect();
    for stage in &mut gates.stages {
        if stage.state != StageState::Running {
            continue;
        }
        let ended = stage.servers.iter().all(|s| {
            index
                .get(s)
                .is_none_or(|i| matches!(state[*i], JobState::Finished))
        });
        if !ended {
            continue;
        }
        let failed: Vec<String> = stage
            .servers
            .iter()
            .filter(|s| !matches!(summary.outcomes.get(*s), Some(ServerOutcome::Done { .. })))
            .map(|s| s.to_string())
            .collect();
        if failed.is_empty() {
            let until = now
                .checked_add(jiff::SignedDuration::try_from(stage.bake).unwrap_or_default())
                .unwrap_or(now);
            stage.state = StageState::Baking {
                until,
                next_check: now,
            };
            let _ = recorder
                .record(Event::StageBaking {
                    stage: stage.name.clone(),
                    until,
                })
                .await;
        } else {
            let reason = format!("not every server succeeded: {}", failed.join(", "));
            let _ = recorder
                .record(Event::StageFailed {
                    stage: stage.name.clone(),
                    reason: reason.clone(),
                })
                .await;
            stopping.get_or_insert(format!("stage {} failed: {reason}", stage.name));
            stage.state = StageState::Failed(reason);
        }
    }
}

/// Starts the due health checks of baking stages; sets `wakeup` to the next one due.
fn start_health_checks(
    spec: &RunSpec,
    gates: &mut Gates,
    running: &mut std::collections::BTreeSet<usize>,
    tasks: &mut JoinSet<TaskResult>,
    recorder: &Recorder,
    connector: &Arc<dyn Connector>,
    wakeup: &mut Option<tokio::time::Instant>,
) {
    let clock = recorder.clock();
    let now = clock.now();
    for (k, stage) in gates.stages.iter().enumerate() {
        let StageState::Baking { next_check, .. } = stage.state else {
            continue;
        };
        if running.contains(&k) {
            continue;
        }
        if next_check > now {
            let at = clock.instant_at(next_check);
            *wakeup = Some(wakeup.map_or(at, |w| w.min(at)));
            continue;
        }
        running.insert(k);
        let jobs: Vec<Arc<ServerJob>> = spec
            .jobs
            .iter()
            .filter(|j| stage.servers.contains(&j.job.server.fqdn))
            .map(|j| j.job.clone())
            .collect();
        let (recorder, connector, policy) = (recorder.clone(), connector.clone(), spec.policy);
        let name = stage.name.clone();
        let command = stage.health.clone();
        tasks.spawn(async move {
            let mut result = Ok(());
            for job in &jobs {
                let mut r = ServerRun::new(job, policy, &recorder, connector.as_ref(), None);
                if let Err(e) = r.health_check().await {
                    result = Err(e);
                    break;
                }
            }
            if result.is_ok()
                && let Some((command, timeout)) = &command
            {
                let servers: Vec<String> = jobs.iter().map(|j| j.server.fqdn.to_string()).collect();
                result = super::gates::run_health_command(command, *timeout, &name, &servers).await;
            }
            TaskResult::Health(k, result)
        });
    }
}

async fn skip(
    recorder: &Recorder,
    summary: &mut RunSummary,
    state: &mut JobState,
    planned: &PlannedJob,
    reason: String,
) {
    *state = JobState::Finished;
    let _ = recorder
        .record(Event::ServerSkipped {
            server: planned.job.server.fqdn.to_string(),
            reason: reason.clone(),
        })
        .await;
    summary.outcomes.insert(
        planned.job.server.fqdn.clone(),
        ServerOutcome::Skipped { reason },
    );
}

fn release_idle_pools(spec: &RunSpec, state: &[JobState], rules: &mut EstateState) {
    let mut busy: BTreeMap<PoolId, bool> = BTreeMap::new();
    for (planned, st) in spec.jobs.iter().zip(state) {
        let waiting = !matches!(st, JobState::Finished);
        *busy.entry(planned.pool).or_default() |= waiting;
    }
    for (pool, busy) in busy {
        if !busy && rules.pool_status(pool) == PoolStatus::InProgress {
            rules.halt_pool(pool);
        }
    }
}
