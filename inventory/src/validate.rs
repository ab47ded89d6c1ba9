//! Loading, stage 3: checks between values (names unique, references resolve, pools have
//! the shape of their edition, pairings are mutual, `after:` has no cycle), then builds the
//! validated [`Inventory`].
//!
//! Every lookup goes through a hash map built once, so validation stays linear in the size
//! of the estate (10,000 servers in 2,000 pools load well under a second).

mod refs;
mod servers;

use std::collections::HashMap;

use crate::decode::{At, Ctx};
use crate::diag::{Pos, did_you_mean};
use crate::input::{InventoryInput, PoolInput, ServerInput};
use crate::load::LoadOptions;
use crate::model::{Edition, Fqdn, FrontEnd, Inventory, Pool, Role, Server, Site, SshEndpoint};

/// After this many problems, no more "did you mean" searches: a hostile file with thousands
/// of bad names should not cost thousands of fuzzy searches over thousands of names.
pub(crate) const SUGGESTION_LIMIT: usize = 200;

/// How many known names a help text lists before "and N more".
const LISTED_NAMES: usize = 8;

/// What an FQDN names, and where it was first defined.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Claim<'a> {
    /// "pool", "Front End server", ...
    pub kind: &'static str,
    /// The defining `fqdn:` value.
    pub at: &'a At<Fqdn>,
    /// Index of the pool it belongs to (or is).
    pub pool: usize,
}

impl Claim<'_> {
    /// "the Back End server at line 12, column 15 (pools[0].back_ends[0].fqdn)".
    pub fn describe(&self) -> String {
        format!("the {} at {}", self.kind, where_(self.at))
    }
}

/// "line 12, column 15 (pools[0].back_ends[0].fqdn)".
pub(crate) fn where_<T>(at: &At<T>) -> String {
    format!(
        "line {}, column {} ({})",
        at.pos.line, at.pos.column, at.field
    )
}

/// Everything the checks share: the input and the indexes over it.
pub(crate) struct Index<'a> {
    /// The input.
    pub input: &'a InventoryInput,
    /// Site name → index of its first definition.
    pub sites: HashMap<&'a str, usize>,
    /// Every FQDN defined (pools, Front Ends, Back Ends; a Standard Edition server shares
    /// its pool's FQDN) → its first definition.
    pub fqdns: HashMap<&'a Fqdn, Claim<'a>>,
    /// Pool FQDN → index of the pool.
    pub pools: HashMap<&'a Fqdn, usize>,
    /// Site names, sorted, for help texts.
    pub site_names: Vec<&'a str>,
    /// Pool FQDNs, sorted, for help texts.
    pub pool_names: Vec<&'a str>,
}

impl<'a> Index<'a> {
    fn new(ctx: &mut Ctx, input: &'a InventoryInput) -> Index<'a> {
        let mut index = Index {
            input,
            sites: HashMap::new(),
            fqdns: HashMap::new(),
            pools: HashMap::new(),
            site_names: Vec::new(),
            pool_names: Vec::new(),
        };
        for (i, site) in input.sites.iter().enumerate() {
            let Some(name) = &site.name else { continue };
            if let Some(&first) = index.sites.get(name.value.as_str()) {
                if let Some(first) = &input.sites[first].name {
                    ctx.error_help(
                        name.pos,
                        &name.field,
                        format!(
                            "duplicate site name `{}`: already defined at {}",
                            name.value,
                            where_(first)
                        ),
                        "give each site a unique name",
                    );
                }
            } else {
                index.sites.insert(&name.value, i);
            }
        }
        for (i, pool) in input.pools.iter().enumerate() {
            if let Some(fqdn) = &pool.fqdn {
                let kind = match pool.edition.as_ref().map(|e| e.value) {
                    Some(Edition::Standard) => "Standard Edition pool and server",
                    _ => "pool",
                };
                if index.claim(ctx, kind, fqdn, i) {
                    index.pools.insert(&fqdn.value, i);
                }
            }
            for fe in &pool.front_ends {
                if let Some(fqdn) = &fe.fqdn {
                    index.claim(ctx, "Front End server", fqdn, i);
                }
            }
            for be in &pool.back_ends {
                if let Some(fqdn) = &be.fqdn {
                    index.claim(ctx, "Back End server", fqdn, i);
                }
            }
            // A Standard Edition server has its pool's FQDN (checked in `refs`); it claims
            // nothing of its own.
        }
        index.site_names = index.sites.keys().copied().collect();
        index.site_names.sort_unstable();
        index.pool_names = index.pools.keys().map(|f| f.as_str()).collect();
        index.pool_names.sort_unstable();
        index
    }

    /// Records `at` as naming a `kind`; reports a duplicate. True if it was new.
    fn claim(&mut self, ctx: &mut Ctx, kind: &'static str, at: &'a At<Fqdn>, pool: usize) -> bool {
        if let Some(first) = self.fqdns.get(&at.value) {
            ctx.error_help(
                at.pos,
                &at.field,
                format!(
                    "duplicate FQDN `{}`: already used by {}",
                    at.value,
                    first.describe()
                ),
                "every pool, Front End, Back End and Standard Edition server needs its own FQDN",
            );
            return false;
        }
        self.fqdns.insert(&at.value, Claim { kind, at, pool });
        true
    }

    /// The pool named `fqdn`, or a report at `at` saying what `fqdn` is instead.
    pub fn pool_ref(&self, ctx: &mut Ctx, at: &At<Fqdn>) -> Option<usize> {
        if let Some(&i) = self.pools.get(&at.value) {
            return Some(i);
        }
        let help = match self.fqdns.get(&at.value) {
            Some(claim) => format!(
                "`{}` is {}, not a pool; name a pool's `fqdn`",
                at.value,
                claim.describe()
            ),
            None => suggestion(ctx, at.value.as_str(), &self.pool_names, "pools"),
        };
        ctx.error_help(
            at.pos,
            &at.field,
            format!("no pool named `{}`", at.value),
            help,
        );
        None
    }
}

/// "did you mean `x`?", or a list of the known `names` (sorted).
pub(crate) fn suggestion(ctx: &Ctx, word: &str, names: &[&str], what: &str) -> String {
    if ctx.diags.len() < SUGGESTION_LIMIT {
        // Edit distance is at least the difference in length: skip hopeless candidates.
        let close = names
            .iter()
            .copied()
            .filter(|c| c.len().abs_diff(word.len()) <= c.len().max(word.len()) / 3 + 1);
        if let Some(s) = did_you_mean(word, close) {
            return format!("did you mean `{s}`?");
        }
    }
    if names.is_empty() {
        return format!("no {what} are defined");
    }
    let shown: Vec<&str> = names.iter().take(LISTED_NAMES).copied().collect();
    let more = names.len().saturating_sub(LISTED_NAMES);
    if more > 0 {
        format!("known {what}: {}, and {more} more", shown.join(", "))
    } else {
        format!("known {what}: {}", shown.join(", "))
    }
}

/// Checks `input` as a whole and builds the inventory; `None` if anything is wrong (the
/// reasons are in `ctx`).
pub(crate) fn validate(
    ctx: &mut Ctx,
    input: &InventoryInput,
    opts: &LoadOptions,
) -> Option<Inventory> {
    let index = Index::new(ctx, input);
    for pool in &input.pools {
        refs::site(ctx, &index, pool);
        refs::edition_shape(ctx, pool);
    }
    let partners = refs::backup_pools(ctx, &index);
    refs::after(ctx, &index);
    servers::sql_servers(ctx, &index);
    servers::mirrors(ctx, &index);
    let endpoints = servers::endpoints(ctx, input, opts);
    if !ctx.diags.is_empty() {
        return None;
    }
    let built = build(input, &partners, &endpoints);
    if built.is_none() {
        // Unreachable in practice: every absent value was reported above. Say so rather
        // than return an error without a reason.
        ctx.error(
            Pos::START,
            "",
            "internal error: the inventory passed validation but could not be built; please report this",
        );
    }
    built
}

/// The validated model. `partners[i]` is pool `i`'s paired pool (filled in on both sides);
/// `endpoints[i][j]` is the SSH endpoint of server `j` of pool `i`.
fn build(
    input: &InventoryInput,
    partners: &[Option<usize>],
    endpoints: &[Vec<Option<SshEndpoint>>],
) -> Option<Inventory> {
    let sites = input
        .sites
        .iter()
        .map(|s| {
            Some(Site {
                name: s.name.as_ref()?.value.clone(),
                time_zone: s.time_zone.as_ref()?.value.clone(),
                windows: s
                    .windows
                    .clone()
                    .map(crate::windows::WindowsInput::into_windows)
                    .unwrap_or_default(),
                pos: s.pos,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let pools = input
        .pools
        .iter()
        .enumerate()
        .map(|(i, p)| build_pool(input, p, partners.get(i)?.as_ref(), endpoints.get(i)?))
        .collect::<Option<Vec<_>>>()?;
    Some(Inventory { sites, pools })
}

fn build_pool(
    input: &InventoryInput,
    p: &PoolInput,
    partner: Option<&usize>,
    endpoints: &[Option<SshEndpoint>],
) -> Option<Pool> {
    let fqdn = p.fqdn.as_ref()?.value.clone();
    let backup_pool = match partner {
        Some(&j) => Some(input.pools.get(j)?.fqdn.as_ref()?.value.clone()),
        None => None,
    };
    let servers = servers::patched(p)
        .iter()
        .zip(endpoints)
        .map(|(s, ssh)| build_server(p, &fqdn, s, ssh.as_ref()?))
        .collect::<Option<Vec<_>>>()?;
    Some(Pool {
        site: p.site.as_ref()?.value.clone(),
        edition: p.edition.as_ref()?.value,
        product: p.product.as_ref()?.value,
        backup_pool,
        after: p.after.iter().map(|a| a.value.clone()).collect(),
        front_ends: p
            .front_ends
            .iter()
            .map(|fe| {
                Some(FrontEnd {
                    fqdn: fe.fqdn.as_ref()?.value.clone(),
                    upgrade_domain: fe.upgrade_domain.clone(),
                })
            })
            .collect::<Option<Vec<_>>>()?,
        servers,
        windows: p
            .windows
            .clone()
            .map(crate::windows::WindowsInput::into_windows),
        fqdn,
        pos: p.pos,
    })
}

fn build_server(p: &PoolInput, pool: &Fqdn, s: &ServerInput, ssh: &SshEndpoint) -> Option<Server> {
    let role = match &s.back_end {
        Some(be) => Role::BackEnd {
            sql_server: be.sql_server.as_ref()?.value.clone(),
            mirror: be.mirror.as_ref().map(|m| crate::model::Mirror {
                role: m.role.value,
                partner: m.partner.value.clone(),
            }),
            collocated_databases: be.collocated.clone(),
        },
        None => Role::StandardEdition,
    };
    Some(Server {
        fqdn: servers::server_fqdn(p, s)?.clone(),
        pool: pool.clone(),
        role,
        ssh: ssh.clone(),
        pos: s.pos,
    })
}
