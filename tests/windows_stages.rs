//! Maintenance windows and canary stages, carried out: the example estate with windows in
//! two time zones and the three-stage canary, against simulated hosts under tokio's paused
//! clock (real hours of waiting, no real time). Checked from the journal and the hosts'
//! own records, with host instants mapped to the run's wall clock.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use poolpatch::exec::{RunContext, RunReport, ServerOutcome, carry_out};
use poolpatch::journal::{self, Event, Record};
use poolpatch::progress::ProgressMode;
use poolpatch::remote::{Connector as _, command_line};
use poolpatch::sim::{ActionKind, Fault, FaultEffect, SimDurations};
use poolpatch_plans::{Change, PlanInput};
use poolpatch_tests::{Simulation, root};
use tokio::time::Instant;

/// Saturday 2026-11-28 18:00 UTC: before Amsterdam's 22:00 (21:00 UTC) and New York's
/// 22:00 (03:00 UTC on Sunday) windows.
fn saturday() -> Timestamp {
    "2026-11-28T18:00:00Z".parse().expect("timestamp")
}

fn estate() -> (poolpatch_inventory::Inventory, Change) {
    let inv = poolpatch_inventory::load(&root().join("inventory/examples/estate-windows.yaml"))
        .unwrap_or_else(|d| panic!("{d}"));
    let mut change =
        poolpatch_plans::load_change(&root().join("plans/examples/change-canary.yaml"))
            .unwrap_or_else(|d| panic!("{d}"));
    change.check_against(&inv).unwrap_or_else(|d| panic!("{d}"));
    // The operator's own health command is a script of theirs; here it always succeeds.
    for stage in &mut change.stages {
        if let Some(h) = &mut stage.health {
            h.command = "true".into();
        }
    }
    (inv, change)
}

fn versions(change: &Change) -> poolpatch::sim::Customize {
    let by_product: std::collections::BTreeMap<_, _> = change
        .update
        .installers
        .iter()
        .map(|(p, i)| (*p, i.version.clone()))
        .collect();
    std::sync::Arc::new(move |_s, mut c| {
        if let Some(v) = by_product.get(&c.product) {
            c.version_after = v.clone();
        }
        c
    })
}

struct Ran {
    sim: Simulation,
    report: RunReport,
    records: Vec<Record>,
    t0: Instant,
    start: Timestamp,
}

impl Ran {
    /// A host instant as the run's wall-clock time.
    fn wall(&self, at: Instant) -> Timestamp {
        let d = SignedDuration::try_from(at - self.t0).unwrap_or(SignedDuration::ZERO);
        self.start.checked_add(d).expect("in range")
    }

    fn event_at(&self, f: impl Fn(&Event) -> bool) -> Option<Timestamp> {
        self.records.iter().find(|r| f(&r.event)).map(|r| r.at)
    }
}

async fn run(
    change: &Change,
    inv: &poolpatch_inventory::Inventory,
    customize: Option<poolpatch::sim::Customize>,
    during: Option<(&str, &str)>,
) -> Ran {
    let base = versions(change);
    let custom = customize.clone();
    let both: poolpatch::sim::Customize = std::sync::Arc::new(move |s, c| {
        let c = base(s, c);
        match &custom {
            Some(f) => f(s, c),
            None => c,
        }
    });
    let sim = Simulation::new(inv, change, SimDurations::default(), Some(both));
    let start = saturday();
    let plan =
        poolpatch_plans::plan_with(&PlanInput::new(&sim.inventory, change).starting_at(start));
    let ctx = RunContext {
        rehearsal: true,
        clock_speed: 1.0,
        run_dir: sim.run_dir(),
        inventory_file: "estate.yaml".into(),
        change_file: "change.yaml".into(),
        now: start,
        operator: "test".into(),
        progress: ProgressMode::Quiet,
    };
    let t0 = Instant::now();
    let (inv2, ch, conn, c2) = (
        sim.inventory.clone(),
        change.clone(),
        sim.connector.clone(),
        ctx.clone(),
    );
    let task = tokio::spawn(async move {
        let (_tx, rx) = tokio::sync::watch::channel(false);
        carry_out(&plan, &inv2, &ch, conn, &c2, rx).await
    });
    // Something happens by hand once an event shows in the journal.
    if let Some((event, server)) = during {
        loop {
            tokio::time::sleep(Duration::from_secs(30)).await;
            let seen = journal::read(&ctx.run_dir)
                .map(|j| j.records.iter().any(|r| event_name(&r.event) == event))
                .unwrap_or(false);
            if seen || task.is_finished() {
                break;
            }
        }
        stop_services_by_hand(&sim, server).await;
    }
    let report = task.await.expect("task").expect("the run starts");
    let records = journal::read(&ctx.run_dir).expect("journal").records;
    Ran {
        sim,
        report,
        records,
        t0,
        start,
    }
}

fn event_name(e: &Event) -> &'static str {
    match e {
        Event::StageBaking { .. } => "stage-baking",
        Event::StagePassed { .. } => "stage-passed",
        _ => "",
    }
}

async fn stop_services_by_hand(sim: &Simulation, fqdn: &str) {
    let server = sim
        .inventory
        .servers()
        .find(|s| s.fqdn.as_str() == fqdn)
        .expect("server")
        .clone();
    let line = command_line(
        server.ssh.shell,
        "Import-Module 'SkypeForBusiness'\nStop-CsWindowsService\nexit 0\n",
    );
    let h = sim.connector.connect(&server).await.expect("connect");
    let _ = h.run(&line, Duration::from_secs(3600)).await;
}

#[tokio::test(start_paused = true)]
async fn servers_wait_for_their_windows_and_stages_for_the_bake() {
    let (inv, change) = estate();
    let r = run(&change, &inv, None, None).await;
    assert_eq!(
        r.report.summary.done(),
        10,
        "{:#?}",
        r.report.summary.outcomes
    );
    // Waits are journaled; every outage lies inside its calendar's windows.
    let waits: Vec<&str> = r
        .records
        .iter()
        .filter_map(|x| match &x.event {
            Event::WaitingForWindow { server, .. } => Some(server.as_str()),
            _ => None,
        })
        .collect();
    assert!(waits.contains(&"se01.ams.contoso.com"), "{waits:?}");
    assert!(waits.contains(&"be01.nyc.contoso.com"), "{waits:?}");
    // Amsterdam: Sat 22:00–Sun 05:00 local = 21:00–04:00 UTC; New York: Sat 22:00 EST
    // for 6h = Sun 03:00–09:00 UTC; se01.ams has its own: Sat 20:00 for 4h = 19:00–23:00 UTC.
    let window = |fqdn: &str| -> Option<(Timestamp, Timestamp)> {
        let t = |s: &str| s.parse::<Timestamp>().expect("ts");
        match fqdn {
            "se01.ams.contoso.com" => Some((t("2026-11-28T19:00:00Z"), t("2026-11-28T23:00:00Z"))),
            f if f.ends_with(".ams.contoso.com") => {
                Some((t("2026-11-28T21:00:00Z"), t("2026-11-29T04:00:00Z")))
            }
            f if f.ends_with(".nyc.contoso.com") => {
                Some((t("2026-11-29T03:00:00Z"), t("2026-11-29T09:00:00Z")))
            }
            _ => None,
        }
    };
    for (fqdn, host) in &r.sim.hosts {
        for o in host.outages() {
            let (s, e) = (r.wall(o.start), r.wall(o.end.expect("ended")));
            if let Some((open, close)) = window(fqdn) {
                assert!(
                    s >= open && e <= close,
                    "{fqdn}: outage {s}..{e} outside {open}..{close}"
                );
            }
        }
    }
    // Stages: canary (se01.ams), then amsterdam, then the rest; each after the previous
    // one passed its bake.
    let passed = |name: &str| {
        r.event_at(|e| matches!(e, Event::StagePassed { stage } if stage == name))
            .unwrap_or_else(|| panic!("stage {name} passed"))
    };
    let canary_done = r
        .event_at(
            |e| matches!(e, Event::ServerDone { server, .. } if server == "se01.ams.contoso.com"),
        )
        .expect("canary done");
    assert!(
        passed("canary") >= canary_done + SignedDuration::from_hours(2),
        "2h bake"
    );
    for (fqdn, host) in &r.sim.hosts {
        let first = host
            .outages()
            .iter()
            .map(|o| r.wall(o.start))
            .min()
            .expect("patched");
        if fqdn != "se01.ams.contoso.com" {
            assert!(
                first >= passed("canary"),
                "{fqdn} started before the canary passed"
            );
        }
        if !fqdn.ends_with(".ams.contoso.com") {
            assert!(
                first >= passed("amsterdam"),
                "{fqdn} started before amsterdam passed"
            );
        }
    }
    let checks = r
        .records
        .iter()
        .filter(|x| matches!(&x.event, Event::HealthChecked { stage, ok: true, .. } if stage == "canary"))
        .count();
    assert!(
        checks >= 4,
        "health checks repeat during the bake: {checks}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_canary_halts_the_rollout() {
    let (inv, change) = estate();
    let fail: poolpatch::sim::Customize = std::sync::Arc::new(|s, c| {
        if s.fqdn.as_str() == "se01.ams.contoso.com" {
            c.with_fault(Fault::new(
                ActionKind::UpdateDatabases,
                FaultEffect::Fail {
                    exit_code: 1,
                    stderr: "Install-CsDatabase : the database update failed".into(),
                },
            ))
        } else {
            c
        }
    });
    let r = run(&change, &inv, Some(fail), None).await;
    assert!(matches!(
        r.report
            .summary
            .outcomes
            .get(&poolpatch_inventory::Fqdn::parse("se01.ams.contoso.com").unwrap()),
        Some(ServerOutcome::Failed { restored: true, .. })
    ));
    assert!(
        r.records
            .iter()
            .any(|x| matches!(&x.event, Event::StageFailed { stage, .. } if stage == "canary"))
    );
    assert!(r.report.summary.halted.is_some());
    // No server of a later stage started: the other hosts saw no outage at all.
    for (fqdn, host) in &r.sim.hosts {
        if fqdn != "se01.ams.contoso.com" {
            assert!(
                host.outages().is_empty(),
                "{fqdn} was patched after the canary failed"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn health_failing_during_the_bake_halts_the_rollout() {
    let (inv, change) = estate();
    // Once the canary bakes, someone stops its services: the next health check fails.
    let r = run(
        &change,
        &inv,
        None,
        Some(("stage-baking", "se01.ams.contoso.com")),
    )
    .await;
    let failed = r
        .records
        .iter()
        .find_map(|x| match &x.event {
            Event::StageFailed { stage, reason } if stage == "canary" => Some(reason.clone()),
            _ => None,
        })
        .expect("the canary stage failed");
    assert!(failed.contains("health"), "{failed}");
    assert!(
        r.records
            .iter()
            .any(|x| matches!(&x.event, Event::HealthChecked { ok: false, .. }))
    );
    for (fqdn, host) in &r.sim.hosts {
        if fqdn != "se01.ams.contoso.com" {
            assert!(
                host.outages().is_empty(),
                "{fqdn} was patched after health failed"
            );
        }
    }
    assert_eq!(r.report.summary.done(), 1);
}
