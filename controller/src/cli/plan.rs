//! `poolpatch plan`: the plan a change board approves.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use poolpatch_inventory::Inventory;
use poolpatch_plans::{Change, Plan};

use super::{Exit, emit, load_inventory, print_diagnostics};

/// Output formats of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// Readable on a terminal.
    Text,
    /// Markdown, to paste into a change request.
    Md,
    /// The versioned JSON document (docs/usage/plan-json.md).
    Json,
}

/// Arguments of `poolpatch plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The inventory file (docs/usage/inventory.md).
    #[arg(long, short)]
    pub inventory: PathBuf,
    /// The change file (docs/usage/change.md).
    #[arg(long, short)]
    pub change: PathBuf,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "text")]
    pub format: PlanFormat,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// Loads and validates the change file against `inventory`, or prints every problem.
pub(crate) fn load_change(path: &Path, inventory: &Inventory) -> Result<Change, Exit> {
    let change = poolpatch_plans::load_change(path).map_err(|d| {
        print_diagnostics(&d);
        Exit::Invalid
    })?;
    change.check_against(inventory).map_err(|d| {
        print_diagnostics(&d);
        Exit::Invalid
    })?;
    Ok(change)
}

/// Loads both files and plans.
pub(crate) fn load_and_plan(
    inventory: &Path,
    change: &Path,
) -> Result<(Inventory, Change, Plan), Exit> {
    let inv = load_inventory(inventory)?;
    let change = load_change(change, &inv)?;
    let plan = poolpatch_plans::plan(&inv, &change);
    Ok((inv, change, plan))
}

/// Prints the plan; exit 1 when servers in scope are not scheduled.
pub fn plan(a: &PlanArgs) -> Exit {
    let (_, _, plan) = match load_and_plan(&a.inventory, &a.change) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let text = match a.format {
        PlanFormat::Text => plan.to_text(),
        PlanFormat::Md => plan.to_markdown(),
        PlanFormat::Json => plan.to_json(),
    };
    if let Err(e) = emit(&text, a.output.as_ref()) {
        return e;
    }
    if plan.totals.servers_not_scheduled > 0 {
        eprintln!(
            "warning: {} server(s) in scope are not scheduled; the plan says why and what would fix it",
            plan.totals.servers_not_scheduled
        );
        Exit::Incomplete
    } else {
        Exit::Ok
    }
}
