//! The graph as a Mermaid flowchart.

use std::fmt::Write;

use super::{DependencyGraph, EdgeKind, GraphNode, NodeKind};

/// Escapes `s` for a double-quoted Mermaid label: characters that Mermaid or the HTML it
/// renders would interpret become entity codes (`#quot;`, `#lt;`, ...); control characters
/// are dropped.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '`' => out.push_str("#96;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The node's shape, wrapped around its quoted label.
fn shape(kind: NodeKind, label: &str) -> String {
    match kind {
        NodeKind::Site => format!("{{{{\"{label}\"}}}}"),
        NodeKind::Pool => format!("(\"{label}\")"),
        NodeKind::FrontEnd => format!("[\"{label}\"]"),
        NodeKind::BackEnd | NodeKind::StandardEdition => format!("[(\"{label}\")]"),
    }
}

fn class(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Site => "site",
        NodeKind::Pool => "pool",
        NodeKind::FrontEnd => "frontend",
        NodeKind::BackEnd => "backend",
        NodeKind::StandardEdition => "standard",
    }
}

const CLASSES: [(NodeKind, &str); 5] = [
    (NodeKind::Site, "fill:#eeeeee,stroke:#888888"),
    (
        NodeKind::Pool,
        "fill:#dbe8fb,stroke:#3367d6,stroke-width:2px",
    ),
    (NodeKind::FrontEnd, "fill:#ffffff,stroke:#555555"),
    (NodeKind::BackEnd, "fill:#fdf0c8,stroke:#b8860b"),
    (NodeKind::StandardEdition, "fill:#d8f2d8,stroke:#2e8b57"),
];

/// The arrow between two node ids.
fn arrow(kind: EdgeKind) -> &'static str {
    match kind {
        EdgeKind::DependsOn => "-->",
        EdgeKind::LocatedIn => "-.->",
        EdgeKind::MirrorPartner => "o--o|\"mirror\"|",
        EdgeKind::PairedPool => "<==>|\"paired\"|",
        EdgeKind::After => "==>|\"after\"|",
    }
}

fn label(n: &GraphNode) -> String {
    format!("{}<br/>{}", escape(&n.name), escape(&n.detail))
}

/// Writes the whole graph.
pub(super) fn write(g: &DependencyGraph) -> String {
    let graph = &g.graph;
    let mut out = String::new();
    // `write!` to a String cannot fail; the results are ignored on purpose below.
    out.push_str("%% poolpatch dependency graph: paste into a ```mermaid block\n");
    out.push_str("flowchart LR\n");
    let node_line = |out: &mut String, indent: &str, i: petgraph::graph::NodeIndex| {
        let n = &graph[i];
        let _ = writeln!(out, "{indent}n{}{}", i.index(), shape(n.kind, &label(n)));
    };
    let (clusters, loose) = g.clusters();
    for (k, (site, tz, nodes)) in clusters.iter().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph site_{k}[\"{} ({})\"]",
            escape(site),
            escape(tz)
        );
        for &i in nodes {
            node_line(&mut out, "    ", i);
        }
        out.push_str("  end\n");
    }
    for &i in &loose {
        node_line(&mut out, "  ", i);
    }
    for e in graph.edge_indices() {
        let (Some((a, b)), Some(kind)) = (graph.edge_endpoints(e), graph.edge_weight(e)) else {
            continue;
        };
        let _ = writeln!(out, "  n{} {} n{}", a.index(), arrow(*kind), b.index());
    }
    out.push_str("  subgraph legend[\"Legend\"]\n");
    for (k, kind) in EdgeKind::ALL.iter().enumerate() {
        // The legend's own arrows carry the full meaning instead of the short label.
        let bare = arrow(*kind).split('|').next().unwrap_or("-->");
        let _ = writeln!(
            out,
            "    legend_{k}a[\" \"] {bare}|\"{}\"| legend_{k}b[\" \"]",
            escape(kind.legend())
        );
    }
    out.push_str("  end\n");
    for (kind, style) in CLASSES {
        let _ = writeln!(out, "  classDef {} {style}", class(kind));
    }
    for (kind, _) in CLASSES {
        let ids: Vec<String> = graph
            .node_indices()
            .filter(|&i| graph[i].kind == kind)
            .map(|i| format!("n{}", i.index()))
            .collect();
        if !ids.is_empty() {
            let _ = writeln!(out, "  class {} {}", ids.join(","), class(kind));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_what_mermaid_would_read() {
        assert_eq!(escape(r#"a"b"#), "a#quot;b");
        assert_eq!(escape("<b>&#"), "#lt;b#gt;#amp;#35;");
        assert_eq!(escape("a\nb"), "ab");
    }
}
