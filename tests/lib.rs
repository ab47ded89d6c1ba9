//! Shared helpers for poolpatch's end-to-end tests: the example estate and change, a
//! rehearsal against simulated hosts over real SSH, and checks made from the simulated
//! hosts' own records (independent of poolpatch's journal).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use poolpatch::exec::{RunContext, RunReport, carry_out};
use poolpatch::progress::ProgressMode;
use poolpatch::rehearsal::{Rehearsal, RehearsalOptions, compress_plan};
use poolpatch::remote::{SshConnector, SshOptions};
use poolpatch::sim::{Customize, Listen, Outage, SimDurations};
use poolpatch_inventory::Inventory;
use poolpatch_plans::{Change, Plan};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The example estate and change, loaded and validated.
pub fn example() -> (Inventory, Change) {
    let inv = poolpatch_inventory::load(&root().join("inventory/examples/estate.yaml"))
        .unwrap_or_else(|d| panic!("example estate: {d}"));
    let change = poolpatch_plans::load_change(&root().join("plans/examples/change.yaml"))
        .unwrap_or_else(|d| panic!("example change: {d}"));
    change
        .check_against(&inv)
        .unwrap_or_else(|d| panic!("example change against estate: {d}"));
    (inv, change)
}

/// A finished rehearsal: the hosts (still up, with their records), the plan as run, the
/// run's outcome and its directory.
pub struct Rehearsed {
    /// The simulated hosts.
    pub rehearsal: Rehearsal,
    /// The plan as carried out (time compressed).
    pub plan: Plan,
    /// How the run ended.
    pub report: RunReport,
    /// Keeps the run directory alive.
    pub dir: tempfile::TempDir,
}

impl Rehearsed {
    /// The run directory.
    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// Every outage each simulated host went through, by FQDN.
    pub fn outages(&self) -> BTreeMap<String, Vec<Outage>> {
        self.rehearsal
            .estate
            .hosts()
            .map(|(s, h)| (s.fqdn.to_string(), h.outages()))
            .collect()
    }
}

/// Time compression of the rehearsals: a plan minute takes 60 ms. Simulated commands take
/// 80% of their realistic time (also compressed), so that the SSH round trips of a busy CI
/// machine stay inside the budget's margin.
pub const COMPRESS: f64 = 1000.0;

/// Runs `plan(inventory, change)` against simulated hosts on their own 127.0.0.x addresses,
/// with time compressed by [`COMPRESS`]; `customize` injects faults per host.
pub async fn rehearse(
    inventory: &Inventory,
    change: &Change,
    customize: Option<Customize>,
) -> Rehearsed {
    let dir = tempfile::tempdir().expect("temp dir");
    let rehearsal = Rehearsal::start(
        inventory,
        change,
        RehearsalOptions {
            dir: dir.path().join("sim"),
            listen: Listen::InventoryAddressesAnyPort,
            durations: SimDurations::scaled(0.8 / COMPRESS),
            customize,
        },
    )
    .await
    .expect("simulated estate starts");
    let mut plan = poolpatch_plans::plan(&rehearsal.inventory, change);
    compress_plan(&mut plan, COMPRESS);
    let connector = Arc::new(SshConnector::new(SshOptions {
        connect_timeout: Duration::from_secs(10),
        ..SshOptions::default()
    }));
    let ctx = RunContext {
        run_dir: dir.path().join("run"),
        inventory_file: "estate.yaml".into(),
        change_file: "change.yaml".into(),
        now: jiff::Timestamp::UNIX_EPOCH,
        operator: "test".into(),
        progress: ProgressMode::Quiet,
    };
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let report = carry_out(&plan, &rehearsal.inventory, change, connector, &ctx, rx)
        .await
        .expect("the run starts");
    Rehearsed {
        rehearsal,
        plan,
        report,
        dir,
    }
}

/// Whether two outages overlap in time.
pub fn overlap(a: &Outage, b: &Outage) -> bool {
    let far = tokio::time::Instant::now() + Duration::from_secs(3600);
    let (a_end, b_end) = (a.end.unwrap_or(far), b.end.unwrap_or(far));
    a.start < b_end && b.start < a_end
}
