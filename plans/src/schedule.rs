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
//! Cost: O((n + p) log n) for n servers and p pools, plus the pools skipped because their
//! paired pool is busy (at most one per pool in progress, for symmetric pairings).

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::time::Duration;

use crate::safety::{Estate, EstateState, PoolId, PoolStatus, Refusal, ServerId};

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
}

/// The simulated timeline.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schedule {
    /// Scheduled servers by start time, then pool priority, then inventory order.
    pub slots: Vec<Slot>,
    /// Servers that were given to the scheduler and could not be scheduled, in inventory
    /// order.
    pub unscheduled: Vec<(ServerId, Unscheduled)>,
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
/// to patch, in order; `priority` is the pool order (see [`pool_priority`]).
pub fn simulate(estate: &Estate, priority: &[PoolId], sequences: &[Vec<Job>]) -> Schedule {
    let n_pools = estate.pools().len();
    let job_of = |p: usize, i: usize| sequences.get(p).and_then(|s| s.get(i)).copied();
    let mut prio = vec![usize::MAX; n_pools];
    for (rank, p) in priority.iter().enumerate() {
        if let Some(slot) = prio.get_mut(p.index())
            && *slot == usize::MAX
        {
            *slot = rank;
        }
    }
    let mut state = EstateState::new(estate);
    let mut remaining = vec![0usize; n_pools];
    let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); n_pools];
    for (i, p) in estate.pools().iter().enumerate() {
        for a in &p.after {
            if state.pool_status(*a) != PoolStatus::OutOfScope {
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
    let mut slots = Vec::new();
    let max_pools = estate.limits().max_pools;
    let mut now = Duration::ZERO;

    loop {
        // Pools in progress go on first: they already hold their place.
        let ready: Vec<(usize, usize)> = continuing.iter().copied().collect();
        for (rank, p) in ready {
            if let Some(job) = job_of(p, next[p])
                && estate.may_start(&state, job.server, job.outage).is_ok()
            {
                continuing.remove(&(rank, p));
                start(
                    &mut state,
                    estate,
                    job,
                    p,
                    now,
                    &mut running,
                    &mut slots,
                    rank,
                );
            }
        }
        if state.pools_in_progress() < max_pools {
            let mut started = Vec::new();
            for &(rank, p) in &eligible {
                if state.pools_in_progress() >= max_pools {
                    break;
                }
                if let Some(job) = job_of(p, 0)
                    && estate.may_start(&state, job.server, job.outage).is_ok()
                {
                    started.push((rank, p));
                    start(
                        &mut state,
                        estate,
                        job,
                        p,
                        now,
                        &mut running,
                        &mut slots,
                        rank,
                    );
                }
            }
            for key in started {
                eligible.remove(&key);
            }
        }
        let Some(&Reverse((t, ..))) = running.peek() else {
            break;
        };
        now = t;
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

    // Whatever did not start: say why, in inventory order.
    let mut unscheduled = Vec::new();
    for p in 0..n_pools {
        let Some(first) = job_of(p, next[p]) else {
            continue;
        };
        let reason = if next[p] == 0 && !eligible.contains(&(prio[p], p)) {
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
                    refusal: refusal(estate, &state, first),
                },
            }
        } else {
            Unscheduled::Refused {
                blocked: first.server,
                refusal: refusal(estate, &state, first),
            }
        };
        let mut i = next[p];
        while let Some(job) = job_of(p, i) {
            unscheduled.push((job.server, reason.clone()));
            i += 1;
        }
    }
    unscheduled.sort_by_key(|(s, _)| *s);
    slots.sort_by_key(|s: &Slot| (s.start, prio[s.pool.index()], s.server));
    Schedule { slots, unscheduled }
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
