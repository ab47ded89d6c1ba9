//! Stage 1: the change file on its own, decoded from the spanned YAML tree with every problem
//! collected (the inventory's `yaml`, `decode` and `diag` layers, reused).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use poolpatch_inventory::decode::{At, Ctx, Fields};
use poolpatch_inventory::diag::did_you_mean;
use poolpatch_inventory::yaml::{self, Node};
use poolpatch_inventory::{Diagnostics, Fqdn, Product};

use super::values::{fqdns, map_entries, positive_duration, size, step_durations, texts};
use super::{
    CHANGE_FORMAT_VERSION, Change, Concurrency, DEFAULT_BUDGET, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MIN_FREE_BYTES, DEFAULT_THRESHOLD, EstimateOverrides, Installer, MAX_CONCURRENT_POOLS,
    MAX_THRESHOLD, OnBudgetExhausted, OnFailure, OutagePolicy, Overrides, Scope, Timeouts, Update,
};
use super::{notify, rollout};
use crate::procedure::FinalStep;
use crate::units::{RemoteDir, format_duration, parse_sha256, parse_version};

/// Longest change title accepted.
const MAX_NAME_CHARS: usize = 200;

pub(super) fn decode(file: &str, text: &str, base_dir: PathBuf) -> Result<Change, Diagnostics> {
    let root = match yaml::parse(file, text) {
        Ok(root) => root,
        Err(d) => {
            let mut ds = Diagnostics::new();
            ds.push(d);
            return Err(ds);
        }
    };
    let mut ctx = Ctx::new(file);
    let Some(mut f) = ctx.fields(&root, "") else {
        return Err(failed(ctx));
    };

    let version = f
        .required(&mut ctx, "version", &format!("the format version, `{CHANGE_FORMAT_VERSION}`"))
        .and_then(|n| ctx.integer(n, "version", 0, i128::from(u32::MAX)).map(|v| (n.pos, v)))
        .and_then(|(pos, v)| {
            if v == i128::from(CHANGE_FORMAT_VERSION) {
                Some(CHANGE_FORMAT_VERSION)
            } else {
                ctx.error_help(
                    pos,
                    "version",
                    format!("this poolpatch reads change files of version {CHANGE_FORMAT_VERSION}, not {v}"),
                    format!("write `version: {CHANGE_FORMAT_VERSION}` and check docs/usage/change.md for the format"),
                );
                None
            }
        });
    let name = f
        .required(
            &mut ctx,
            "name",
            "the change's title, e.g. \"SfB 2015 CU 2024-07\"",
        )
        .and_then(|n| ctx.text(n, "name"))
        .and_then(|t| change_name(&mut ctx, t));
    let update = f
        .required(&mut ctx, "update", "`remote_dir` and `installers`")
        .and_then(|n| update(&mut ctx, n, &base_dir));
    let scope = match f.optional("scope") {
        Some(n) => scope(&mut ctx, n),
        None => Some(Scope::default()),
    };
    let outage = match f.optional("outage") {
        Some(n) => outage(&mut ctx, n),
        None => Some(OutagePolicy {
            threshold: DEFAULT_THRESHOLD,
            budget: DEFAULT_BUDGET,
            on_budget_exhausted: OnBudgetExhausted::default(),
            on_stop: OnBudgetExhausted::Finish,
        }),
    };
    let on_failure = pick(
        &mut ctx,
        &mut f,
        "on_failure",
        &[
            ("halt-pool", OnFailure::HaltPool),
            ("halt-all", OnFailure::HaltAll),
        ],
        OnFailure::default(),
    );
    let concurrency = match f.optional("concurrency") {
        Some(n) => concurrency(&mut ctx, n),
        None => Some(Concurrency { pools: 1 }),
    };
    let final_step = pick(
        &mut ctx,
        &mut f,
        "final_step",
        &[
            ("start-services", FinalStep::StartServices),
            ("reboot", FinalStep::Reboot),
        ],
        FinalStep::default(),
    );
    let estimates = match f.optional("estimates") {
        Some(n) => estimates(&mut ctx, n),
        None => Some(EstimateOverrides::default()),
    };
    let timeouts = match f.optional("timeouts") {
        Some(n) => timeouts(&mut ctx, n),
        None => Some(Timeouts {
            connect: DEFAULT_CONNECT_TIMEOUT,
            steps: BTreeMap::new(),
        }),
    };
    let rollout = rollout::decode(&mut ctx, &mut f);
    let notify = notify::decode(&mut ctx, &mut f);
    f.finish(&mut ctx);

    match (
        version,
        name,
        update,
        scope,
        outage,
        on_failure,
        concurrency,
        final_step,
        estimates,
        timeouts,
        rollout,
        notify,
    ) {
        (
            Some(version),
            Some(name),
            Some(update),
            Some(scope),
            Some(outage),
            Some(on_failure),
            Some(concurrency),
            Some(final_step),
            Some(estimates),
            Some(timeouts),
            Some(rollout),
            Some(notify),
        ) if ctx.diags.is_empty() => Ok(Change {
            file: file.to_string(),
            base_dir,
            version,
            name,
            update,
            scope,
            outage,
            on_failure,
            concurrency,
            final_step,
            estimates,
            timeouts,
            stages: rollout.stages,
            stages_pos: rollout.stages_pos,
            failure_limit: rollout.failure_limit,
            blackouts: rollout.blackouts,
            notify,
        }),
        _ => Err(failed(ctx)),
    }
}

/// The problems collected so far; only called once at least one was recorded.
fn failed(ctx: Ctx) -> Diagnostics {
    match ctx.finish() {
        Err(d) => d,
        Ok(()) => Diagnostics::new(),
    }
}

fn change_name(ctx: &mut Ctx, t: At<String>) -> Option<String> {
    let name = t.value.trim();
    if name.is_empty() {
        ctx.error_help(
            t.pos,
            "name",
            "the change's name is empty",
            "write a title such as \"SfB 2015 CU 2024-07\"",
        );
        return None;
    }
    if name.chars().any(char::is_control) {
        ctx.error_help(
            t.pos,
            "name",
            "the change's name contains a line break or control character",
            "write the title on one line",
        );
        return None;
    }
    if name.chars().count() > MAX_NAME_CHARS {
        ctx.error_help(
            t.pos,
            "name",
            format!("the change's name is longer than {MAX_NAME_CHARS} characters"),
            "keep the title short; details belong in the change request",
        );
        return None;
    }
    Some(name.to_string())
}

fn update(ctx: &mut Ctx, node: &Node, base_dir: &Path) -> Option<Update> {
    let mut f = ctx.fields(node, "update")?;
    let remote_dir = f
        .required(ctx, "remote_dir", "the staging directory on each server, e.g. 'C:\\ProgramData\\poolpatch\\updates'")
        .and_then(|n| ctx.text(n, "update.remote_dir"))
        .and_then(|t| match RemoteDir::parse(&t.value) {
            Ok(d) => Some(d),
            Err(e) => {
                ctx.error_help(t.pos, &t.field, e, "write an absolute local path in single quotes, such as 'C:\\ProgramData\\poolpatch\\updates' (or /var/lib/poolpatch/updates on lab hosts)");
                None
            }
        });
    // One target version cannot fit Lync 2013 and Skype for Business at once: say where it
    // belongs rather than only "unknown field".
    if let Some(n) = f.optional("target_version") {
        ctx.error_help(
            n.pos,
            "update.target_version",
            "the target version is given per installer, not for the whole update",
            "write `version: \"6.0.9319.690\"` in each entry of `update.installers` (each product has its own version line)",
        );
    }
    let min_free_bytes = match f.optional("min_free_space") {
        Some(n) => size(ctx, n, "update.min_free_space"),
        None => Some(DEFAULT_MIN_FREE_BYTES),
    };
    let installers_pos = f.pos();
    let installers = f
        .required(ctx, "installers", "one entry per product in scope, e.g. `sfb2015: { file: ./SkypeServerUpdateInstaller.exe, sha256: <64 hex digits>, version: \"6.0.9319.690\" }`")
        .and_then(|n| installers(ctx, n, base_dir).map(|i| (n.pos, i)));
    f.finish(ctx);
    let (installers_pos, installers) = match installers {
        Some((pos, i)) => (pos, Some(i)),
        None => (installers_pos, None),
    };
    Some(Update {
        remote_dir: remote_dir?,
        min_free_bytes: min_free_bytes?,
        installers: installers?,
        installers_pos,
    })
}

fn installers(ctx: &mut Ctx, node: &Node, base_dir: &Path) -> Option<BTreeMap<Product, Installer>> {
    let entries = map_entries(ctx, node, "update.installers")?;
    if entries.is_empty() {
        ctx.error_help(
            node.pos,
            "update.installers",
            "no installer is listed",
            "add one entry per product in scope, e.g. `sfb2015: { file: ..., sha256: ... }`",
        );
        return None;
    }
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (key, value) in entries {
        let path = format!("update.installers.{}", key.name);
        let product = match key.name.as_str() {
            "lync2013" => Some(Product::Lync2013),
            "sfb2015" => Some(Product::Sfb2015),
            "sfb2019" => Some(Product::Sfb2019),
            other => {
                let mut help = format!("products: {}", Product::NAMES.join(", "));
                if let Some(s) = did_you_mean(other, Product::NAMES) {
                    help = format!("did you mean `{s}`? ({help})");
                }
                ctx.error_help(key.pos, &path, format!("`{other}` is not a product"), help);
                None
            }
        };
        let Some(mut f) = ctx.fields(value, &path) else {
            ok = false;
            continue;
        };
        let file = f
            .required(ctx, "file", "the local path of the installer to upload, relative to the change file")
            .and_then(|n| ctx.text(n, &format!("{path}.file")))
            .and_then(|t| {
                let v = t.value.trim();
                if v.is_empty() || v.chars().any(char::is_control) {
                    ctx.error_help(t.pos, &t.field, "the installer path is empty or contains a control character", "write the path of the installer file, e.g. ./updates/SkypeServerUpdateInstaller.exe");
                    None
                } else {
                    Some(v.to_string())
                }
            });
        let sha256 = f
            .required(ctx, "sha256", "the installer's SHA-256 (64 hex digits) in quotes")
            .and_then(|n| ctx.text(n, &format!("{path}.sha256")))
            .and_then(|t| match parse_sha256(&t.value) {
                Ok(h) => Some(h),
                Err(e) => {
                    ctx.error_help(t.pos, &t.field, e, "copy the digest from `Get-FileHash -Algorithm SHA256 <file>` or `sha256sum <file>`");
                    None
                }
            });
        let version = f
            .required(ctx, "version", "the version servers report once updated, in quotes: \"6.0.9319.690\"")
            .and_then(|n| ctx.text(n, &format!("{path}.version")))
            .and_then(|t| match parse_version(&t.value) {
                Ok(v) => Some(v),
                Err(e) => {
                    ctx.error_help(t.pos, &t.field, e, "write the version as Get-CsServerVersion shows it after the update, in quotes: \"6.0.9319.690\"");
                    None
                }
            });
        f.finish(ctx);
        match (product, file, sha256, version) {
            (Some(product), Some(file), Some(sha256), Some(version)) => {
                let resolved = if Path::new(&file).is_absolute() {
                    PathBuf::from(&file)
                } else {
                    base_dir.join(&file)
                };
                if out.contains_key(&product) {
                    ctx.error(key.pos, &path, format!("`{}` is listed twice", key.name));
                    ok = false;
                }
                out.insert(
                    product,
                    Installer {
                        file: resolved,
                        file_as_written: file,
                        sha256,
                        version,
                        pos: key.pos,
                    },
                );
            }
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn scope(ctx: &mut Ctx, node: &Node) -> Option<Scope> {
    scope_at(
        ctx,
        node,
        "scope",
        "list `sites:`, `pools:` or `servers:`, or remove `scope:` to patch every server of the inventory",
    )
}

/// A scope (`sites`, `pools`, `servers`) at `path`; one that names nothing is refused with
/// `empty_help`, so that a mistake never widens it to everything.
pub(super) fn scope_at(ctx: &mut Ctx, node: &Node, path: &str, empty_help: &str) -> Option<Scope> {
    let mut f = ctx.fields(node, path)?;
    let pos = f.pos();
    let sites = match f.optional("sites") {
        Some(n) => texts(ctx, n, &f.path_of("sites")),
        None => Some(Vec::new()),
    };
    let pools = match f.optional("pools") {
        Some(n) => fqdns(ctx, n, &f.path_of("pools")),
        None => Some(Vec::new()),
    };
    let servers = match f.optional("servers") {
        Some(n) => fqdns(ctx, n, &f.path_of("servers")),
        None => Some(Vec::new()),
    };
    f.finish(ctx);
    let scope = Scope {
        sites: sites?,
        pools: pools?,
        servers: servers?,
    };
    if scope.is_everything() {
        ctx.error_help(
            pos,
            path,
            "the scope names no site, pool or server",
            empty_help,
        );
        return None;
    }
    Some(scope)
}

fn outage(ctx: &mut Ctx, node: &Node) -> Option<OutagePolicy> {
    let mut f = ctx.fields(node, "outage")?;
    let outage_pos = f.pos();
    let threshold = match f.optional("threshold") {
        Some(n) => positive_duration(ctx, n, "outage.threshold").and_then(|d| {
            if d > MAX_THRESHOLD {
                ctx.error_help(
                    n.pos,
                    "outage.threshold",
                    format!(
                        "{} is above the {} after which users drop into resiliency mode",
                        format_duration(d),
                        format_duration(MAX_THRESHOLD)
                    ),
                    format!(
                        "remove `threshold:` (default {}) or set a lower value for extra margin",
                        format_duration(DEFAULT_THRESHOLD)
                    ),
                );
                None
            } else {
                Some(d)
            }
        }),
        None => Some(DEFAULT_THRESHOLD),
    };
    let budget_node = f.optional("budget");
    let budget = match budget_node {
        Some(n) => positive_duration(ctx, n, "outage.budget"),
        None => Some(DEFAULT_BUDGET),
    };
    let restore_or_finish = [
        ("restore", OnBudgetExhausted::Restore),
        ("finish", OnBudgetExhausted::Finish),
    ];
    let on_budget_exhausted = pick(
        ctx,
        &mut f,
        "on_budget_exhausted",
        &restore_or_finish,
        OnBudgetExhausted::default(),
    );
    let on_stop = pick(
        ctx,
        &mut f,
        "on_stop",
        &restore_or_finish,
        OnBudgetExhausted::Finish,
    );
    f.finish(ctx);
    let (threshold, budget) = (threshold?, budget?);
    if budget >= threshold {
        let pos = budget_node.map_or(outage_pos, |n| n.pos);
        let below = threshold
            .saturating_sub(Duration::from_secs(5 * 60))
            .max(Duration::from_secs(60));
        ctx.error_help(
            pos,
            "outage.budget",
            format!("the budget ({}) is not below the threshold ({})", format_duration(budget), format_duration(threshold)),
            format!("set `budget:` below the threshold, e.g. {}: an outage that reaches the threshold puts users into resiliency mode", format_duration(below)),
        );
        return None;
    }
    Some(OutagePolicy {
        threshold,
        budget,
        on_budget_exhausted: on_budget_exhausted?,
        on_stop: on_stop?,
    })
}

/// Reads field `key` of `f` as one of the names in `choices` (with did-you-mean when it is
/// none of them); absent, `default`.
fn pick<T: Copy>(
    ctx: &mut Ctx,
    f: &mut Fields<'_>,
    key: &'static str,
    choices: &[(&str, T)],
    default: T,
) -> Option<T> {
    let Some(n) = f.optional(key) else {
        return Some(default);
    };
    let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
    let chosen = ctx.choice(n, &f.path_of(key), &names)?;
    choices
        .iter()
        .find(|(name, _)| *name == chosen.value)
        .map(|(_, v)| *v)
}

fn concurrency(ctx: &mut Ctx, node: &Node) -> Option<Concurrency> {
    let mut f = ctx.fields(node, "concurrency")?;
    let pools = match f.optional("pools") {
        Some(n) => ctx
            .integer(n, "concurrency.pools", 1, i128::from(MAX_CONCURRENT_POOLS))
            .and_then(|v| u32::try_from(v).ok()),
        None => Some(1),
    };
    f.finish(ctx);
    Some(Concurrency { pools: pools? })
}

fn estimates(ctx: &mut Ctx, node: &Node) -> Option<EstimateOverrides> {
    let mut f = ctx.fields(node, "estimates")?;
    let defaults = match f.optional("defaults") {
        Some(n) => step_durations(ctx, n, "estimates.defaults", false),
        None => Some(BTreeMap::new()),
    };
    let pools = match f.optional("pools") {
        Some(n) => named_overrides(ctx, n, "estimates.pools"),
        None => Some(BTreeMap::new()),
    };
    let servers = match f.optional("servers") {
        Some(n) => named_overrides(ctx, n, "estimates.servers"),
        None => Some(BTreeMap::new()),
    };
    f.finish(ctx);
    Some(EstimateOverrides {
        defaults: defaults?,
        pools: pools?,
        servers: servers?,
    })
}

fn named_overrides(ctx: &mut Ctx, node: &Node, path: &str) -> Option<BTreeMap<Fqdn, Overrides>> {
    let entries = map_entries(ctx, node, path)?;
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (key, value) in entries {
        let field = format!("{path}[\"{}\"]", key.name);
        let fqdn = match Fqdn::parse(&key.name) {
            Ok(f) => Some(f),
            Err(e) => {
                ctx.error_help(
                    key.pos,
                    &field,
                    e,
                    "write the fully qualified name as in the inventory",
                );
                None
            }
        };
        let steps = step_durations(ctx, value, &field, false);
        match (fqdn, steps) {
            (Some(fqdn), Some(steps)) => {
                if out.contains_key(&fqdn) {
                    ctx.error_help(
                        key.pos,
                        &field,
                        format!("`{fqdn}` is listed twice"),
                        "merge the two entries",
                    );
                    ok = false;
                }
                out.insert(
                    fqdn,
                    Overrides {
                        pos: key.pos,
                        field,
                        steps,
                    },
                );
            }
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn timeouts(ctx: &mut Ctx, node: &Node) -> Option<Timeouts> {
    let mut f = ctx.fields(node, "timeouts")?;
    let connect = match f.optional("connect") {
        Some(n) => positive_duration(ctx, n, "timeouts.connect"),
        None => Some(DEFAULT_CONNECT_TIMEOUT),
    };
    let steps = match f.optional("steps") {
        Some(n) => step_durations(ctx, n, "timeouts.steps", true),
        None => Some(BTreeMap::new()),
    };
    f.finish(ctx);
    Some(Timeouts {
        connect: connect?,
        steps: steps?,
    })
}
