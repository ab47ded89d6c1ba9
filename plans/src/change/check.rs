//! Stage 2: the change file against the inventory, and the installer files against their
//! digests.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use poolpatch_inventory::diag::did_you_mean;
use poolpatch_inventory::{Diagnostic, Diagnostics, Fqdn, Inventory, Pos, Product};
use sha2::{Digest, Sha256};

use super::Change;

/// Names of an inventory, for lookups and "did you mean".
struct Names<'a> {
    sites: BTreeSet<&'a str>,
    pools: BTreeSet<&'a Fqdn>,
    servers: BTreeSet<&'a Fqdn>,
    front_ends: BTreeSet<&'a Fqdn>,
}

impl<'a> Names<'a> {
    fn of(inventory: &'a Inventory) -> Self {
        Names {
            sites: inventory.sites.iter().map(|s| s.name.as_str()).collect(),
            pools: inventory.pools.iter().map(|p| &p.fqdn).collect(),
            servers: inventory.servers().map(|s| &s.fqdn).collect(),
            front_ends: inventory
                .pools
                .iter()
                .flat_map(|p| p.front_ends.iter().map(|f| &f.fqdn))
                .collect(),
        }
    }

    /// What `name` is, when it is not what the field wants.
    fn what_is(&self, name: &Fqdn) -> Option<&'static str> {
        if self.pools.contains(name) {
            Some("a pool: list it under `pools`")
        } else if self.servers.contains(name) {
            Some("a Back End or Standard Edition server: list it under `servers`")
        } else if self.front_ends.contains(name) {
            Some(
                "a Front End server: poolpatch patches back ends and Standard Edition servers, so name its pool",
            )
        } else {
            None
        }
    }
}

fn unknown_help<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    kind: &str,
) -> String {
    match did_you_mean(word, candidates) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("no {kind} of the inventory is named like this; check the spelling"),
    }
}

/// Every site, pool and server `scope` names exists in the inventory.
fn check_scope_names(names: &Names<'_>, scope: &super::Scope, file: &str, diags: &mut Diagnostics) {
    let mut err = |pos: Pos, field: &str, message: String, help: String| {
        diags.push(Diagnostic::new(file, pos, field, message).help(help));
    };
    for site in &scope.sites {
        if !names.sites.contains(site.value.as_str()) {
            let help = unknown_help(&site.value, names.sites.iter().copied(), "site");
            err(
                site.pos,
                &site.field,
                format!("there is no site `{}` in the inventory", site.value),
                help,
            );
        }
    }
    for pool in &scope.pools {
        if !names.pools.contains(&pool.value) {
            let help = match names.what_is(&pool.value) {
                Some(what) => format!("`{}` is {what}", pool.value),
                None => unknown_help(
                    pool.value.as_str(),
                    names.pools.iter().map(|p| p.as_str()),
                    "pool",
                ),
            };
            err(
                pool.pos,
                &pool.field,
                format!("there is no pool `{}` in the inventory", pool.value),
                help,
            );
        }
    }
    for server in &scope.servers {
        if !names.servers.contains(&server.value) {
            let help = match names.what_is(&server.value) {
                Some(what) => format!("`{}` is {what}", server.value),
                None => unknown_help(
                    server.value.as_str(),
                    names.servers.iter().map(|s| s.as_str()),
                    "server",
                ),
            };
            err(
                server.pos,
                &server.field,
                format!(
                    "there is no Back End or Standard Edition server `{}` in the inventory",
                    server.value
                ),
                help,
            );
        }
    }
}

pub(super) fn check_against(change: &Change, inventory: &Inventory) -> Result<(), Diagnostics> {
    let names = Names::of(inventory);
    let mut diags = Diagnostics::new();
    let file = change.file.as_str();
    let err = |diags: &mut Diagnostics, pos: Pos, field: &str, message: String, help: String| {
        diags.push(Diagnostic::new(file, pos, field, message).help(help));
    };

    check_scope_names(&names, &change.scope, file, &mut diags);
    for stage in &change.stages {
        if let Some(scope) = &stage.scope {
            check_scope_names(&names, scope, file, &mut diags);
        }
    }
    let pool_names = || names.pools.iter().map(|p| p.as_str());
    let server_names = || names.servers.iter().map(|s| s.as_str());
    for (pool, o) in &change.estimates.pools {
        if !names.pools.contains(pool) {
            let help = match names.what_is(pool) {
                Some(what) => format!("`{pool}` is {what} (estimates.servers)"),
                None => unknown_help(pool.as_str(), pool_names(), "pool"),
            };
            err(
                &mut diags,
                o.pos,
                &o.field,
                format!("there is no pool `{pool}` in the inventory"),
                help,
            );
        }
    }
    for (server, o) in &change.estimates.servers {
        if !names.servers.contains(server) {
            let help = match names.what_is(server) {
                Some(what) => format!("`{server}` is {what} (estimates.pools)"),
                None => unknown_help(server.as_str(), server_names(), "server"),
            };
            err(
                &mut diags,
                o.pos,
                &o.field,
                format!(
                    "there is no Back End or Standard Edition server `{server}` in the inventory"
                ),
                help,
            );
        }
    }

    // Products in scope without an installer, with the pools that need one.
    let scope = change.scope.index();
    let mut needs: BTreeMap<Product, Vec<&Fqdn>> = BTreeMap::new();
    let mut selected = 0usize;
    for pool in &inventory.pools {
        let n = pool
            .servers
            .iter()
            .filter(|s| scope.contains(pool, s))
            .count();
        selected += n;
        if n > 0 && !change.update.installers.contains_key(&pool.product) {
            needs.entry(pool.product).or_default().push(&pool.fqdn);
        }
    }
    for (product, pools) in needs {
        let shown: Vec<&str> = pools.iter().take(3).map(|p| p.as_str()).collect();
        let more = if pools.len() > 3 {
            format!(" and {} more", pools.len() - 3)
        } else {
            String::new()
        };
        err(
            &mut diags,
            change.update.installers_pos,
            "update.installers",
            format!(
                "no installer for {} ({}), which pools in scope run: {}{more}",
                product.name(),
                product.display_name(),
                shown.join(", ")
            ),
            format!(
                "add `{}: {{ file: ./updates/{}, sha256: <64 hex digits> }}`, or leave those pools out of `scope`",
                product.name(),
                crate::procedure::installer_file_name(product)
            ),
        );
    }
    let names_ok = diags.is_empty();
    if diags.is_empty() && selected == 0 && !change.scope.is_everything() {
        let pos = [
            change.scope.sites.first().map(|s| (s.pos, "scope.sites")),
            change.scope.pools.first().map(|p| (p.pos, "scope.pools")),
            change
                .scope
                .servers
                .first()
                .map(|s| (s.pos, "scope.servers")),
        ]
        .into_iter()
        .flatten()
        .min();
        let (pos, field) = pos.unwrap_or((Pos::START, "scope"));
        err(
            &mut diags,
            pos,
            field,
            "the scope selects no Back End or Standard Edition server".into(),
            "name a site, pool or server that has back ends to patch".into(),
        );
    }
    // The stages are checked once the names they use are known to exist.
    super::rollout::check(
        change,
        inventory,
        &names.sites,
        names_ok && selected > 0,
        &mut diags,
    );
    if diags.is_empty() {
        Ok(())
    } else {
        Err(diags.sorted())
    }
}

pub(super) fn verify_installers(change: &Change) -> Result<(), Diagnostics> {
    let mut diags = Diagnostics::new();
    for (product, installer) in &change.update.installers {
        let field = format!("update.installers.{}", product.name());
        match sha256_of_file(&installer.file) {
            Ok(digest) if digest == installer.sha256 => {}
            Ok(digest) => diags.push(
                Diagnostic::new(&change.file, installer.pos, format!("{field}.sha256"), format!("`{}` has SHA-256 {digest}, not the {} written here", installer.file.display(), installer.sha256))
                    .help("check that this is the right installer; if it is, copy its digest into `sha256:`"),
            ),
            Err(e) => diags.push(
                Diagnostic::new(&change.file, installer.pos, format!("{field}.file"), format!("cannot read `{}`: {e}", installer.file.display()))
                    .help("paths are relative to the change file's directory"),
            ),
        }
    }
    if diags.is_empty() {
        Ok(())
    } else {
        Err(diags.sorted())
    }
}

/// The SHA-256 of a file, lower-case hex, read in blocks.
pub(crate) fn sha256_of_file(path: &std::path::Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
