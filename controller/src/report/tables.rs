//! The report's tables as plain cells, shared by the text, Markdown and HTML renderers so
//! that all three say the same thing.

use super::fmt::{diff, dur, exit, offset, pct};
use super::{Report, ReportKind, ServerReport, ServerResult};

/// A table: a header, rows of cells, the columns to right-align.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub head: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    pub right: Vec<usize>,
}

fn or_dash(s: Option<String>) -> String {
    s.unwrap_or_else(|| "-".into())
}

/// The headline facts, as label and value.
pub(crate) fn overview(r: &Report) -> Vec<(&'static str, String)> {
    let o = &r.overall;
    let c = &o.counts;
    let p = &r.policy;
    let mut rows = Vec::new();
    if let Some(d) = &r.source.run_dir {
        rows.push(("Run", d.clone()));
    }
    rows.push(("Outcome", o.outcome.name().to_string()));
    if let Some(speed) = r.source.rehearsal_speed {
        rows.push(("Rehearsal", rehearsal_note(speed)));
    }
    if let Some(run) = &r.run {
        let started = run
            .started_at
            .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| "-".into());
        let by = if run.operator.is_empty() {
            String::new()
        } else {
            format!(" by {}", run.operator)
        };
        rows.push(("Started", format!("{started}{by}")));
        if let Some(h) = &run.halted {
            rows.push(("Halted", h.clone()));
        }
    }
    rows.push((
        "Duration",
        match o.actual_duration_ms {
            Some(a) => format!(
                "{} actual, {} predicted ({})",
                dur(a),
                dur(o.predicted_duration_ms),
                diff(a, o.predicted_duration_ms)
            ),
            None => format!("{} predicted", dur(o.predicted_duration_ms)),
        },
    ));
    rows.push((
        "Outage budget",
        format!(
            "{} per server, below the {} resiliency threshold; at the budget: {}; on failure: {}; {} pool(s) at once",
            dur(p.budget_ms),
            dur(p.threshold_ms),
            p.on_budget_exhausted,
            p.on_failure,
            p.max_concurrent_pools
        ),
    ));
    let servers = match r.kind {
        ReportKind::Plan => format!(
            "{} in scope: {} scheduled, {} not scheduled; {} out of scope",
            o.servers_in_scope, c.scheduled, c.not_scheduled, o.servers_out_of_scope
        ),
        ReportKind::Run => format!(
            "{} in scope: {} done, {} failed, {} budget exhausted, {} skipped, {} in flight, {} not started, {} not scheduled; {} out of scope",
            o.servers_in_scope,
            c.done,
            c.failed,
            c.budget_exhausted,
            c.skipped,
            c.in_flight,
            c.not_started,
            c.not_scheduled,
            o.servers_out_of_scope
        ),
    };
    rows.push(("Servers", servers));
    if r.kind == ReportKind::Run {
        rows.push((
            "Breaches",
            if o.breaches == 0 {
                "none: no server reached the threshold".to_string()
            } else {
                format!("{} (explained below)", o.breaches)
            },
        ));
        rows.push(("Watchdog actions", o.watchdog_actions.to_string()));
    }
    if let Some(l) = &o.longest_outage {
        rows.push((
            match r.kind {
                ReportKind::Plan => "Longest predicted outage",
                ReportKind::Run => "Longest outage",
            },
            format!(
                "{} on {} ({} of the budget)",
                dur(l.outage_ms),
                l.server,
                pct(l.budget_used_pct)
            ),
        ));
    }
    rows
}

/// What a rehearsal's report must say about its time.
pub(crate) fn rehearsal_note(speed: f64) -> String {
    format!(
        "simulated at {speed}x speed: durations are multiplied by {speed} to read in the plan's time"
    )
}

/// The plan's estimate of every outage step, a row per scheduled server (a plan's report).
pub(crate) fn estimates(r: &Report) -> Table {
    let mut kinds: Vec<poolpatch_plans::procedure::StepKind> = Vec::new();
    for s in &r.servers {
        for st in &s.steps {
            if !kinds.contains(&st.kind) {
                kinds.push(st.kind);
            }
        }
    }
    kinds.sort();
    let mut head = vec!["Server"];
    head.extend(kinds.iter().map(|k| k.name()));
    head.push("Outage");
    let rows = r
        .servers
        .iter()
        .filter(|s| !s.steps.is_empty())
        .map(|s| {
            let mut row = vec![s.fqdn.clone()];
            for k in &kinds {
                row.push(or_dash(
                    s.steps
                        .iter()
                        .find(|st| st.kind == *k)
                        .and_then(|st| st.estimate_ms)
                        .map(dur),
                ));
            }
            row.push(dur(s.predicted.outage_ms));
            row
        })
        .collect();
    Table {
        right: (1..head.len()).collect(),
        head,
        rows,
    }
}

/// Pools in scope.
pub(crate) fn pools(r: &Report) -> Table {
    let pools = r.pools.iter().filter(|p| p.plan_status != "out-of-scope");
    match r.kind {
        ReportKind::Plan => Table {
            head: vec!["Pool", "Site", "Servers", "Window", "Duration", "Plan"],
            rows: pools
                .map(|p| {
                    vec![
                        p.fqdn.clone(),
                        p.site.clone(),
                        p.servers.len().to_string(),
                        or_dash(
                            p.predicted
                                .map(|s| format!("{} - {}", offset(s.start_ms), offset(s.end_ms))),
                        ),
                        or_dash(p.predicted.map(|s| dur(s.duration_ms))),
                        p.plan_status.clone(),
                    ]
                })
                .collect(),
            right: vec![2, 4],
        },
        ReportKind::Run => Table {
            head: vec![
                "Pool",
                "Site",
                "Done",
                "Predicted",
                "Actual",
                "Difference",
                "Breaches",
                "Note",
            ],
            rows: pools
                .map(|p| {
                    let note = match (&p.halted, p.plan_status.as_str()) {
                        (Some(h), _) => format!("halted: {h}"),
                        (None, "complete") => String::new(),
                        (None, s) => format!("plan: {s}"),
                    };
                    vec![
                        p.fqdn.clone(),
                        p.site.clone(),
                        format!("{}/{}", p.servers_done, p.servers.len()),
                        or_dash(p.predicted.map(|s| dur(s.duration_ms))),
                        or_dash(p.actual.map(|s| dur(s.duration_ms))),
                        match (p.actual, p.predicted) {
                            (Some(a), Some(b)) => diff(a.duration_ms, b.duration_ms),
                            _ => "-".into(),
                        },
                        p.breaches.to_string(),
                        note,
                    ]
                })
                .collect(),
            right: vec![2, 3, 4, 5, 6],
        },
    }
}

/// A server's actual outage in words: `24m 10s`, `>= 26m (not ended)`, `-`.
pub(crate) fn actual_outage(s: &ServerReport) -> String {
    match &s.actual {
        Some(a) => match (a.outage_ms, a.down_at_least_ms) {
            (Some(o), _) => dur(o),
            (None, Some(d)) => format!(">= {} (not ended)", dur(d)),
            (None, None) => "-".into(),
        },
        None => "-".into(),
    }
}

/// Watchdog actions in words: `restore at 25m`.
pub(crate) fn watchdog(s: &ServerReport) -> String {
    if s.watchdog.is_empty() {
        return "-".into();
    }
    s.watchdog
        .iter()
        .map(|w| {
            let action = match w.action {
                crate::journal::WatchdogAction::Restore => "restore",
                crate::journal::WatchdogAction::Finish => "finish",
            };
            format!("{action} at {}", dur(w.down_ms))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every server.
pub(crate) fn servers(r: &Report) -> Table {
    match r.kind {
        ReportKind::Plan => Table {
            head: vec![
                "Server",
                "Pool",
                "Role",
                "Outage",
                "Budget used",
                "Verdict",
                "Window",
            ],
            rows: r
                .servers
                .iter()
                .map(|s| {
                    vec![
                        s.fqdn.clone(),
                        s.pool.clone(),
                        s.role.description.clone(),
                        dur(s.predicted.outage_ms),
                        pct(s.predicted.budget_used_pct),
                        s.predicted.verdict.clone(),
                        or_dash(s.predicted.window.map(|w| {
                            format!("{} - {}", offset(w.outage_start_ms), offset(w.end_ms))
                        })),
                    ]
                })
                .collect(),
            right: vec![3, 4],
        },
        ReportKind::Run => Table {
            head: vec![
                "Server",
                "Pool",
                "Result",
                "Predicted",
                "Actual",
                "Budget used",
                "Watchdog",
                "Breach",
            ],
            rows: r
                .servers
                .iter()
                .map(|s| {
                    let breach = match s.breaches.first() {
                        Some(b) => format!("at {}", offset(b.at_ms)),
                        None => "-".into(),
                    };
                    vec![
                        s.fqdn.clone(),
                        s.pool.clone(),
                        s.result.name().to_string(),
                        if s.predicted.scheduled {
                            dur(s.predicted.outage_ms)
                        } else {
                            "-".into()
                        },
                        actual_outage(s),
                        pct(s.actual.as_ref().and_then(|a| a.budget_used_pct)),
                        watchdog(s),
                        breach,
                    ]
                })
                .collect(),
            right: vec![3, 4, 5],
        },
    }
}

/// The run log.
pub(crate) fn log(r: &Report) -> Table {
    Table {
        head: vec!["At", "Time", "Server", "What"],
        rows: r
            .log
            .iter()
            .map(|l| {
                vec![
                    offset(l.at_ms),
                    l.at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
                    l.server.clone().unwrap_or_else(|| "-".into()),
                    l.text.clone(),
                ]
            })
            .collect(),
        right: vec![0],
    }
}

/// Servers not patched and why.
pub(crate) fn not_patched(r: &Report) -> Table {
    Table {
        head: vec!["Server", "Pool", "Result", "Source", "Why", "Fix"],
        rows: r
            .not_patched
            .iter()
            .map(|n| {
                vec![
                    n.server.clone(),
                    n.pool.clone(),
                    n.result.name().to_string(),
                    n.source.clone(),
                    n.reason.clone(),
                    n.fix.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect(),
        right: vec![],
    }
}

/// A server's steps against their estimates.
pub(crate) fn steps(r: &Report, s: &ServerReport) -> Table {
    match r.kind {
        ReportKind::Plan => Table {
            head: vec!["Step", "At", "Estimate"],
            rows: s
                .steps
                .iter()
                .map(|st| {
                    vec![
                        st.kind.name().to_string(),
                        or_dash(st.started_ms.map(offset)),
                        or_dash(st.estimate_ms.map(dur)),
                    ]
                })
                .collect(),
            right: vec![2],
        },
        ReportKind::Run => Table {
            head: vec![
                "Step",
                "Started",
                "Estimate",
                "Actual",
                "Difference",
                "Exit",
            ],
            rows: s
                .steps
                .iter()
                .map(|st| {
                    let name = if st.recovery {
                        format!("{} (recovery)", st.kind.name())
                    } else {
                        st.kind.name().to_string()
                    };
                    let exit = match (&st.exit, st.ok) {
                        (Some(e), _) if st.note.is_some() => {
                            format!("{} ({})", exit(e), st.note.as_deref().unwrap_or(""))
                        }
                        (Some(e), Some(false)) => format!("{} FAILED", exit(e)),
                        (Some(e), _) => exit(e),
                        (None, _) => "did not end".into(),
                    };
                    vec![
                        name,
                        or_dash(st.started_ms.map(offset)),
                        or_dash(st.estimate_ms.map(dur)),
                        or_dash(st.duration_ms.map(dur)),
                        or_dash(st.delta_ms.map(super::fmt::delta)),
                        exit,
                    ]
                })
                .collect(),
            right: vec![2, 3, 4],
        },
    }
}

/// A server's one-line summary: `done: outage 24m 10s of the 25m budget (96.7%)`.
pub(crate) fn server_line(r: &Report, s: &ServerReport) -> String {
    let budget = dur(s.predicted.budget_ms);
    match (r.kind, s.result) {
        (ReportKind::Plan, ServerResult::Scheduled) => format!(
            "{}: {} predicted outage of the {budget} budget ({})",
            s.role.description,
            dur(s.predicted.outage_ms),
            pct(s.predicted.budget_used_pct)
        ),
        (ReportKind::Plan, _) => format!("{}: not scheduled", s.role.description),
        (ReportKind::Run, res) => {
            let outage = match &s.actual {
                Some(a) if a.outage_ms.is_some() || a.down_at_least_ms.is_some() => format!(
                    ", outage {} of the {budget} budget ({}), {} predicted",
                    actual_outage(s),
                    pct(a.budget_used_pct),
                    dur(s.predicted.outage_ms)
                ),
                _ => String::new(),
            };
            let reboot = if s.reboot_requested {
                "; the installer asked for a reboot"
            } else {
                ""
            };
            format!("{}: {}{outage}{reboot}", s.role.description, res.name())
        }
    }
}

/// The steps left to do, in words.
pub(crate) fn left_to_do(s: &ServerReport) -> Option<String> {
    if s.left_to_do.is_empty() || s.result == ServerResult::Done {
        return None;
    }
    Some(
        s.left_to_do
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", "),
    )
}
