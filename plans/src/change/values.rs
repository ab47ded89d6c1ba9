//! Typed values of the change file read from YAML nodes: lists of names and FQDNs,
//! durations, sizes, and mappings keyed by data (step kinds, FQDNs, products). Each reader
//! records its problem in the context and returns `None`.

use std::collections::BTreeMap;
use std::time::Duration;

use poolpatch_inventory::Fqdn;
use poolpatch_inventory::decode::{At, Ctx};
use poolpatch_inventory::diag::did_you_mean;
use poolpatch_inventory::yaml::{Key, Node, Value};

use crate::procedure::StepKind;
use crate::units::{DURATION_EXAMPLES, parse_duration, parse_size};

pub(super) fn texts(ctx: &mut Ctx, node: &Node, path: &str) -> Option<Vec<At<String>>> {
    let items = ctx.list(node, path)?;
    let mut ok = true;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match ctx.text(item, &format!("{path}[{i}]")) {
            Some(t) => out.push(t),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

pub(super) fn fqdns(ctx: &mut Ctx, node: &Node, path: &str) -> Option<Vec<At<Fqdn>>> {
    let mut ok = true;
    let mut out = Vec::new();
    for t in texts(ctx, node, path)? {
        match Fqdn::parse(&t.value) {
            Ok(value) => out.push(At {
                value,
                pos: t.pos,
                field: t.field,
            }),
            Err(e) => {
                ctx.error_help(
                    t.pos,
                    &t.field,
                    e,
                    "write the fully qualified name as in the inventory",
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// A mapping from step kind names to durations.
pub(super) fn step_durations(
    ctx: &mut Ctx,
    node: &Node,
    path: &str,
    positive: bool,
) -> Option<BTreeMap<StepKind, Duration>> {
    let entries = map_entries(ctx, node, path)?;
    let mut out = BTreeMap::new();
    let mut ok = true;
    let names: Vec<&str> = StepKind::ALL.iter().map(|k| k.name()).collect();
    for (key, value) in entries {
        let field = format!("{path}.{}", key.name);
        let kind = StepKind::from_name(&key.name);
        if kind.is_none() {
            let mut help = format!("step kinds: {}", names.join(", "));
            if let Some(s) = did_you_mean(&key.name, names.iter().copied()) {
                help = format!("did you mean `{s}`? ({help})");
            }
            ctx.error_help(
                key.pos,
                &field,
                format!("`{}` is not a step kind", key.name),
                help,
            );
        }
        let d = if positive {
            positive_duration(ctx, value, &field)
        } else {
            duration(ctx, value, &field)
        };
        match (kind, d) {
            (Some(kind), Some(d)) => {
                if out.insert(kind, d).is_some() {
                    ctx.error(key.pos, &field, format!("`{}` is listed twice", key.name));
                    ok = false;
                }
            }
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

/// The entries of a mapping whose keys are data (products, FQDNs, step kinds).
pub(super) fn map_entries<'n>(
    ctx: &mut Ctx,
    node: &'n Node,
    path: &str,
) -> Option<&'n [(Key, Node)]> {
    match &node.value {
        Value::Map(entries) => Some(entries),
        Value::Null => Some(&[]),
        other => {
            ctx.error_help(
                node.pos,
                path,
                format!(
                    "expected a mapping (`key: value` lines), found {}",
                    other.kind()
                ),
                "write one `name: value` per line, or `{ a: 1, b: 2 }`",
            );
            None
        }
    }
}

pub(super) fn duration(ctx: &mut Ctx, node: &Node, path: &str) -> Option<Duration> {
    let (text, pos) = match &node.value {
        Value::Str(s) => (s.clone(), node.pos),
        Value::Int(i) => (i.to_string(), node.pos),
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
    match parse_duration(&text) {
        Ok(d) => Some(d),
        Err(e) => {
            ctx.error_help(pos, path, e, DURATION_EXAMPLES);
            None
        }
    }
}

pub(super) fn positive_duration(ctx: &mut Ctx, node: &Node, path: &str) -> Option<Duration> {
    let d = duration(ctx, node, path)?;
    if d.is_zero() {
        ctx.error_help(
            node.pos,
            path,
            "a duration of zero is not allowed here",
            DURATION_EXAMPLES,
        );
        return None;
    }
    Some(d)
}

pub(super) fn size(ctx: &mut Ctx, node: &Node, path: &str) -> Option<u64> {
    let text = match &node.value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        other => {
            ctx.error_help(
                node.pos,
                path,
                format!("expected a size, found {}", other.kind()),
                "write a number and a unit, such as `500MiB` or `4GiB`",
            );
            return None;
        }
    };
    match parse_size(&text) {
        Ok(b) => Some(b),
        Err(e) => {
            ctx.error_help(
                node.pos,
                path,
                e,
                "write a number and a unit, such as `500MiB` or `4GiB`",
            );
            None
        }
    }
}
