//! The graph in Graphviz DOT. petgraph's own `Dot` does not escape labels, so we write it.

use std::fmt::Write;

use super::{DependencyGraph, EdgeKind, GraphNode, NodeKind};

/// Escapes `s` for a DOT double-quoted string: `\` and `"` are escaped, control characters
/// (which no validated value has) are dropped.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn node_attrs(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Site => r##"shape=folder, style=filled, fillcolor="#eeeeee""##,
        NodeKind::Pool => r##"shape=box, style="rounded,filled,bold", fillcolor="#dbe8fb""##,
        NodeKind::FrontEnd => r##"shape=box, style=filled, fillcolor="#ffffff""##,
        NodeKind::BackEnd => r##"shape=cylinder, style=filled, fillcolor="#fdf0c8""##,
        NodeKind::StandardEdition => r##"shape=cylinder, style=filled, fillcolor="#d8f2d8""##,
    }
}

fn edge_attrs(kind: EdgeKind) -> &'static str {
    match kind {
        EdgeKind::DependsOn => r##"style=solid, color="#333333""##,
        EdgeKind::LocatedIn => r##"style=dotted, color="#999999", arrowhead=empty"##,
        EdgeKind::MirrorPartner => {
            r##"style=dashed, color="#1f5fbf", dir=both, label="mirror", fontcolor="#1f5fbf""##
        }
        EdgeKind::PairedPool => {
            r##"style=bold, color="#2e8b57", dir=both, label="paired", fontcolor="#2e8b57""##
        }
        EdgeKind::After => {
            r##"style=bold, color="#c0392b", arrowhead=vee, label="after", fontcolor="#c0392b""##
        }
    }
}

fn label(n: &GraphNode) -> String {
    format!("{}\\n{}", escape(&n.name), escape(&n.detail))
}

/// Writes the whole graph.
pub(super) fn write(g: &DependencyGraph) -> String {
    let graph = &g.graph;
    let mut out = String::new();
    // `write!` to a String cannot fail; the results are ignored on purpose below.
    let _ = writeln!(
        out,
        "// poolpatch dependency graph. Render with: dot -Tsvg graph.dot -o graph.svg"
    );
    out.push_str("digraph poolpatch {\n");
    out.push_str("  graph [rankdir=LR, fontname=\"Helvetica\", fontsize=11, newrank=true];\n");
    out.push_str("  node [fontname=\"Helvetica\", fontsize=10];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=9];\n");
    let node_line = |out: &mut String, indent: &str, i: petgraph::graph::NodeIndex| {
        let n = &graph[i];
        let _ = writeln!(
            out,
            "{indent}n{} [label=\"{}\", {}];",
            i.index(),
            label(n),
            node_attrs(n.kind)
        );
    };
    let (clusters, loose) = g.clusters();
    for (k, (site, tz, nodes)) in clusters.iter().enumerate() {
        out.push('\n');
        let _ = writeln!(out, "  subgraph cluster_site_{k} {{");
        let _ = writeln!(out, "    label=\"{} ({})\";", escape(site), escape(tz));
        out.push_str("    style=rounded;\n    color=\"#bbbbbb\";\n");
        for &i in nodes {
            node_line(&mut out, "    ", i);
        }
        out.push_str("  }\n");
    }
    if !loose.is_empty() {
        out.push('\n');
        for &i in &loose {
            node_line(&mut out, "  ", i);
        }
    }
    if graph.edge_count() > 0 {
        out.push('\n');
    }
    for e in graph.edge_indices() {
        let (Some((a, b)), Some(kind)) = (graph.edge_endpoints(e), graph.edge_weight(e)) else {
            continue;
        };
        let _ = writeln!(
            out,
            "  n{} -> n{} [{}];",
            a.index(),
            b.index(),
            edge_attrs(*kind)
        );
    }
    out.push_str("\n  subgraph cluster_legend {\n    label=\"Legend\";\n    style=dashed;\n    color=\"#bbbbbb\";\n");
    for (k, kind) in EdgeKind::ALL.iter().enumerate() {
        let _ = writeln!(
            out,
            "    legend_{k}a [label=\"\", shape=point, width=0.05];\n    legend_{k}b [label=\"{}\", shape=plaintext];\n    legend_{k}a -> legend_{k}b [{}];",
            escape(kind.legend()),
            // The legend names the kind itself: drop the short edge label.
            strip_label(edge_attrs(*kind)),
        );
    }
    out.push_str("  }\n}\n");
    out
}

/// `attrs` without its `label=` and `fontcolor=` entries.
fn strip_label(attrs: &str) -> String {
    attrs
        .split(", ")
        .filter(|a| !a.starts_with("label=") && !a.starts_with("fontcolor="))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_quotes_backslashes_and_controls() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("a\nb\u{7}"), "ab");
        assert_eq!(escape(r"\n"), r"\\n");
    }
}
