//! The dependency graph of an estate, and the order in which pools may be patched.
//!
//! Nodes are sites, pools, Front End servers, and the patched servers (Back End and
//! Standard Edition). Edges:
//!
//! | kind | from → to | meaning |
//! |---|---|---|
//! | [`EdgeKind::DependsOn`] | Front End → pool, pool → Back End / SE server | loses service while the target is down |
//! | [`EdgeKind::LocatedIn`] | pool → site | time zone, (later) maintenance windows |
//! | [`EdgeKind::MirrorPartner`] | principal → mirror | a mirrored SQL pair, once per pair |
//! | [`EdgeKind::PairedPool`] | pool → backup pool | disaster-recovery pair, once per pair |
//! | [`EdgeKind::After`] | pool → pool it waits for | `after:` ordering |
//!
//! Nodes and edges are inserted in file order, so the graph and its drawings are the same
//! for the same file. [`DependencyGraph::to_dot`] and [`DependencyGraph::to_mermaid`] draw
//! it, ready to paste into a change request.
//!
//! ```
//! let inventory = poolpatch_inventory::from_str("estate.yaml", "
//! version: 1
//! defaults: { ssh: { user: svc-poolpatch, agent: true, known_hosts: /etc/pp/known_hosts } }
//! sites: [{ name: amsterdam, time_zone: Europe/Amsterdam }]
//! pools:
//!   - { fqdn: se01.ams.contoso.com, site: amsterdam, edition: standard, product: sfb2019, server: {} }
//! ").unwrap();
//! let graph = poolpatch_inventory::DependencyGraph::build(&inventory);
//! assert!(graph.to_dot().starts_with("// poolpatch dependency graph"));
//! ```

mod dot;
mod mermaid;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::model::{Fqdn, Inventory, MirrorRole, Role};

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeKind {
    /// A site.
    Site,
    /// A pool (Enterprise or Standard Edition).
    Pool,
    /// A Front End server.
    FrontEnd,
    /// An Enterprise Edition Back End server.
    BackEnd,
    /// A Standard Edition server.
    StandardEdition,
}

/// A node: what it is, its name, and the site it is drawn in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphNode {
    /// What the node stands for.
    pub kind: NodeKind,
    /// The site name, or the FQDN.
    pub name: String,
    /// A second label line (`Back End · principal`).
    pub detail: String,
    /// The site the node is drawn in; `None` when the inventory names no known site.
    pub site: Option<String>,
}

/// The kinds of edges, in legend order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EdgeKind {
    /// Front End → pool, pool → Back End / Standard Edition server.
    DependsOn,
    /// Pool → site.
    LocatedIn,
    /// Principal → mirror back end.
    MirrorPartner,
    /// Pool → its backup pool (disaster-recovery pair).
    PairedPool,
    /// Pool → a pool it waits for (`after:`).
    After,
}

impl EdgeKind {
    /// Every kind, in legend order.
    pub const ALL: [EdgeKind; 5] = [
        EdgeKind::DependsOn,
        EdgeKind::LocatedIn,
        EdgeKind::MirrorPartner,
        EdgeKind::PairedPool,
        EdgeKind::After,
    ];

    /// What the edge means, for legends.
    pub fn legend(self) -> &'static str {
        match self {
            EdgeKind::DependsOn => "depends on",
            EdgeKind::LocatedIn => "located in",
            EdgeKind::MirrorPartner => "SQL mirror partner",
            EdgeKind::PairedPool => "paired pool (backup)",
            EdgeKind::After => "waits for (after)",
        }
    }
}

/// The dependency graph of an inventory.
#[derive(Debug, Clone)]
pub struct DependencyGraph {
    graph: DiGraph<GraphNode, EdgeKind>,
    /// (kind, name) → node, for [`DependencyGraph::find`].
    index: HashMap<(NodeKind, String), NodeIndex>,
    /// Sites in file order with their time zones: one cluster each in drawings.
    sites: Vec<(String, String)>,
}

impl DependencyGraph {
    /// Builds the graph of `inventory` (nodes and edges in file order).
    ///
    /// Infallible: a validated inventory has no dangling names, and for a hand-built one
    /// edges to unknown names are left out.
    pub fn build(inventory: &Inventory) -> DependencyGraph {
        let mut graph = DiGraph::new();
        let mut index: HashMap<(NodeKind, &str), NodeIndex> = HashMap::new();
        for site in &inventory.sites {
            let i = graph.add_node(GraphNode {
                kind: NodeKind::Site,
                name: site.name.clone(),
                detail: format!("site · {}", site.time_zone),
                site: Some(site.name.clone()),
            });
            index.entry((NodeKind::Site, &site.name)).or_insert(i);
        }
        for pool in &inventory.pools {
            let site = index
                .contains_key(&(NodeKind::Site, pool.site.as_str()))
                .then(|| pool.site.clone());
            let i = graph.add_node(GraphNode {
                kind: NodeKind::Pool,
                name: pool.fqdn.to_string(),
                detail: format!(
                    "{} pool · {}",
                    pool.edition.display_name(),
                    pool.product.display_name()
                ),
                site: site.clone(),
            });
            index
                .entry((NodeKind::Pool, pool.fqdn.as_str()))
                .or_insert(i);
            for fe in &pool.front_ends {
                let detail = match &fe.upgrade_domain {
                    Some(ud) => format!("Front End · {ud}"),
                    None => "Front End".to_string(),
                };
                let n = GraphNode {
                    kind: NodeKind::FrontEnd,
                    name: fe.fqdn.to_string(),
                    detail,
                    site: site.clone(),
                };
                let i = graph.add_node(n);
                index
                    .entry((NodeKind::FrontEnd, fe.fqdn.as_str()))
                    .or_insert(i);
            }
            for server in &pool.servers {
                let (kind, detail) = server_detail(&server.role);
                let n = GraphNode {
                    kind,
                    name: server.fqdn.to_string(),
                    detail,
                    site: site.clone(),
                };
                let i = graph.add_node(n);
                index.entry((kind, server.fqdn.as_str())).or_insert(i);
            }
        }
        let node = |kind: NodeKind, name: &str| index.get(&(kind, name)).copied();
        let mut edges: Vec<(NodeIndex, NodeIndex, EdgeKind)> = Vec::new();
        for pool in &inventory.pools {
            let Some(p) = node(NodeKind::Pool, pool.fqdn.as_str()) else {
                continue;
            };
            if let Some(s) = node(NodeKind::Site, &pool.site) {
                edges.push((p, s, EdgeKind::LocatedIn));
            }
            for fe in &pool.front_ends {
                if let Some(f) = node(NodeKind::FrontEnd, fe.fqdn.as_str()) {
                    edges.push((f, p, EdgeKind::DependsOn));
                }
            }
            for server in &pool.servers {
                let (kind, _) = server_detail(&server.role);
                if let Some(s) = node(kind, server.fqdn.as_str()) {
                    edges.push((p, s, EdgeKind::DependsOn));
                }
            }
        }
        let mut pairs: HashSet<(NodeIndex, NodeIndex)> = HashSet::new();
        for server in inventory.servers() {
            let Role::BackEnd {
                mirror: Some(m), ..
            } = &server.role
            else {
                continue;
            };
            let (Some(a), Some(b)) = (
                node(NodeKind::BackEnd, server.fqdn.as_str()),
                node(NodeKind::BackEnd, m.partner.as_str()),
            ) else {
                continue;
            };
            // Draw from the principal; the pair once.
            let (from, to) = if m.role == MirrorRole::Principal {
                (a, b)
            } else {
                (b, a)
            };
            if a != b && pairs.insert((a.min(b), a.max(b))) {
                edges.push((from, to, EdgeKind::MirrorPartner));
            }
        }
        for pool in &inventory.pools {
            let (Some(a), Some(b)) = (
                node(NodeKind::Pool, pool.fqdn.as_str()),
                pool.backup_pool
                    .as_ref()
                    .and_then(|f| node(NodeKind::Pool, f.as_str())),
            ) else {
                continue;
            };
            if a != b && pairs.insert((a.min(b), a.max(b))) {
                edges.push((a, b, EdgeKind::PairedPool));
            }
        }
        for pool in &inventory.pools {
            let Some(a) = node(NodeKind::Pool, pool.fqdn.as_str()) else {
                continue;
            };
            for first in &pool.after {
                if let Some(b) = node(NodeKind::Pool, first.as_str()) {
                    edges.push((a, b, EdgeKind::After));
                }
            }
        }
        for (a, b, kind) in edges {
            graph.add_edge(a, b, kind);
        }
        let mut index = HashMap::new();
        for i in graph.node_indices() {
            let n = &graph[i];
            index.entry((n.kind, n.name.clone())).or_insert(i);
        }
        DependencyGraph {
            graph,
            index,
            sites: inventory
                .sites
                .iter()
                .map(|s| (s.name.clone(), s.time_zone.clone()))
                .collect(),
        }
    }

    /// The underlying petgraph graph, for algorithms.
    pub fn graph(&self) -> &DiGraph<GraphNode, EdgeKind> {
        &self.graph
    }

    /// The node of `kind` named `name` (a site name or an FQDN).
    pub fn find(&self, kind: NodeKind, name: &str) -> Option<NodeIndex> {
        self.index.get(&(kind, name.to_string())).copied()
    }

    /// The graph in Graphviz DOT: one cluster per site, one edge style per kind, a legend.
    /// Render with `dot -Tsvg`.
    pub fn to_dot(&self) -> String {
        dot::write(self)
    }

    /// The graph as a Mermaid flowchart: one subgraph per site, one arrow style per kind,
    /// a legend. Paste it into a Markdown ```` ```mermaid ```` block.
    pub fn to_mermaid(&self) -> String {
        mermaid::write(self)
    }

    /// Nodes grouped for drawing: each site's nodes in file order, then the nodes of no
    /// known site.
    fn clusters(&self) -> (Vec<Cluster<'_>>, Vec<NodeIndex>) {
        let mut by_site: HashMap<&str, Vec<NodeIndex>> = HashMap::new();
        let mut loose = Vec::new();
        for i in self.graph.node_indices() {
            match &self.graph[i].site {
                Some(s) => by_site.entry(s.as_str()).or_default().push(i),
                None => loose.push(i),
            }
        }
        let mut clusters = Vec::new();
        for (name, tz) in &self.sites {
            // A repeated site name (hand-built inventory) is drawn once.
            if let Some(nodes) = by_site.remove(name.as_str()) {
                clusters.push((name.as_str(), tz.as_str(), nodes));
            }
        }
        (clusters, loose)
    }
}

/// A site's name, time zone and nodes, drawn as one cluster.
type Cluster<'a> = (&'a str, &'a str, Vec<NodeIndex>);

fn server_detail(role: &Role) -> (NodeKind, String) {
    match role {
        Role::BackEnd {
            mirror,
            collocated_databases,
            ..
        } => {
            let mut detail = "Back End".to_string();
            if let Some(m) = mirror {
                detail.push_str(&format!(" · SQL {}", m.role.name()));
            }
            if !collocated_databases.is_empty() {
                let names: Vec<&str> = collocated_databases.iter().map(|d| d.name()).collect();
                detail.push_str(&format!(" · collocated: {}", names.join(", ")));
            }
            (NodeKind::BackEnd, detail)
        }
        Role::StandardEdition => (NodeKind::StandardEdition, "Standard Edition server".into()),
    }
}

/// The pools in an order that honours `after:` (a pool comes after every pool it names),
/// ties broken by file order. Deterministic.
///
/// A validated inventory has no cycle; should a hand-built one have one, the pools on it
/// (and those waiting for them) follow the others in file order.
pub fn pool_order(inventory: &Inventory) -> Vec<Fqdn> {
    let pools = &inventory.pools;
    let mut index: HashMap<&Fqdn, usize> = HashMap::new();
    for (i, p) in pools.iter().enumerate() {
        index.entry(&p.fqdn).or_insert(i);
    }
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); pools.len()];
    let mut waiting_for = vec![0usize; pools.len()];
    for (i, p) in pools.iter().enumerate() {
        for first in &p.after {
            if let Some(&j) = index.get(first)
                && j != i
            {
                dependents[j].push(i);
                waiting_for[i] += 1;
            }
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..pools.len())
        .filter(|&i| waiting_for[i] == 0)
        .map(Reverse)
        .collect();
    let mut done = vec![false; pools.len()];
    let mut order = Vec::with_capacity(pools.len());
    while let Some(Reverse(i)) = ready.pop() {
        done[i] = true;
        order.push(i);
        for &d in &dependents[i] {
            waiting_for[d] -= 1;
            if waiting_for[d] == 0 {
                ready.push(Reverse(d));
            }
        }
    }
    order.extend((0..pools.len()).filter(|&i| !done[i]));
    order.into_iter().map(|i| pools[i].fqdn.clone()).collect()
}

/// Every cycle of the directed graph on `0..n` with `edges`, one per strongly connected
/// component, as the node path `[a, b, …, a]` starting at the component's lowest node and
/// following the shortest way back (neighbours in index order). Self-loops are left out.
/// Sorted, so deterministic.
pub(crate) fn cycles(n: usize, edges: &[(usize, usize)]) -> Vec<Vec<usize>> {
    let mut g: DiGraph<(), ()> = DiGraph::with_capacity(n, edges.len());
    for _ in 0..n {
        g.add_node(());
    }
    let mut next: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in edges {
        if a < n && b < n && a != b {
            g.add_edge(NodeIndex::new(a), NodeIndex::new(b), ());
            next[a].push(b);
        }
    }
    for list in &mut next {
        list.sort_unstable();
        list.dedup();
    }
    let mut out = Vec::new();
    for scc in tarjan_scc(&g) {
        if scc.len() < 2 {
            continue;
        }
        let members: HashSet<usize> = scc.iter().map(|i| i.index()).collect();
        let Some(&start) = members.iter().min() else {
            continue;
        };
        let mut parent: HashMap<usize, usize> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        let mut last = None;
        'search: while let Some(u) = queue.pop_front() {
            for &v in next.get(u).map_or(&[][..], Vec::as_slice) {
                if v == start {
                    last = Some(u);
                    break 'search;
                }
                if members.contains(&v) && !parent.contains_key(&v) {
                    parent.insert(v, u);
                    queue.push_back(v);
                }
            }
        }
        let Some(mut u) = last else { continue };
        let mut back = Vec::new();
        while u != start {
            back.push(u);
            match parent.get(&u) {
                Some(&p) => u = p,
                None => break,
            }
        }
        let mut path = vec![start];
        path.extend(back.into_iter().rev());
        path.push(start);
        out.push(path);
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::cycles;

    #[test]
    fn cycles_are_whole_paths() {
        // 0 → 1 → 2 → 0, and 3 ↔ 4, and 5 alone with a self-loop.
        let edges = [(0, 1), (1, 2), (2, 0), (3, 4), (4, 3), (5, 5), (2, 5)];
        assert_eq!(cycles(6, &edges), vec![vec![0, 1, 2, 0], vec![3, 4, 3]]);
        assert!(cycles(3, &[(0, 1), (1, 2)]).is_empty());
    }

    #[test]
    fn the_shortest_way_back_is_taken() {
        // 0 → 1 → 2 → 3 → 0 and the shortcut 1 → 3.
        let edges = [(0, 1), (1, 2), (2, 3), (3, 0), (1, 3)];
        assert_eq!(cycles(4, &edges), vec![vec![0, 1, 3, 0]]);
    }
}
