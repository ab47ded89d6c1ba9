//! `poolpatch check` and `poolpatch graph`.

use std::path::PathBuf;

use clap::Args;
use poolpatch_inventory::DependencyGraph;

use super::{Exit, GraphFormat, emit, load_inventory};

/// Arguments of `poolpatch check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The inventory file (YAML; see docs/usage/inventory.md).
    #[arg(long, short)]
    pub inventory: PathBuf,
    /// A change file to validate against the inventory (see docs/usage/change.md).
    #[arg(long, short)]
    pub change: Option<PathBuf>,
}

/// Arguments of `poolpatch graph`.
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The inventory file.
    #[arg(long, short)]
    pub inventory: PathBuf,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "dot")]
    pub format: GraphFormat,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// Validates; prints every problem; exit 0 when valid, 2 otherwise.
pub fn check(a: &CheckArgs) -> Exit {
    let inventory = match load_inventory(&a.inventory) {
        Ok(i) => i,
        Err(e) => return e,
    };
    let servers = inventory.servers().count();
    if let Some(change_path) = &a.change {
        let change = match super::plan::load_change(change_path, &inventory) {
            Ok(c) => c,
            Err(e) => return e,
        };
        if let Err(d) = change.verify_installers() {
            super::print_diagnostics(&d);
            return Exit::Invalid;
        }
        println!(
            "{}: valid: {}, {} installer(s) match their SHA-256",
            change_path.display(),
            change.name,
            change.update.installers.len()
        );
    }
    println!(
        "{}: valid: {} sites, {} pools, {} servers to patch",
        a.inventory.display(),
        inventory.sites.len(),
        inventory.pools.len(),
        servers
    );
    Exit::Ok
}

/// Prints the dependency graph.
pub fn graph(a: &GraphArgs) -> Exit {
    let inventory = match load_inventory(&a.inventory) {
        Ok(i) => i,
        Err(e) => return e,
    };
    let g = DependencyGraph::build(&inventory);
    let text = match a.format {
        GraphFormat::Dot => g.to_dot(),
        GraphFormat::Mermaid => g.to_mermaid(),
    };
    match emit(&text, a.output.as_ref()) {
        Ok(()) => Exit::Ok,
        Err(e) => e,
    }
}
