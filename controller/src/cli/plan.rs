//! `poolpatch plan`: the plan a change board approves.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use poolpatch_inventory::Inventory;
use poolpatch_plans::history::{
    DEFAULT_MIN_SAMPLES, DEFAULT_PERCENTILE, History, HistoryPolicy, read_history,
};
use poolpatch_plans::{Change, Plan, PlanInput};

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
    /// One self-contained HTML file: the predicted timeline, the dependency graph and the
    /// tables, as `poolpatch report` shows a run (docs/usage/reports.md).
    Html,
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
    /// Past runs the estimates learn from.
    #[command(flatten)]
    pub history: HistoryArgs,
    /// Plan as if it were this time (RFC 3339, e.g. 2026-11-28T21:00:00Z): maintenance
    /// windows are computed from it. Default: now.
    #[arg(long, value_name = "TIME")]
    pub now: Option<jiff::Timestamp>,
}

/// Where the history of past runs is read from, and how it becomes estimates.
#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// A run directory, or a directory of run directories such as `runs/`, whose journals
    /// the estimates learn from (repeatable). Without it, estimates come from the change
    /// file and the built-in defaults only.
    #[arg(long = "history", value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// The percentile of a server's observed durations of a step used as its estimate.
    #[arg(long, value_name = "P", default_value_t = DEFAULT_PERCENTILE, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub history_percentile: u8,
    /// How many successful durations of a step a server needs before its history is used.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MIN_SAMPLES as u32, value_parser = clap::value_parser!(u32).range(1..))]
    pub history_min_samples: u32,
}

impl Default for HistoryArgs {
    /// No history, and the default policy.
    fn default() -> Self {
        HistoryArgs {
            dirs: Vec::new(),
            history_percentile: DEFAULT_PERCENTILE,
            history_min_samples: u32::try_from(DEFAULT_MIN_SAMPLES).unwrap_or(u32::MAX),
        }
    }
}

impl HistoryArgs {
    /// The history read from `--history` directories (`None` without any), after printing
    /// what was read and what was skipped to standard error.
    pub(crate) fn load(&self) -> Option<History> {
        if self.dirs.is_empty() {
            return None;
        }
        let policy = HistoryPolicy::new(
            self.history_percentile,
            usize::try_from(self.history_min_samples).unwrap_or(usize::MAX),
        );
        let read = read_history(&self.dirs, policy);
        for s in &read.skipped {
            eprintln!("warning: history: skipped {s}");
        }
        let samples: usize = read.runs.iter().map(|r| r.samples).sum();
        eprintln!(
            "history: {} run(s) read ({} skipped), {samples} step duration(s); estimates take p{} of at least {} per server and step",
            read.runs.len(),
            read.skipped.len(),
            policy.percentile(),
            policy.min_samples()
        );
        Some(read.history)
    }
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

/// Loads both files and plans, starting now (or at `now`).
pub(crate) fn load_and_plan(
    inventory: &Path,
    change: &Path,
    now: Option<jiff::Timestamp>,
) -> Result<(Inventory, Change, Plan), Exit> {
    load_and_plan_with(inventory, change, &HistoryArgs::default(), now)
}

/// Loads both files and the history of past runs, and plans.
pub(crate) fn load_and_plan_with(
    inventory: &Path,
    change: &Path,
    history: &HistoryArgs,
    now: Option<jiff::Timestamp>,
) -> Result<(Inventory, Change, Plan), Exit> {
    let inv = load_inventory(inventory)?;
    let change = load_change(change, &inv)?;
    let history = history.load();
    // Maintenance windows are wall-clock times: a plan starts at a moment (now, unless the
    // operator pretends another with --now).
    let mut input =
        PlanInput::new(&inv, &change).starting_at(now.unwrap_or_else(jiff::Timestamp::now));
    if let Some(h) = &history {
        input = input.with_history(h);
    }
    let plan = poolpatch_plans::plan_with(&input);
    Ok((inv, change, plan))
}

/// Prints the plan; exit 1 when servers in scope are not scheduled.
pub fn plan(a: &PlanArgs) -> Exit {
    let (_, _, plan) = match load_and_plan_with(&a.inventory, &a.change, &a.history, a.now) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let text = match a.format {
        PlanFormat::Text => plan.to_text(),
        PlanFormat::Md => plan.to_markdown(),
        PlanFormat::Json => plan.to_json(),
        PlanFormat::Html => {
            crate::report::from_plan(&plan).to_html_with(&super::report::maintenance_windows(&plan))
        }
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
