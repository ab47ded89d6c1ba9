//! Shared helpers for poolpatch's end-to-end tests: the example estate and change, a
//! rehearsal against simulated hosts over real SSH, and checks made from the simulated
//! hosts' own records (independent of poolpatch's journal).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use poolpatch::exec::{RunContext, RunReport, ServerOutcome, carry_out};
use poolpatch::journal::{self, Event, Record};
use poolpatch::progress::ProgressMode;
use poolpatch::rehearsal::{Rehearsal, RehearsalOptions, compress_plan};
use poolpatch::remote::{SshConnector, SshOptions};
use poolpatch::sim::{
    ActionKind, Customize, InMemoryConnector, Listen, Outage, SimDurations, SimEventKind, SimHost,
    SimHostConfig, write_identity_file,
};
use poolpatch_inventory::decode::At;
use poolpatch_inventory::{Fqdn, Inventory, Pos, SshAuth};
use poolpatch_plans::procedure::StepKind;
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

/// A fresh temporary directory for a run, on a RAM file system when there is one
/// (`/dev/shm`). The journal syncs every event to disk, on the executor's threads: on a
/// busy disk a sync can take tens of milliseconds, which compressed time turns into
/// minutes of a plan. Durability is tested by the journal's own tests; rehearsals measure
/// the controller's logic, not the disk.
pub fn run_temp_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::Builder::new()
            .prefix("poolpatch-test-")
            .tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().expect("temp dir")
}

/// Time compression of the rehearsals: a plan minute takes 60 ms. Simulated commands take
/// half their realistic time (also compressed), so that SSH round trips on a busy 2-core CI
/// machine stay well inside the budget's margin (budget 1.5 s real, outages about 0.65 s).
pub const COMPRESS: f64 = 1000.0;

/// Runs `plan(inventory, change)` against simulated hosts on their own 127.0.0.x addresses,
/// with time compressed by [`COMPRESS`]; `customize` injects faults per host.
pub async fn rehearse(
    inventory: &Inventory,
    change: &Change,
    customize: Option<Customize>,
) -> Rehearsed {
    rehearse_with(inventory, change, customize, |_| {}).await
}

/// Like [`rehearse`], with `prepare` called once the simulated hosts listen and before the
/// run starts (to edit the known_hosts file, for instance).
pub async fn rehearse_with(
    inventory: &Inventory,
    change: &Change,
    customize: Option<Customize>,
    prepare: impl FnOnce(&Rehearsal),
) -> Rehearsed {
    let dir = run_temp_dir();
    let rehearsal = Rehearsal::start(
        inventory,
        change,
        RehearsalOptions {
            dir: dir.path().join("sim"),
            listen: Listen::InventoryAddressesAnyPort,
            durations: SimDurations::scaled(0.5 / COMPRESS),
            customize,
        },
    )
    .await
    .expect("simulated estate starts");
    prepare(&rehearsal);
    let mut plan = poolpatch_plans::plan(&rehearsal.inventory, change);
    compress_plan(&mut plan, COMPRESS);
    let connector = Arc::new(SshConnector::new(SshOptions {
        connect_timeout: Duration::from_secs(10),
        ..SshOptions::default()
    }));
    let ctx = RunContext {
        rehearsal: true,
        clock_speed: 1.0,
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

impl Rehearsed {
    /// The run's journal, checked for completeness and against the report (see
    /// [`Journaled::read`] and [`Journaled::check_against`]).
    pub fn journal(&self) -> Journaled {
        let j = Journaled::read(&self.run_dir());
        j.check_against(&self.report);
        j
    }

    /// How the server `fqdn` ended.
    pub fn outcome(&self, fqdn: &str) -> &ServerOutcome {
        outcome(&self.report, fqdn)
    }

    /// The simulated host of `fqdn`.
    pub fn host(&self, fqdn: &str) -> SimHost {
        self.rehearsal
            .estate
            .host(fqdn)
            .unwrap_or_else(|| panic!("no simulated host {fqdn}"))
            .clone()
    }
}

/// A run against simulated hosts reached in memory (SSH over `tokio::io::duplex`), for
/// tests under tokio's paused clock: time is not compressed, a 45-minute run costs well
/// under a second.
pub struct Simulated {
    /// Every simulated host, by FQDN.
    pub hosts: BTreeMap<String, SimHost>,
    /// The inventory as the run saw it (identity file and known_hosts of the test).
    pub inventory: Inventory,
    /// The plan as carried out (not compressed).
    pub plan: Plan,
    /// How the run ended.
    pub report: RunReport,
    /// Keeps the run directory, the client key and known_hosts alive.
    pub dir: tempfile::TempDir,
}

impl Simulated {
    /// The run directory.
    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// The run's journal, checked for completeness and against the report (see
    /// [`Journaled::read`] and [`Journaled::check_against`]).
    pub fn journal(&self) -> Journaled {
        let j = Journaled::read(&self.run_dir());
        j.check_against(&self.report);
        j
    }

    /// How the server `fqdn` ended.
    pub fn outcome(&self, fqdn: &str) -> &ServerOutcome {
        outcome(&self.report, fqdn)
    }

    /// The simulated host of `fqdn`.
    pub fn host(&self, fqdn: &str) -> SimHost {
        self.hosts
            .get(fqdn)
            .unwrap_or_else(|| panic!("no simulated host {fqdn}"))
            .clone()
    }
}

/// Simulated hosts for every server of an inventory, reached in memory (SSH over
/// `tokio::io::duplex`), not started yet: the client key and a known_hosts file that lists
/// every host are written; the installers of the change are expected (and uploaded during
/// preflight).
pub struct Simulation {
    /// Every simulated host, by FQDN.
    pub hosts: BTreeMap<String, SimHost>,
    /// The inventory pointed at the test's client key and known_hosts file.
    pub inventory: Inventory,
    /// Reaches the hosts in memory.
    pub connector: Arc<InMemoryConnector>,
    /// The known_hosts file every server uses.
    pub known_hosts: PathBuf,
    /// Holds the key, known_hosts and the run directory.
    pub dir: tempfile::TempDir,
}

impl Simulation {
    /// Hosts for `inventory` with these command durations (uncompressed: use it under
    /// `#[tokio::test(start_paused = true)]`); `customize` changes hosts (faults,
    /// durations) before they exist.
    pub fn new(
        inventory: &Inventory,
        change: &Change,
        durations: SimDurations,
        customize: Option<Customize>,
    ) -> Simulation {
        let dir = run_temp_dir();
        let identity = dir.path().join("id_ed25519");
        let client_key = write_identity_file(&identity).expect("client key");
        let known_hosts = dir.path().join("known_hosts");
        std::fs::write(&known_hosts, "").expect("known_hosts");
        let mut inventory = inventory.clone();
        for pool in &mut inventory.pools {
            for server in &mut pool.servers {
                server.ssh.auth = SshAuth::IdentityFile(identity.clone());
                server.ssh.known_hosts = known_hosts.clone();
            }
        }
        let connector = Arc::new(InMemoryConnector::new(SshOptions::default()));
        let mut hosts = BTreeMap::new();
        for pool in &inventory.pools {
            let installer = change.update.installers.get(&pool.product).map(|i| {
                std::fs::read(&i.file).unwrap_or_else(|e| panic!("{}: {e}", i.file.display()))
            });
            for server in &pool.servers {
                let mut config = SimHostConfig::for_server(server, pool.product)
                    .authorize(client_key.clone())
                    .with_durations(durations.clone());
                if let Some(bytes) = &installer {
                    config = config.expect_installer(bytes);
                }
                if let Some(customize) = &customize {
                    config = customize(server, config);
                }
                let host = SimHost::new(config);
                connector.add(host.clone());
                connector.trust(server).expect("known_hosts written");
                hosts.insert(server.fqdn.to_string(), host);
            }
        }
        Simulation {
            hosts,
            inventory,
            connector,
            known_hosts,
            dir,
        }
    }

    /// The run directory.
    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// The run's context (quiet, starting at the Unix epoch).
    pub fn context(&self) -> RunContext {
        RunContext {
            rehearsal: true,
            clock_speed: 1.0,
            run_dir: self.run_dir(),
            inventory_file: "estate.yaml".into(),
            change_file: "change.yaml".into(),
            now: jiff::Timestamp::UNIX_EPOCH,
            operator: "test".into(),
            progress: ProgressMode::Quiet,
        }
    }

    /// Plans `change` and carries the plan out against the hosts, then stops them.
    pub async fn run(self, change: &Change) -> Simulated {
        let plan = poolpatch_plans::plan(&self.inventory, change);
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let report = carry_out(
            &plan,
            &self.inventory,
            change,
            self.connector.clone(),
            &self.context(),
            rx,
        )
        .await
        .expect("the run starts");
        for host in self.hosts.values() {
            host.shutdown();
        }
        Simulated {
            hosts: self.hosts,
            inventory: self.inventory,
            plan,
            report,
            dir: self.dir,
        }
    }
}

/// [`Simulation::new`], then [`Simulation::run`].
pub async fn simulate(
    inventory: &Inventory,
    change: &Change,
    durations: SimDurations,
    customize: Option<Customize>,
) -> Simulated {
    Simulation::new(inventory, change, durations, customize)
        .run(change)
        .await
}

/// A run's journal as read back, after checking that it is complete: every line is a
/// record, sequence numbers run 0, 1, 2, … without a gap, nothing is torn, `RunStarted`
/// comes first and `RunFinished` last, and only there.
#[derive(Debug, Clone)]
pub struct Journaled {
    /// The records in order.
    pub records: Vec<Record>,
}

impl Journaled {
    /// Reads and checks the journal of `run_dir` (panics with the reason if incomplete).
    pub fn read(run_dir: &Path) -> Journaled {
        let path = run_dir.join(journal::JOURNAL_FILE);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(text.ends_with('\n'), "the journal ends with a whole line");
        for (i, line) in text.lines().enumerate() {
            if let Err(e) = serde_json::from_str::<Record>(line) {
                panic!("journal line {} does not parse: {e}\n{line}", i + 1);
            }
        }
        let read = journal::read(run_dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read.torn_last_line, None, "no torn line");
        let records = read.records;
        assert_eq!(records.len(), text.lines().count());
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.seq, i as u64, "sequence numbers are contiguous");
            assert_eq!(r.v, journal::RECORD_VERSION);
        }
        for pair in records.windows(2) {
            assert!(
                pair[0].elapsed_ms <= pair[1].elapsed_ms,
                "time only goes on"
            );
            assert!(pair[0].at <= pair[1].at, "time only goes on");
        }
        let n = records.len();
        assert!(n >= 2, "at least RunStarted and RunFinished");
        assert!(
            matches!(records[0].event, Event::RunStarted { .. }),
            "RunStarted first: {:?}",
            records[0].event
        );
        assert!(
            matches!(records[n - 1].event, Event::RunFinished { .. }),
            "RunFinished last: {:?}",
            records[n - 1].event
        );
        for r in &records[1..n - 1] {
            assert!(
                !matches!(
                    r.event,
                    Event::RunStarted { .. } | Event::RunFinished { .. }
                ),
                "RunStarted and RunFinished only at the ends: {r:?}"
            );
        }
        Journaled { records }
    }

    /// Every event, in order.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.records.iter().map(|r| &r.event)
    }

    /// The events about `server`, in order.
    pub fn of<'a>(&'a self, server: &'a str) -> impl Iterator<Item = &'a Event> + 'a {
        self.events().filter(move |e| e.server() == Some(server))
    }

    /// The records matching `f`.
    pub fn find(&self, f: impl Fn(&Event) -> bool) -> Vec<&Record> {
        self.records.iter().filter(|r| f(&r.event)).collect()
    }

    /// The only record matching `f` (panics unless there is exactly one).
    pub fn one(&self, what: &str, f: impl Fn(&Event) -> bool) -> &Record {
        let found = self.find(f);
        assert_eq!(found.len(), 1, "exactly one {what}: {found:#?}");
        found[0]
    }

    /// Checks that the journal tells the same story as the run's report, as `poolpatch
    /// status` would derive it: one start per scheduled server at most, every step that
    /// started finished, each server's last word matches its outcome, and the counts of
    /// `RunFinished` are the summary's. A server counted as restored (or done) had its
    /// services verified running by a step that reported success.
    pub fn check_against(&self, report: &RunReport) {
        let summary = &report.summary;
        let Some(Event::RunStarted { servers, .. }) = self.events().next() else {
            unreachable!("checked by read")
        };
        assert_eq!(
            *servers,
            summary.outcomes.len(),
            "RunStarted counts the plan"
        );
        let Some(Event::RunFinished {
            done,
            failed,
            skipped,
            breaches,
        }) = self.events().last()
        else {
            unreachable!("checked by read")
        };
        assert_eq!(
            (*done, *failed, *skipped, *breaches),
            (
                summary.done(),
                summary.failed(),
                summary.skipped(),
                report.breaches
            ),
            "RunFinished counts the outcomes"
        );
        let journaled_breaches = self.find(|e| matches!(e, Event::Breach { .. })).len();
        assert_eq!(journaled_breaches, report.breaches);
        assert_eq!(
            self.find(|e| matches!(e, Event::RunHalted { .. })).len(),
            usize::from(summary.halted.is_some()),
            "RunHalted exactly when the run halted"
        );

        for (fqdn, outcome) in &summary.outcomes {
            let server = fqdn.as_str();
            let events: Vec<&Event> = self.of(server).collect();
            // Steps: each start is followed by its end before the next start.
            let mut open: Option<(StepKind, bool)> = None;
            for e in &events {
                match e {
                    Event::StepStarted { step, recovery, .. } => {
                        assert_eq!(open, None, "{server}: one step at a time");
                        open = Some((*step, *recovery));
                    }
                    Event::StepFinished { step, recovery, .. } => {
                        assert_eq!(open, Some((*step, *recovery)), "{server}: step ends");
                        open = None;
                    }
                    _ => {}
                }
            }
            assert_eq!(open, None, "{server}: every step that started finished");
            let outages = events
                .iter()
                .filter(|e| matches!(e, Event::OutageStarted { .. }))
                .count();
            let ended = events
                .iter()
                .filter(|e| matches!(e, Event::OutageEnded { .. }))
                .count();
            let verified = || {
                // The last StartServices (Start-CsWindowsService and the check) succeeded,
                // and the outage ended after it.
                let last = events.iter().rposition(|e| {
                    matches!(
                        e,
                        Event::StepFinished {
                            step: StepKind::StartServices,
                            ..
                        }
                    )
                });
                let Some(i) = last else { return false };
                matches!(events[i], Event::StepFinished { ok: true, .. })
                    && matches!(events.get(i + 1), Some(Event::OutageEnded { .. }))
            };
            match outcome {
                ServerOutcome::Skipped { reason } => {
                    assert_eq!(outages, 0, "{server}: skipped, never down");
                    let last = events.last().expect("a skipped server is journaled");
                    assert_eq!(
                        *last,
                        &Event::ServerSkipped {
                            server: server.to_string(),
                            reason: reason.clone()
                        },
                        "{server}"
                    );
                }
                ServerOutcome::Done { outage, .. } => {
                    assert_eq!((outages, ended), (1, 1), "{server}: one outage, ended");
                    assert!(verified(), "{server}: done means services verified");
                    assert_eq!(
                        events.last(),
                        Some(&&Event::ServerDone {
                            server: server.to_string(),
                            outage_ms: outage.as_millis() as u64
                        }),
                        "{server}"
                    );
                }
                ServerOutcome::BudgetExhausted {
                    remaining,
                    restored,
                } => {
                    assert_eq!(outages, 1, "{server}");
                    assert_eq!(ended, usize::from(*restored), "{server}");
                    if *restored {
                        assert!(verified(), "{server}: restored means services verified");
                    }
                    let exhausted: Vec<&&Event> = events
                        .iter()
                        .filter(|e| matches!(e, Event::ServerBudgetExhausted { .. }))
                        .collect();
                    assert_eq!(
                        exhausted,
                        [&&Event::ServerBudgetExhausted {
                            server: server.to_string(),
                            remaining: remaining.clone()
                        }],
                        "{server}"
                    );
                    assert!(
                        events.iter().any(|e| matches!(e, Event::Watchdog { .. })),
                        "{server}: the watchdog acted"
                    );
                }
                ServerOutcome::Failed {
                    step,
                    reason,
                    restored,
                } => {
                    assert_eq!(outages, 1, "{server}");
                    assert_eq!(ended, usize::from(*restored), "{server}");
                    if *restored {
                        assert!(verified(), "{server}: restored means services verified");
                    }
                    assert_eq!(
                        events.last(),
                        Some(&&Event::ServerFailed {
                            server: server.to_string(),
                            step: *step,
                            reason: reason.clone(),
                            restored: *restored
                        }),
                        "{server}"
                    );
                }
            }
        }
    }

    /// The servers whose outage started, in order.
    pub fn outages_started(&self) -> Vec<String> {
        self.events()
            .filter_map(|e| match e {
                Event::OutageStarted { server, .. } => Some(server.clone()),
                _ => None,
            })
            .collect()
    }
}

/// The commands a host received, as the kinds of action each one performed.
pub fn host_actions(host: &SimHost) -> Vec<ActionKind> {
    host.commands().iter().flat_map(|c| c.kinds()).collect()
}

/// The actions a host received that belong to an outage (preflight checks left out).
pub fn outage_actions(host: &SimHost) -> Vec<ActionKind> {
    host_actions(host)
        .into_iter()
        .filter(|k| {
            // Read-only checks (preflight, the probe) change nothing on the host.
            !matches!(
                k,
                ActionKind::Groups
                    | ActionKind::FileHash
                    | ActionKind::FreeDisk
                    | ActionKind::Probe
            )
        })
        .collect()
}

/// The procedure's order on a host, as the host sees it, when nothing goes wrong.
pub const DOCUMENTED: [ActionKind; 8] = [
    ActionKind::StopServices,
    ActionKind::StopW3svc,
    ActionKind::Install,
    ActionKind::StopServices,
    ActionKind::StartW3svc,
    ActionKind::UpdateDatabases,
    ActionKind::StartServices,
    ActionKind::VerifyServices,
];

/// Whether the host recorded that the installer ran to its end with `exit_code`.
pub fn installer_finished(host: &SimHost, exit_code: i32) -> bool {
    host.record().iter().any(|e| {
        matches!(
            &e.kind,
            SimEventKind::ActionFinished { action, exit_code: c, .. }
                if action.kind() == ActionKind::Install && *c == exit_code
        )
    })
}

/// Restricts `change` to these pools (a canary-style scope), to keep rehearsals short.
pub fn scope_pools(change: &mut Change, pools: &[&str]) {
    change.scope.pools = pools
        .iter()
        .map(|p| At {
            value: Fqdn::parse(p).unwrap_or_else(|e| panic!("{p}: {e}")),
            pos: Pos::START,
            field: "scope.pools".into(),
        })
        .collect();
}

/// How the server `fqdn` ended in `report` (panics if the run did not have it).
pub fn outcome<'a>(report: &'a RunReport, fqdn: &str) -> &'a ServerOutcome {
    let key = Fqdn::parse(fqdn).unwrap_or_else(|e| panic!("{fqdn}: {e}"));
    report
        .summary
        .outcomes
        .get(&key)
        .unwrap_or_else(|| panic!("{fqdn} is not in the run"))
}

/// After the installer asked for a restart (exit 3010): the host restarted, poolpatch
/// connected again and went on with step 9 to the end, in the documented order.
pub fn assert_went_on_after_the_restart(host: &SimHost) {
    assert!(installer_finished(host, 3010));
    assert_eq!(
        outage_actions(host),
        [
            ActionKind::StopServices,
            ActionKind::StopW3svc,
            ActionKind::Install,
            ActionKind::Restart,
            ActionKind::StopServices,
            ActionKind::StartW3svc,
            ActionKind::UpdateDatabases,
            ActionKind::StartServices,
            ActionKind::VerifyServices,
        ]
    );
    let record = host.record();
    let up = record
        .iter()
        .position(|e| e.kind == SimEventKind::HostUp)
        .expect("the host came back");
    assert!(
        record[up..]
            .iter()
            .any(|e| e.kind == SimEventKind::Connected),
        "poolpatch connected again after the restart"
    );
    let state = host.state();
    assert!(state.databases_updated && state.services_running() && !state.reboot_pending);
}
