//! Pool-level checks: the site exists, the pool has the shape of its edition, backup pools
//! pair up one-to-one, `after:` names other pools and has no cycle.

use std::collections::HashSet;

use super::{Index, suggestion, where_};
use crate::decode::{At, Ctx};
use crate::input::PoolInput;
use crate::model::{Edition, Fqdn};

/// The pool's `site` names a defined site.
pub(super) fn site(ctx: &mut Ctx, index: &Index<'_>, pool: &PoolInput) {
    let Some(site) = &pool.site else { return };
    if index.sites.contains_key(site.value.as_str()) {
        return;
    }
    let help = suggestion(ctx, &site.value, &index.site_names, "sites");
    ctx.error_help(
        site.pos,
        &site.field,
        format!("no site named `{}`", site.value),
        help,
    );
}

/// A Standard Edition pool has exactly one `server:` and no front or back ends; an
/// Enterprise Edition pool has back ends and no `server:`.
pub(super) fn edition_shape(ctx: &mut Ctx, pool: &PoolInput) {
    let Some(edition) = &pool.edition else { return };
    match edition.value {
        Edition::Standard => {
            if let Some(key) = &pool.front_ends_key {
                ctx.error_help(
                    key.pos,
                    &key.field,
                    "a Standard Edition pool has no `front_ends`",
                    "remove `front_ends:`, or set `edition: enterprise` if this is an Enterprise pool",
                );
            }
            if let Some(key) = &pool.back_ends_key {
                ctx.error_help(
                    key.pos,
                    &key.field,
                    "a Standard Edition pool has no `back_ends`: its one server is given with `server:`",
                    "replace `back_ends:` with `server:`, or set `edition: enterprise` if this is an Enterprise pool",
                );
            }
            if pool.server_key.is_none() {
                ctx.error_help(
                    pool.pos,
                    &format!("{}.server", pool.field),
                    "missing field `server`: a Standard Edition pool has exactly one server",
                    "add `server:` with the server's `ssh:` settings (its FQDN is the pool's)",
                );
            }
            let server_fqdn = pool.server.as_ref().and_then(|s| s.fqdn.as_ref());
            if let (Some(server), Some(pool_fqdn)) = (server_fqdn, &pool.fqdn)
                && server.value != pool_fqdn.value
            {
                ctx.error_help(
                        server.pos,
                        &server.field,
                        format!(
                            "a Standard Edition server has its pool's FQDN, but this is `{}` and the pool is `{}`",
                            server.value, pool_fqdn.value
                        ),
                        "write the server's FQDN as the pool's `fqdn`, and leave `server.fqdn` out",
                    );
            }
        }
        Edition::Enterprise => {
            if let Some(key) = &pool.server_key {
                ctx.error_help(
                    key.pos,
                    &key.field,
                    "an Enterprise Edition pool has no `server`",
                    "list its Back End servers under `back_ends:` and its Front End servers under \
                     `front_ends:`, or set `edition: standard` if this is a Standard Edition server",
                );
            }
            match &pool.back_ends_key {
                None => ctx.error_help(
                    pool.pos,
                    &format!("{}.back_ends", pool.field),
                    "missing field `back_ends`: an Enterprise Edition pool needs at least one Back End server",
                    "add `back_ends:` with the pool's Back End (SQL Server) servers",
                ),
                Some(key) if key.value == Some(0) => ctx.error_help(
                    key.pos,
                    &key.field,
                    "an Enterprise Edition pool needs at least one Back End server",
                    "add the pool's Back End (SQL Server) servers to `back_ends:`",
                ),
                Some(_) => {}
            }
        }
    }
}

/// Checks every `backup_pool` and returns each pool's partner, filled in on both sides.
///
/// Pairing is symmetric and one-to-one: naming the partner on one side is enough, naming it
/// on both sides is fine, and any second, different partner for a pool is an error that
/// names the first pairing.
pub(super) fn backup_pools(ctx: &mut Ctx, index: &Index<'_>) -> Vec<Option<usize>> {
    let pools = &index.input.pools;
    let mut partner: Vec<Option<(usize, &At<Fqdn>)>> = vec![None; pools.len()];
    for (a, pool) in pools.iter().enumerate() {
        let Some(named) = &pool.backup_pool else {
            continue;
        };
        if pool.fqdn.as_ref().is_some_and(|f| f.value == named.value) {
            ctx.error_help(
                named.pos,
                &named.field,
                "a pool cannot be its own backup pool",
                "name the paired pool (usually in another site), or remove `backup_pool`",
            );
            continue;
        }
        let Some(b) = index.pool_ref(ctx, named) else {
            continue;
        };
        if let Some(other) = pools.get(b) {
            like_pools(ctx, pool, other, named);
        }
        let mut conflict = false;
        for (side, wanted) in [(a, b), (b, a)] {
            if let Some(&Some((current, by))) = partner.get(side)
                && current != wanted
            {
                ctx.error_help(
                    named.pos,
                    &named.field,
                    format!(
                        "`{}` is already paired with `{}` by {}",
                        name(pools.get(side).and_then(|p| p.fqdn.as_ref())),
                        name(pools.get(current).and_then(|p| p.fqdn.as_ref())),
                        where_(by),
                    ),
                    "a pool has at most one backup pool, and pairing is mutual: name the \
                         pair on one side, or on both sides the same way",
                );
                conflict = true;
                break;
            }
        }
        if !conflict {
            // `a` and `b` index `pools`, which `partner` has the length of.
            for (side, other) in [(a, b), (b, a)] {
                if let Some(slot) = partner.get_mut(side) {
                    *slot = Some((other, named));
                }
            }
        }
    }
    partner.into_iter().map(|p| p.map(|(i, _)| i)).collect()
}

fn name(fqdn: Option<&At<Fqdn>>) -> &str {
    fqdn.map_or("?", |f| f.value.as_str())
}

/// Paired pools must be of the same edition and product.
fn like_pools(ctx: &mut Ctx, pool: &PoolInput, other: &PoolInput, named: &At<Fqdn>) {
    const HELP: &str = "Microsoft supports pairing only pools of the same edition and product \
                        version; name a matching pool";
    if let (Some(mine), Some(theirs)) = (&pool.edition, &other.edition)
        && mine.value != theirs.value
    {
        ctx.error_help(
            named.pos,
            &named.field,
            format!(
                "the backup pool `{}` is {}, this pool is {}",
                named.value,
                theirs.value.display_name(),
                mine.value.display_name()
            ),
            HELP,
        );
    }
    if let (Some(mine), Some(theirs)) = (&pool.product, &other.product)
        && mine.value != theirs.value
    {
        ctx.error_help(
            named.pos,
            &named.field,
            format!(
                "the backup pool `{}` runs {}, this pool runs {}",
                named.value,
                theirs.value.display_name(),
                mine.value.display_name()
            ),
            HELP,
        );
    }
}

/// Every `after:` entry names another pool once, and the ordering has no cycle.
pub(super) fn after(ctx: &mut Ctx, index: &Index<'_>) {
    let pools = &index.input.pools;
    let mut edges = Vec::new();
    for (a, pool) in pools.iter().enumerate() {
        let mut seen: HashSet<&Fqdn> = HashSet::new();
        for entry in &pool.after {
            if !seen.insert(&entry.value) {
                ctx.error_help(
                    entry.pos,
                    &entry.field,
                    format!("`{}` is listed twice in `after`", entry.value),
                    "list each pool once",
                );
                continue;
            }
            if pool.fqdn.as_ref().is_some_and(|f| f.value == entry.value) {
                ctx.error_help(
                    entry.pos,
                    &entry.field,
                    "a pool cannot come after itself",
                    "remove it from `after`",
                );
                continue;
            }
            if let Some(b) = index.pool_ref(ctx, entry) {
                edges.push((a, b));
            }
        }
    }
    for cycle in crate::graph::cycles(pools.len(), &edges) {
        let names: Vec<&str> = cycle
            .iter()
            .map(|&i| name(pools.get(i).and_then(|p| p.fqdn.as_ref())))
            .collect();
        // Report at the first pool's entry that names the second.
        let (Some(&first), Some(&second)) = (cycle.first(), cycle.get(1)) else {
            continue;
        };
        let Some(at) = pools.get(first).and_then(|p| {
            p.after
                .iter()
                .find(|e| index.pools.get(&e.value) == Some(&second))
        }) else {
            continue;
        };
        ctx.error_help(
            at.pos,
            &at.field,
            format!("the `after` ordering has a cycle: {}", names.join(" → ")),
            "each pool in the cycle waits for the next one, so none can start; \
             remove one of these `after` entries",
        );
    }
}
