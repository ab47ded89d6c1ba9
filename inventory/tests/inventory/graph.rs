//! The dependency graph: its drawings (snapshots) and the pool order.

use poolpatch_inventory::graph::{EdgeKind, NodeKind};
use poolpatch_inventory::{DependencyGraph, Fqdn, pool_order};

use crate::helpers::{dedent, example_path, load, opts};

/// Two sites; a mirrored Enterprise pool paired with another; a Standard Edition server
/// that waits for the first pool.
const SMALL: &str = "
    version: 1
    defaults:
      ssh: { user: svc-poolpatch, agent: true }
    sites:
      - { name: amsterdam, time_zone: Europe/Amsterdam }
      - { name: newyork, time_zone: America/New_York }
    pools:
      - fqdn: pool01.ams.contoso.com
        site: amsterdam
        edition: enterprise
        product: sfb2015
        backup_pool: pool01.nyc.contoso.com
        front_ends:
          - { fqdn: fe01.ams.contoso.com, upgrade_domain: UD1 }
          - { fqdn: fe02.ams.contoso.com }
        back_ends:
          - fqdn: be01.ams.contoso.com
            sql_server: be01.ams.contoso.com
            mirror: { role: mirror, partner: be02.ams.contoso.com }
          - fqdn: be02.ams.contoso.com
            sql_server: be02.ams.contoso.com
            mirror: { role: principal, partner: be01.ams.contoso.com }
            collocated_databases: [monitoring]
      - fqdn: pool01.nyc.contoso.com
        site: newyork
        edition: enterprise
        product: sfb2015
        front_ends: [{ fqdn: fe01.nyc.contoso.com }]
        back_ends: [{ fqdn: be01.nyc.contoso.com, sql_server: be01.nyc.contoso.com }]
      - fqdn: se01.nyc.contoso.com
        site: newyork
        edition: standard
        product: lync2013
        after: [pool01.ams.contoso.com]
        server: {}
";

fn small() -> DependencyGraph {
    DependencyGraph::build(&load(&dedent(SMALL)).unwrap_or_else(|d| panic!("{d}")))
}

#[test]
fn the_graph_has_every_node_and_edge_kind() {
    let g = small();
    let graph = g.graph();
    assert_eq!(graph.node_count(), 2 + 3 + 3 + 3 + 1);
    let count = |kind: EdgeKind| graph.edge_weights().filter(|k| **k == kind).count();
    assert_eq!(count(EdgeKind::DependsOn), 3 + 4);
    assert_eq!(count(EdgeKind::LocatedIn), 3);
    assert_eq!(count(EdgeKind::MirrorPartner), 1);
    assert_eq!(count(EdgeKind::PairedPool), 1);
    assert_eq!(count(EdgeKind::After), 1);
    // The mirror edge goes from the principal, whichever is written first.
    let principal = g
        .find(NodeKind::BackEnd, "be02.ams.contoso.com")
        .expect("be02");
    let mirror = g
        .find(NodeKind::BackEnd, "be01.ams.contoso.com")
        .expect("be01");
    assert!(graph.find_edge(principal, mirror).is_some());
    // A Standard Edition pool and its server share the FQDN but are two nodes.
    let se_pool = g
        .find(NodeKind::Pool, "se01.nyc.contoso.com")
        .expect("SE pool");
    let se = g
        .find(NodeKind::StandardEdition, "se01.nyc.contoso.com")
        .expect("SE server");
    assert_eq!(graph[se_pool].site.as_deref(), Some("newyork"));
    assert!(graph.find_edge(se_pool, se).is_some());
}

#[test]
fn dot_drawing() {
    insta::assert_snapshot!(small().to_dot());
}

#[test]
fn mermaid_drawing() {
    insta::assert_snapshot!(small().to_mermaid());
}

#[test]
fn drawings_are_deterministic() {
    assert_eq!(small().to_dot(), small().to_dot());
    assert_eq!(small().to_mermaid(), small().to_mermaid());
}

fn names(order: &[Fqdn]) -> Vec<&str> {
    order.iter().map(Fqdn::as_str).collect()
}

#[test]
fn pool_order_honours_after_and_keeps_file_order_otherwise() {
    let inv = load(&dedent(SMALL)).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        names(&pool_order(&inv)),
        [
            "pool01.ams.contoso.com",
            "pool01.nyc.contoso.com",
            "se01.nyc.contoso.com"
        ]
    );
    let example =
        poolpatch_inventory::load_with(&example_path(), &opts()).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        names(&pool_order(&example)),
        [
            "pool01.ams.contoso.com",
            "pool02.ams.contoso.com",
            "pool01.nyc.contoso.com",
            "pool01.tyo.contoso.com",
            "se01.ams.contoso.com",
            "se01.nyc.contoso.com",
            "se02.nyc.contoso.com",
            "se01.tyo.contoso.com",
            "se02.tyo.contoso.com",
        ]
    );
}

#[test]
fn pool_order_moves_a_pool_behind_a_later_one_it_waits_for() {
    let mut inv = load(&dedent(SMALL)).unwrap_or_else(|d| panic!("{d}"));
    // pool01.ams waits for se01.nyc, which is written last; se01.nyc no longer waits.
    inv.pools[2].after.clear();
    inv.pools[0].after = vec![inv.pools[2].fqdn.clone()];
    assert_eq!(
        names(&pool_order(&inv)),
        [
            "pool01.nyc.contoso.com",
            "se01.nyc.contoso.com",
            "pool01.ams.contoso.com"
        ]
    );
}

#[test]
fn pool_order_of_a_hand_built_cycle_still_lists_every_pool_once() {
    let mut inv = load(&dedent(SMALL)).unwrap_or_else(|d| panic!("{d}"));
    // se01.nyc waits for pool01.ams (from the file); now also the reverse.
    inv.pools[0].after = vec![inv.pools[2].fqdn.clone()];
    assert_eq!(
        names(&pool_order(&inv)),
        [
            "pool01.nyc.contoso.com",
            "pool01.ams.contoso.com",
            "se01.nyc.contoso.com"
        ]
    );
}

#[test]
fn labels_are_escaped_in_both_drawings() {
    // Validated names cannot hold quotes; a hand-built inventory can.
    let mut inv = load(&dedent(SMALL)).unwrap_or_else(|d| panic!("{d}"));
    inv.sites[0].name = "ams \"dc\" <1> \\".into();
    inv.pools[0].site = inv.sites[0].name.clone();
    let g = DependencyGraph::build(&inv);
    let dot = g.to_dot();
    assert!(
        dot.contains(r#"label="ams \"dc\" <1> \\ (Europe/Amsterdam)";"#),
        "{dot}"
    );
    let mermaid = g.to_mermaid();
    assert!(
        mermaid.contains("subgraph site_0[\"ams #quot;dc#quot; #lt;1#gt; \\ (Europe/Amsterdam)\"]"),
        "{mermaid}"
    );
}
