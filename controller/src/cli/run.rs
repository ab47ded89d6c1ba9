//! `poolpatch run` and `poolpatch status`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use poolpatch_plans::Plan;
use tokio::sync::watch;

use super::plan::{HistoryArgs, load_and_plan_with};
use super::{Exit, print_diagnostics};
use crate::exec::{RunContext, RunReport, carry_out};
use crate::lock::{InventoryLock, operator};
use crate::progress::ProgressMode;
use crate::remote::{Connector, SshConnector, SshOptions};

/// Arguments of `poolpatch run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The inventory file (docs/usage/inventory.md).
    #[arg(long, short)]
    pub inventory: PathBuf,
    /// The change file (docs/usage/change.md).
    #[arg(long, short)]
    pub change: PathBuf,
    /// The run directory (journal, plan.json). Default: RUNS/<UTC time>-<change name>.
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Where run directories are created when --run-dir is not given.
    #[arg(long, default_value = "runs")]
    pub runs: PathBuf,
    /// Record the host keys of servers that have none in their known_hosts file (never a
    /// changed key). Without it, an unknown key stops that server.
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Plain progress lines instead of live bars, even on a terminal.
    #[arg(long)]
    pub plain: bool,
    /// Past runs the estimates learn from: give the same as to `poolpatch plan`, so that
    /// the run carries out the plan that was approved.
    #[command(flatten)]
    pub history: HistoryArgs,
    /// Pretend the run starts at this time (RFC 3339, e.g. 2026-11-28T21:00:00Z), for a
    /// rehearsal against simulated hosts: maintenance windows are met as if it were then.
    #[arg(long, value_name = "TIME")]
    pub now: Option<jiff::Timestamp>,
}

/// Arguments of `poolpatch resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run directory of the stopped run.
    #[arg(long)]
    pub run: PathBuf,
    /// The inventory (default: the file the run was started with).
    #[arg(long, short)]
    pub inventory: Option<PathBuf>,
    /// The change file (default: the file the run was started with).
    #[arg(long, short)]
    pub change: Option<PathBuf>,
    /// Record the host keys of servers that have none in their known_hosts file.
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Plain progress lines instead of live bars, even on a terminal.
    #[arg(long)]
    pub plain: bool,
}

/// Arguments of `poolpatch status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The run directory.
    #[arg(long)]
    pub run: PathBuf,
}

/// A directory name from the time and the change's name.
pub(crate) fn default_run_dir(runs: &Path, now: jiff::Timestamp, change: &str) -> PathBuf {
    let slug: String = change
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .take(6)
        .collect::<Vec<_>>()
        .join("-");
    runs.join(format!("{}-{slug}", now.strftime("%Y%m%dT%H%M%SZ")))
}

/// Steers the run of `run_dir` from signals: SIGINT or SIGTERM abort it (no new server
/// starts; servers in flight finish or are restored), SIGUSR1 pauses it, SIGUSR2 resumes it.
/// Each goes through the control file, so the journal records it as `poolpatch ctl` would;
/// the returned channel also turns true on abort, should the file not be writable.
pub(crate) fn stop_on_signals(run_dir: PathBuf) -> watch::Receiver<bool> {
    use crate::exec::control::{Command, send};
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut usr1), Ok(mut usr2)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::user_defined1()),
                signal(SignalKind::user_defined2()),
            ) else {
                let _ = tokio::signal::ctrl_c().await;
                let _ = tx.send(true);
                return;
            };
            loop {
                let (command, by) = tokio::select! {
                    _ = tokio::signal::ctrl_c() => (Command::Abort, "SIGINT"),
                    _ = term.recv() => (Command::Abort, "SIGTERM"),
                    _ = usr1.recv() => (Command::Pause, "SIGUSR1"),
                    _ = usr2.recv() => (Command::Resume, "SIGUSR2"),
                };
                if let Err(e) = send(&run_dir, command, by) {
                    eprintln!(
                        "poolpatch: cannot write the control file in {}: {e}",
                        run_dir.display()
                    );
                }
                if command == Command::Abort {
                    eprintln!(
                        "poolpatch: aborting ({by}): no new server starts; servers in flight finish or are restored. The journal records it."
                    );
                    let _ = tx.send(true);
                    return;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            let _ = send(&run_dir, Command::Abort, "Ctrl-C");
            let _ = tx.send(true);
        }
    });
    rx
}

/// Arguments of `poolpatch ctl`.
#[derive(Debug, Args)]
pub struct CtlArgs {
    /// What to tell the running controller.
    #[arg(value_enum)]
    pub command: CtlCommand,
    /// The run directory of the running controller.
    #[arg(long)]
    pub run: PathBuf,
}

/// What `poolpatch ctl` can tell a running controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CtlCommand {
    /// Start no new server; servers in flight go on to their end.
    Pause,
    /// Start servers again.
    Resume,
    /// Start no new server; servers in flight finish or are restored; the run ends.
    Abort,
}

/// Tells a running controller to pause, resume or abort.
pub fn ctl(a: &CtlArgs) -> Exit {
    use crate::exec::control::{Command, send};
    let journal = match crate::journal::read(&a.run) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Invalid;
        }
    };
    if journal
        .records
        .iter()
        .any(|r| matches!(r.event, crate::journal::Event::RunFinished { .. }))
    {
        eprintln!(
            "error: the run in {} has finished: there is nothing to steer",
            a.run.display()
        );
        return Exit::Invalid;
    }
    let command = match a.command {
        CtlCommand::Pause => Command::Pause,
        CtlCommand::Resume => Command::Resume,
        CtlCommand::Abort => Command::Abort,
    };
    match send(&a.run, command, &operator()) {
        Ok(sent) => {
            println!(
                "sent `{}` (#{}) to the controller of {}; it acts within a second and journals it (poolpatch status --run {})",
                command.name(),
                sent.seq,
                a.run.display(),
                a.run.display()
            );
            Exit::Ok
        }
        Err(e) => {
            eprintln!(
                "error: cannot write the control file in {}: {e}",
                a.run.display()
            );
            Exit::CannotStart
        }
    }
}

/// Prints how a run ended and turns it into an exit code.
pub(crate) fn finish(report: &RunReport, run_dir: &Path) -> Exit {
    let s = &report.summary;
    println!(
        "\n{} done, {} failed or restored unfinished, {} skipped, {} breaches",
        s.done(),
        s.failed(),
        s.skipped(),
        report.breaches
    );
    if let Some(h) = &s.halted {
        println!("halted: {h}");
    }
    println!("journal: {}", report.journal.display());
    println!("status:  poolpatch status --run {}", run_dir.display());
    if report.breaches > 0 {
        Exit::Breach
    } else if s.failed() > 0 || s.skipped() > 0 || s.halted.is_some() {
        Exit::Incomplete
    } else {
        Exit::Ok
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Exit> {
    tokio::runtime::Runtime::new().map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        Exit::Internal
    })
}

/// Carries out the plan on the real servers.
pub fn run(a: &RunArgs) -> Exit {
    let (inventory, change, plan) =
        match load_and_plan_with(&a.inventory, &a.change, &a.history, a.now) {
            Ok(x) => x,
            Err(e) => return e,
        };
    if let Err(d) = change.verify_installers() {
        print_diagnostics(&d);
        return Exit::CannotStart;
    }
    report_unscheduled(&plan);
    let now = a.now.unwrap_or_else(jiff::Timestamp::now);
    let run_dir = a
        .run_dir
        .clone()
        .unwrap_or_else(|| default_run_dir(&a.runs, now, &plan.change.name));
    let holder = format!("{}, run {}", operator(), run_dir.display());
    let _lock = match InventoryLock::acquire(&a.inventory, &holder) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::CannotStart;
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return e,
    };
    let progress = if a.plain {
        ProgressMode::Lines
    } else {
        ProgressMode::detect()
    };
    let connector: Arc<dyn Connector> = Arc::new(SshConnector::new(SshOptions {
        connect_timeout: plan.policy.connect_timeout,
        accept_new_host_keys: a.accept_new_host_keys,
        ..SshOptions::default()
    }));
    let ctx = RunContext {
        rehearsal: false,
        clock_speed: 1.0,
        run_dir: run_dir.clone(),
        inventory_file: absolute(&a.inventory),
        change_file: absolute(&a.change),
        now,
        operator: operator(),
        progress,
    };
    let result = rt.block_on(async {
        let stop = stop_on_signals(ctx.run_dir.clone());
        carry_out(&plan, &inventory, &change, connector, &ctx, stop).await
    });
    match result {
        Ok(report) => {
            let exit = finish(&report, &run_dir);
            // Servers the plan leaves out are not patched either: not everything was done.
            let unscheduled = plan.totals.servers_not_scheduled;
            if unscheduled > 0 {
                println!(
                    "not scheduled: {unscheduled} server(s) in scope (`poolpatch plan` says why)"
                );
            }
            if exit == Exit::Ok && unscheduled > 0 {
                Exit::Incomplete
            } else {
                exit
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            Exit::CannotStart
        }
    }
}

/// The path made absolute (so `resume` finds it from anywhere), or as given.
pub(crate) fn absolute(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

/// Goes on with a run whose controller stopped.
pub fn resume(a: &ResumeArgs) -> Exit {
    let journal = match crate::journal::read(&a.run) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Invalid;
        }
    };
    let started = journal.records.iter().find_map(|r| match &r.event {
        crate::journal::Event::RunStarted {
            inventory,
            change_file,
            ..
        } => Some((PathBuf::from(inventory), PathBuf::from(change_file))),
        _ => None,
    });
    let Some((inv_path, change_path)) = a.inventory.clone().zip(a.change.clone()).or_else(|| {
        started.map(|(i, c)| {
            (
                a.inventory.clone().unwrap_or(i),
                a.change.clone().unwrap_or(c),
            )
        })
    }) else {
        eprintln!(
            "error: the journal of {} does not say which inventory and change file the run used: give --inventory and --change",
            a.run.display()
        );
        return Exit::Invalid;
    };
    let inventory = match super::load_inventory(&inv_path) {
        Ok(i) => i,
        Err(e) => return e,
    };
    let change = match super::plan::load_change(&change_path, &inventory) {
        Ok(c) => c,
        Err(e) => return e,
    };
    if let Err(d) = change.verify_installers() {
        print_diagnostics(&d);
        return Exit::CannotStart;
    }
    let holder = format!("{}, resuming run {}", operator(), a.run.display());
    let _lock = match InventoryLock::acquire(&inv_path, &holder) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::CannotStart;
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return e,
    };
    let progress = if a.plain {
        ProgressMode::Lines
    } else {
        ProgressMode::detect()
    };
    let plan_connect = std::fs::read_to_string(a.run.join(crate::exec::PLAN_FILE))
        .ok()
        .and_then(|t| Plan::from_json(&t).ok())
        .map_or(std::time::Duration::from_secs(15), |p| {
            p.policy.connect_timeout
        });
    let connector: Arc<dyn Connector> = Arc::new(SshConnector::new(SshOptions {
        connect_timeout: plan_connect,
        accept_new_host_keys: a.accept_new_host_keys,
        ..SshOptions::default()
    }));
    let ctx = RunContext {
        rehearsal: false,
        clock_speed: 1.0,
        run_dir: a.run.clone(),
        inventory_file: absolute(&inv_path),
        change_file: absolute(&change_path),
        now: jiff::Timestamp::now(),
        operator: operator(),
        progress,
    };
    let result = rt.block_on(async {
        let stop = stop_on_signals(ctx.run_dir.clone());
        crate::exec::resume_run(&inventory, &change, connector, &ctx, stop).await
    });
    match result {
        Ok(report) => finish(&report, &a.run),
        Err(e) => {
            eprintln!("error: {e}");
            Exit::CannotStart
        }
    }
}

/// Warns about servers the plan leaves out.
pub(crate) fn report_unscheduled(plan: &Plan) {
    for s in plan.not_scheduled() {
        if let Some(n) = &s.not_scheduled {
            eprintln!("warning: {} is not scheduled: {}", s.fqdn, n.message);
        }
    }
}

/// Shows where a run stands.
pub fn status(a: &StatusArgs) -> Exit {
    match crate::status::read(&a.run) {
        Ok(s) => {
            print!("{}", s.to_text());
            if !s.breaches.is_empty() {
                Exit::Breach
            } else if s.finished
                && s.servers
                    .iter()
                    .all(|(_, st)| matches!(st, crate::status::ServerState::Done { .. }))
            {
                Exit::Ok
            } else {
                Exit::Incomplete
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            Exit::Invalid
        }
    }
}
