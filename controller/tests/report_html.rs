//! The HTML report, read by a strict XML parser (the markup is XHTML-compatible): the
//! whole document parses, the timeline has a row per server with bars and markers where
//! the durations put them, the graph has a node for every pool and server and every edge
//! ends on its nodes, no text leaves its drawing, and arbitrary text stays text.

mod report_fixture;

use std::collections::BTreeMap;

use poolpatch::report::{self, Report, ServerResult};
use roxmltree::{Document, Node, ParsingOptions};

fn fixture_report() -> Report {
    let dir = tempfile::tempdir().unwrap();
    report_fixture::write_run(dir.path());
    report::load(dir.path()).unwrap()
}

fn parse(html: &str) -> Document<'_> {
    Document::parse_with_options(
        html,
        ParsingOptions {
            allow_dtd: true,
            ..ParsingOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("the report is not well-formed XML: {e}"))
}

fn has_class(n: &Node<'_, '_>, class: &str) -> bool {
    n.attribute("class")
        .is_some_and(|c| c.split_whitespace().any(|x| x == class))
}

fn f(n: &Node<'_, '_>, attr: &str) -> f64 {
    n.attribute(attr)
        .unwrap_or_else(|| panic!("<{}> has no {attr}", n.tag_name().name()))
        .parse()
        .unwrap_or_else(|e| panic!("{attr}: {e}"))
}

fn svg<'a, 'i>(doc: &'a Document<'i>, class: &str) -> Node<'a, 'i> {
    doc.descendants()
        .find(|n| n.tag_name().name() == "svg" && has_class(n, class))
        .unwrap_or_else(|| panic!("no svg.{class}"))
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance
}

/// The timeline's scale, from its plot group.
fn scale(timeline: &Node<'_, '_>) -> (f64, f64) {
    let plot = timeline
        .descendants()
        .find(|n| has_class(n, "plot"))
        .expect("plot group");
    (f(&plot, "data-origin-x"), f(&plot, "data-px-per-ms"))
}

fn rows<'a, 'i>(timeline: &Node<'a, 'i>) -> BTreeMap<String, Node<'a, 'i>> {
    timeline
        .descendants()
        .filter(|n| has_class(n, "row"))
        .map(|n| (n.attribute("data-server").unwrap().to_string(), n))
        .collect()
}

fn child_with_class<'a, 'i>(row: &Node<'a, 'i>, classes: &[&str]) -> Vec<Node<'a, 'i>> {
    row.descendants()
        .filter(|n| classes.iter().all(|c| has_class(n, c)))
        .collect()
}

#[test]
fn the_document_parses_whole_and_has_every_section() {
    let r = fixture_report();
    let html = r.to_html();
    let doc = parse(&html);
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "html");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/1999/xhtml")
    );
    for id in [
        "summary",
        "timeline",
        "breaches",
        "not-patched",
        "pools",
        "servers",
        "graph",
        "details",
    ] {
        assert!(
            doc.descendants()
                .any(|n| n.tag_name().name() == "section" && n.attribute("id") == Some(id)),
            "section {id}"
        );
    }
    // Self-contained: no script, no external resource.
    assert!(!doc.descendants().any(|n| {
        matches!(n.tag_name().name(), "script" | "link" | "img" | "iframe")
            || n.attribute("src").is_some()
            || n.attribute("href").is_some()
    }));
    // A detail per server, and one breach explained.
    let details: Vec<&str> = doc
        .descendants()
        .filter(|n| has_class(n, "server-detail"))
        .map(|n| n.attribute("data-server").unwrap())
        .collect();
    assert_eq!(details.len(), r.servers.len());
    let breaches: Vec<&str> = doc
        .descendants()
        .filter_map(|n| n.attribute("data-breach"))
        .collect();
    assert_eq!(breaches, ["be01.tyo.contoso.com"]);
}

#[test]
fn arbitrary_text_stays_text() {
    let html = fixture_report().to_html();
    let doc = parse(&html);
    assert!(!doc.descendants().any(|n| n.tag_name().name() == "script"));
    let pres: Vec<String> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "pre")
        .map(|n| n.text().unwrap_or("").to_string())
        .collect();
    assert!(
        pres.iter().any(|p| p == report_fixture::FAILED_STDOUT),
        "the output tail is shown as it was: {pres:?}"
    );
    assert!(
        pres.iter()
            .any(|p| p == "\\u{1b}[31mERROR 1603: Fatal error during installation\\u{1b}[0m"),
        "escape characters XML forbids are written visibly: {pres:?}"
    );
}

#[test]
fn timeline_rows_bars_and_markers_follow_the_durations() {
    let r = fixture_report();
    let html = r.to_html();
    let doc = parse(&html);
    let timeline = svg(&doc, "timeline");
    let (origin, px) = scale(&timeline);
    assert!(px > 0.0);
    let rows = rows(&timeline);
    let names: Vec<&str> = r.servers.iter().map(|s| s.fqdn.as_str()).collect();
    assert_eq!(rows.len(), r.servers.len(), "one row per server");
    for n in &names {
        assert!(rows.contains_key(*n), "{n} has a row");
    }
    let x = |ms: u64| origin + ms as f64 * px;
    let tol = 0.06;
    let mut widths = Vec::new();
    for s in &r.servers {
        let row = &rows[&s.fqdn];
        // Predicted: from the outage start to the end of its slot.
        let predicted = child_with_class(row, &["bar", "predicted"]);
        match s.predicted.window {
            Some(w) => {
                assert_eq!(predicted.len(), 1, "{}", s.fqdn);
                let b = &predicted[0];
                assert!(close(f(b, "x"), x(w.outage_start_ms), tol), "{}", s.fqdn);
                let len = (w.end_ms - w.outage_start_ms) as f64 * px;
                assert!(close(f(b, "width"), len.max(1.0), tol), "{}", s.fqdn);
            }
            None => assert!(predicted.is_empty(), "{}", s.fqdn),
        }
        // Actual: from the outage start to its end.
        let actual = child_with_class(row, &["bar", "actual"]);
        let a = s.actual.as_ref();
        match a.and_then(|a| a.outage_start_ms.zip(a.outage_end_ms)) {
            Some((start, end)) => {
                assert_eq!(actual.len(), 1, "{}", s.fqdn);
                let b = &actual[0];
                assert!(close(f(b, "x"), x(start), tol), "{}", s.fqdn);
                let w = f(b, "width");
                assert!(
                    close(w, ((end - start) as f64 * px).max(1.0), tol),
                    "{}",
                    s.fqdn
                );
                widths.push((end - start, w));
            }
            None => assert!(actual.is_empty(), "{}", s.fqdn),
        }
        // Budget and threshold: measured from the outage's start.
        let start = a
            .and_then(|a| a.outage_start_ms)
            .or(s.predicted.window.map(|w| w.outage_start_ms));
        for (class, after) in [
            ("budget", r.policy.budget_ms),
            ("threshold", r.policy.threshold_ms),
        ] {
            let m = child_with_class(row, &["marker", class]);
            match start {
                Some(start) => {
                    assert_eq!(m.len(), 1, "{} {class}", s.fqdn);
                    assert!(
                        close(f(&m[0], "x1"), x(start + after), tol),
                        "{} {class}",
                        s.fqdn
                    );
                    assert_eq!(f(&m[0], "x1"), f(&m[0], "x2"));
                }
                None => assert!(m.is_empty(), "{} {class}", s.fqdn),
            }
        }
        assert_eq!(
            child_with_class(row, &["marker", "watchdog"]).len(),
            s.watchdog.len(),
            "{}",
            s.fqdn
        );
        assert_eq!(
            child_with_class(row, &["marker", "breach"]).len(),
            s.breaches.len(),
            "{}",
            s.fqdn
        );
    }
    // Proportional: twice as long is twice as wide.
    assert!(widths.len() >= 5);
    let (d0, w0) = widths[0];
    for (d, w) in &widths {
        assert!(
            close(w / w0, *d as f64 / d0 as f64, 0.001),
            "{d} ms -> {w} px"
        );
    }
    // The axis' labels are spread over the plot, the last at or after the run's end.
    let ticks: Vec<f64> = timeline
        .descendants()
        .filter(|n| has_class(n, "tick"))
        .map(|n| f(&n, "data-ms"))
        .collect();
    assert!((3..=12).contains(&ticks.len()), "{ticks:?}");
    assert!(*ticks.last().unwrap() >= r.overall.actual_duration_ms.unwrap() as f64);
}

/// Every `<text>` of `svg` lies inside its viewBox, with its width estimated generously.
fn texts_inside(svg: &Node<'_, '_>) {
    let vb: Vec<f64> = svg
        .attribute("viewBox")
        .unwrap()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    let (w, h) = (vb[2], vb[3]);
    let mut n = 0;
    for t in svg.descendants().filter(|n| n.tag_name().name() == "text") {
        assert!(
            t.ancestors().all(|a| a.attribute("transform").is_none()),
            "text positions are absolute"
        );
        let (x, y, size) = (f(&t, "x"), f(&t, "y"), f(&t, "font-size"));
        let content = t.text().unwrap_or("");
        // 0.62 em per character: wider than the average of the fonts used.
        let width = content.chars().count() as f64 * size * 0.62;
        let (left, right) = match t.attribute("text-anchor") {
            Some("middle") => (x - width / 2.0, x + width / 2.0),
            Some("end") => (x - width, x),
            _ => (x, x + width),
        };
        assert!(
            left >= 0.0 && right <= w,
            "{content:?} at x {x} spans {left}..{right}, width {w}"
        );
        assert!(
            y - size >= 0.0 && y <= h,
            "{content:?} at y {y}, height {h}"
        );
        n += 1;
    }
    assert!(n > 10);
}

#[test]
fn no_text_leaves_the_drawings() {
    for r in [
        fixture_report(),
        report::from_plan(&report_fixture::canary_plan()),
    ] {
        let html = r.to_html();
        let doc = parse(&html);
        texts_inside(&svg(&doc, "timeline"));
        texts_inside(&svg(&doc, "graph"));
    }
}

struct Box4 {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

fn on_boundary(b: &Box4, (x, y): (f64, f64)) -> bool {
    let e = 0.06;
    let inside_x = x >= b.x - e && x <= b.x + b.w + e;
    let inside_y = y >= b.y - e && y <= b.y + b.h + e;
    (inside_y && (close(x, b.x, e) || close(x, b.x + b.w, e)))
        || (inside_x && (close(y, b.y, e) || close(y, b.y + b.h, e)))
}

/// The first and last point of a path written with M, H, V, L and C commands.
fn ends(d: &str) -> ((f64, f64), (f64, f64)) {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    for c in d.chars() {
        if c.is_ascii_alphabetic() {
            if !cur.trim().is_empty() {
                tokens.push(cur.clone());
            }
            cur = c.to_string();
        } else {
            cur.push(c);
        }
    }
    tokens.push(cur);
    let (mut x, mut y) = (0.0, 0.0);
    let mut first = None;
    for t in tokens {
        let (cmd, rest) = t.split_at(1);
        let v: Vec<f64> = rest
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        match cmd {
            "M" | "L" => (x, y) = (v[0], v[1]),
            "H" => x = v[0],
            "V" => y = v[0],
            "C" => (x, y) = (v[4], v[5]),
            other => panic!("unexpected path command {other}"),
        }
        first.get_or_insert((x, y));
    }
    (first.unwrap(), (x, y))
}

fn graph_checks(r: &Report, expect_edges: &[(&str, &str, &str)]) {
    let html = r.to_html();
    let doc = parse(&html);
    let graph = svg(&doc, "graph");
    let nodes: BTreeMap<String, Box4> = graph
        .descendants()
        .filter(|n| n.attribute("data-node").is_some())
        .map(|n| {
            let rect = n
                .children()
                .find(|c| c.tag_name().name() == "rect")
                .expect("a node has a rect");
            (
                n.attribute("data-node").unwrap().to_string(),
                Box4 {
                    x: f(&rect, "x"),
                    y: f(&rect, "y"),
                    w: f(&rect, "width"),
                    h: f(&rect, "height"),
                },
            )
        })
        .collect();
    for p in &r.pools {
        assert!(
            nodes.contains_key(&format!("pool:{}", p.fqdn)),
            "pool {}",
            p.fqdn
        );
        for s in p.servers.iter().chain(&p.out_of_scope) {
            let node = &nodes[&format!("server:{s}")];
            let pool = &nodes[&format!("pool:{}", p.fqdn)];
            assert!(
                node.x >= pool.x
                    && node.x + node.w <= pool.x + pool.w
                    && node.y >= pool.y
                    && node.y + node.h <= pool.y + pool.h,
                "{s} is drawn inside its pool"
            );
        }
    }
    for s in &r.servers {
        assert!(
            nodes.contains_key(&format!("server:{}", s.fqdn)),
            "server {}",
            s.fqdn
        );
    }
    let mut edges = Vec::new();
    for e in graph.descendants().filter(|n| has_class(n, "edge")) {
        let (from, to) = (
            e.attribute("data-from").unwrap(),
            e.attribute("data-to").unwrap(),
        );
        let (a, b) = (
            nodes
                .get(from)
                .unwrap_or_else(|| panic!("edge from {from}: no such node")),
            nodes
                .get(to)
                .unwrap_or_else(|| panic!("edge to {to}: no such node")),
        );
        let (start, end) = ends(e.attribute("d").unwrap());
        assert!(
            on_boundary(a, start),
            "{from} -> {to} starts on {from}: {start:?}"
        );
        assert!(on_boundary(b, end), "{from} -> {to} ends on {to}: {end:?}");
        edges.push((
            e.attribute("data-kind").unwrap().to_string(),
            from.to_string(),
            to.to_string(),
        ));
    }
    edges.sort();
    let mut expected: Vec<(String, String, String)> = expect_edges
        .iter()
        .map(|(k, a, b)| (k.to_string(), a.to_string(), b.to_string()))
        .collect();
    expected.sort();
    assert_eq!(edges, expected);
    // Columns by site, in order of first appearance.
    let sites: Vec<&str> = graph
        .descendants()
        .filter(|n| has_class(n, "site"))
        .map(|n| n.text().unwrap())
        .collect();
    assert_eq!(sites, ["amsterdam", "newyork", "tokyo"]);
}

#[test]
fn graph_has_every_node_and_every_edge_ends_on_its_nodes() {
    let edges = [
        (
            "mirror",
            "server:be01.ams.contoso.com",
            "server:be02.ams.contoso.com",
        ),
        (
            "paired",
            "pool:pool01.ams.contoso.com",
            "pool:pool01.nyc.contoso.com",
        ),
        (
            "after",
            "pool:pool01.ams.contoso.com",
            "pool:pool02.ams.contoso.com",
        ),
        (
            "after",
            "pool:pool01.tyo.contoso.com",
            "pool:se01.tyo.contoso.com",
        ),
        (
            "after",
            "pool:pool01.tyo.contoso.com",
            "pool:se02.tyo.contoso.com",
        ),
    ];
    graph_checks(&fixture_report(), &edges);
    // The prediction of a canary: servers out of scope are drawn too, in their pools.
    let canary = report::from_plan(&report_fixture::canary_plan());
    assert!(canary.pools.iter().any(|p| !p.out_of_scope.is_empty()));
    graph_checks(&canary, &edges);
}

#[test]
fn the_plan_report_shows_the_prediction_only() {
    let r = report::from_plan(&report_fixture::plan());
    let html = r.to_html();
    let doc = parse(&html);
    let timeline = svg(&doc, "timeline");
    let rows = rows(&timeline);
    assert_eq!(rows.len(), r.servers.len());
    assert!(timeline.descendants().all(|n| !has_class(&n, "actual")));
    let scheduled = r
        .servers
        .iter()
        .filter(|s| s.result == ServerResult::Scheduled)
        .count();
    let bars = timeline
        .descendants()
        .filter(|n| has_class(n, "predicted") && has_class(n, "bar"))
        .count();
    assert_eq!(bars, scheduled);
    assert!(
        !doc.descendants()
            .any(|n| n.attribute("id") == Some("breaches"))
    );
    assert!(
        doc.descendants()
            .any(|n| n.attribute("id") == Some("not-scheduled"))
    );
    assert!(html.contains("se02.tyo.contoso.com"));
}

#[test]
fn maintenance_windows_are_shaded_behind_their_rows() {
    let r = fixture_report();
    let mut windows = report::MaintenanceWindows::new();
    windows.insert(
        "be01.nyc.contoso.com".into(),
        vec![report::Span::new(20 * 60_000, 80 * 60_000)],
    );
    let html = r.to_html_with(&windows);
    let doc = parse(&html);
    let timeline = svg(&doc, "timeline");
    let (origin, px) = scale(&timeline);
    let rows = rows(&timeline);
    let shaded: Vec<(&String, Node<'_, '_>)> = rows
        .iter()
        .flat_map(|(name, row)| {
            child_with_class(row, &["maintenance"])
                .into_iter()
                .map(move |n| (name, n))
        })
        .collect();
    assert_eq!(shaded.len(), 1);
    let (name, rect) = &shaded[0];
    assert_eq!(name.as_str(), "be01.nyc.contoso.com");
    assert!(close(f(rect, "x"), origin + 20.0 * 60_000.0 * px, 0.06));
    assert!(close(f(rect, "width"), 60.0 * 60_000.0 * px, 0.06));
    // Without windows, nothing is shaded.
    let plain = r.to_html();
    assert!(!plain.contains(r#"class="maintenance""#));
}
