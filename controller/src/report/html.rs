//! The report as one self-contained HTML file: inline CSS and SVG, no script, nothing
//! fetched. The markup is XHTML-compatible (lower-case tags, every element closed, every
//! text escaped, only XML's own entities) so an XML parser reads the whole document, and
//! it prints: no dark backgrounds, a page break before each section, tables that wrap.

use std::fmt::Write as _;

use super::fmt::{diff, dur, pct};
use super::tables::{self, Table};
use super::timeline::{self, MaintenanceWindows};
use super::xml::esc;
use super::{Report, ReportKind, ServerReport, graph};

const CSS: &str = include_str!("report.css");

/// How a column's cells are shown.
#[derive(Clone, Copy, PartialEq)]
enum Cell {
    Plain,
    Num,
    Code,
    /// A result's name as a coloured badge.
    Badge,
    /// A percentage with a small bar.
    Meter,
}

fn badge(result: &str) -> String {
    format!(
        r#"<span class="badge b-{}">{}</span>"#,
        esc(result),
        esc(&result.replace('-', " "))
    )
}

fn meter(text: &str) -> String {
    let Some(p) = text.strip_suffix('%').and_then(|p| p.parse::<f64>().ok()) else {
        return esc(text);
    };
    let class = if p >= 100.0 {
        "meter over"
    } else if p >= 90.0 {
        "meter warn"
    } else {
        "meter"
    };
    format!(
        r#"<span class="{class}"><span style="width:{:.0}%"></span></span>{}"#,
        p.clamp(0.0, 100.0),
        esc(text)
    )
}

fn table(out: &mut String, t: &Table, styles: &[(usize, Cell)]) {
    let style = |i: usize| {
        styles
            .iter()
            .find(|(c, _)| *c == i)
            .map(|(_, s)| *s)
            .unwrap_or(if t.right.contains(&i) {
                Cell::Num
            } else {
                Cell::Plain
            })
    };
    out.push_str("<table><thead><tr>");
    for (i, h) in t.head.iter().enumerate() {
        let class = if matches!(style(i), Cell::Num | Cell::Meter) {
            r#" class="num""#
        } else {
            ""
        };
        let _ = write!(out, "<th{class}>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in &t.rows {
        out.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            let _ = match style(i) {
                Cell::Plain => write!(out, "<td>{}</td>", esc(c)),
                Cell::Num => write!(out, r#"<td class="num">{}</td>"#, esc(c)),
                Cell::Code => write!(out, r#"<td class="code">{}</td>"#, esc(c)),
                Cell::Badge => write!(out, "<td>{}</td>", badge(c)),
                Cell::Meter => write!(out, r#"<td class="num">{}</td>"#, meter(c)),
            };
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

fn card(out: &mut String, tone: &str, label: &str, value: &str, hint: &str) {
    let _ = write!(
        out,
        r#"<div class="card {tone}"><div class="label">{}</div><div class="value">{}</div><div class="hint">{}</div></div>"#,
        esc(label),
        esc(value),
        esc(hint)
    );
}

fn cards(out: &mut String, r: &Report) {
    let o = &r.overall;
    let c = &o.counts;
    out.push_str(r#"<div class="cards">"#);
    let longest = |out: &mut String, label: &str| match &o.longest_outage {
        Some(l) => {
            let tone = match l.budget_used_pct {
                Some(p) if p >= 100.0 => "bad",
                Some(p) if p >= 90.0 => "warn",
                _ => "good",
            };
            card(
                out,
                tone,
                label,
                &dur(l.outage_ms),
                &format!(
                    "{} · {} of the {} budget",
                    l.server,
                    pct(l.budget_used_pct),
                    dur(r.policy.budget_ms)
                ),
            );
        }
        None => card(out, "", label, "-", "no outage"),
    };
    match r.kind {
        ReportKind::Run => {
            let all = c.done == o.servers_in_scope;
            card(
                out,
                if all { "good" } else { "warn" },
                "Servers patched",
                &format!("{} / {}", c.done, o.servers_in_scope),
                &format!(
                    "{} failed · {} restored at budget · {} skipped · {} not started",
                    c.failed,
                    c.budget_exhausted,
                    c.skipped,
                    c.not_started + c.in_flight + c.not_scheduled
                ),
            );
            card(
                out,
                if o.breaches == 0 { "good" } else { "bad" },
                "Breaches",
                &o.breaches.to_string(),
                &format!(
                    "servers down for the {} threshold",
                    dur(r.policy.threshold_ms)
                ),
            );
            let (value, hint) = match o.actual_duration_ms {
                Some(a) => (
                    dur(a),
                    format!(
                        "predicted {} ({})",
                        dur(o.predicted_duration_ms),
                        diff(a, o.predicted_duration_ms)
                    ),
                ),
                None => ("-".into(), "nothing journaled".into()),
            };
            card(out, "", "Duration", &value, &hint);
            longest(out, "Longest outage");
            card(
                out,
                if o.watchdog_actions == 0 {
                    "good"
                } else {
                    "warn"
                },
                "Watchdog actions",
                &o.watchdog_actions.to_string(),
                &format!("at the budget: {}", r.policy.on_budget_exhausted),
            );
        }
        ReportKind::Plan => {
            let all = c.scheduled == o.servers_in_scope;
            card(
                out,
                if all { "good" } else { "warn" },
                "Servers scheduled",
                &format!("{} / {}", c.scheduled, o.servers_in_scope),
                &format!("{} not scheduled", c.not_scheduled),
            );
            card(
                out,
                "",
                "Predicted duration",
                &dur(o.predicted_duration_ms),
                &format!("{} pool(s) at once", r.policy.max_concurrent_pools),
            );
            longest(out, "Longest outage");
            card(
                out,
                "",
                "Outage budget",
                &dur(r.policy.budget_ms),
                &format!(
                    "per server; at the budget: {}",
                    r.policy.on_budget_exhausted
                ),
            );
            card(
                out,
                "",
                "Threshold",
                &dur(r.policy.threshold_ms),
                "users drop into resiliency mode",
            );
        }
    }
    out.push_str("</div>");
}

fn section(out: &mut String, id: &str, first: bool, title: &str, lead: &str) {
    let _ = write!(
        out,
        r#"<section id="{id}"{}><h2>{}</h2>"#,
        if first { r#" class="first""# } else { "" },
        esc(title)
    );
    if !lead.is_empty() {
        let _ = write!(out, r#"<p class="lead">{}</p>"#, esc(lead));
    }
}

fn server_detail(out: &mut String, r: &Report, s: &ServerReport) {
    let _ = write!(
        out,
        r#"<article class="server-detail" data-server="{}"><h3>{}<span class="pool">pool {}</span>{}</h3>"#,
        esc(&s.fqdn),
        esc(&s.fqdn),
        esc(&s.pool),
        badge(s.result.name())
    );
    let _ = write!(
        out,
        r#"<p class="summary">{}</p>"#,
        esc(&tables::server_line(r, s))
    );
    if !s.steps.is_empty() {
        let styles = match r.kind {
            ReportKind::Run => vec![(0, Cell::Code), (1, Cell::Num)],
            ReportKind::Plan => vec![(0, Cell::Code), (1, Cell::Num)],
        };
        out.push_str(r#"<div class="steps">"#);
        table(out, &tables::steps(r, s), &styles);
        out.push_str("</div>");
    }
    if let Some(f) = &s.failure {
        let at = f
            .step
            .map(|k| format!(" at {}", k.name()))
            .unwrap_or_default();
        let restored = if f.restored {
            "services restored"
        } else {
            "services NOT restored"
        };
        let _ = write!(
            out,
            r#"<div class="callout bad"><strong>Failed{}</strong>({}): {}"#,
            esc(&at),
            restored,
            esc(&f.reason)
        );
        for (label, tail) in [
            ("standard output, last lines", &f.stdout_tail),
            ("standard error, last lines", &f.stderr_tail),
        ] {
            if !tail.trim().is_empty() {
                let _ = write!(
                    out,
                    r#"<div class="tail-label">{label}</div><pre>{}</pre>"#,
                    esc(tail.trim_end())
                );
            }
        }
        out.push_str("</div>");
    }
    if r.kind == ReportKind::Run
        && let Some(l) = tables::left_to_do(s)
    {
        let _ = write!(
            out,
            r#"<p class="left"><strong>Left to do:</strong> {}</p>"#,
            esc(&l)
        );
    }
    out.push_str("</article>");
}

pub(crate) fn render(r: &Report) -> String {
    render_with(r, &MaintenanceWindows::new())
}

/// The document, with `windows` shaded on the timeline.
pub(crate) fn render_with(r: &Report, windows: &MaintenanceWindows) -> String {
    let run = r.kind == ReportKind::Run;
    let (eyebrow, title) = if run {
        ("poolpatch · outage report", "Outage report")
    } else {
        ("poolpatch · outage prediction", "Outage prediction")
    };
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<!DOCTYPE html>\n");
    out.push_str(r#"<html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head><meta charset="utf-8"/><meta name="viewport" content="width=device-width, initial-scale=1"/>"#);
    let _ = write!(
        out,
        "<title>{}</title><style>\n{CSS}</style></head><body>",
        esc(&format!("{title}: {}", r.change))
    );

    // Masthead.
    let mut sub = Vec::new();
    if let Some(d) = &r.source.run_dir {
        sub.push(format!("run {d}"));
    }
    if let Some(run) = &r.run {
        if let Some(t) = run.started_at {
            sub.push(format!("started {}", t.strftime("%Y-%m-%d %H:%M:%S UTC")));
        }
        if !run.operator.is_empty() {
            sub.push(format!("by {}", run.operator));
        }
    }
    sub.push(format!(
        "budget {} per server, threshold {}",
        dur(r.policy.budget_ms),
        dur(r.policy.threshold_ms)
    ));
    let outcome = r.overall.outcome.name();
    let _ = write!(
        out,
        r#"<header class="masthead"><div><div class="eyebrow">{}</div><h1>{}</h1><p class="sub">{}</p></div><div class="outcome {outcome}">{}</div></header>"#,
        esc(eyebrow),
        esc(&r.change),
        esc(&sub.join(" · ")),
        esc(&outcome.replace('-', " "))
    );
    if let Some(speed) = r.source.rehearsal_speed {
        let _ = write!(
            out,
            r#"<div class="callout info"><strong>Rehearsal:</strong>{}.</div>"#,
            esc(&tables::rehearsal_note(speed))
        );
    }
    for w in &r.warnings {
        let _ = write!(
            out,
            r#"<div class="callout warning"><strong>Warning:</strong>{}</div>"#,
            esc(w)
        );
    }

    // Summary.
    section(&mut out, "summary", true, "Summary", "");
    cards(&mut out, r);
    out.push_str(r#"<table class="kv"><tbody>"#);
    for (k, v) in tables::overview(r) {
        let _ = write!(out, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v));
    }
    out.push_str("</tbody></table>");
    if !r.notes.is_empty() {
        out.push_str(r#"<ul class="notes">"#);
        for n in &r.notes {
            let _ = write!(out, "<li>{}</li>", esc(n));
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");

    // Timeline.
    let lead = if run {
        "One row per server, by site and pool. The outline is the plan's predicted outage, the filled bar the actual one (in the plan's time); the dashed and solid lines are the budget and the threshold, measured from the start of the outage."
    } else {
        "One row per server, by site and pool: each predicted outage on the plan's timeline, with the budget (dashed) and the threshold (solid) measured from the start of the outage."
    };
    section(&mut out, "timeline", false, "Timeline", lead);
    let _ = write!(
        out,
        r#"<div class="figure">{}</div></section>"#,
        timeline::svg(r, windows)
    );

    // Breaches.
    if run {
        section(&mut out, "breaches", false, "Breaches", "");
        if r.breaches.is_empty() {
            let _ = write!(
                out,
                r#"<div class="callout good"><strong>None.</strong>No server was down for the {} resiliency threshold.</div>"#,
                esc(&dur(r.policy.threshold_ms))
            );
        }
        for b in &r.breaches {
            let _ = write!(
                out,
                r#"<div class="callout bad" data-breach="{}"><strong>Breach:</strong>{}</div>"#,
                esc(&b.server),
                esc(&b.explanation)
            );
        }
        out.push_str("</section>");
    }

    // Not patched.
    let (id, heading) = if run {
        ("not-patched", "Not patched")
    } else {
        ("not-scheduled", "Not scheduled")
    };
    section(&mut out, id, false, heading, "");
    if r.not_patched.is_empty() {
        let _ = write!(
            out,
            r#"<div class="callout good"><strong>None.</strong>Every server in scope is {}.</div>"#,
            if run { "patched" } else { "scheduled" }
        );
    } else {
        table(&mut out, &tables::not_patched(r), &[(2, Cell::Badge)]);
    }
    out.push_str("</section>");

    // What happened to the run as a whole.
    if !r.log.is_empty() {
        section(
            &mut out,
            "log",
            false,
            "Run log",
            "The run's own events: start, resumes after a stop, pauses and aborts, maintenance-window waits, stages, halts, the end.",
        );
        table(&mut out, &tables::log(r), &[(1, Cell::Num)]);
        out.push_str("</section>");
    }

    // Pools and servers.
    section(&mut out, "pools", false, "Pools", "");
    table(&mut out, &tables::pools(r), &[]);
    out.push_str("</section>");
    section(&mut out, "servers", false, "Servers", "");
    let styles = if run {
        vec![(2, Cell::Badge), (5, Cell::Meter)]
    } else {
        vec![(4, Cell::Meter)]
    };
    table(&mut out, &tables::servers(r), &styles);
    out.push_str("</section>");

    // The graph.
    section(
        &mut out,
        "graph",
        false,
        "Dependency graph",
        "Sites as columns, pools as boxes with their servers in the order they are patched. Edges: mirror partners, paired pools, and the after: ordering between pools.",
    );
    let _ = write!(
        out,
        r#"<div class="figure">{}</div></section>"#,
        graph::svg(r)
    );

    // Every server: what happened step by step, or (a plan) every step's estimate.
    if run {
        section(&mut out, "details", false, "Servers in detail", "");
        for s in &r.servers {
            server_detail(&mut out, r, s);
        }
    } else {
        section(
            &mut out,
            "estimates",
            false,
            "Estimates per step",
            "The outage steps of every server in the order they run, with the plan's estimates; the outage is their sum.",
        );
        let mut styles = vec![(0, Cell::Plain)];
        let t = tables::estimates(r);
        styles.extend((1..t.head.len()).map(|i| (i, Cell::Num)));
        out.push_str(r#"<div class="wide">"#);
        table(&mut out, &t, &styles);
        out.push_str("</div>");
    }
    out.push_str("</section>");

    let _ = writeln!(
        out,
        "<footer>Generated by poolpatch {} from {} (schema {}; plan schema {}{}).</footer></body></html>",
        esc(env!("CARGO_PKG_VERSION")),
        esc(r.source.run_dir.as_deref().unwrap_or("the plan")),
        esc(&r.schema),
        esc(&r.source.plan_schema),
        if run {
            format!("; {} journal records", r.source.journal_records)
        } else {
            String::new()
        }
    );
    out
}
