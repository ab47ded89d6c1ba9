//! The dependency graph as SVG, laid out by poolpatch itself (no Graphviz): a column per
//! site, each pool a box holding its servers, and three kinds of edges:
//!
//! - mirror partners: between two servers of a pool, on the box's right side;
//! - paired pools (disaster recovery): between two pools, without direction;
//! - `after:` ordering: from the pool that goes first to the pool that waits for it.
//!
//! The report carries everything the drawing needs (pools with sites, pairing, `after:`,
//! Front Ends; servers with roles and mirror partners), so it needs only the run directory.
//! The layout is deterministic: sites in order of first appearance in the plan's pool
//! order, pools in that order within a site. Edges run orthogonally in the gutters between
//! columns, each in a lane of its own; edges between columns further apart go through a
//! channel above the columns.
//!
//! Every node is a `<g data-node="pool:FQDN">` or `<g data-node="server:FQDN">` holding one
//! `<rect>`; every edge is a `<path data-from=… data-to=…>` that starts and ends on the
//! boundary of those rectangles.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::svg::{self, INK, MUTED, fits, result_colour, text, text_width};
use super::xml::{clip, esc, num};
use super::{PoolReport, Report, ReportKind, ServerResult};

const COL_W: f64 = 300.0;
const GUTTER: f64 = 84.0;
const RIGHT_MARGIN: f64 = 24.0;
const MIN_WIDTH: f64 = 760.0;
const POOL_GAP: f64 = 26.0;
const NODE_H: f64 = 24.0;
const NODE_GAP: f64 = 6.0;
const NODE_INSET: f64 = 12.0;
/// Room on a box's right side for mirror arcs.
const MIRROR_ROOM: f64 = 38.0;
const LANE: f64 = 10.0;
const CHANNEL_LANE: f64 = 12.0;

const MIRROR: &str = "#7c3aed";
const PAIR: &str = "#0d9488";
const AFTER: &str = "#374151";

#[derive(Debug, Clone, Copy)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Rect {
    fn right(&self) -> f64 {
        self.x + self.w
    }
}

/// A pool box and where its servers are.
struct PoolBox<'a> {
    pool: &'a PoolReport,
    col: usize,
    rect: Rect,
    header_h: f64,
    /// Server name, whether in scope, its rectangle.
    servers: Vec<(&'a str, bool, Rect)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EdgeKind {
    Pair,
    After,
}

impl EdgeKind {
    fn name(self) -> &'static str {
        match self {
            EdgeKind::Pair => "paired",
            EdgeKind::After => "after",
        }
    }
}

fn col_x(col: usize) -> f64 {
    GUTTER + col as f64 * (COL_W + GUTTER)
}

fn role_tag(r: &Report, server: &str, in_scope: bool) -> String {
    if !in_scope {
        return "out of scope".into();
    }
    match r.server(server) {
        Some(s) => match (s.role.kind.as_str(), s.role.mirror_role.as_deref()) {
            ("standard-edition", _) => "SE".into(),
            (_, Some(m)) => m.to_string(),
            _ => "back end".into(),
        },
        None => String::new(),
    }
}

/// The legend; returns the y below it.
fn legend(out: &mut String, r: &Report, width: f64) -> f64 {
    let mut items: Vec<(String, String)> = vec![
        (
            "mirror partners".into(),
            format!(
                r#"<path d="M0 7 L22 7" stroke="{MIRROR}" stroke-width="2" stroke-dasharray="2 2" fill="none"/>"#
            ),
        ),
        (
            "paired pools (backup)".into(),
            format!(
                r#"<path d="M0 7 L22 7" stroke="{PAIR}" stroke-width="2" stroke-dasharray="6 3" fill="none"/>"#
            ),
        ),
        (
            "A → B: B waits for A (after)".into(),
            format!(
                r#"<path d="M0 7 L18 7" stroke="{AFTER}" stroke-width="1.6" fill="none" marker-end="url(#gr-arrow)"/>"#
            ),
        ),
    ];
    let results: &[ServerResult] = match r.kind {
        ReportKind::Plan => &[ServerResult::Scheduled, ServerResult::NotScheduled],
        ReportKind::Run => &[
            ServerResult::Done,
            ServerResult::Failed,
            ServerResult::BudgetExhausted,
            ServerResult::InFlight,
            ServerResult::Skipped,
        ],
    };
    for res in results {
        items.push((
            res.name().replace('-', " "),
            format!(
                r#"<rect x="0" y="1" width="22" height="12" rx="3" fill="white" stroke="{}" stroke-width="1.5"/><rect x="0" y="1" width="5" height="12" fill="{}"/>"#,
                result_colour(*res),
                result_colour(*res)
            ),
        ));
    }
    items.push((
        "out of scope".into(),
        format!(
            r#"<rect x="0" y="1" width="22" height="12" rx="3" fill="white" stroke="{MUTED}" stroke-dasharray="3 2"/>"#
        ),
    ));
    svg::legend(out, &items, 14.0, width - 14.0) + 2.0
}

/// A planned edge between pools: kind, from, to (indices into the boxes).
struct PoolEdge {
    kind: EdgeKind,
    from: usize,
    to: usize,
}

fn pool_edges(boxes: &[PoolBox<'_>]) -> Vec<PoolEdge> {
    let index: BTreeMap<&str, usize> = boxes
        .iter()
        .enumerate()
        .map(|(i, b)| (b.pool.fqdn.as_str(), i))
        .collect();
    let mut edges = Vec::new();
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    for (i, b) in boxes.iter().enumerate() {
        for a in &b.pool.after {
            if let Some(&j) = index.get(a.as_str())
                && j != i
            {
                edges.push(PoolEdge {
                    kind: EdgeKind::After,
                    from: j,
                    to: i,
                });
            }
        }
        if let Some(p) = &b.pool.backup_pool
            && let Some(&j) = index.get(p.as_str())
            && j != i
        {
            let key = (i.min(j), i.max(j));
            if !pairs.contains(&key) {
                pairs.push(key);
                edges.push(PoolEdge {
                    kind: EdgeKind::Pair,
                    from: key.0,
                    to: key.1,
                });
            }
        }
    }
    edges
}

/// The dependency graph of `r` as an `<svg>` element.
pub(crate) fn svg(r: &Report) -> String {
    // Columns: sites in order of first appearance.
    let mut sites: Vec<&str> = Vec::new();
    for p in &r.pools {
        if !sites.contains(&p.site.as_str()) {
            sites.push(&p.site);
        }
    }
    let width = (col_x(sites.len()) - GUTTER + RIGHT_MARGIN).max(MIN_WIDTH);

    let mut legend_svg = String::new();
    let legend_bottom = legend(&mut legend_svg, r, width);

    // Box sizes first (heights do not depend on positions).
    let mut boxes: Vec<PoolBox<'_>> = Vec::new();
    for p in &r.pools {
        let col = sites.iter().position(|s| *s == p.site).unwrap_or(0);
        let header_h = if p.front_ends.is_empty() { 40.0 } else { 54.0 };
        let servers: Vec<(&str, bool)> = p
            .servers
            .iter()
            .map(|s| (s.as_str(), true))
            .chain(p.out_of_scope.iter().map(|s| (s.as_str(), false)))
            .collect();
        let n = servers.len() as f64;
        let h = header_h + n * (NODE_H + NODE_GAP) + 6.0;
        boxes.push(PoolBox {
            pool: p,
            col,
            rect: Rect {
                x: col_x(col),
                y: 0.0,
                w: COL_W,
                h,
            },
            header_h,
            servers: servers
                .into_iter()
                .map(|(s, i)| {
                    (
                        s,
                        i,
                        Rect {
                            x: 0.0,
                            y: 0.0,
                            w: 0.0,
                            h: 0.0,
                        },
                    )
                })
                .collect(),
        });
    }
    let edges = pool_edges(&boxes);
    let long_edges = edges
        .iter()
        .filter(|e| boxes[e.from].col.abs_diff(boxes[e.to].col) > 1)
        .count();
    let channel_top = legend_bottom + 4.0;
    let columns_top = channel_top + long_edges as f64 * CHANNEL_LANE + 34.0;

    // Stack the boxes in their columns.
    let mut next_y = vec![columns_top; sites.len().max(1)];
    for b in &mut boxes {
        b.rect.y = next_y[b.col];
        next_y[b.col] += b.rect.h + POOL_GAP;
        let (bx, by, header_h) = (b.rect.x, b.rect.y, b.header_h);
        for (k, (_, _, rect)) in b.servers.iter_mut().enumerate() {
            *rect = Rect {
                x: bx + NODE_INSET,
                y: by + header_h + k as f64 * (NODE_H + NODE_GAP),
                w: COL_W - NODE_INSET - MIRROR_ROOM,
                h: NODE_H,
            };
        }
    }
    let height = next_y.iter().cloned().fold(columns_top, f64::max) + 10.0;

    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="graph" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="dependency graph: sites, pools, servers" font-family="Segoe UI, Helvetica, Arial, sans-serif">"#,
        num(width),
        num(height),
        num(width),
        num(height)
    );
    let _ = write!(
        out,
        r#"<defs><marker id="gr-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 Z" fill="{AFTER}"/></marker></defs>"#
    );
    out.push_str(&legend_svg);
    for (i, site) in sites.iter().enumerate() {
        let label = clip(site, fits(COL_W, 14.0));
        text(
            &mut out,
            col_x(i),
            columns_top - 12.0,
            14.0,
            &format!(r#"class="site" font-weight="700" fill="{INK}""#),
            &label,
        );
    }
    out.push_str(&edges_svg(&boxes, &edges, channel_top));
    for b in &boxes {
        pool_box(&mut out, r, b);
    }
    out.push_str("</svg>");
    out
}

fn pool_box(out: &mut String, r: &Report, b: &PoolBox<'_>) {
    let p = b.pool;
    let out_of_scope = p.plan_status == "out-of-scope";
    let rect = b.rect;
    let _ = write!(
        out,
        r#"<g class="node pool" data-node="pool:{}"><title>{}</title>"#,
        esc(&p.fqdn),
        esc(&format!(
            "pool {} ({}, {}): {}{}",
            p.fqdn,
            p.edition,
            p.product,
            p.plan_status,
            if p.front_ends.is_empty() {
                String::new()
            } else {
                format!("; Front Ends: {}", p.front_ends.join(", "))
            }
        ))
    );
    let _ = write!(
        out,
        r##"<rect x="{}" y="{}" width="{}" height="{}" rx="6" fill="#f9fafb" stroke="{}" stroke-width="1.2"{}/>"##,
        num(rect.x),
        num(rect.y),
        num(rect.w),
        num(rect.h),
        if out_of_scope { MUTED } else { "#9ca3af" },
        if out_of_scope {
            r#" stroke-dasharray="4 3""#
        } else {
            ""
        }
    );
    let inner = COL_W - 2.0 * NODE_INSET;
    text(
        out,
        rect.x + NODE_INSET,
        rect.y + 18.0,
        12.5,
        &format!(r#"class="pool-name" font-weight="700" fill="{INK}""#),
        &clip(&p.fqdn, fits(inner, 12.5)),
    );
    let edition = format!("{} · {} · plan: {}", p.edition, p.product, p.plan_status);
    text(
        out,
        rect.x + NODE_INSET,
        rect.y + 33.0,
        10.5,
        &format!(r#"fill="{MUTED}""#),
        &clip(&edition, fits(inner, 10.5)),
    );
    if !p.front_ends.is_empty() {
        let fe = format!(
            "{} Front End{}: {}",
            p.front_ends.len(),
            if p.front_ends.len() == 1 { "" } else { "s" },
            p.front_ends.join(", ")
        );
        text(
            out,
            rect.x + NODE_INSET,
            rect.y + 47.0,
            10.5,
            &format!(r#"fill="{MUTED}""#),
            &clip(&fe, fits(inner, 10.5)),
        );
    }
    out.push_str("</g>");
    for (name, in_scope, nr) in &b.servers {
        let (stroke, result) = match r.server(name) {
            Some(s) if *in_scope => (result_colour(s.result), s.result.name()),
            _ => (MUTED, "out-of-scope"),
        };
        let tag = role_tag(r, name, *in_scope);
        let tag_w = text_width(&tag, 10.0);
        let _ = write!(
            out,
            r#"<g class="node server" data-node="server:{}" data-result="{result}"><title>{}</title>"#,
            esc(name),
            esc(&format!("{name}: {result}"))
        );
        let _ = write!(
            out,
            r#"<rect x="{}" y="{}" width="{}" height="{}" rx="4" fill="white" stroke="{stroke}" stroke-width="1.5"{}/>"#,
            num(nr.x),
            num(nr.y),
            num(nr.w),
            num(nr.h),
            if *in_scope {
                ""
            } else {
                r#" stroke-dasharray="3 2""#
            }
        );
        if *in_scope {
            let _ = write!(
                out,
                r#"<rect x="{}" y="{}" width="5" height="{}" fill="{stroke}"/>"#,
                num(nr.x),
                num(nr.y),
                num(nr.h)
            );
        }
        let room = nr.w - 12.0 - tag_w - 10.0;
        text(
            out,
            nr.x + 11.0,
            nr.y + 16.0,
            11.5,
            &format!(r#"fill="{}""#, if *in_scope { INK } else { MUTED }),
            &clip(name, fits(room, 11.5)),
        );
        text(
            out,
            nr.right() - 6.0,
            nr.y + 16.0,
            10.0,
            &format!(r#"text-anchor="end" fill="{MUTED}""#),
            &tag,
        );
        out.push_str("</g>");
    }
    // Mirror partners of this pool.
    let mut drawn: Vec<(&str, &str)> = Vec::new();
    for (name, _, a) in &b.servers {
        let Some(partner) = r
            .server(name)
            .and_then(|s| s.role.mirror_partner.as_deref())
        else {
            continue;
        };
        let Some((pname, _, pr)) = b.servers.iter().find(|(n, _, _)| *n == partner) else {
            continue;
        };
        let key = if *name < *pname {
            (*name, *pname)
        } else {
            (*pname, *name)
        };
        if drawn.contains(&key) {
            continue;
        }
        drawn.push(key);
        // Undirected: drawn from the name that sorts first.
        let (a, pr) = if key.0 == *name { (a, pr) } else { (pr, a) };
        let (ya, yb) = (a.y + a.h / 2.0, pr.y + pr.h / 2.0);
        let bulge = a.right() + MIRROR_ROOM - 10.0;
        let _ = write!(
            out,
            r#"<path class="edge mirror" data-kind="mirror" data-from="server:{}" data-to="server:{}" d="M{} {} C{} {} {} {} {} {}" fill="none" stroke="{MIRROR}" stroke-width="2" stroke-dasharray="2 2"/>"#,
            esc(key.0),
            esc(key.1),
            num(a.right()),
            num(ya),
            num(bulge),
            num(ya),
            num(bulge),
            num(yb),
            num(pr.right()),
            num(yb)
        );
    }
}

/// Orthogonal routes for the edges between pools.
fn edges_svg(boxes: &[PoolBox<'_>], edges: &[PoolEdge], channel_top: f64) -> String {
    // Which gutters (by index: gutter g is left of column g) each edge runs in.
    let gutters_of = |e: &PoolEdge| -> Vec<usize> {
        let (a, b) = (boxes[e.from].col, boxes[e.to].col);
        match a.abs_diff(b) {
            0 => vec![a],
            1 => vec![a.max(b)],
            _ if a < b => vec![a + 1, b],
            _ => vec![a, b + 1],
        }
    };
    let mut lanes_needed: BTreeMap<usize, usize> = BTreeMap::new();
    for e in edges {
        for g in gutters_of(e) {
            *lanes_needed.entry(g).or_default() += 1;
        }
    }
    let spacing: BTreeMap<usize, f64> = lanes_needed
        .iter()
        .map(|(g, n)| {
            let fit = (GUTTER - 24.0) / (*n as f64).max(1.0);
            (*g, fit.min(LANE))
        })
        .collect();
    let mut lanes_used: BTreeMap<usize, usize> = BTreeMap::new();
    let mut lane_x = |g: usize, from_left: bool| -> f64 {
        let k = lanes_used.entry(g).or_default();
        let step = spacing.get(&g).copied().unwrap_or(LANE);
        let off = 12.0 + *k as f64 * step;
        *k += 1;
        // Gutter g spans from the right of column g-1 to the left of column g.
        let left = col_x(g) - GUTTER;
        let right = col_x(g);
        if from_left { left + off } else { right - off }
    };
    // Attachment points along a box's side, so arrowheads do not overlap.
    let mut attached: BTreeMap<(usize, bool), usize> = BTreeMap::new();
    let mut attach = |i: usize, right_side: bool| -> (f64, f64) {
        let k = attached.entry((i, right_side)).or_default();
        let b = &boxes[i];
        let y = b.rect.y + 12.0 + (*k as f64 * 8.0) % (b.header_h - 16.0).max(8.0);
        *k += 1;
        (if right_side { b.rect.right() } else { b.rect.x }, y)
    };
    let mut out = String::new();
    let mut channel_lane = 0usize;
    for e in edges {
        let (fa, fb) = (&boxes[e.from], &boxes[e.to]);
        let (ca, cb) = (fa.col, fb.col);
        let d = match ca.abs_diff(cb) {
            0 => {
                let x = lane_x(ca, false);
                let (sx, sy) = attach(e.from, false);
                let (tx, ty) = attach(e.to, false);
                format!(
                    "M{} {} H{} V{} H{}",
                    num(sx),
                    num(sy),
                    num(x),
                    num(ty),
                    num(tx)
                )
            }
            1 => {
                let g = ca.max(cb);
                let x = lane_x(g, ca < cb);
                let (sx, sy) = attach(e.from, ca < cb);
                let (tx, ty) = attach(e.to, cb < ca);
                format!(
                    "M{} {} H{} V{} H{}",
                    num(sx),
                    num(sy),
                    num(x),
                    num(ty),
                    num(tx)
                )
            }
            _ => {
                let rightwards = ca < cb;
                let (g1, g2) = if rightwards {
                    (ca + 1, cb)
                } else {
                    (ca, cb + 1)
                };
                let x1 = lane_x(g1, rightwards);
                let x2 = lane_x(g2, !rightwards);
                let y = channel_top + 8.0 + channel_lane as f64 * CHANNEL_LANE;
                channel_lane += 1;
                let (sx, sy) = attach(e.from, rightwards);
                let (tx, ty) = attach(e.to, !rightwards);
                format!(
                    "M{} {} H{} V{} H{} V{} H{}",
                    num(sx),
                    num(sy),
                    num(x1),
                    num(y),
                    num(x2),
                    num(ty),
                    num(tx)
                )
            }
        };
        let style = match e.kind {
            EdgeKind::Pair => format!(r#"stroke="{PAIR}" stroke-width="2" stroke-dasharray="6 3""#),
            EdgeKind::After => {
                format!(r#"stroke="{AFTER}" stroke-width="1.6" marker-end="url(#gr-arrow)""#)
            }
        };
        let _ = write!(
            out,
            r#"<path class="edge {}" data-kind="{}" data-from="pool:{}" data-to="pool:{}" d="{d}" fill="none" {style}/>"#,
            e.kind.name(),
            e.kind.name(),
            esc(&fa.pool.fqdn),
            esc(&fb.pool.fqdn)
        );
    }
    out
}
