//! Server-level checks: mirror pairings are mutual and within the pool, and every patched
//! server ends up with a complete SSH endpoint.

use std::collections::HashMap;

use super::{Index, suggestion, where_};
use crate::decode::Ctx;
use crate::diag::Pos;
use crate::input::{InventoryInput, PoolInput, ServerInput};
use crate::load::LoadOptions;
use crate::model::{Fqdn, SshEndpoint};
use crate::ssh::{self, Missing};

/// The servers of `pool` that poolpatch patches: its back ends, or its Standard Edition
/// server.
pub(super) fn patched(pool: &PoolInput) -> Vec<&ServerInput> {
    pool.back_ends.iter().chain(pool.server.as_ref()).collect()
}

/// A server's FQDN: its own, or for a Standard Edition server its pool's.
pub(super) fn server_fqdn<'a>(pool: &'a PoolInput, server: &'a ServerInput) -> Option<&'a Fqdn> {
    match (&server.fqdn, &server.back_end) {
        (Some(f), _) => Some(&f.value),
        (None, None) => pool.fqdn.as_ref().map(|f| &f.value),
        (None, Some(_)) => None,
    }
}

/// A back end's `sql_server` is not a pool or a Front End server of the estate. (It may
/// name a server the inventory does not list, such as a SQL cluster name.)
pub(super) fn sql_servers(ctx: &mut Ctx, index: &Index<'_>) {
    for pool in &index.input.pools {
        for be in &pool.back_ends {
            let Some(sql) = be.back_end.as_ref().and_then(|b| b.sql_server.as_ref()) else {
                continue;
            };
            let Some(claim) = index.fqdns.get(&sql.value) else {
                continue;
            };
            if claim.kind == "Back End server" {
                continue;
            }
            ctx.error_help(
                sql.pos,
                &sql.field,
                format!(
                    "`{}` is {}, not a SQL Server",
                    sql.value,
                    claim.describe()
                ),
                "name the SQL Server that holds the pool's back-end databases (usually the back end's own FQDN)",
            );
        }
    }
}

/// Each `mirror:` names another back end of the same pool, which names this one back, with
/// the other role.
pub(super) fn mirrors(ctx: &mut Ctx, index: &Index<'_>) {
    for (pool_index, pool) in index.input.pools.iter().enumerate() {
        let mut back_ends: HashMap<&Fqdn, &ServerInput> = HashMap::new();
        for be in &pool.back_ends {
            if let Some(f) = &be.fqdn {
                back_ends.entry(&f.value).or_insert(be);
            }
        }
        for be in &pool.back_ends {
            let (Some(me), Some(mirror)) = (
                &be.fqdn,
                be.back_end.as_ref().and_then(|b| b.mirror.as_ref()),
            ) else {
                continue;
            };
            let partner = &mirror.partner;
            if partner.value == me.value {
                ctx.error_help(
                    partner.pos,
                    &partner.field,
                    "a back end cannot be its own mirror partner",
                    "name the other back end of the mirrored pair",
                );
                continue;
            }
            let Some(other) = back_ends.get(&partner.value) else {
                let help = match index.fqdns.get(&partner.value) {
                    Some(claim) if claim.pool != pool_index || claim.kind != "Back End server" => {
                        format!(
                            "`{}` is {}; mirroring pairs two back ends of the same pool",
                            partner.value,
                            claim.describe()
                        )
                    }
                    _ => {
                        // Never suggest the back end itself.
                        let mut names: Vec<&str> = back_ends
                            .keys()
                            .filter(|f| **f != &me.value)
                            .map(|f| f.as_str())
                            .collect();
                        names.sort_unstable();
                        suggestion(
                            ctx,
                            partner.value.as_str(),
                            &names,
                            "other back ends of this pool",
                        )
                    }
                };
                ctx.error_help(
                    partner.pos,
                    &partner.field,
                    format!("no back end `{}` in this pool", partner.value),
                    help,
                );
                continue;
            };
            let Some(other_fqdn) = &other.fqdn else {
                continue;
            };
            match other.back_end.as_ref().and_then(|b| b.mirror.as_ref()) {
                None => ctx.error_help(
                    partner.pos,
                    &partner.field,
                    format!(
                        "the mirror pairing is not mutual: `{}` has no `mirror`",
                        partner.value
                    ),
                    format!(
                        "add `mirror: {{ role: {}, partner: {} }}` to the back end at {}",
                        mirror.role.value.other().name(),
                        me.value,
                        where_(other_fqdn)
                    ),
                ),
                Some(theirs) if theirs.partner.value != me.value => ctx.error_help(
                    partner.pos,
                    &partner.field,
                    format!(
                        "the mirror pairing is not mutual: `{}` names `{}` as its partner at {}",
                        partner.value,
                        theirs.partner.value,
                        where_(&theirs.partner)
                    ),
                    "mirroring pairs exactly two back ends that name each other",
                ),
                // Report a same-role pair once, at the second of the two.
                Some(theirs) if theirs.role.value == mirror.role.value && other.pos < be.pos => {
                    ctx.error_help(
                        mirror.role.pos,
                        &mirror.role.field,
                        format!(
                            "both `{}` and `{}` have the role `{}`",
                            other_fqdn.value,
                            me.value,
                            mirror.role.value.name()
                        ),
                        "one side of a mirrored pair is `principal`, the other `mirror`",
                    );
                }
                Some(_) => {}
            }
        }
    }
}

/// The merged SSH endpoint of every patched server (`[pool][server]`, in the order of
/// [`patched`]); reports what is missing.
///
/// A setting that no server has and `defaults.ssh` lacks is reported once, at
/// `defaults.ssh`, rather than once per server.
pub(super) fn endpoints(
    ctx: &mut Ctx,
    input: &InventoryInput,
    opts: &LoadOptions,
) -> Vec<Vec<Option<SshEndpoint>>> {
    let mut missing: Vec<(Missing, Pos, String, &Fqdn)> = Vec::new();
    let mut total = 0usize;
    let endpoints = input
        .pools
        .iter()
        .map(|pool| {
            patched(pool)
                .into_iter()
                .map(|s| {
                    let fqdn = server_fqdn(pool, s)?;
                    total += 1;
                    match ssh::merge(&input.defaults_ssh, &s.ssh, fqdn, opts) {
                        Ok(e) => Some(e),
                        Err(lacks) => {
                            for m in lacks {
                                missing.push((m, s.ssh.pos, s.ssh.field.clone(), fqdn));
                            }
                            None
                        }
                    }
                })
                .collect()
        })
        .collect();
    for kind in [Missing::User, Missing::Auth, Missing::KnownHosts] {
        let lacking: Vec<_> = missing.iter().filter(|m| m.0 == kind).collect();
        if lacking.len() == total && total > 1 {
            let d = &input.defaults_ssh;
            let (message, help) = texts(kind, &format!("any of the {total} servers"));
            ctx.error_help(
                d.pos,
                &format!("{}.{}", d.field, kind.field()),
                message,
                help,
            );
            continue;
        }
        for (_, pos, field, fqdn) in lacking {
            let (message, help) = texts(kind, &format!("`{fqdn}`"));
            ctx.error_help(*pos, &format!("{field}.{}", kind.field()), message, help);
        }
    }
    endpoints
}

fn texts(kind: Missing, whom: &str) -> (String, &'static str) {
    match kind {
        Missing::User => (
            format!("no SSH user for {whom}"),
            "set `user:` in `defaults.ssh` or in the server's own `ssh:`",
        ),
        Missing::Auth => (
            format!("no SSH authentication for {whom}"),
            "set `identity_file: PATH` or `agent: true` in `defaults.ssh` or in the server's own `ssh:`",
        ),
        Missing::KnownHosts => (
            format!(
                "no known_hosts file for {whom}: HOME is not set, so the default ~/.ssh/known_hosts cannot be used"
            ),
            "set `known_hosts:` to an absolute path in `defaults.ssh`",
        ),
    }
}
