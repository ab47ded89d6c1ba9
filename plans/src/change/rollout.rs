//! The rollout part of the change file: canary `stages`, the `failure_limit` that halts the
//! rollout, and `blackouts` (change freezes). Decoded with every problem reported (stage 1),
//! then checked against the inventory (stage 2): names exist, every server in scope is in
//! one stage, and no stage waits for a later one.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::civil::Date;
use poolpatch_inventory::decode::{At, Ctx, Fields};
use poolpatch_inventory::yaml::{Node, Value};
use poolpatch_inventory::{
    Diagnostic, Diagnostics, Fqdn, Inventory, MirrorRole, Pool, Pos, Role, Server,
};

use super::decode::scope_at;
use super::values::positive_duration;
use super::{Change, Scope};
use crate::units::{DURATION_EXAMPLES, format_duration, parse_duration_up_to};
use crate::windows::DateRange;

/// The longest bake: a week.
pub const MAX_BAKE: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long the executor waits for a stage's health command when the file sets no
/// `timeout`.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Longest health command accepted.
const MAX_COMMAND_CHARS: usize = 1000;

/// Longest blackout reason accepted.
const MAX_REASON_CHARS: usize = 200;

/// Longest stage name.
const MAX_STAGE_NAME: usize = 64;

/// The largest `failure_limit` written as a number.
const MAX_FAILURE_LIMIT: i128 = 1_000_000;

/// One stage of a canary rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Its name (unique among stages), where it is written.
    pub name: At<String>,
    /// The servers it names; `None` for a last stage that takes the rest.
    pub scope: Option<Scope>,
    /// How long to wait after its last server is done before the next stage starts.
    pub bake: Duration,
    /// What to run at the end of the bake, if anything.
    pub health: Option<HealthCheck>,
}

/// A stage's health check, run by the executor at the end of the stage's bake; anything
/// but success halts the rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// The command line, as written.
    pub command: String,
    /// How long to wait for it.
    pub timeout: Duration,
}

/// How many failed servers halt the whole rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureLimit {
    /// This many servers.
    Servers(u32),
    /// This percentage of the servers in scope, rounded up (at least one).
    Percent(u32),
}

impl FailureLimit {
    /// The limit as a number of servers, for `in_scope` servers in scope (at least 1).
    pub fn servers(self, in_scope: usize) -> usize {
        match self {
            FailureLimit::Servers(n) => usize::try_from(n).unwrap_or(usize::MAX).max(1),
            FailureLimit::Percent(p) => {
                let p = usize::try_from(p).unwrap_or(100);
                (in_scope.saturating_mul(p).div_ceil(100)).max(1)
            }
        }
    }

    /// As written in the file: `1`, `10%`.
    pub fn as_written(self) -> String {
        match self {
            FailureLimit::Servers(n) => n.to_string(),
            FailureLimit::Percent(p) => format!("{p}%"),
        }
    }
}

/// A change freeze: local dates, both ends included, in each site's time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Blackout {
    /// The dates.
    pub dates: DateRange,
    /// Why, for the plan.
    pub reason: Option<String>,
    /// The sites it applies to; empty: every site.
    pub sites: Vec<At<String>>,
    /// Where the entry starts.
    pub pos: Pos,
    /// Its field path (`blackouts[0]`).
    pub field: String,
}

impl Blackout {
    /// Whether it closes `site`.
    pub fn applies_to(&self, site: &str) -> bool {
        self.sites.is_empty() || self.sites.iter().any(|s| s.value == site)
    }
}

/// What the rollout fields decode to.
pub(super) struct Rollout {
    pub stages: Vec<Stage>,
    pub stages_pos: Pos,
    pub failure_limit: Option<FailureLimit>,
    pub blackouts: Vec<Blackout>,
}

/// Reads `stages`, `failure_limit` and `blackouts` of the top-level mapping `f`.
pub(super) fn decode(ctx: &mut Ctx, f: &mut Fields<'_>) -> Option<Rollout> {
    let stages_pos = f.key_pos("stages").unwrap_or(f.pos());
    let stages = match f.optional("stages") {
        Some(n) => stages(ctx, n),
        None => Some(Vec::new()),
    };
    let failure_limit = match f.optional("failure_limit") {
        Some(n) => failure_limit(ctx, n).map(Some),
        None => Some(None),
    };
    let blackouts = match f.optional("blackouts") {
        Some(n) => blackouts(ctx, n),
        None => Some(Vec::new()),
    };
    Some(Rollout {
        stages: stages?,
        stages_pos,
        failure_limit: failure_limit?,
        blackouts: blackouts?,
    })
}

fn stages(ctx: &mut Ctx, node: &Node) -> Option<Vec<Stage>> {
    let items = ctx.list(node, "stages")?;
    if items.is_empty() {
        ctx.error_help(
            node.pos,
            "stages",
            "the list of stages is empty",
            "list the stages in order, e.g. `- { name: canary, scope: { pools: [...] }, bake: 2h }`, then `- { name: rest }`; or remove `stages:` for a rollout in one stage",
        );
        return None;
    }
    let mut ok = true;
    let mut out: Vec<Stage> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("stages[{i}]");
        match stage(ctx, item, &path) {
            Some(s) => out.push(s),
            None => ok = false,
        }
    }
    // Names unique; only the last stage may take the rest.
    for (i, s) in out.iter().enumerate() {
        if let Some(first) = out[..i].iter().find(|o| o.name.value == s.name.value) {
            ctx.error_help(
                s.name.pos,
                &s.name.field,
                format!(
                    "the stage name `{}` is already used at line {}, column {} ({})",
                    s.name.value, first.name.pos.line, first.name.pos.column, first.name.field
                ),
                "give each stage its own name",
            );
            ok = false;
        }
        if s.scope.is_none() && i + 1 < out.len() {
            ctx.error_help(
                s.name.pos,
                &s.name.field,
                format!(
                    "stage `{}` has no `scope`, but only the last stage may take the rest",
                    s.name.value
                ),
                "give it a `scope` (`sites`, `pools` or `servers`), or move it to the end",
            );
            ok = false;
        }
    }
    (ok && out.len() == items.len()).then_some(out)
}

fn stage(ctx: &mut Ctx, node: &Node, path: &str) -> Option<Stage> {
    let mut f = ctx.fields(node, path)?;
    let name = f
        .required(ctx, "name", "the stage's name, such as `canary`")
        .and_then(|n| ctx.text(n, &f.path_of("name")))
        .and_then(|t| match stage_name(&t.value) {
            Ok(()) => Some(t),
            Err(why) => {
                ctx.error_help(
                    t.pos,
                    &t.field,
                    why,
                    "name the stage like `canary`, `amsterdam` or `wave-2`",
                );
                None
            }
        });
    let scope = match f.optional("scope") {
        Some(n) => scope_at(
            ctx,
            n,
            &f.path_of("scope"),
            "list `sites:`, `pools:` or `servers:`, or remove `scope:` to make this the last stage, which takes the rest",
        )
        .map(Some),
        None => Some(None),
    };
    let bake = match f.optional("bake") {
        Some(n) => bake(ctx, n, &f.path_of("bake")),
        None => Some(Duration::ZERO),
    };
    let health = match f.optional("health") {
        Some(n) => health(ctx, n, &f.path_of("health")).map(Some),
        None => Some(None),
    };
    f.finish(ctx);
    Some(Stage {
        name: name?,
        scope: scope?,
        bake: bake?,
        health: health?,
    })
}

/// 1–64 ASCII letters, digits, `-`, `_` or `.`, starting with a letter or digit.
fn stage_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("the stage's name is empty".into());
    }
    if s.chars().count() > MAX_STAGE_NAME {
        return Err(format!(
            "a stage name has at most {MAX_STAGE_NAME} characters"
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "`{}` is not allowed in a stage name (letters, digits, `-`, `_` and `.` only)",
            c.escape_default()
        ));
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("a stage name starts with a letter or a digit".into());
    }
    Ok(())
}

fn bake(ctx: &mut Ctx, node: &Node, path: &str) -> Option<Duration> {
    let text = match &node.value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        other => {
            ctx.error_help(
                node.pos,
                path,
                format!("expected a duration, found {}", other.kind()),
                DURATION_EXAMPLES,
            );
            return None;
        }
    };
    match parse_duration_up_to(&text, MAX_BAKE) {
        Ok(d) => Some(d),
        Err(why) => {
            ctx.error_help(
                node.pos,
                path,
                why,
                format!(
                    "write how long to watch the stage before the next one starts, such as `2h` or `1d`, at most {}",
                    format_duration(MAX_BAKE)
                ),
            );
            None
        }
    }
}

fn health(ctx: &mut Ctx, node: &Node, path: &str) -> Option<HealthCheck> {
    let mut f = ctx.fields(node, path)?;
    let command = f
        .required(
            ctx,
            "command",
            "the command that says whether the rollout may go on (exit status 0: healthy)",
        )
        .and_then(|n| ctx.text(n, &f.path_of("command")))
        .and_then(|t| {
            let c = t.value.trim();
            let why = if c.is_empty() {
                Some("the health command is empty".to_string())
            } else if c.chars().any(char::is_control) {
                Some("the health command contains a line break or control character".into())
            } else if c.chars().count() > MAX_COMMAND_CHARS {
                Some(format!(
                    "the health command is longer than {MAX_COMMAND_CHARS} characters"
                ))
            } else {
                None
            };
            match why {
                Some(why) => {
                    ctx.error_help(
                        t.pos,
                        &t.field,
                        why,
                        "write one command line, such as \"/usr/local/bin/check-lync-health --site amsterdam\"; put longer logic in a script",
                    );
                    None
                }
                None => Some(c.to_string()),
            }
        });
    let timeout = match f.optional("timeout") {
        Some(n) => positive_duration(ctx, n, &f.path_of("timeout")),
        None => Some(DEFAULT_HEALTH_TIMEOUT),
    };
    f.finish(ctx);
    Some(HealthCheck {
        command: command?,
        timeout: timeout?,
    })
}

fn failure_limit(ctx: &mut Ctx, node: &Node) -> Option<FailureLimit> {
    let help = "write a number of failed servers (`1`: the first failure halts the rollout) or a percentage of the servers in scope (`10%`)";
    let field = "failure_limit";
    match &node.value {
        Value::Int(n) if (1..=MAX_FAILURE_LIMIT).contains(n) => {
            u32::try_from(*n).ok().map(FailureLimit::Servers)
        }
        Value::Int(n) => {
            ctx.error_help(
                node.pos,
                field,
                format!(
                    "{n} is out of range: expected a whole number from 1 to {MAX_FAILURE_LIMIT}"
                ),
                help,
            );
            None
        }
        Value::Str(s) => {
            let t = s.trim();
            let parsed = match t.strip_suffix('%') {
                Some(p) => p
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|p| (1..=100).contains(p))
                    .map(FailureLimit::Percent),
                None => t
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_FAILURE_LIMIT).contains(&i128::from(*n)))
                    .map(FailureLimit::Servers),
            };
            if parsed.is_none() {
                ctx.error_help(
                    node.pos,
                    field,
                    format!("`{t}` is not a failure limit: expected a whole number of servers from 1, or a percentage from 1% to 100%"),
                    help,
                );
            }
            parsed
        }
        other => {
            ctx.error_help(
                node.pos,
                field,
                format!("expected a number or a percentage, found {}", other.kind()),
                help,
            );
            None
        }
    }
}

fn blackouts(ctx: &mut Ctx, node: &Node) -> Option<Vec<Blackout>> {
    let items = ctx.list(node, "blackouts")?;
    let mut ok = true;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match blackout(ctx, item, &format!("blackouts[{i}]")) {
            Some(b) => out.push(b),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn blackout(ctx: &mut Ctx, node: &Node, path: &str) -> Option<Blackout> {
    let mut f = ctx.fields(node, path)?;
    let from = f
        .required(ctx, "from", "the first day of the freeze, `YYYY-MM-DD`")
        .and_then(|n| date(ctx, n, &f.path_of("from")));
    let to = f
        .required(
            ctx,
            "to",
            "the last day of the freeze (included), `YYYY-MM-DD`",
        )
        .and_then(|n| date(ctx, n, &f.path_of("to")));
    let reason = match f.optional("reason") {
        Some(n) => ctx.text(n, &f.path_of("reason")).and_then(|t| {
            let r = t.value.trim();
            if r.chars().any(char::is_control) || r.chars().count() > MAX_REASON_CHARS {
                ctx.error_help(
                    t.pos,
                    &t.field,
                    format!("the reason must be one line of at most {MAX_REASON_CHARS} characters"),
                    "write a short reason, such as \"year-end freeze\"",
                );
                None
            } else {
                Some(Some(r.to_string()).filter(|r| !r.is_empty()))
            }
        }),
        None => Some(None),
    };
    let sites = match f.optional("sites") {
        Some(n) => super::values::texts(ctx, n, &f.path_of("sites")),
        None => Some(Vec::new()),
    };
    f.finish(ctx);
    let (from, to) = (from?, to?);
    if to.value < from.value {
        ctx.error_help(
            to.pos,
            &to.field,
            format!(
                "the freeze ends ({}) before it starts ({})",
                to.value, from.value
            ),
            "`to` is the last day of the freeze, on or after `from`",
        );
        return None;
    }
    Some(Blackout {
        dates: DateRange {
            from: from.value,
            to: to.value,
        },
        reason: reason?,
        sites: sites?,
        pos: node.pos,
        field: path.to_string(),
    })
}

/// A local date written `YYYY-MM-DD`.
fn date(ctx: &mut Ctx, node: &Node, path: &str) -> Option<At<Date>> {
    let help = "write the date as `YYYY-MM-DD`, such as 2026-12-20; blackout dates are local dates of each site";
    let t = match &node.value {
        Value::Str(s) => s.trim().to_string(),
        other => {
            ctx.error_help(
                node.pos,
                path,
                format!("expected a date, found {}", other.kind()),
                help,
            );
            return None;
        }
    };
    let shape = t.len() == 10
        && t.char_indices().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        });
    match t.parse::<Date>() {
        Ok(d) if shape => Some(At {
            value: d,
            pos: node.pos,
            field: path.to_string(),
        }),
        _ => {
            ctx.error_help(node.pos, path, format!("`{t}` is not a date"), help);
            None
        }
    }
}

/// Stage 2 for the rollout: the sites of blackouts exist and, when `stages` (the names of
/// stage scopes exist and the scope selects servers), every server in scope is in exactly
/// one stage, every stage gets a server, no entry of a stage names only servers earlier
/// stages took, and no stage waits for a later one (`after:`, the mirror side first).
pub(super) fn check(
    change: &Change,
    inventory: &Inventory,
    sites: &BTreeSet<&str>,
    stages: bool,
    diags: &mut Diagnostics,
) {
    let file = change.file.as_str();
    let mut err = |pos: Pos, field: &str, message: String, help: String| {
        diags.push(Diagnostic::new(file, pos, field, message).help(help));
    };
    for b in &change.blackouts {
        for s in &b.sites {
            if !sites.contains(s.value.as_str()) {
                let help = match poolpatch_inventory::diag::did_you_mean(
                    &s.value,
                    sites.iter().copied(),
                ) {
                    Some(m) => format!("did you mean `{m}`?"),
                    None => {
                        "no site of the inventory is named like this; check the spelling".into()
                    }
                };
                err(
                    s.pos,
                    &s.field,
                    format!("there is no site `{}` in the inventory", s.value),
                    help,
                );
            }
        }
    }
    if change.stages.is_empty() || !stages {
        return;
    }
    let scope = change.scope.index();
    let in_scope: Vec<(&Pool, &Server)> = inventory
        .pools
        .iter()
        .flat_map(|p| p.servers.iter().map(move |s| (p, s)))
        .filter(|(p, s)| scope.contains(p, s))
        .collect();
    let mut taken: BTreeMap<&Fqdn, usize> = BTreeMap::new();
    for (k, stage) in change.stages.iter().enumerate() {
        let mut entry_reported = false;
        if let Some(sc) = &stage.scope {
            let entries = sc
                .sites
                .iter()
                .map(|s| {
                    (
                        s.pos,
                        s.field.as_str(),
                        s.value.clone(),
                        Entry::Site(&s.value),
                    )
                })
                .chain(sc.pools.iter().map(|p| {
                    (
                        p.pos,
                        p.field.as_str(),
                        p.value.to_string(),
                        Entry::Pool(&p.value),
                    )
                }))
                .chain(sc.servers.iter().map(|s| {
                    (
                        s.pos,
                        s.field.as_str(),
                        s.value.to_string(),
                        Entry::Server(&s.value),
                    )
                }));
            for (pos, field, name, entry) in entries {
                let named: Vec<&Fqdn> = in_scope
                    .iter()
                    .filter(|(p, s)| entry.names(p, s))
                    .map(|(_, s)| &s.fqdn)
                    .collect();
                let exists = match entry {
                    Entry::Site(s) => inventory.site(s).is_some(),
                    Entry::Pool(p) => inventory.pool(p).is_some(),
                    Entry::Server(s) => inventory.server(s).is_some(),
                };
                if !exists {
                    // Reported with the other names.
                    entry_reported = true;
                    continue;
                }
                if named.is_empty() {
                    err(
                        pos,
                        field,
                        format!("`{name}` names no server in the change's scope"),
                        "the change's `scope:` leaves its servers out: add them there, or remove this entry".into(),
                    );
                    entry_reported = true;
                } else if let Some(first) = named
                    .iter()
                    .map(|f| taken.get(f).copied())
                    .collect::<Option<Vec<usize>>>()
                    .and_then(|ks| ks.into_iter().min())
                {
                    err(
                        pos,
                        field,
                        format!(
                            "every server `{name}` names is already in stage `{}`",
                            change.stages[first].name.value
                        ),
                        "a server belongs to the first stage that names it: remove this entry, or name those servers in one stage only".into(),
                    );
                    entry_reported = true;
                }
            }
        }
        let mut count = 0;
        for (p, s) in &in_scope {
            if taken.contains_key(&s.fqdn) {
                continue;
            }
            if stage.scope.as_ref().is_none_or(|sc| sc.contains(p, s)) {
                taken.insert(&s.fqdn, k);
                count += 1;
            }
        }
        if count == 0 && !entry_reported {
            let (message, help) = if stage.scope.is_none() {
                (
                    format!(
                        "the last stage `{}` takes the servers no earlier stage names, but none is left",
                        stage.name.value
                    ),
                    "remove this stage",
                )
            } else {
                (
                    format!("stage `{}` gets no server", stage.name.value),
                    "every server it names is in an earlier stage: remove it, or name other servers",
                )
            };
            err(stage.name.pos, &stage.name.field, message, help.into());
        }
    }
    let left: Vec<&str> = in_scope
        .iter()
        .filter(|(_, s)| !taken.contains_key(&s.fqdn))
        .map(|(_, s)| s.fqdn.as_str())
        .collect();
    if !left.is_empty() {
        let shown: Vec<&str> = left.iter().take(5).copied().collect();
        let more = left.len().saturating_sub(5);
        err(
            change.stages_pos,
            "stages",
            format!(
                "{} server{} in scope {} in no stage: {}{}",
                left.len(),
                if left.len() == 1 { "" } else { "s" },
                if left.len() == 1 { "is" } else { "are" },
                shown.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            ),
            "add a last stage without `scope` (`- { name: rest }`) to take the rest, or name them in a stage".into(),
        );
    }
    // No stage may wait for a later one.
    let stage_of = |f: &Fqdn| taken.get(f).copied();
    let name = |k: usize| change.stages[k].name.value.as_str();
    for pool in &inventory.pools {
        let Some(first) = pool.servers.iter().filter_map(|s| stage_of(&s.fqdn)).min() else {
            continue;
        };
        for a in &pool.after {
            let Some(other) = inventory.pool(a) else {
                continue;
            };
            let late = other
                .servers
                .iter()
                .filter_map(|s| stage_of(&s.fqdn).map(|k| (k, s)))
                .max_by_key(|(k, _)| *k);
            if let Some((k, s)) = late
                && k > first
            {
                let at = &change.stages[first].name;
                err(
                    at.pos,
                    &at.field,
                    format!(
                        "pool {} (stage `{}`) comes `after:` pool {a}, whose server {} is in the later stage `{}`: it could never start",
                        pool.fqdn,
                        name(first),
                        s.fqdn,
                        name(k)
                    ),
                    format!(
                        "put the servers of {a} in stage `{}` or an earlier one, or those of {} in stage `{}` or a later one",
                        name(first),
                        pool.fqdn,
                        name(k)
                    ),
                );
            }
        }
        for s in &pool.servers {
            let Role::BackEnd {
                mirror: Some(m), ..
            } = &s.role
            else {
                continue;
            };
            if m.role != MirrorRole::Principal {
                continue;
            }
            if let (Some(ks), Some(km)) = (stage_of(&s.fqdn), stage_of(&m.partner))
                && km > ks
            {
                let at = &change.stages[ks].name;
                err(
                    at.pos,
                    &at.field,
                    format!(
                        "{} holds the principal and is in stage `{}`, but its mirror side {} is in the later stage `{}`: the mirror side is patched first",
                        s.fqdn,
                        name(ks),
                        m.partner,
                        name(km)
                    ),
                    format!(
                        "put {} in stage `{}` or an earlier one",
                        m.partner,
                        name(ks)
                    ),
                );
            }
        }
    }
}

/// One name of a stage's scope.
#[derive(Clone, Copy)]
enum Entry<'a> {
    Site(&'a str),
    Pool(&'a Fqdn),
    Server(&'a Fqdn),
}

impl Entry<'_> {
    fn names(self, pool: &Pool, server: &Server) -> bool {
        match self {
            Entry::Site(s) => pool.site == s,
            Entry::Pool(p) => &pool.fqdn == p,
            Entry::Server(s) => &server.fqdn == s,
        }
    }
}
