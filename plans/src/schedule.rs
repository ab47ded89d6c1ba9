//! The schedule: a deterministic simulated timeline of the change.
//!
//! A list scheduler walks simulated time from 0. Whenever a server ends, it first lets pools
//! in progress go on with their next server, then starts new pools in priority order (a
//! topological order of `after:`, ties in inventory file order) while the concurrency limit
//! allows. Every start is asked of the [`safety`](crate::safety) rules, the same ones the
//! executor asks, so the timeline honours them by construction:
//! one server at a time per pool, mirror partners never down together, paired pools never in
//! progress together, `after:` pools done first, at most N pools at once.
//!
//! With a [`Timing`] ([`simulate_with`]), two more things bound the timeline:
//! - **maintenance windows**: a server starts only when its whole slot (preflight and
//!   predicted outage) fits in one opening of its calendar ([`Openings`]); otherwise it waits
//!   for the next opening that holds it (a pool waiting for its window does not hold back
//!   other pools; a pool in progress keeps its place). A server that no opening left can hold
//!   is not scheduled ([`Unscheduled::NoWindow`]);
//! - **stages**: the servers of stage *k* + 1 are simulated only once every server of stage
//!   *k* is done and its bake has passed; a stage that does not complete holds back every
//!   later one ([`Unscheduled::WaitsForStage`]).
//!
//! Cost: O((n + p) log n) for n servers and p pools, plus the pools skipped because their
//! paired pool is busy (at most one per pool in progress, for symmetric pairings); with
//! windows, one more round per opening a waiting server wakes up at (openings are bounded by
//! the planning horizon, so the simulation always ends).

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::time::Duration;

use crate::safety::{Estate, EstateState, PoolId, PoolStatus, Refusal, ServerId};
use crate::windows::Openings;

/// One server to schedule: how long its preflight and its outage are expected to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Job {
    /// The server.
    pub server: ServerId,
    /// Preflight checks, before the outage.
    pub preflight: Duration,
    /// The outage, from stopping services to services verified running.
    pub outage: Duration,
}

/// A scheduled server: offsets from the start of the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The server.
    pub server: ServerId,
    /// Its pool.
    pub pool: PoolId,
    /// Its procedure starts (preflight).
    pub start: Duration,
    /// Its services are stopped: the outage starts.
    pub outage_start: Duration,
    /// Its services are verified running: the outage and the procedure end.
    pub end: Duration,
}

/// Why a server given to the scheduler was not scheduled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unscheduled {
    /// Its pool never started: a pool it must come after is not done by the end.
    WaitsForPool {
        /// The first such pool, in priority order.
        after: PoolId,
    },
    /// It (or the server of its pool that was next) was refused when nothing else could
    /// run any more.
    Refused {
        /// The server that was refused: this one, or the one before it in its pool.
        blocked: ServerId,
        /// The reason.
        refusal: Refusal,
    },
    /// No opening of its windows left (from `from` on) holds its slot: the slot of `blocked`
    /// (this server, or the one before it in its pool) fits no window within the openings.
    NoWindow {
        /// The server whose slot fits no window: this one, or the one before it in its pool.
        blocked: ServerId,
        /// When it could have started, but no opening from then on was long enough.
        from: Duration,
    },
    /// Its stage never starts: the earlier stage `stage` (an index into
    /// [`Timing::stages`]) does not complete.
    WaitsForStage {
        /// The first stage that does not complete.
        stage: usize,
    },
}

/// What bounds the timeline besides the safety rules: maintenance windows and stages. The
/// default bounds nothing (any time, one stage).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timing {
    /// The distinct calendars, as openings from the start of the plan.
    pub calendars: Vec<Openings>,
    /// The calendar of each server by [`ServerId::index`]: `None` (or no entry) means any
    /// time.
    pub calendar_of: Vec<Option<usize>>,
    /// The stage of each server by [`ServerId::index`] (no entry: stage 0).
    pub stage_of: Vec<usize>,
    /// The stages in order; empty: one stage.
    pub stages: Vec<StageSpec>,
}

/// One stage as the scheduler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageSpec {
    /// How long after its last server ends the next stage may start.
    pub bake: Duration,
    /// How many servers it has in scope, including any not given to the scheduler: it is
    /// complete only when that many are scheduled.
    pub servers: usize,
}

/// A stage on the simulated timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageSpan {
    /// When it may start (the previous stage's end); `None` when an earlier stage does not
    /// complete.
    pub opens: Option<Duration>,
    /// When its first server starts.
    pub start: Option<Duration>,
    /// When its last server ends.
    pub servers_end: Option<Duration>,
    /// When its bake ends and the next stage may start; `None` when it does not complete.
    pub end: Option<Duration>,
}

impl Timing {
    fn openings(&self, s: ServerId) -> Option<&Openings> {
        let c = (*self.calendar_of.get(s.index())?)?;
        self.calendars.get(c)
    }

    fn stage(&self, s: ServerId) -> usize {
        let last = self.stages.len().saturating_sub(1);
        self.stage_of.get(s.index()).copied().unwrap_or(0).min(last)
    }
}

/// Whether a server's slot fits its windows at a moment.
enum Fit {
    /// It may start now.
    Now,
    /// Not now; the first opening that holds it starts then.
    At(Duration),
    /// No opening left holds it.
    Never,
}

/// The simulated timeline.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schedule {
    /// Scheduled servers by start time, then pool priority, then inventory order.
    pub slots: Vec<Slot>,
    /// Servers that were given to the scheduler and could not be scheduled, in inventory
    /// order.
    pub unscheduled: Vec<(ServerId, Unscheduled)>,
    /// The stages of [`Timing::stages`], in order (empty without stages).
    pub stages: Vec<StageSpan>,
}

/// The pools in priority order: a topological order of `after:`, ties broken by inventory
/// file order (the lexicographically smallest such order; the same as
/// `poolpatch_inventory::pool_order`). Pools on a cycle, or waiting for one, come last in
/// file order.
pub fn pool_priority(estate: &Estate) -> Vec<PoolId> {
    let pools = estate.pools();
    let mut waiting = vec![0usize; pools.len()];
    let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); pools.len()];
    for (i, p) in pools.iter().enumerate() {
        for a in &p.after {
            waiting[i] += 1;
            dependants[a.index()].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..pools.len())
        .filter(|&i| waiting[i] == 0)
        .map(Reverse)
        .collect();
    let mut placed = vec![false; pools.len()];
    let mut order = Vec::with_capacity(pools.len());
    while let Some(Reverse(i)) = ready.pop() {
        placed[i] = true;
        order.push(i);
        for &d in &dependants[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push(Reverse(d));
            }
        }
    }
    order.extend((0..pools.len()).filter(|&i| !placed[i]));
    order
        .into_iter()
        .filter_map(|i| estate.pool_at(i))
        .collect()
}

/// The order of `servers` (of one pool, in file order): file order, except that a
/// principal comes after its mirror-side partner when both are in the list.
pub fn server_order(estate: &Estate, servers: &[ServerId]) -> Vec<ServerId> {
    let listed: BTreeSet<ServerId> = servers.iter().copied().collect();
    let mut emitted = BTreeSet::new();
    let mut out = Vec::with_capacity(servers.len());
    let mut deferred: Vec<ServerId> = Vec::new();
    let waits = |s: ServerId, emitted: &BTreeSet<ServerId>| {
        estate.server(s).is_some_and(|n| {
            n.mirror_first
                .iter()
                .any(|m| listed.contains(m) && !emitted.contains(m))
        })
    };
    for &s in servers {
        if waits(s, &emitted) {
            deferred.push(s);
            continue;
        }
        out.push(s);
        emitted.insert(s);
        // Principals waiting for this one (or for each other's partners) may follow now.
        let mut i = 0;
        while i < deferred.len() {
            if waits(deferred[i], &emitted) {
                i += 1;
            } else {
                let d = deferred.remove(i);
                out.push(d);
                emitted.insert(d);
                i = 0;
            }
        }
    }
    out.extend(deferred);
    out
}

/// Simulates the change: `sequences[p]` are the servers of pool `p` (by [`PoolId::index`])
/// to patch, in order; `priority` is the pool order (see [`pool_priority`]). Any time, one
/// stage: [`simulate_with`] a default [`Timing`].
pub fn simulate(estate: &Estate, priority: &[PoolId], sequences: &[Vec<Job>]) -> Schedule {
    simulate_with(estate, priority, sequences, &Timing::default())
}

/// [`simulate`] within maintenance windows and stages.
pub fn simulate_with(
    estate: &Estate,
    priority: &[PoolId],
    sequences: &[Vec<Job>],
    timing: &Timing,
) -> Schedule {
    let n_pools = estate.pools().len();
    let mut prio = vec![usize::MAX; n_pools];
    for (rank, p) in priority.iter().enumerate() {
        if let Some(slot) = prio.get_mut(p.index())
            && *slot == usize::MAX
        {
            *slot = rank;
        }
    }
    let mut state = EstateState::new(estate);
    let mut slots = Vec::new();
    let mut unscheduled = Vec::new();
    let mut spans = Vec::new();
    let mut release = Duration::ZERO;
    let mut blocked_by: Option<usize> = None;
    for k in 0..timing.stages.len().max(1) {
        let stage: Vec<Vec<Job>> = sequences
            .iter()
            .map(|seq| {
                seq.iter()
                    .filter(|j| timing.stage(j.server) == k)
                    .copied()
                    .collect()
            })
            .collect();
        if let Some(blocker) = blocked_by {
            unscheduled.extend(
                stage
                    .iter()
                    .flatten()
                    .map(|j| (j.server, Unscheduled::WaitsForStage { stage: blocker })),
            );
            spans.push(StageSpan {
                opens: None,
                start: None,
                servers_end: None,
                end: None,
            });
            continue;
        }
        let run = run_stage(estate, &mut state, release, &prio, &stage, timing);
        let expected = timing.stages.get(k).map_or(run.slots.len(), |s| s.servers);
        let complete = run.unscheduled.is_empty() && run.slots.len() >= expected;
        let start = run.slots.iter().map(|s| s.start).min();
        let servers_end = run.slots.iter().map(|s| s.end).max();
        let bake = timing.stages.get(k).map_or(Duration::ZERO, |s| s.bake);
        let end = complete.then(|| servers_end.unwrap_or(release) + bake);
        spans.push(StageSpan {
            opens: Some(release),
            start,
            servers_end,
            end,
        });
        slots.extend(run.slots);
        unscheduled.extend(run.unscheduled);
        match end {
            Some(end) => release = end,
            None => blocked_by = Some(k),
        }
    }
    unscheduled.sort_by_key(|(s, _)| *s);
    slots.sort_by_key(|s: &Slot| (s.start, prio[s.pool.index()], s.server));
    if timing.stages.is_empty() {
        spans.clear();
    }
    Schedule {
        slots,
        unscheduled,
        stages: spans,
    }
}

/// What one stage's simulation scheduled and what it could not.
struct StageRun {
    slots: Vec<Slot>,
    unscheduled: Vec<(ServerId, Unscheduled)>,
}

/// The list scheduler over the servers of one stage, from `t0`, with `state` carried over
/// from the stages before.
fn run_stage(
    estate: &Estate,
    state: &mut EstateState,
    t0: Duration,
    prio: &[usize],
    sequences: &[Vec<Job>],
    timing: &Timing,
) -> StageRun {
    let n_pools = estate.pools().len();
    let job_of = |p: usize, i: usize| sequences.get(p).and_then(|s| s.get(i)).copied();
    let mut remaining = vec![0usize; n_pools];
    let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); n_pools];
    for (i, p) in estate.pools().iter().enumerate() {
        for a in &p.after {
            if !matches!(
                state.pool_status(*a),
                PoolStatus::OutOfScope | PoolStatus::Done
            ) {
                remaining[i] += 1;
                dependants[a.index()].push(i);
            }
        }
    }
    let has_jobs = |p: usize| job_of(p, 0).is_some();
    let pool_id = |p: usize| estate.pool_at(p);
    let mut eligible: BTreeSet<(usize, usize)> = (0..n_pools)
        .filter(|&p| remaining[p] == 0 && has_jobs(p) && prio[p] != usize::MAX)
        .map(|p| (prio[p], p))
        .collect();
    let mut continuing: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut next = vec![0usize; n_pools];
    let mut running: BinaryHeap<Reverse<(Duration, usize, usize, usize)>> = BinaryHeap::new();
    // When servers waiting for their window may start: each instant once.
    let mut wakeups: BTreeSet<Duration> = BTreeSet::new();
    let mut stuck: Vec<Option<Unscheduled>> = vec![None; n_pools];
    let mut slots = Vec::new();
    let max_pools = estate.limits().max_pools;
    let mut now = t0;
    let fit = |job: &Job, now: Duration| match timing.openings(job.server) {
        None => Fit::Now,
        Some(o) => match o.earliest_fit(now, job.preflight + job.outage) {
            Some(t) if t <= now => Fit::Now,
            Some(t) => Fit::At(t),
            None => Fit::Never,
        },
    };

    loop {
        // Pools in progress go on first: they already hold their place.
        let ready: Vec<(usize, usize)> = continuing.iter().copied().collect();
        for (rank, p) in ready {
            let Some(job) = job_of(p, next[p]) else {
                continue;
            };
            if estate.may_start(state, job.server, job.outage).is_err() {
                continue;
            }
            match fit(&job, now) {
                Fit::Now => {
                    continuing.remove(&(rank, p));
                    start(state, estate, job, p, now, &mut running, &mut slots, rank);
                }
                Fit::At(t) => {
                    wakeups.insert(t);
                }
                Fit::Never => {
                    continuing.remove(&(rank, p));
                    stuck[p] = Some(Unscheduled::NoWindow {
                        blocked: job.server,
                        from: now,
                    });
                    if let Some(pool) = pool_id(p) {
                        state.halt_pool(pool);
                    }
                }
            }
        }
        if state.pools_in_progress() < max_pools {
            let mut done_with = Vec::new();
            for &(rank, p) in &eligible {
                if state.pools_in_progress() >= max_pools {
                    break;
                }
                let Some(job) = job_of(p, 0) else {
                    continue;
                };
                if estate.may_start(state, job.server, job.outage).is_err() {
                    continue;
                }
                match fit(&job, now) {
                    Fit::Now => {
                        done_with.push((rank, p));
                        start(state, estate, job, p, now, &mut running, &mut slots, rank);
                    }
                    Fit::At(t) => {
                        wakeups.insert(t);
                    }
                    Fit::Never => {
                        done_with.push((rank, p));
                        stuck[p] = Some(Unscheduled::NoWindow {
                            blocked: job.server,
                            from: now,
                        });
                    }
                }
            }
            for key in done_with {
                eligible.remove(&key);
            }
        }
        let next_end = running.peek().map(|Reverse((t, ..))| *t);
        let next_wakeup = wakeups.first().copied();
        let Some(t) = next_end.into_iter().chain(next_wakeup).min() else {
            break;
        };
        now = t;
        while wakeups.first().is_some_and(|w| *w <= now) {
            wakeups.pop_first();
        }
        while let Some(&Reverse((t, rank, s, p))) = running.peek() {
            if t != now {
                break;
            }
            running.pop();
            let (Some(server), Some(pool)) = (estate.server_at(s), pool_id(p)) else {
                continue;
            };
            state.end(estate, server, true);
            next[p] += 1;
            if job_of(p, next[p]).is_some() {
                continuing.insert((rank, p));
                continue;
            }
            if state.pool_status(pool) != PoolStatus::Done {
                state.halt_pool(pool);
                continue;
            }
            for &d in &dependants[p] {
                remaining[d] -= 1;
                if remaining[d] == 0 && has_jobs(d) && prio[d] != usize::MAX {
                    eligible.insert((prio[d], d));
                }
            }
        }
    }

    // Whatever did not start: say why.
    let mut unscheduled = Vec::new();
    for p in 0..n_pools {
        let Some(first) = job_of(p, next[p]) else {
            continue;
        };
        let reason = if let Some(why) = stuck[p].clone() {
            why
        } else if next[p] == 0 && !eligible.contains(&(prio[p], p)) {
            let pool = &estate.pools()[p];
            let after = pool
                .after
                .iter()
                .copied()
                .filter(|a| {
                    !matches!(
                        state.pool_status(*a),
                        PoolStatus::Done | PoolStatus::OutOfScope
                    )
                })
                .min_by_key(|a| prio[a.index()]);
            match after {
                Some(after) => Unscheduled::WaitsForPool { after },
                None => Unscheduled::Refused {
                    blocked: first.server,
                    refusal: refusal(estate, state, first),
                },
            }
        } else {
            Unscheduled::Refused {
                blocked: first.server,
                refusal: refusal(estate, state, first),
            }
        };
        let mut i = next[p];
        while let Some(job) = job_of(p, i) {
            unscheduled.push((job.server, reason.clone()));
            i += 1;
        }
    }
    StageRun { slots, unscheduled }
}

fn refusal(estate: &Estate, state: &EstateState, job: Job) -> Refusal {
    match estate.may_start(state, job.server, job.outage) {
        Err(r) => r,
        // Unreachable in practice: it would have started. Say so rather than guess.
        Ok(()) => Refusal::ConcurrencyLimit {
            limit: estate.limits().max_pools,
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn start(
    state: &mut EstateState,
    estate: &Estate,
    job: Job,
    p: usize,
    now: Duration,
    running: &mut BinaryHeap<Reverse<(Duration, usize, usize, usize)>>,
    slots: &mut Vec<Slot>,
    rank: usize,
) {
    let Some(pool) = estate.pool_at(p) else {
        return;
    };
    state.begin(estate, job.server);
    let outage_start = now + job.preflight;
    let end = outage_start + job.outage;
    running.push(Reverse((end, rank, job.server.index(), p)));
    slots.push(Slot {
        server: job.server,
        pool,
        start: now,
        outage_start,
        end,
    });
}

#[cfg(test)]
mod tests;
