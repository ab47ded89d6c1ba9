//! `poolpatch demo`: the example estate (or the operator's own, for a rehearsal) patched
//! against simulated hosts, on any machine.
//!
//! The example inventory, change file and (placeholder) installers are built into the
//! binary and written to a work directory, so the demo needs nothing but poolpatch. Each
//! simulated server listens on its own 127.0.0.x address; time is compressed (a minute of
//! the plan takes `60 / speed` seconds) for the outage budget, the threshold, every step's
//! estimate and timeout, and the simulated commands alike.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::Exit;
use super::run::{default_run_dir, finish, report_unscheduled, stop_on_signals};
use crate::exec::{RunContext, carry_out};
use crate::lock::operator;
use crate::progress::ProgressMode;
use crate::rehearsal::{Rehearsal, RehearsalOptions, compress_plan};
use crate::remote::{Connector, SshConnector, SshOptions};
use crate::sim::{Listen, SimDurations};

const ESTATE: &str = include_str!("../../../inventory/examples/estate.yaml");
const CHANGE: &str = include_str!("../../../plans/examples/change.yaml");
const INSTALLERS: [(&str, &[u8]); 3] = [
    (
        "updates/lync2013/LyncServerUpdateInstaller.exe",
        include_bytes!("../../../plans/examples/updates/lync2013/LyncServerUpdateInstaller.exe"),
    ),
    (
        "updates/sfb2015/SkypeServerUpdateInstaller.exe",
        include_bytes!("../../../plans/examples/updates/sfb2015/SkypeServerUpdateInstaller.exe"),
    ),
    (
        "updates/sfb2019/SkypeServerUpdateInstaller.exe",
        include_bytes!("../../../plans/examples/updates/sfb2019/SkypeServerUpdateInstaller.exe"),
    ),
];

/// Arguments of `poolpatch demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How much faster than real time (default 240, with --canary 1200): 240 makes a
    /// 20-minute outage take 5 seconds.
    #[arg(long)]
    pub speed: Option<f64>,
    /// The canary rollout of the example: the estate with maintenance windows in two time
    /// zones and a three-stage canary (one Standard Edition server, then a site, then the
    /// rest), with bake times; the run waits for windows and stages visibly.
    #[arg(long, conflicts_with_all = ["inventory", "change"])]
    pub canary: bool,
    /// Kill the controller in the middle of the first installer (a simulated crash: its
    /// tasks and connections die, the hosts go on), show the status, then resume the run to
    /// completion with `resume`'s logic.
    #[arg(long)]
    pub crash: bool,
    /// Pretend the rehearsal starts at this time (RFC 3339). With --canary the default is
    /// the Saturday afternoon before the example's first windows, 2026-11-28T18:00:00Z.
    #[arg(long, value_name = "TIME")]
    pub now: Option<jiff::Timestamp>,
    /// Work directory for the example files, keys and the run (default: a new directory
    /// under the system's temporary directory; kept afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Plain progress lines instead of live bars, even on a terminal.
    #[arg(long)]
    pub plain: bool,
    /// Rehearse this inventory instead of the example (with --change): its servers are
    /// simulated on loopback, whatever addresses it names; nothing else is contacted.
    #[arg(long, short, requires = "change")]
    pub inventory: Option<PathBuf>,
    /// The change file to rehearse (with --inventory).
    #[arg(long, short, requires = "inventory")]
    pub change: Option<PathBuf>,
}

const ESTATE_WINDOWS: &str = include_str!("../../../inventory/examples/estate-windows.yaml");
const CHANGE_CANARY: &str = include_str!("../../../plans/examples/change-canary.yaml");

fn write_examples(dir: &Path, canary: bool) -> std::io::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let estate = dir.join("estate.yaml");
    let change = dir.join("change.yaml");
    let (e, c) = if canary {
        (ESTATE_WINDOWS, CHANGE_CANARY)
    } else {
        (ESTATE, CHANGE)
    };
    std::fs::write(&estate, e)?;
    std::fs::write(&change, c)?;
    for (rel, bytes) in INSTALLERS {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(p, bytes)?;
    }
    Ok((estate, change))
}

/// Runs the plan, kills the controller mid-install, then resumes the run.
async fn crash_and_resume(
    plan: &poolpatch_plans::Plan,
    inventory: &poolpatch_inventory::Inventory,
    change: &poolpatch_plans::Change,
    connector: Arc<dyn Connector>,
    ctx: &RunContext,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<crate::exec::RunReport, crate::exec::StartError> {
    let (p, i, c, conn, x, s) = (
        plan.clone(),
        inventory.clone(),
        change.clone(),
        connector.clone(),
        ctx.clone(),
        stop.clone(),
    );
    let started = tokio::time::Instant::now();
    let controller = tokio::spawn(async move { carry_out(&p, &i, &c, conn, &x, s).await });
    let mid_install = |r: &crate::journal::Record| {
        matches!(
            r.event,
            crate::journal::Event::StepStarted {
                step: poolpatch_plans::procedure::StepKind::InstallUpdate,
                recovery: false,
                ..
            }
        )
    };
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if controller.is_finished() {
            return controller.await.unwrap_or_else(|e| {
                Err(crate::exec::StartError::Plan(format!(
                    "the controller failed: {e}"
                )))
            });
        }
        if crate::journal::read(&ctx.run_dir).is_ok_and(|j| j.records.iter().any(mid_install)) {
            break;
        }
    }
    controller.abort();
    let _ = controller.await;
    println!(
        "\n*** the controller was killed mid-install (a simulated crash); the hosts went on ***\n"
    );
    if let Ok(status) = crate::status::read(&ctx.run_dir) {
        println!("{}", status.to_text());
    }
    println!("*** poolpatch resume ***\n");
    // The run's clock goes on where the killed controller's was (it ran `clock_speed`
    // times faster than real time), so the outage clocks continue from their true start.
    let elapsed = started.elapsed().mul_f64(ctx.clock_speed);
    let now = jiff::SignedDuration::try_from(elapsed)
        .ok()
        .and_then(|d| ctx.now.checked_add(d).ok())
        .unwrap_or(ctx.now);
    let ctx = RunContext {
        now,
        operator: format!("{} (resume)", ctx.operator),
        ..ctx.clone()
    };
    crate::exec::resume_plan(plan, inventory, change, connector, &ctx, stop).await
}

/// Runs the demo.
pub fn demo(a: &DemoArgs) -> Exit {
    let speed = a.speed.unwrap_or(if a.canary { 1200.0 } else { 240.0 });
    if !(speed.is_finite() && (1.0..=100_000.0).contains(&speed)) {
        eprintln!("error: --speed must be a number from 1 to 100000");
        return Exit::Invalid;
    }
    let real_now = jiff::Timestamp::now();
    let now = a.now.unwrap_or_else(|| {
        if a.canary {
            // The Saturday afternoon before the example's first windows (Amsterdam 22:00).
            jiff::Timestamp::from_second(1_795_888_800).unwrap_or(real_now)
        } else {
            real_now
        }
    });
    let dir = a.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "poolpatch-demo-{}",
            real_now.strftime("%Y%m%dT%H%M%SZ")
        ))
    });
    let files = match (&a.inventory, &a.change) {
        (Some(i), Some(c)) => std::fs::create_dir_all(&dir).map(|()| (i.clone(), c.clone())),
        _ => write_examples(&dir, a.canary),
    };
    let (estate_path, change_path) = match files {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "error: cannot write the demo files to {}: {e}",
                dir.display()
            );
            return Exit::CannotStart;
        }
    };
    let (inventory, change, _) =
        match super::plan::load_and_plan(&estate_path, &change_path, Some(now)) {
            Ok(x) => x,
            Err(e) => return e,
        };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Internal;
        }
    };
    let progress = if a.plain {
        ProgressMode::Lines
    } else {
        ProgressMode::detect()
    };
    rt.block_on(async {
        let options = |listen| RehearsalOptions {
            dir: dir.join("sim"),
            listen,
            durations: SimDurations::scaled(1.0 / speed),
            customize: None,
        };
        // Own 127.0.0.x addresses where the system allows it (Linux does), else ports of
        // 127.0.0.1.
        let rehearsal = match Rehearsal::start(&inventory, &change, options(Listen::InventoryAddressesAnyPort)).await {
            Ok(r) => r,
            Err(_) => match Rehearsal::start(&inventory, &change, options(Listen::Loopback)).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: cannot start the simulated servers: {e}");
                    return Exit::CannotStart;
                }
            },
        };
        let input = poolpatch_plans::PlanInput::new(&rehearsal.inventory, &change).starting_at(now);
        let mut plan = poolpatch_plans::plan_with(&input);
        let predicted = plan.totals.duration;
        compress_plan(&mut plan, speed);
        for stage in &mut plan.stages {
            if let Some(h) = stage.health.take() {
                println!(
                    "rehearsal: stage {}'s own health command is not run here (`{}`); the built-in check (services and w3svc running) is",
                    stage.name, h.command
                );
            }
        }
        report_unscheduled(&plan);
        println!(
            "poolpatch demo: {} — {} servers in {} pools, {} sites, simulated over SSH on loopback",
            plan.change.name,
            plan.totals.servers_scheduled,
            plan.totals.pools_in_scope,
            rehearsal.inventory.sites.len()
        );
        println!(
            "time runs {}x faster from {}: the plan's {} take about {}; budget {} per server ({} in plan time)",
            speed,
            now.strftime("%Y-%m-%d %H:%M UTC"),
            humantime::format_duration(Duration::from_secs(predicted.as_secs())),
            humantime::format_duration(Duration::from_secs(plan.totals.duration.as_secs().max(1))),
            humantime::format_duration(Duration::from_millis(plan.policy.budget.as_millis() as u64)),
            humantime::format_duration(Duration::from_secs((plan.policy.budget.as_secs_f64() * speed).round() as u64)),
        );
        println!("files:  {}\n", dir.display());
        let connector: Arc<dyn Connector> = Arc::new(SshConnector::new(SshOptions {
            connect_timeout: Duration::from_secs(10),
            ..SshOptions::default()
        }));
        let run_dir = default_run_dir(&dir.join("runs"), now, &plan.change.name);
        let ctx = RunContext {
            rehearsal: true,
            clock_speed: speed,
            run_dir: run_dir.clone(),
            inventory_file: estate_path.display().to_string(),
            change_file: change_path.display().to_string(),
            now,
            operator: operator(),
            progress,
        };
        let stop = stop_on_signals(run_dir.clone());
        let result = if a.crash {
            crash_and_resume(&plan, &rehearsal.inventory, &change, connector, &ctx, stop).await
        } else {
            carry_out(&plan, &rehearsal.inventory, &change, connector, &ctx, stop).await
        };
        rehearsal.estate.shutdown().await;
        match result {
            Ok(report) => {
                let exit = finish(&report, &run_dir);
                // `plan` is pure: the same call as above gives the plan before compression,
                // which the report compares the rehearsal with, in the plan's time.
                let uncompressed = poolpatch_plans::plan_with(&input);
                super::report::write_rehearsal_report(&run_dir, speed, &uncompressed);
                exit
            }
            Err(e) => {
                eprintln!("error: {e}");
                Exit::CannotStart
            }
        }
    })
}
