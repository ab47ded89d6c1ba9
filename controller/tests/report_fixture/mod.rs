//! A fixed run of the example estate for report tests: the plan of the example change
//! (with se02.tyo over budget, so not scheduled) and a journal written with fixed times in
//! which servers are done, fail with an output tail, run out of budget, breach the
//! threshold, and are skipped for different reasons.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use poolpatch::journal::{Event, ExitRecord, JournalWriter, WatchdogAction};
use poolpatch_inventory::{LoadOptions, load_with};
use poolpatch_plans::Plan;
use poolpatch_plans::procedure::StepKind::{self, *};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new(".."))
        .to_path_buf()
}

/// The example estate.
pub fn estate() -> poolpatch_inventory::Inventory {
    let opts = LoadOptions {
        home: Some("/home/operator".into()),
        base_dir: None,
    };
    load_with(&root().join("inventory/examples/estate.yaml"), &opts)
        .unwrap_or_else(|d| panic!("{d}"))
}

/// The example change with `edit` applied to its text.
pub fn change_with(edit: impl Fn(String) -> String) -> poolpatch_plans::Change {
    let text = std::fs::read_to_string(root().join("plans/examples/change.yaml")).unwrap();
    let name = root()
        .join("plans/examples/report-fixture.yaml")
        .display()
        .to_string();
    poolpatch_plans::change_from_str(&name, &edit(text)).unwrap_or_else(|d| panic!("{d}"))
}

/// The plan of the fixture: the example change, with se02.tyo's installer too slow to fit.
pub fn plan() -> Plan {
    let change = change_with(|t| {
        t.replace(
            "    be01.nyc.contoso.com: { update-databases: 5m }",
            "    be01.nyc.contoso.com: { update-databases: 5m }\n    se02.tyo.contoso.com: { install-update: 30m }",
        )
    });
    poolpatch_plans::plan(&estate(), &change)
}

/// The canary of the plans' own tests: a tighter budget, part of the estate out of scope.
pub fn canary_plan() -> Plan {
    let change = change_with(|t| {
        t.replace(
            "# scope: { pools: [se01.ams.contoso.com] }",
            "scope: { sites: [amsterdam], pools: [pool01.nyc.contoso.com] }",
        )
    });
    poolpatch_plans::plan(&estate(), &change)
}

/// The run's start.
pub fn t0() -> Timestamp {
    "2024-07-14T20:00:00Z".parse().unwrap()
}

/// Events at their offsets (milliseconds since the start), written in time order.
#[derive(Default)]
pub struct Script {
    events: Vec<(u64, Event)>,
}

const MIN: u64 = 60_000;
const SEC: u64 = 1_000;

fn ok() -> ExitRecord {
    ExitRecord::Code { code: 0 }
}

impl Script {
    pub fn at(&mut self, ms: u64, e: Event) {
        self.events.push((ms, e));
    }

    /// A step that starts at `at`, lasts `d` and ends with `exit`; returns its end.
    pub fn step(
        &mut self,
        server: &str,
        at: u64,
        kind: StepKind,
        d: u64,
        recovery: bool,
        (exit, stdout_tail, stderr_tail): (ExitRecord, &str, &str),
    ) -> u64 {
        self.at(
            at,
            Event::StepStarted {
                server: server.into(),
                step: kind,
                recovery,
                command: kind.title().into(),
            },
        );
        let is_ok = match &exit {
            ExitRecord::Code { code } => *code == 0 || (*code == 2 && recovery),
            _ => false,
        };
        self.at(
            at + d,
            Event::StepFinished {
                server: server.into(),
                step: kind,
                recovery,
                exit,
                ok: is_ok,
                duration_ms: d,
                stdout_tail: stdout_tail.into(),
                stderr_tail: stderr_tail.into(),
            },
        );
        at + d
    }

    /// Preflight from `at`; returns its end.
    pub fn preflight(&mut self, server: &str, at: u64) -> u64 {
        let mut t = at;
        for (k, d) in [
            (CheckGroups, 4 * SEC),
            (CheckInstaller, 3 * SEC),
            (CheckDisk, 2 * SEC),
        ] {
            t = self.step(server, t, k, d, false, (ok(), "", ""));
        }
        self.at(
            t,
            Event::PreflightPassed {
                server: server.into(),
                checks: vec!["groups".into(), "installer".into(), "disk".into()],
            },
        );
        t
    }

    /// Outage steps in order, all fine, from `at`; returns the end.
    pub fn steps_ok(&mut self, server: &str, at: u64, steps: &[(StepKind, u64)]) -> u64 {
        let mut t = at;
        for (k, d) in steps {
            t = self.step(server, t, *k, *d, false, (ok(), "", ""));
        }
        t
    }

    /// The recovery path from `at`; returns its end.
    pub fn recovery(&mut self, server: &str, at: u64) -> u64 {
        let t = self.step(
            server,
            at,
            StartW3svc,
            10 * SEC,
            true,
            (ExitRecord::Code { code: 2 }, "", ""),
        );
        self.step(server, t, StartServices, 2 * MIN, true, (ok(), "", ""))
    }

    /// Writes the journal into `dir`, in time order.
    pub fn write(mut self, dir: &Path) {
        self.events.sort_by_key(|(ms, _)| *ms);
        let mut w = JournalWriter::create(dir).unwrap();
        let t0 = t0();
        for (ms, e) in self.events {
            let at = t0
                .checked_add(jiff::SignedDuration::from_millis(ms as i64))
                .unwrap();
            w.append(at, ms, e).unwrap();
        }
    }
}

/// A whole good outage from `at` with the procedure's steps lasting `d`; returns its end.
fn done(s: &mut Script, server: &str, pool: &str, at: u64, d: [u64; 7]) -> u64 {
    s.at(
        at,
        Event::OutageStarted {
            server: server.into(),
            pool: pool.into(),
        },
    );
    let kinds = [
        StopServices,
        StopW3svc,
        InstallUpdate,
        StopServicesAgain,
        StartW3svc,
        UpdateDatabases,
        StartServices,
    ];
    let steps: Vec<(StepKind, u64)> = kinds.into_iter().zip(d).collect();
    let end = s.steps_ok(server, at, &steps);
    s.at(
        end,
        Event::OutageEnded {
            server: server.into(),
            outage_ms: end - at,
        },
    );
    s.at(
        end,
        Event::ServerDone {
            server: server.into(),
            outage_ms: end - at,
        },
    );
    end
}

/// The stdout tail of the failing installer: arbitrary text, markup included.
pub const FAILED_STDOUT: &str =
    "Installing KB5034567 (1 of 3)\n<script>alert('x')</script> & \"quotes\" | pipes `ticks`";
/// Its stderr tail, with a terminal's colour codes.
pub const FAILED_STDERR: &str = "\u{1b}[31mERROR 1603: Fatal error during installation\u{1b}[0m";

/// The fixture's journal (see the module's doc).
pub fn script() -> Script {
    let mut s = Script::default();
    s.at(
        0,
        Event::RunStarted {
            change: "Contoso CU 2024-07 (Lync 2013, SfB 2015, SfB 2019)".into(),
            inventory: "estate.yaml".into(),
            change_file: "change.yaml".into(),
            servers: 9,
            operator: "operator@controller pid 4242".into(),
            rehearsal: false,
        },
    );
    // Preflight ahead of time for every scheduled server but se01.ams, whose disk is full.
    for (i, server) in [
        "be02.ams.contoso.com",
        "be01.ams.contoso.com",
        "be01.tyo.contoso.com",
        "be03.ams.contoso.com",
        "be01.nyc.contoso.com",
        "se01.nyc.contoso.com",
        "se02.nyc.contoso.com",
        "se01.tyo.contoso.com",
    ]
    .into_iter()
    .enumerate()
    {
        s.preflight(server, 1_000 + i as u64 * 500);
    }
    let t = s.step(
        "se01.ams.contoso.com",
        1_200,
        CheckDisk,
        2 * SEC,
        false,
        (ExitRecord::Code { code: 1 }, "1288490188", ""),
    );
    let why = "check-disk: 1.2 GiB free on C:, 4 GiB needed";
    s.at(
        t,
        Event::PreflightFailed {
            server: "se01.ams.contoso.com".into(),
            reason: why.into(),
        },
    );
    s.at(
        t,
        Event::ServerSkipped {
            server: "se01.ams.contoso.com".into(),
            reason: format!("preflight failed: {why}"),
        },
    );

    // Amsterdam pool01: the mirror side is done, then the principal's installer fails.
    let end = done(
        &mut s,
        "be02.ams.contoso.com",
        "pool01.ams.contoso.com",
        MIN,
        [
            90 * SEC,
            10 * SEC,
            13 * MIN,
            80 * SEC,
            10 * SEC,
            3 * MIN,
            150 * SEC,
        ],
    );
    let be01 = "be01.ams.contoso.com";
    let start = end + 30 * SEC;
    s.at(
        start,
        Event::OutageStarted {
            server: be01.into(),
            pool: "pool01.ams.contoso.com".into(),
        },
    );
    let t = s.steps_ok(
        be01,
        start,
        &[(StopServices, 90 * SEC), (StopW3svc, 10 * SEC)],
    );
    let t = s.step(
        be01,
        t,
        InstallUpdate,
        5 * MIN,
        false,
        (
            ExitRecord::Code { code: 1603 },
            FAILED_STDOUT,
            FAILED_STDERR,
        ),
    );
    let t = s.recovery(be01, t);
    s.at(
        t,
        Event::OutageEnded {
            server: be01.into(),
            outage_ms: t - start,
        },
    );
    s.at(
        t,
        Event::ServerFailed {
            server: be01.into(),
            step: Some(InstallUpdate),
            reason:
                "install-update failed: exit 1603 (ERROR 1603: Fatal error during installation)"
                    .into(),
            restored: true,
        },
    );
    s.at(
        t,
        Event::PoolHalted {
            pool: "pool01.ams.contoso.com".into(),
            reason: "be01.ams.contoso.com did not complete".into(),
        },
    );
    s.at(
        t,
        Event::ServerSkipped {
            server: "be03.ams.contoso.com".into(),
            reason: "not started: pool pool02.ams.contoso.com comes after pool pool01.ams.contoso.com, which is not done".into(),
        },
    );

    // Tokyo: the installer overruns; the watchdog restores at the budget but must let it
    // finish; the threshold is reached (a breach); the branch waiting for it is skipped.
    let tyo = "be01.tyo.contoso.com";
    let start = MIN;
    s.at(
        start,
        Event::OutageStarted {
            server: tyo.into(),
            pool: "pool01.tyo.contoso.com".into(),
        },
    );
    let t = s.steps_ok(
        tyo,
        start,
        &[(StopServices, 100 * SEC), (StopW3svc, 20 * SEC)],
    );
    let rest = vec![
        InstallUpdate,
        StopServicesAgain,
        StartW3svc,
        UpdateDatabases,
        StartServices,
    ];
    s.at(
        start + 25 * MIN,
        Event::Watchdog {
            server: tyo.into(),
            action: WatchdogAction::Restore,
            remaining: rest.clone(),
            down_ms: 25 * MIN,
        },
    );
    s.at(
        start + 30 * MIN,
        Event::Breach {
            server: tyo.into(),
            pool: "pool01.tyo.contoso.com".into(),
            down_ms: 30 * MIN,
        },
    );
    let t = s.step(
        tyo,
        t,
        InstallUpdate,
        28 * MIN + 20 * SEC,
        false,
        (ok(), "", ""),
    );
    let t = s.recovery(tyo, t);
    s.at(
        t,
        Event::OutageEnded {
            server: tyo.into(),
            outage_ms: t - start,
        },
    );
    s.at(
        t,
        Event::ServerBudgetExhausted {
            server: tyo.into(),
            remaining: rest[1..].to_vec(),
        },
    );
    s.at(
        t,
        Event::ServerSkipped {
            server: "se01.tyo.contoso.com".into(),
            reason: "not started: pool se01.tyo.contoso.com comes after pool pool01.tyo.contoso.com, which is not done".into(),
        },
    );

    // New York: the back end runs out of budget in an interruptible step and is restored;
    // the Standard Edition servers are done.
    let nyc = "be01.nyc.contoso.com";
    let start = 26 * MIN;
    s.at(
        start,
        Event::OutageStarted {
            server: nyc.into(),
            pool: "pool01.nyc.contoso.com".into(),
        },
    );
    let t = s.steps_ok(
        nyc,
        start,
        &[
            (StopServices, 2 * MIN),
            (StopW3svc, 20 * SEC),
            (InstallUpdate, 19 * MIN),
        ],
    );
    let remaining = vec![
        StopServicesAgain,
        StartW3svc,
        UpdateDatabases,
        StartServices,
    ];
    s.at(
        start + 25 * MIN,
        Event::Watchdog {
            server: nyc.into(),
            action: WatchdogAction::Restore,
            remaining: remaining.clone(),
            down_ms: 25 * MIN,
        },
    );
    let t = s.step(
        nyc,
        t,
        StopServicesAgain,
        start + 25 * MIN - t,
        false,
        (
            ExitRecord::Unknown {
                reason: "abandoned by the watchdog at the outage budget".into(),
            },
            "",
            "",
        ),
    );
    let t = s.recovery(nyc, t);
    s.at(
        t,
        Event::OutageEnded {
            server: nyc.into(),
            outage_ms: t - start,
        },
    );
    s.at(
        t,
        Event::ServerBudgetExhausted {
            server: nyc.into(),
            remaining,
        },
    );
    let end = done(
        &mut s,
        "se01.nyc.contoso.com",
        "se01.nyc.contoso.com",
        2 * MIN,
        [
            80 * SEC,
            10 * SEC,
            12 * MIN,
            70 * SEC,
            10 * SEC,
            2 * MIN,
            3 * MIN,
        ],
    );
    let end = done(
        &mut s,
        "se02.nyc.contoso.com",
        "se02.nyc.contoso.com",
        end + 20 * SEC,
        [
            85 * SEC,
            10 * SEC,
            11 * MIN,
            60 * SEC,
            10 * SEC,
            150 * SEC,
            3 * MIN,
        ],
    );
    // The operator paused the run for two minutes.
    s.at(
        40 * MIN,
        Event::Paused {
            by: "operator@controller (poolpatch ctl pause)".into(),
        },
    );
    s.at(
        42 * MIN,
        Event::Unpaused {
            by: "operator@controller (poolpatch ctl resume)".into(),
        },
    );
    s.at(
        end.max(60 * MIN),
        Event::RunFinished {
            done: 3,
            failed: 3,
            skipped: 3,
            breaches: 1,
        },
    );
    s
}

/// Writes the fixture's run directory (plan.json and journal.jsonl) into `dir`.
pub fn write_run(dir: &Path) -> Plan {
    let plan = plan();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("plan.json"), plan.to_json()).unwrap();
    script().write(dir);
    plan
}
