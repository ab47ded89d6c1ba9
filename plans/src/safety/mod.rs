//! The safety rules, in one place: may a server start its update now?
//!
//! The scheduler asks these rules while it simulates the timeline of a plan, and the executor
//! asks them again before it starts each server for real, against what it has observed. A
//! server may start only if none of these holds ([`Refusal`] names each):
//!
//! - the outage budget is not below the resiliency threshold;
//! - the server's predicted outage is not below the budget;
//! - a pool its pool must come `after:` is not done;
//! - it holds a mirroring principal and its mirror side is not updated yet (SQL Server's
//!   rolling order: update the mirror, fail over, update the former principal);
//! - its mirror partner is down;
//! - another back end of its pool is down (one back end at a time per pool);
//! - its pool's paired (backup) pool is in progress or has a server down;
//! - starting its pool would exceed the number of pools patched at once.
//!
//! A server is "down" from the start of its procedure until its services are verified
//! running again (or restored); a pool is "in progress" from its first server's start until
//! every server of it in scope is done, or until it is halted.

use std::collections::BTreeMap;
use std::time::Duration;

use poolpatch_inventory::{Fqdn, Inventory, MirrorRole, Pool, Role, Server};
use serde::Serialize;

/// A server of an [`Estate`], by position in inventory order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerId(usize);

/// A pool of an [`Estate`], by position in inventory order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PoolId(usize);

impl ServerId {
    /// The position in inventory order (pool by pool, servers in file order).
    pub fn index(self) -> usize {
        self.0
    }
}

impl PoolId {
    /// The position in inventory order.
    pub fn index(self) -> usize {
        self.0
    }
}

/// The limits a change sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Pools in progress at once.
    pub max_pools: usize,
    /// The longest outage allowed.
    pub budget: Duration,
    /// The outage at which users notice (resiliency mode).
    pub threshold: Duration,
}

/// A pool, as the rules see it.
#[derive(Debug, Clone)]
pub struct PoolNode {
    /// Its FQDN.
    pub fqdn: Fqdn,
    /// Paired (backup) pools, both directions of `backup_pool:`.
    pub paired: Vec<PoolId>,
    /// Pools that must be done before it starts (`after:`).
    pub after: Vec<PoolId>,
    /// Its servers in file order.
    pub servers: Vec<ServerId>,
    /// How many of them are in scope.
    pub in_scope: usize,
}

/// A server, as the rules see it.
#[derive(Debug, Clone)]
pub struct ServerNode {
    /// Its FQDN.
    pub fqdn: Fqdn,
    /// Its pool.
    pub pool: PoolId,
    /// Its SQL mirroring partners (both directions of `mirror.partner`).
    pub mirror_partners: Vec<ServerId>,
    /// For a principal: partners on the mirror side that are in scope and must be updated
    /// first.
    pub mirror_first: Vec<ServerId>,
    /// Whether the change covers it.
    pub in_scope: bool,
}

/// The inventory indexed for the rules: every lookup is by id, O(1).
#[derive(Debug, Clone)]
pub struct Estate {
    limits: Limits,
    pools: Vec<PoolNode>,
    servers: Vec<ServerNode>,
    server_ids: BTreeMap<Fqdn, ServerId>,
    pool_ids: BTreeMap<Fqdn, PoolId>,
}

impl Estate {
    /// Indexes `inventory`; `in_scope` says which servers the change covers.
    pub fn new(
        inventory: &Inventory,
        mut in_scope: impl FnMut(&Pool, &Server) -> bool,
        limits: Limits,
    ) -> Estate {
        let mut pool_ids = BTreeMap::new();
        let mut server_ids = BTreeMap::new();
        let mut pools = Vec::with_capacity(inventory.pools.len());
        let mut servers = Vec::new();
        for (pi, pool) in inventory.pools.iter().enumerate() {
            pool_ids.entry(pool.fqdn.clone()).or_insert(PoolId(pi));
            let mut node = PoolNode {
                fqdn: pool.fqdn.clone(),
                paired: Vec::new(),
                after: Vec::new(),
                servers: Vec::with_capacity(pool.servers.len()),
                in_scope: 0,
            };
            for server in &pool.servers {
                let id = ServerId(servers.len());
                server_ids.entry(server.fqdn.clone()).or_insert(id);
                let scoped = in_scope(pool, server);
                node.in_scope += usize::from(scoped);
                node.servers.push(id);
                servers.push(ServerNode {
                    fqdn: server.fqdn.clone(),
                    pool: PoolId(pi),
                    mirror_partners: Vec::new(),
                    mirror_first: Vec::new(),
                    in_scope: scoped,
                });
            }
            pools.push(node);
        }
        // Relations, made symmetric where the rule is (pairing, mirroring).
        for (pi, pool) in inventory.pools.iter().enumerate() {
            for first in &pool.after {
                if let Some(&a) = pool_ids.get(first)
                    && a.0 != pi
                    && !pools[pi].after.contains(&a)
                {
                    pools[pi].after.push(a);
                }
            }
            if let Some(&b) = pool.backup_pool.as_ref().and_then(|b| pool_ids.get(b))
                && b.0 != pi
            {
                for (x, y) in [(pi, b.0), (b.0, pi)] {
                    if !pools[x].paired.contains(&PoolId(y)) {
                        pools[x].paired.push(PoolId(y));
                    }
                }
            }
        }
        let roles: Vec<Option<MirrorRole>> = inventory
            .servers()
            .map(|s| match &s.role {
                Role::BackEnd {
                    mirror: Some(m), ..
                } => Some(m.role),
                _ => None,
            })
            .collect();
        for (si, server) in inventory.servers().enumerate() {
            let Role::BackEnd {
                mirror: Some(m), ..
            } = &server.role
            else {
                continue;
            };
            let Some(&p) = server_ids.get(&m.partner) else {
                continue;
            };
            if p.0 == si {
                continue;
            }
            for (x, y) in [(si, p.0), (p.0, si)] {
                if !servers[x].mirror_partners.contains(&ServerId(y)) {
                    servers[x].mirror_partners.push(ServerId(y));
                }
            }
        }
        for si in 0..servers.len() {
            if roles[si] != Some(MirrorRole::Principal) {
                continue;
            }
            let first: Vec<ServerId> = servers[si]
                .mirror_partners
                .iter()
                .copied()
                .filter(|p| roles[p.0] != Some(MirrorRole::Principal) && servers[p.0].in_scope)
                .collect();
            servers[si].mirror_first = first;
        }
        Estate {
            limits,
            pools,
            servers,
            server_ids,
            pool_ids,
        }
    }

    /// The limits the rules apply.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Every pool, in inventory order.
    pub fn pools(&self) -> &[PoolNode] {
        &self.pools
    }

    /// Every server, in inventory order.
    pub fn servers(&self) -> &[ServerNode] {
        &self.servers
    }

    /// The pool `id`, if it belongs to this estate.
    pub fn pool(&self, id: PoolId) -> Option<&PoolNode> {
        self.pools.get(id.0)
    }

    /// The server `id`, if it belongs to this estate.
    pub fn server(&self, id: ServerId) -> Option<&ServerNode> {
        self.servers.get(id.0)
    }

    /// The id of the server with this FQDN.
    pub fn server_id(&self, fqdn: &Fqdn) -> Option<ServerId> {
        self.server_ids.get(fqdn).copied()
    }

    /// The id of the pool with this FQDN.
    pub fn pool_id(&self, fqdn: &Fqdn) -> Option<PoolId> {
        self.pool_ids.get(fqdn).copied()
    }

    /// The id of the `i`-th server in inventory order.
    pub fn server_at(&self, i: usize) -> Option<ServerId> {
        (i < self.servers.len()).then_some(ServerId(i))
    }

    /// The id of the `i`-th pool in inventory order.
    pub fn pool_at(&self, i: usize) -> Option<PoolId> {
        (i < self.pools.len()).then_some(PoolId(i))
    }
}

/// Where a pool stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PoolStatus {
    /// No server of it is in scope: this change leaves it alone (it counts as done for
    /// `after:`).
    OutOfScope,
    /// Nothing started yet.
    NotStarted,
    /// A server started and not every server in scope is done.
    InProgress,
    /// Every server in scope is done.
    Done,
    /// Stopped before every server was done (a failure, or servers that are not scheduled):
    /// no longer in progress, but not done either.
    Halted,
}

/// What is down, in progress and done at one moment.
#[derive(Debug, Clone)]
pub struct EstateState {
    down: Vec<bool>,
    done: Vec<bool>,
    pool_down: Vec<Vec<ServerId>>,
    pool_done: Vec<usize>,
    pool_status: Vec<PoolStatus>,
    in_progress: usize,
}

impl EstateState {
    /// Nothing started: pools without a server in scope are out of scope.
    pub fn new(estate: &Estate) -> EstateState {
        EstateState {
            down: vec![false; estate.servers.len()],
            done: vec![false; estate.servers.len()],
            pool_down: vec![Vec::new(); estate.pools.len()],
            pool_done: vec![0; estate.pools.len()],
            pool_status: estate
                .pools
                .iter()
                .map(|p| {
                    if p.in_scope == 0 {
                        PoolStatus::OutOfScope
                    } else {
                        PoolStatus::NotStarted
                    }
                })
                .collect(),
            in_progress: 0,
        }
    }

    /// Whether this state was made for `estate` (same number of servers and pools).
    pub fn belongs_to(&self, estate: &Estate) -> bool {
        self.down.len() == estate.servers.len() && self.pool_status.len() == estate.pools.len()
    }

    /// Server `s` starts its procedure: it is down and its pool is in progress.
    pub fn begin(&mut self, estate: &Estate, s: ServerId) {
        if !self.belongs_to(estate) {
            return;
        }
        let Some(node) = estate.server(s) else { return };
        if self.down[s.0] {
            return;
        }
        self.down[s.0] = true;
        self.pool_down[node.pool.0].push(s);
        let status = &mut self.pool_status[node.pool.0];
        if matches!(
            status,
            PoolStatus::NotStarted | PoolStatus::Halted | PoolStatus::Done | PoolStatus::OutOfScope
        ) {
            *status = PoolStatus::InProgress;
            self.in_progress += 1;
        }
    }

    /// Server `s` is up again; `patched` says whether it was updated (else it was restored).
    /// Its pool is done when every server of it in scope is.
    pub fn end(&mut self, estate: &Estate, s: ServerId, patched: bool) {
        if !self.belongs_to(estate) {
            return;
        }
        let Some(node) = estate.server(s) else { return };
        let p = node.pool.0;
        if self.down[s.0] {
            self.down[s.0] = false;
            self.pool_down[p].retain(|&x| x != s);
        }
        if patched && !self.done[s.0] {
            self.done[s.0] = true;
            if node.in_scope {
                self.pool_done[p] += 1;
            }
        }
        if self.pool_status[p] == PoolStatus::InProgress
            && self.pool_down[p].is_empty()
            && self.pool_done[p] >= estate.pools[p].in_scope
        {
            self.pool_status[p] = PoolStatus::Done;
            self.in_progress -= 1;
        }
    }

    /// Pool `p` stops without being done (after a failure, or when no further server of it
    /// can be scheduled). Servers still down stay down.
    pub fn halt_pool(&mut self, p: PoolId) {
        if let Some(status) = self.pool_status.get_mut(p.0) {
            if *status == PoolStatus::InProgress {
                self.in_progress -= 1;
            }
            if *status != PoolStatus::Done && *status != PoolStatus::OutOfScope {
                *status = PoolStatus::Halted;
            }
        }
    }

    /// Whether server `s` is down.
    pub fn is_down(&self, s: ServerId) -> bool {
        self.down.get(s.0).copied().unwrap_or(false)
    }

    /// Whether server `s` has been updated.
    pub fn is_done(&self, s: ServerId) -> bool {
        self.done.get(s.0).copied().unwrap_or(false)
    }

    /// Where pool `p` stands.
    pub fn pool_status(&self, p: PoolId) -> PoolStatus {
        self.pool_status
            .get(p.0)
            .copied()
            .unwrap_or(PoolStatus::OutOfScope)
    }

    /// Pools in progress now.
    pub fn pools_in_progress(&self) -> usize {
        self.in_progress
    }
}

impl Estate {
    /// May server `s`, whose outage is predicted to last `predicted_outage`, start now?
    /// The first reason it may not, in the order the module documentation lists them.
    pub fn may_start(
        &self,
        state: &EstateState,
        s: ServerId,
        predicted_outage: Duration,
    ) -> Result<(), Refusal> {
        let mut out = Vec::new();
        self.check(state, s, predicted_outage, true, &mut out);
        match out.into_iter().next() {
            Some(r) => Err(r),
            None => Ok(()),
        }
    }

    /// Every reason server `s` may not start now (empty: it may).
    pub fn refusals(
        &self,
        state: &EstateState,
        s: ServerId,
        predicted_outage: Duration,
    ) -> Vec<Refusal> {
        let mut out = Vec::new();
        self.check(state, s, predicted_outage, false, &mut out);
        out
    }

    fn check(
        &self,
        state: &EstateState,
        s: ServerId,
        predicted: Duration,
        first: bool,
        out: &mut Vec<Refusal>,
    ) {
        macro_rules! refuse {
            ($r:expr) => {{
                out.push($r);
                if first {
                    return;
                }
            }};
        }
        let Some(node) = self.servers.get(s.0).filter(|n| n.in_scope) else {
            let server = self
                .servers
                .get(s.0)
                .map_or_else(|| format!("server #{}", s.0), |n| n.fqdn.to_string());
            out.push(Refusal::NotInScope { server });
            return;
        };
        let name = || node.fqdn.to_string();
        if !state.belongs_to(self) {
            out.push(Refusal::ForeignState { server: name() });
            return;
        }
        let pool = &self.pools[node.pool.0];
        if state.is_down(s) {
            refuse!(Refusal::AlreadyDown { server: name() });
        }
        if state.is_done(s) {
            refuse!(Refusal::AlreadyDone { server: name() });
        }
        let Limits {
            max_pools,
            budget,
            threshold,
        } = self.limits;
        if budget >= threshold {
            refuse!(Refusal::BudgetNotBelowThreshold { budget, threshold });
        }
        if predicted >= budget {
            refuse!(Refusal::OutageNotBelowBudget {
                server: name(),
                predicted,
                budget
            });
        }
        for &a in &pool.after {
            if !matches!(
                state.pool_status(a),
                PoolStatus::Done | PoolStatus::OutOfScope
            ) {
                refuse!(Refusal::AfterPoolNotDone {
                    pool: pool.fqdn.to_string(),
                    after: self.pools[a.0].fqdn.to_string()
                });
            }
        }
        for &m in &node.mirror_first {
            if !state.is_done(m) {
                refuse!(Refusal::MirrorSideFirst {
                    server: name(),
                    mirror: self.servers[m.0].fqdn.to_string()
                });
            }
        }
        for &m in &node.mirror_partners {
            if state.is_down(m) {
                refuse!(Refusal::MirrorPartnerDown {
                    server: name(),
                    partner: self.servers[m.0].fqdn.to_string()
                });
            }
        }
        if let Some(&other) = state.pool_down[node.pool.0].iter().find(|&&x| x != s) {
            refuse!(Refusal::BackEndOfPoolDown {
                pool: pool.fqdn.to_string(),
                down: self.servers[other.0].fqdn.to_string()
            });
        }
        for &b in &pool.paired {
            let down = state.pool_down[b.0]
                .first()
                .map(|d| self.servers[d.0].fqdn.to_string());
            if down.is_some() || state.pool_status(b) == PoolStatus::InProgress {
                refuse!(Refusal::PairedPoolBusy {
                    pool: pool.fqdn.to_string(),
                    paired: self.pools[b.0].fqdn.to_string(),
                    down
                });
            }
        }
        if state.pool_status(node.pool) != PoolStatus::InProgress
            && state.pools_in_progress() >= max_pools
        {
            refuse!(Refusal::ConcurrencyLimit { limit: max_pools });
        }
    }
}

mod refusal;
#[cfg(test)]
mod tests;

pub use refusal::Refusal;
