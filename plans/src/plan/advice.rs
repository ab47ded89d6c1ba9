//! The words of a plan: what would fix a server over budget, who loses what while a server
//! is down, and the notes for the change board.

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::time::Duration;

use poolpatch_inventory::{Inventory, MirrorRole, Pool, Role, Server};

use super::{Impact, ImpactKind, PlannedStep, ServerPlan, Verdict};
use crate::change::{Change, OnBudgetExhausted};
use crate::estimates::EstimateSource;
use crate::history::History;
use crate::procedure::{FinalStep, StepKind};
use crate::safety::Estate;
use crate::units::format_duration as fmt;

/// What would bring a predicted outage below the budget: the step estimate to lower, the
/// final step to change, or the budget to raise (which must stay below the threshold).
pub(super) fn over_budget_fix(
    predicted: Duration,
    budget: Duration,
    threshold: Duration,
    outage: &[PlannedStep],
    final_step: FinalStep,
) -> String {
    let over = predicted.saturating_sub(budget);
    let mut options = Vec::new();
    // The longest step that could absorb the excess alone (ties: the earlier step).
    if let Some(s) = outage
        .iter()
        .filter(|s| s.estimate > over && s.step.kind != StepKind::Reboot)
        .max_by_key(|s| (s.estimate, Reverse(s.step.kind)))
    {
        if let EstimateSource::History { .. } = &s.estimate_source {
            // History is measured: only an explicit server estimate overrides it.
            options.push(format!(
                "if {kind} really takes less now, set `{}.{kind}` below {} (an explicit estimate wins over the history, which puts it at {}: {})",
                s.estimate_source.where_to_change(),
                fmt(s.estimate - over),
                fmt(s.estimate),
                s.estimate_source.describe(),
                kind = s.step.kind.name(),
            ));
        } else {
            let source = match &s.estimate_source {
                EstimateSource::BuiltIn => "built-in default".to_string(),
                other => format!("from {}", other.where_to_change()),
            };
            options.push(format!(
                "if {} really takes less, lower its estimate ({}, {source}) below {}",
                s.step.kind.name(),
                fmt(s.estimate),
                fmt(s.estimate - over)
            ));
        }
    }
    if final_step == FinalStep::Reboot
        && let Some(r) = outage.iter().find(|s| s.step.kind == StepKind::Reboot)
    {
        options.push(format!(
            "end with `final_step: start-services` instead of a reboot (saves about {})",
            fmt(r.estimate)
        ));
    }
    if predicted + Duration::from_secs(1) < threshold {
        options.push(format!(
            "raise `outage.budget` above {} (it must stay below the {} threshold)",
            fmt(predicted),
            fmt(threshold)
        ));
    } else {
        options.push(format!(
            "no budget can allow {}: it is not below the {} threshold",
            fmt(predicted),
            fmt(threshold)
        ));
    }
    options.join("; or ")
}

/// Who loses what while `server` is down for `predicted`.
pub(super) fn impact(
    pool: &Pool,
    server: &Server,
    predicted: Duration,
    threshold: Duration,
) -> Impact {
    let d = fmt(predicted);
    let (kind, front_ends, summary) = match &server.role {
        Role::StandardEdition => (
            ImpactKind::StandardEditionPoolDown,
            Vec::new(),
            format!(
                "Standard Edition pool {} is down for about {d}: the server is its own Front End, so its users notice at once, whatever the threshold.",
                pool.fqdn
            ),
        ),
        Role::BackEnd {
            mirror: Some(m), ..
        } if m.role == MirrorRole::Mirror => (
            ImpactKind::MirrorOnly,
            Vec::new(),
            format!(
                "The principal {} keeps serving pool {}; database mirroring is suspended for about {d}. No Front End server should lose its back end.",
                m.partner, pool.fqdn
            ),
        ),
        Role::BackEnd { mirror, .. } => {
            let fes: Vec<String> = pool.front_ends.iter().map(|f| f.fqdn.to_string()).collect();
            let who = match fes.len() {
                0 => format!("The Front End servers of pool {}", pool.fqdn),
                1 => format!("The Front End server of pool {} ({})", pool.fqdn, fes[0]),
                n => format!(
                    "The {n} Front End servers of pool {} ({})",
                    pool.fqdn,
                    fes.join(", ")
                ),
            };
            let against = if predicted < threshold {
                format!(
                    "below the {} threshold at which users drop into resiliency mode",
                    fmt(threshold)
                )
            } else {
                format!(
                    "NOT below the {} threshold: users would drop into resiliency mode",
                    fmt(threshold)
                )
            };
            let failover = match mirror {
                Some(m) if m.role == MirrorRole::Principal => format!(
                    " poolpatch does not fail over to the updated mirror {} first: failover is a later capability.",
                    m.partner
                ),
                _ => String::new(),
            };
            (
                ImpactKind::FrontEndsLoseBackEnd,
                fes,
                format!("{who} lose this back end for about {d}, {against}.{failover}"),
            )
        }
    };
    Impact {
        kind,
        pool: pool.fqdn.to_string(),
        front_ends,
        duration: predicted,
        summary,
    }
}

/// Notes for the whole plan, in a fixed order.
pub(super) fn notes(
    inventory: &Inventory,
    change: &Change,
    estate: &Estate,
    servers: &[ServerPlan],
) -> Vec<String> {
    let mut notes = vec![
        "Times are offsets from the start of the change. A server's slot starts with its preflight checks (no outage); its outage runs from stopping services to services verified running. Staging the installers happens before the first slot and is not on the timeline.".to_string(),
    ];
    let mirrored = servers.iter().any(|s| {
        matches!(
            &s.role,
            super::PlannedRole::BackEnd {
                mirror_role: Some(_),
                ..
            }
        )
    });
    if mirrored {
        notes.push("Mirrored back ends are patched mirror side first, then the principal, as in SQL Server's rolling order (update the mirror, fail over, update the former principal). poolpatch does not fail over yet (Invoke-CsDatabaseFailover is a later capability): while the principal is patched, its pool's Front End servers lose their back end.".into());
    }
    if change.outage.on_budget_exhausted == OnBudgetExhausted::Restore {
        notes.push(format!(
            "When an outage reaches the {} budget, the watchdog restores services; install-update and update-databases are never interrupted, so it restores as soon as they end.",
            fmt(change.outage.budget)
        ));
    } else {
        notes.push(format!(
            "on_budget_exhausted is `finish`: an outage that reaches the {} budget is reported, and the procedure goes on to the end.",
            fmt(change.outage.budget)
        ));
    }
    let reboot_risk = servers
        .iter()
        .filter(|s| {
            s.outage.verdict == Verdict::Fits
                && s.outage
                    .if_reboot_requested
                    .is_some_and(|d| d >= s.outage.budget)
        })
        .count();
    if reboot_risk > 0 {
        notes.push(format!(
            "If the installer asks for a reboot (exit 3010), the outage grows by the reboot estimate: for {reboot_risk} scheduled server{} that would reach the budget.",
            if reboot_risk == 1 { "" } else { "s" }
        ));
    }
    // `after:` pools the change does not cover are not waited for.
    for (pi, pool) in inventory.pools.iter().enumerate() {
        let Some(node) = estate.pool_at(pi).and_then(|id| estate.pool(id)) else {
            continue;
        };
        if node.in_scope == 0 {
            continue;
        }
        for a in &node.after {
            if estate.pool(*a).is_some_and(|p| p.in_scope == 0) {
                let after = &inventory.pools[a.index()].fqdn;
                notes.push(format!(
                    "Pool {} comes after pool {after}, which is out of scope: this change does not wait for it.",
                    pool.fqdn
                ));
            }
        }
    }
    let products: BTreeSet<&str> = servers.iter().map(|s| s.product.as_str()).collect();
    for product in change.update.installers.keys() {
        if !products.contains(product.name()) {
            notes.push(format!(
                "The installer for {} is listed, but no server in scope runs {}.",
                product.name(),
                product.display_name()
            ));
        }
    }
    for kind in StepKind::ALL {
        let Some(timeout) = change.timeouts.steps.get(&kind) else {
            continue;
        };
        let short: Vec<&ServerPlan> = servers
            .iter()
            .filter(|s| {
                s.steps
                    .preflight
                    .iter()
                    .chain(&s.steps.outage)
                    .any(|st| st.step.kind == kind && st.estimate > *timeout)
            })
            .collect();
        if let Some(first) = short.first() {
            notes.push(format!(
                "timeouts.steps.{} ({}) is shorter than the step's estimate on {} server{} (first: {}): expect it to time out.",
                kind.name(),
                fmt(*timeout),
                short.len(),
                if short.len() == 1 { "" } else { "s" },
                first.fqdn
            ));
        }
    }
    notes
}

/// Notes on the history of past runs, when the plan was given one: how estimates learn from
/// it and how many come from it, and explicit server estimates below what history shows.
pub(super) fn history_notes(history: Option<&History>, servers: &[ServerPlan]) -> Vec<String> {
    let Some(h) = history else {
        return Vec::new();
    };
    let p = h.policy();
    let mut from_history = 0;
    let mut servers_from_history = 0;
    let mut below = Vec::new();
    for s in servers {
        let steps: Vec<&PlannedStep> = s.steps.preflight.iter().chain(&s.steps.outage).collect();
        let n = steps
            .iter()
            .filter(|st| matches!(st.estimate_source, EstimateSource::History { .. }))
            .count();
        from_history += n;
        servers_from_history += usize::from(n > 0);
        let Ok(fqdn) = poolpatch_inventory::Fqdn::parse(&s.fqdn) else {
            continue;
        };
        for st in steps {
            if let EstimateSource::Server { server } = &st.estimate_source
                && let Some(e) = h.estimate(&fqdn, st.step.kind)
                && e.duration > st.estimate
            {
                below.push(format!(
                    "estimates.servers[\"{server}\"] sets {kind} to {}, below what its history shows ({}, p{} of {} in {} run{}): the explicit estimate wins; check it still holds.",
                    fmt(st.estimate),
                    fmt(e.duration),
                    e.percentile,
                    e.samples,
                    e.runs,
                    if e.runs == 1 { "" } else { "s" },
                    kind = st.step.kind.name(),
                ));
            }
        }
    }
    let runs = h.runs();
    let mut notes = vec![format!(
        "Estimates learn from the history of {runs} past run{}: a step of a server takes the {}th percentile of its own successful durations once it has at least {} of them (shown as `history p{} of N`); an `estimates.servers` entry still wins over it. {}",
        if runs == 1 { "" } else { "s" },
        p.percentile(),
        p.min_samples(),
        p.percentile(),
        if from_history == 0 {
            "No estimate of this plan comes from it.".to_string()
        } else {
            format!(
                "{from_history} step estimate{} on {servers_from_history} server{} {} from it.",
                if from_history == 1 { "" } else { "s" },
                if servers_from_history == 1 { "" } else { "s" },
                if from_history == 1 { "comes" } else { "come" }
            )
        }
    )];
    notes.extend(below);
    notes
}
