//! The `poolpatch` command line: subcommands, exit codes, and how input problems are shown.

mod check;
mod demo;
mod plan;
mod report;
mod run;
mod simulate;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};
use poolpatch_inventory::{Diagnostics, Inventory};

/// Exit codes of `poolpatch`, stable for scripts and schedulers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Everything asked for was done (check passed, plan fully scheduled, run completed).
    Ok = 0,
    /// Done, but not everything: servers failed, were skipped or restored unfinished, or the
    /// plan leaves servers unscheduled.
    Incomplete = 1,
    /// The input is wrong: invalid inventory or change file, bad arguments. Nothing ran.
    Invalid = 2,
    /// The run could not start: another controller holds the lock, the run directory is in
    /// use, the local installer does not match its SHA-256, or a file could not be written.
    CannotStart = 3,
    /// A server was down for the whole resiliency threshold (a breach). Read the journal.
    Breach = 4,
    /// An internal error (a bug): please report it with the journal.
    Internal = 70,
}

const EXIT_CODES_HELP: &str = "\
Exit codes:
  0   everything asked for was done
  1   done, but not everything: servers failed, skipped or restored unfinished,
      or the plan leaves servers unscheduled
  2   invalid input (inventory, change file, arguments); nothing ran
  3   cannot start: lock held, run directory in use, installer hash mismatch
  4   a breach: a back end was down for the whole resiliency threshold
  70  internal error";

/// Pool-wide patch orchestration for Lync Server 2013 and Skype for Business Server:
/// patches Back End and Standard Edition servers one at a time per pool, over SSH, inside
/// an outage budget.
#[derive(Debug, Parser)]
#[command(name = "poolpatch", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate an inventory (and a change file); print every problem found.
    Check(check::CheckArgs),
    /// Print the dependency graph of an inventory as DOT or Mermaid.
    Graph(check::GraphArgs),
    /// Print the plan: schedule, every step's command, predicted outages against the budget.
    Plan(plan::PlanArgs),
    /// Carry out the plan on the servers, over SSH, under the outage watchdog.
    Run(run::RunArgs),
    /// Go on with a run whose controller stopped (killed, machine restarted): asks each
    /// server that was in flight where it really is, then carries out the rest of the plan.
    Resume(run::ResumeArgs),
    /// Pause, resume or abort a running controller.
    Ctl(run::CtlArgs),
    /// Show where a run stands, from its journal.
    Status(run::StatusArgs),
    /// The outage report of a run (text, Markdown, HTML or JSON): predicted against actual
    /// outages, steps, watchdog actions, breaches, and what is not patched and why.
    Report(report::ReportArgs),
    /// Patch the built-in example estate (or rehearse your own) against simulated servers
    /// that speak real SSH on loopback.
    Demo(demo::DemoArgs),
    /// Serve simulated servers at your inventory's loopback addresses until stopped, to
    /// rehearse `poolpatch run` unchanged in a second terminal.
    Simulate(simulate::SimulateArgs),
}

/// Output formats of the dependency graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT.
    Dot,
    /// Mermaid (renders in GitLab, GitHub, Azure DevOps and many wikis).
    Mermaid,
}

/// Sets up logging to stderr: warnings by default, more with -v, RUST_LOG overrides.
pub fn init_logging(verbose: u8) {
    use std::io::IsTerminal as _;
    let default = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Runs the command line; returns the exit code.
pub fn main(cli: Cli) -> Exit {
    match cli.command {
        Command::Check(a) => check::check(&a),
        Command::Graph(a) => check::graph(&a),
        Command::Plan(a) => plan::plan(&a),
        Command::Run(a) => run::run(&a),
        Command::Resume(a) => run::resume(&a),
        Command::Ctl(a) => run::ctl(&a),
        Command::Status(a) => run::status(&a),
        Command::Report(a) => report::report(&a),
        Command::Demo(a) => demo::demo(&a),
        Command::Simulate(a) => simulate::simulate(&a),
    }
}

/// Prints `diags` with snippets of the files they name.
pub(crate) fn print_diagnostics(diags: &Diagnostics) {
    let text = diags.render(&|file: &str| std::fs::read_to_string(file).ok());
    eprintln!("{text}");
}

/// Loads the inventory or prints why not.
pub(crate) fn load_inventory(path: &Path) -> Result<Inventory, Exit> {
    poolpatch_inventory::load(path).map_err(|d| {
        print_diagnostics(&d);
        Exit::Invalid
    })
}

/// Writes `text` to `output` (or stdout).
pub(crate) fn emit(text: &str, output: Option<&PathBuf>) -> Result<(), Exit> {
    match output {
        None => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth a message.
            let _ = out.write_all(text.as_bytes());
            if !text.ends_with('\n') {
                let _ = out.write_all(b"\n");
            }
            Ok(())
        }
        Some(p) => std::fs::write(p, text).map_err(|e| {
            eprintln!("error: cannot write {}: {e}", p.display());
            Exit::CannotStart
        }),
    }
}
