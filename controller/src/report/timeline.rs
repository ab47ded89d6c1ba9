//! The timeline as SVG: a row per server, grouped by site then pool. Each row shows the
//! predicted outage (an outline) and the actual one (filled, coloured by the result), the
//! preflight before it (a thin line), the budget and the threshold as markers measured from
//! the outage's start, and the watchdog's and breach alarms' moments.
//!
//! The x axis is time since the start (the run's, or the plan's first slot), in the plan's
//! time. Every length is proportional to a duration: `x = ORIGIN_X + ms * px_per_ms`. The
//! plot group carries both numbers (`data-origin-x`, `data-px-per-ms`) so tests can check.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::fmt::dur;
use super::svg::{self, INK, MUTED, PREDICTED, fits, result_colour, text};
use super::xml::{clip, esc, num};
use super::{PoolReport, Report, ReportKind, ServerReport, ServerResult, Span};

/// The drawing's width.
const WIDTH: f64 = 1160.0;
/// Where server names start.
const LABEL_X: f64 = 14.0;
/// Where time 0 is.
const ORIGIN_X: f64 = 300.0;
/// Where the plot ends.
const PLOT_END_X: f64 = 990.0;
/// Where the outage figures are written.
const FIGURE_X: f64 = 1030.0;

const ROW_H: f64 = 30.0;
const SITE_H: f64 = 26.0;
const POOL_H: f64 = 20.0;

/// Colours (presentation attributes, so the SVG looks the same outside the page).
pub(crate) const PREDICTED_FILL: &str = "#dbeafe";
pub(crate) const BUDGET: &str = "#d97706";
pub(crate) const THRESHOLD: &str = "#dc2626";
const GRID: &str = "#e5e7eb";

/// Maintenance windows to shade on the timeline: per server (FQDN), spans of the timeline
/// (offsets from its start), derived from the plan's openings by the CLI
/// (`cli::report::maintenance_windows`).
pub type MaintenanceWindows = BTreeMap<String, Vec<Span>>;

/// A row of the drawing.
enum Row<'a> {
    Site(&'a str),
    Pool(&'a PoolReport),
    Server(&'a ServerReport),
}

/// Sites in order of first appearance, each with its pools and their servers in patch order;
/// servers whose pool is not in the plan come last.
fn rows(r: &Report) -> Vec<Row<'_>> {
    let mut sites: Vec<&str> = Vec::new();
    for p in &r.pools {
        if !sites.contains(&p.site.as_str()) && r.servers.iter().any(|s| s.pool == p.fqdn) {
            sites.push(&p.site);
        }
    }
    let mut out = Vec::new();
    let mut placed: Vec<&str> = Vec::new();
    for site in sites {
        out.push(Row::Site(site));
        for p in r.pools.iter().filter(|p| p.site == site) {
            let mine: Vec<&ServerReport> = p
                .servers
                .iter()
                .filter_map(|f| r.servers.iter().find(|s| &s.fqdn == f))
                .chain(
                    r.servers
                        .iter()
                        .filter(|s| s.pool == p.fqdn && !p.servers.contains(&s.fqdn)),
                )
                .collect();
            if mine.is_empty() {
                continue;
            }
            out.push(Row::Pool(p));
            for s in mine {
                placed.push(&s.fqdn);
                out.push(Row::Server(s));
            }
        }
    }
    let rest: Vec<&ServerReport> = r
        .servers
        .iter()
        .filter(|s| !placed.contains(&s.fqdn.as_str()))
        .collect();
    if !rest.is_empty() {
        out.push(Row::Site("not in the plan"));
        out.extend(rest.into_iter().map(Row::Server));
    }
    out
}

/// Where a server's markers are measured from: its actual outage start, else its predicted.
fn reference_start(s: &ServerReport) -> Option<u64> {
    s.actual
        .as_ref()
        .and_then(|a| a.outage_start_ms)
        .or(s.predicted.window.map(|w| w.outage_start_ms))
}

/// The end of the actual outage bar and whether the outage ended.
fn actual_bar(s: &ServerReport, end_ms: u64) -> Option<(u64, u64, bool)> {
    let a = s.actual.as_ref()?;
    let start = a.outage_start_ms?;
    Some(match a.outage_end_ms {
        Some(e) => (start, e.max(start), true),
        None => (start, end_ms.max(start), false),
    })
}

/// The latest moment the drawing must show.
fn span_ms(r: &Report) -> u64 {
    let end = r.overall.actual_duration_ms.unwrap_or(0);
    let mut m = r.overall.predicted_duration_ms.max(end);
    for s in &r.servers {
        if let Some(w) = s.predicted.window {
            m = m.max(w.end_ms);
        }
        if let Some(a) = &s.actual {
            m = m.max(a.last_event_ms);
        }
        if let Some(start) = reference_start(s) {
            m = m.max(start.saturating_add(r.policy.threshold_ms.max(r.policy.budget_ms)));
        }
    }
    m.max(1000)
}

/// A step for the axis' ticks: at most about ten labels.
fn tick_step(span: u64) -> u64 {
    const STEPS: [u64; 16] = [
        1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000,
        1_800_000, 3_600_000, 7_200_000, 21_600_000, 43_200_000,
    ];
    STEPS
        .into_iter()
        .find(|s| span / s <= 10)
        .unwrap_or_else(|| span.div_ceil(10).max(1))
}

fn tick_label(ms: u64, step: u64) -> String {
    let secs = ms / 1000;
    if step < 60_000 {
        format!("{}:{:02}", secs / 60, secs % 60)
    } else {
        format!("{}:{:02}", secs / 3600, (secs / 60) % 60)
    }
}

struct Scale {
    px_per_ms: f64,
}

impl Scale {
    fn x(&self, ms: u64) -> f64 {
        ORIGIN_X + ms as f64 * self.px_per_ms
    }
    fn w(&self, ms: u64) -> f64 {
        ms as f64 * self.px_per_ms
    }
}

/// The legend along the top; returns its height.
fn legend(out: &mut String, kind: ReportKind) -> f64 {
    let mut items: Vec<(&str, String)> = vec![(
        "predicted outage",
        format!(
            r#"<rect x="0" y="3" width="22" height="8" fill="{PREDICTED_FILL}" stroke="{PREDICTED}" stroke-width="1.2"/>"#
        ),
    )];
    if kind == ReportKind::Run {
        for (label, r) in [
            ("done", ServerResult::Done),
            ("failed", ServerResult::Failed),
            ("restored at budget", ServerResult::BudgetExhausted),
        ] {
            items.push((
                label,
                format!(
                    r#"<rect x="0" y="2" width="22" height="10" fill="{}"/>"#,
                    result_colour(r)
                ),
            ));
        }
        items.push((
            "not ended",
            r##"<rect x="0" y="2" width="22" height="10" fill="url(#tl-hatch)" stroke="#7c3aed"/>"##.into(),
        ));
    }
    items.push((
        "preflight",
        format!(r#"<line x1="0" y1="7" x2="22" y2="7" stroke="{MUTED}" stroke-width="2"/>"#),
    ));
    items.push((
        "budget",
        format!(
            r#"<line x1="11" y1="0" x2="11" y2="14" stroke="{BUDGET}" stroke-width="2" stroke-dasharray="3 2"/>"#
        ),
    ));
    items.push((
        "threshold",
        format!(r#"<line x1="11" y1="0" x2="11" y2="14" stroke="{THRESHOLD}" stroke-width="2"/>"#),
    ));
    if kind == ReportKind::Run {
        items.push((
            "watchdog",
            format!(r#"<path d="M5 1 L17 1 L11 11 Z" fill="{BUDGET}"/>"#),
        ));
        items.push((
            "breach",
            format!(r#"<path d="M11 0 L18 7 L11 14 L4 7 Z" fill="{THRESHOLD}" stroke="white"/>"#),
        ));
    }
    let items: Vec<(String, String)> = items
        .into_iter()
        .map(|(label, glyph)| (label.to_string(), glyph))
        .collect();
    svg::legend(out, &items, LABEL_X, WIDTH - LABEL_X)
}

/// The timeline of `r` as an `<svg>` element, with `windows` shaded behind their rows.
pub(crate) fn svg(r: &Report, windows: &MaintenanceWindows) -> String {
    let rows = rows(r);
    let span = span_ms(r);
    let step = tick_step(span);
    let axis_end = span.div_ceil(step).saturating_mul(step);
    let scale = Scale {
        px_per_ms: (PLOT_END_X - ORIGIN_X) / axis_end as f64,
    };
    let end_ms = r.overall.actual_duration_ms.unwrap_or(0);

    let mut body = String::new();
    let top = legend(&mut body, r.kind);
    let axis_y = top + 14.0;
    let mut y = axis_y + 10.0;
    let mut rows_svg = String::new();
    for row in &rows {
        match row {
            Row::Site(site) => {
                let _ = write!(
                    rows_svg,
                    r##"<rect class="site-band" x="0" y="{}" width="{}" height="{}" fill="#f3f4f6"/>"##,
                    num(y + 2.0),
                    num(WIDTH),
                    num(SITE_H - 4.0)
                );
                let label = clip(site, fits(ORIGIN_X - LABEL_X - 10.0, 13.0));
                text(
                    &mut rows_svg,
                    LABEL_X,
                    y + 18.0,
                    13.0,
                    &format!(r#"class="site" font-weight="700" fill="{INK}""#),
                    &label,
                );
                y += SITE_H;
            }
            Row::Pool(pool) => {
                let kind = if pool.edition == "standard" {
                    " (SE)"
                } else {
                    ""
                };
                let label = clip(
                    &format!("pool {}{kind}", pool.fqdn),
                    fits(ORIGIN_X - LABEL_X - 14.0, 11.0),
                );
                text(
                    &mut rows_svg,
                    LABEL_X + 4.0,
                    y + 14.0,
                    11.0,
                    &format!(r#"class="pool" fill="{MUTED}""#),
                    &label,
                );
                y += POOL_H;
            }
            Row::Server(s) => {
                let empty = Vec::new();
                let w = windows.get(&s.fqdn).unwrap_or(&empty);
                server_row(&mut rows_svg, r, s, y, &scale, end_ms, w);
                y += ROW_H;
            }
        }
    }
    let plot_bottom = y + 4.0;

    // Grid and axis labels, above and below the rows.
    let mut grid = String::new();
    let mut t = 0;
    while t <= axis_end {
        let x = scale.x(t);
        let _ = write!(
            grid,
            r#"<line class="tick" data-ms="{t}" x1="{}" y1="{}" x2="{}" y2="{}" stroke="{GRID}" stroke-width="1"/>"#,
            num(x),
            num(axis_y + 4.0),
            num(x),
            num(plot_bottom)
        );
        let label = tick_label(t, step);
        let attrs = format!(r#"text-anchor="middle" fill="{MUTED}""#);
        text(&mut grid, x, axis_y, 10.0, &attrs, &label);
        text(&mut grid, x, plot_bottom + 14.0, 10.0, &attrs, &label);
        match t.checked_add(step) {
            Some(next) => t = next,
            None => break,
        }
    }
    let unit = if step < 60_000 { "m:ss" } else { "h:mm" };
    let axis_title = format!("time since the start ({unit})");
    text(
        &mut grid,
        LABEL_X,
        axis_y,
        10.0,
        &format!(r#"class="axis-title" fill="{MUTED}""#),
        &axis_title,
    );
    let figures = match r.kind {
        ReportKind::Run => "outage (budget used)",
        ReportKind::Plan => "predicted (budget)",
    };
    text(
        &mut grid,
        FIGURE_X,
        axis_y,
        10.0,
        &format!(r#"class="figures-title" fill="{MUTED}""#),
        figures,
    );
    if r.kind == ReportKind::Run && r.run.as_ref().is_some_and(|run| !run.finished) {
        let x = scale.x(end_ms);
        let _ = write!(
            grid,
            r#"<line class="journal-end" x1="{}" y1="{}" x2="{}" y2="{}" stroke="{INK}" stroke-width="1" stroke-dasharray="2 3"/>"#,
            num(x),
            num(axis_y + 4.0),
            num(x),
            num(plot_bottom)
        );
    }
    let height = plot_bottom + 24.0;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="timeline of every server's outage" font-family="Segoe UI, Helvetica, Arial, sans-serif">"#,
        num(WIDTH),
        num(height),
        num(WIDTH),
        num(height)
    );
    let _ = write!(
        out,
        r##"<defs><pattern id="tl-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#ede9fe"/><line x1="0" y1="0" x2="0" y2="6" stroke="#7c3aed" stroke-width="3"/></pattern><pattern id="tl-window" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)"><rect width="8" height="8" fill="#ecfdf5"/><line x1="0" y1="0" x2="0" y2="8" stroke="#a7f3d0" stroke-width="2"/></pattern></defs>"##
    );
    out.push_str(&body);
    let _ = write!(
        out,
        r#"<g class="plot" data-origin-x="{}" data-px-per-ms="{}">"#,
        num(ORIGIN_X),
        scale.px_per_ms
    );
    out.push_str(&grid);
    out.push_str(&rows_svg);
    out.push_str("</g></svg>");
    out
}

/// Maintenance windows behind a row (see [`MaintenanceWindows`]).
fn maintenance_shading(out: &mut String, windows: &[Span], y: f64, scale: &Scale) {
    for w in windows {
        let _ = write!(
            out,
            r#"<rect class="maintenance" data-start-ms="{}" data-end-ms="{}" x="{}" y="{}" width="{}" height="{}" fill="url(#tl-window)"/>"#,
            w.start_ms,
            w.end_ms,
            num(scale.x(w.start_ms)),
            num(y + 1.0),
            num(scale.w(w.duration_ms)),
            num(ROW_H - 2.0)
        );
    }
}

fn server_row(
    out: &mut String,
    r: &Report,
    s: &ServerReport,
    y: f64,
    scale: &Scale,
    end_ms: u64,
    windows: &[Span],
) {
    let _ = write!(
        out,
        r#"<g class="row" data-server="{}" data-result="{}">"#,
        esc(&s.fqdn),
        s.result.name()
    );
    let _ = write!(
        out,
        "<title>{}</title>",
        esc(&format!("{}: {}", s.fqdn, s.result.name()))
    );
    let _ = write!(
        out,
        r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{GRID}" stroke-width="0.5"/>"#,
        num(LABEL_X),
        num(y + ROW_H),
        num(WIDTH - LABEL_X),
        num(y + ROW_H)
    );
    maintenance_shading(out, windows, y, scale);
    let name = clip(&s.fqdn, fits(ORIGIN_X - LABEL_X - 24.0, 12.0));
    text(
        out,
        LABEL_X + 10.0,
        y + 19.0,
        12.0,
        &format!(r#"class="server" fill="{INK}""#),
        &name,
    );

    let run = r.kind == ReportKind::Run;
    // Predicted: the upper bar (the only one in a plan's report).
    let (py, ph) = if run { (y + 5.0, 8.0) } else { (y + 8.0, 14.0) };
    if let Some(w) = s.predicted.window {
        if w.outage_start_ms > w.start_ms {
            let _ = write!(
                out,
                r#"<line class="preflight predicted" x1="{}" y1="{}" x2="{}" y2="{}" stroke="{MUTED}" stroke-width="2"/>"#,
                num(scale.x(w.start_ms)),
                num(py + ph / 2.0),
                num(scale.x(w.outage_start_ms)),
                num(py + ph / 2.0)
            );
        }
        let len = w.end_ms.saturating_sub(w.outage_start_ms);
        let _ = write!(
            out,
            r#"<rect class="bar predicted" x="{}" y="{}" width="{}" height="{}" rx="2" fill="{PREDICTED_FILL}" stroke="{PREDICTED}" stroke-width="1.2"/>"#,
            num(scale.x(w.outage_start_ms)),
            num(py),
            num(scale.w(len).max(1.0)),
            num(ph)
        );
    }
    // Actual: the lower bar, filled by the result; hatched when the outage did not end.
    if run {
        let ay = y + 15.0;
        if let Some(a) = &s.actual
            && let Some(end) = a.preflight_end_ms.or(a.outage_start_ms)
            && end > a.started_ms
        {
            let _ = write!(
                out,
                r#"<line class="preflight actual" x1="{}" y1="{}" x2="{}" y2="{}" stroke="{MUTED}" stroke-width="2"/>"#,
                num(scale.x(a.started_ms)),
                num(ay + 5.0),
                num(scale.x(end)),
                num(ay + 5.0)
            );
        }
        if let Some((start, end, ended)) = actual_bar(s, end_ms) {
            let fill = if ended {
                result_colour(s.result).to_string()
            } else {
                "url(#tl-hatch)".to_string()
            };
            let _ = write!(
                out,
                r##"<rect class="bar actual" data-ended="{ended}" x="{}" y="{}" width="{}" height="10" rx="2" fill="{fill}" stroke="{}" stroke-width="{}"/>"##,
                num(scale.x(start)),
                num(ay),
                num(scale.w(end.saturating_sub(start)).max(1.0)),
                if ended { "none" } else { "#7c3aed" },
                if ended { "0" } else { "1" },
            );
        }
    }
    // Budget and threshold, measured from the outage's start.
    if let Some(start) = reference_start(s) {
        for (class, at, colour, dash) in [
            (
                "budget",
                r.policy.budget_ms,
                BUDGET,
                r#" stroke-dasharray="3 2""#,
            ),
            ("threshold", r.policy.threshold_ms, THRESHOLD, ""),
        ] {
            let x = scale.x(start.saturating_add(at));
            let _ = write!(
                out,
                r#"<line class="marker {class}" x1="{}" y1="{}" x2="{}" y2="{}" stroke="{colour}" stroke-width="2"{dash}/>"#,
                num(x),
                num(y + 3.0),
                num(x),
                num(y + ROW_H - 3.0)
            );
        }
    }
    for w in &s.watchdog {
        let x = scale.x(w.at_ms);
        let _ = write!(
            out,
            r#"<path class="marker watchdog" d="M{} {} L{} {} L{} {} Z" fill="{BUDGET}"><title>{}</title></path>"#,
            num(x - 5.0),
            num(y + 1.0),
            num(x + 5.0),
            num(y + 1.0),
            num(x),
            num(y + 10.0),
            esc(&format!("watchdog at {} down", dur(w.down_ms)))
        );
    }
    for b in &s.breaches {
        let (x, cy) = (scale.x(b.at_ms), y + 20.0);
        let _ = write!(
            out,
            r#"<path class="marker breach" d="M{} {} L{} {} L{} {} L{} {} Z" fill="{THRESHOLD}" stroke="white" stroke-width="1"><title>{}</title></path>"#,
            num(x),
            num(cy - 7.0),
            num(x + 7.0),
            num(cy),
            num(x),
            num(cy + 7.0),
            num(x - 7.0),
            num(cy),
            esc(&format!("breach: down {}", dur(b.down_ms)))
        );
    }
    // The figures on the right.
    let (figure, colour) = figure(r, s);
    let figure = clip(&figure, fits(WIDTH - FIGURE_X - 4.0, 11.0));
    text(
        out,
        FIGURE_X,
        y + 19.0,
        11.0,
        &format!(r#"class="figure" fill="{colour}""#),
        &figure,
    );
    out.push_str("</g>");
}

/// The outage and its share of the budget, and the colour to write them in.
fn figure(r: &Report, s: &ServerReport) -> (String, &'static str) {
    let share = |p: Option<f64>| p.map(|p| format!(" ({p:.0}%)")).unwrap_or_default();
    let colour = |p: Option<f64>| match p {
        Some(p) if p >= 100.0 => THRESHOLD,
        Some(p) if p >= 90.0 => BUDGET,
        _ => INK,
    };
    match r.kind {
        ReportKind::Plan => match s.result {
            ServerResult::Scheduled => (
                format!(
                    "{}{}",
                    dur(s.predicted.outage_ms),
                    share(s.predicted.budget_used_pct)
                ),
                colour(s.predicted.budget_used_pct),
            ),
            _ => ("not scheduled".into(), MUTED),
        },
        ReportKind::Run => match &s.actual {
            Some(a) => match (a.outage_ms, a.down_at_least_ms) {
                (Some(o), _) => (
                    format!("{}{}", dur(o), share(a.budget_used_pct)),
                    colour(a.budget_used_pct),
                ),
                (None, Some(d)) => (format!(">= {} down", dur(d)), THRESHOLD),
                (None, None) => (s.result.name().into(), MUTED),
            },
            None => (s.result.name().into(), MUTED),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_stay_few_and_round() {
        assert_eq!(tick_step(1_000), 1_000);
        assert_eq!(tick_step(90 * 60_000), 600_000);
        assert_eq!(tick_step(5 * 3_600_000), 1_800_000);
        assert!(u64::MAX / tick_step(u64::MAX) <= 11);
        assert_eq!(tick_label(5_400_000, 600_000), "1:30");
        assert_eq!(tick_label(90_000, 30_000), "1:30");
    }
}
