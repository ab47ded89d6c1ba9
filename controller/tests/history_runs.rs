//! The history reader of the plans crate against run directories as the controller writes
//! them (plan.json by `carry_out`'s rules, the journal by `JournalWriter`), rehearsals'
//! compressed plans, and `poolpatch plan --history` on the command line.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use jiff::Timestamp;
use poolpatch::journal::{Event, ExitRecord, JOURNAL_FILE, JournalWriter};
use poolpatch::rehearsal::compress_plan;
use poolpatch_plans::Plan;
use poolpatch_plans::estimates::EstimateSource;
use poolpatch_plans::history::{self, HistoryPolicy, read_history};
use poolpatch_plans::procedure::StepKind;

const SERVER: &str = "se01.nyc.contoso.com";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new(".."))
        .to_path_buf()
}

fn example_plan() -> Plan {
    let inv = poolpatch_inventory::load(&root().join("inventory/examples/estate.yaml"))
        .unwrap_or_else(|d| panic!("{d}"));
    let change = poolpatch_plans::load_change(&root().join("plans/examples/change.yaml"))
        .unwrap_or_else(|d| panic!("{d}"));
    poolpatch_plans::plan(&inv, &change)
}

fn finished(step: StepKind, recovery: bool, ok: bool, secs: u64) -> Event {
    Event::StepFinished {
        server: SERVER.into(),
        step,
        recovery,
        exit: ExitRecord::Code {
            code: if ok { 0 } else { 1 },
        },
        ok,
        duration_ms: secs * 1000,
        stdout_tail: String::new(),
        stderr_tail: String::new(),
    }
}

/// A run directory as `carry_out` leaves it: plan.json, then the journal.
fn write_run(dir: &Path, plan: &Plan, install_secs: u64) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(poolpatch::exec::PLAN_FILE), plan.to_json()).unwrap();
    let mut w = JournalWriter::create(dir).unwrap();
    let mut add = |e: Event| {
        w.append(Timestamp::UNIX_EPOCH, 0, e).unwrap();
    };
    add(Event::RunStarted {
        change: plan.change.name.clone(),
        inventory: "estate.yaml".into(),
        change_file: "change.yaml".into(),
        servers: plan.totals.servers_scheduled,
        operator: "op@host pid 1".into(),
        rehearsal: false,
    });
    add(finished(StepKind::InstallUpdate, false, true, install_secs));
    add(finished(StepKind::UpdateDatabases, false, false, 3000));
    add(finished(StepKind::StartServices, true, true, 3000));
    add(Event::ServerDone {
        server: SERVER.into(),
        outage_ms: 1,
    });
}

#[test]
fn run_directories_as_the_controller_writes_them_teach_estimates() {
    assert_eq!(history::JOURNAL_FILE, JOURNAL_FILE);
    assert_eq!(history::PLAN_FILE, poolpatch::exec::PLAN_FILE);
    assert_eq!(
        history::JOURNAL_RECORD_VERSION,
        poolpatch::journal::RECORD_VERSION
    );
    let tmp = tempfile::tempdir().unwrap();
    let plan = example_plan();
    for (i, m) in [13u64, 14, 15].iter().enumerate() {
        write_run(&tmp.path().join(format!("run-{i}")), &plan, m * 60);
    }
    let r = read_history(&[tmp.path()], HistoryPolicy::default());
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    assert_eq!(r.runs.len(), 3);
    let server = poolpatch_inventory::Fqdn::parse(SERVER).unwrap();
    let e = r
        .history
        .estimate(&server, StepKind::InstallUpdate)
        .unwrap();
    assert_eq!(e.duration, Duration::from_secs(15 * 60));
    assert_eq!((e.samples, e.runs), (3, 3));
    // The failed step and the recovery step taught nothing.
    assert!(
        r.history
            .durations(&server, StepKind::UpdateDatabases)
            .is_empty()
    );
    assert!(
        r.history
            .durations(&server, StepKind::StartServices)
            .is_empty()
    );
}

#[test]
fn a_rehearsal_run_is_left_out() {
    let tmp = tempfile::tempdir().unwrap();
    let mut plan = example_plan();
    compress_plan(&mut plan, 240.0);
    write_run(&tmp.path().join("demo-run"), &plan, 3);
    let r = read_history(&[tmp.path()], HistoryPolicy::new(90, 1));
    assert!(r.runs.is_empty());
    assert_eq!(r.skipped.len(), 1);
    assert!(
        r.skipped[0].reason.starts_with("a rehearsal"),
        "{}",
        r.skipped[0]
    );
    assert!(r.history.is_empty());
}

#[test]
fn poolpatch_plan_takes_history() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let plan = example_plan();
    for (i, m) in [13u64, 14, 15].iter().enumerate() {
        write_run(&runs.join(format!("run-{i}")), &plan, m * 60);
    }
    let missing = tmp.path().join("typo");
    let out = Command::new(env!("CARGO_BIN_EXE_poolpatch"))
        .current_dir(root())
        .args([
            "plan",
            "-i",
            "inventory/examples/estate.yaml",
            "-c",
            "plans/examples/change.yaml",
            "-f",
            "json",
            "--history",
        ])
        .arg(&runs)
        .arg("--history")
        .arg(&missing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("warning: history: skipped {}", missing.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains("history: 3 run(s) read (1 skipped), 3 step duration(s)"),
        "{stderr}"
    );
    let shown = Plan::from_json(&String::from_utf8_lossy(&out.stdout)).unwrap();
    let server = shown.servers.iter().find(|s| s.fqdn == SERVER).unwrap();
    let step = server
        .steps
        .outage
        .iter()
        .find(|s| s.step.kind == StepKind::InstallUpdate)
        .unwrap();
    assert_eq!(step.estimate, Duration::from_secs(15 * 60));
    assert_eq!(
        step.estimate_source,
        EstimateSource::History {
            server: SERVER.into(),
            percentile: 90,
            samples: 3,
            runs: 3,
        }
    );

    // A higher minimum: the history is read but not used.
    let out = Command::new(env!("CARGO_BIN_EXE_poolpatch"))
        .current_dir(root())
        .args([
            "plan",
            "-i",
            "inventory/examples/estate.yaml",
            "-c",
            "plans/examples/change.yaml",
            "-f",
            "md",
            "--history-min-samples",
            "4",
            "--history",
        ])
        .arg(&runs)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("history p90 of 3"), "{text}");
    assert!(
        text.contains("No estimate of this plan comes from it."),
        "{text}"
    );
}
