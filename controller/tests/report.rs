//! The outage report of a fixed run (see `report_fixture`): Markdown and JSON pinned by
//! snapshots, what it says about each kind of server, and how it reads damaged or
//! incomplete run directories.

mod report_fixture;

use std::io::Write as _;
use std::process::Command;

use poolpatch::report::{self, Outcome, Report, ServerResult};
use poolpatch_plans::procedure::StepKind;
use report_fixture::{FAILED_STDERR, FAILED_STDOUT, write_run};

/// The fixture's report, with a fixed run directory name.
fn fixture_report() -> Report {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_run(dir.path());
    let journal = poolpatch::journal::read(dir.path()).unwrap();
    report::from_run(
        &plan,
        &journal,
        &report::build::RunOptions {
            run_dir: Some("runs/20240714T200000Z-contoso-cu-2024-07".into()),
            rehearsal_speed: None,
        },
    )
}

#[test]
fn markdown_snapshot() {
    insta::assert_snapshot!("fixture_markdown", fixture_report().to_markdown());
}

#[test]
fn json_snapshot_round_trips() {
    let r = fixture_report();
    let json = r.to_json();
    insta::assert_snapshot!("fixture_json", json);
    assert_eq!(Report::from_json(&json).unwrap(), r);
    let other = json.replacen("poolpatch.report/v1", "poolpatch.report/v2", 1);
    assert!(
        Report::from_json(&other)
            .unwrap_err()
            .contains("reads reports of schema `poolpatch.report/v1`")
    );
}

#[test]
fn every_kind_of_server_is_explained() {
    let r = fixture_report();
    let result = |s: &str| r.server(s).unwrap_or_else(|| panic!("{s}")).result;
    assert_eq!(result("be02.ams.contoso.com"), ServerResult::Done);
    assert_eq!(result("be01.ams.contoso.com"), ServerResult::Failed);
    assert_eq!(
        result("be01.tyo.contoso.com"),
        ServerResult::BudgetExhausted
    );
    assert_eq!(
        result("be01.nyc.contoso.com"),
        ServerResult::BudgetExhausted
    );
    assert_eq!(result("se01.ams.contoso.com"), ServerResult::Skipped);
    assert_eq!(result("se02.tyo.contoso.com"), ServerResult::NotScheduled);
    assert_eq!(r.overall.outcome, Outcome::Breach);
    assert_eq!(r.overall.counts.done, 3);

    // The failure carries the failing step's output, and what is left to do.
    let be01 = r.server("be01.ams.contoso.com").unwrap();
    let f = be01.failure.as_ref().unwrap();
    assert_eq!(f.step, Some(StepKind::InstallUpdate));
    assert_eq!(f.stdout_tail, FAILED_STDOUT);
    assert_eq!(f.stderr_tail, FAILED_STDERR);
    assert_eq!(
        be01.left_to_do,
        [
            StepKind::InstallUpdate,
            StepKind::StopServicesAgain,
            StepKind::StartW3svc,
            StepKind::UpdateDatabases,
            StepKind::StartServices
        ]
    );

    // Steps against their estimates: the installer's estimate is 12m, it took 13m.
    let be02 = r.server("be02.ams.contoso.com").unwrap();
    let install = be02
        .steps
        .iter()
        .find(|s| s.kind == StepKind::InstallUpdate)
        .unwrap();
    assert_eq!(
        (install.estimate_ms, install.duration_ms, install.delta_ms),
        (Some(720_000), Some(780_000), Some(60_000))
    );
    let a = be02.actual.as_ref().unwrap();
    assert_eq!(a.outage_ms, Some(1_300_000));
    assert_eq!(a.budget_used_pct, Some(86.7));

    // The abandoned step has no difference to its estimate (it did not complete).
    let nyc = r.server("be01.nyc.contoso.com").unwrap();
    let abandoned = nyc
        .steps
        .iter()
        .find(|s| s.kind == StepKind::StopServicesAgain && !s.recovery)
        .unwrap();
    assert_eq!(abandoned.delta_ms, None);
    assert_eq!(nyc.watchdog.len(), 1);

    // The breach: when, how long, which server and pool.
    assert_eq!(r.breaches.len(), 1);
    let b = &r.breaches[0];
    assert_eq!(
        (b.server.as_str(), b.pool.as_str(), b.site.as_str()),
        ("be01.tyo.contoso.com", "pool01.tyo.contoso.com", "tokyo")
    );
    assert_eq!((b.at_ms, b.down_ms), (31 * 60_000, 30 * 60_000));
    assert!(
        b.explanation.contains("2024-07-14 20:31:00 UTC"),
        "{}",
        b.explanation
    );
    assert!(
        b.explanation.contains("beyond the threshold"),
        "{}",
        b.explanation
    );

    // Not patched: each with where the reason comes from.
    let why = |s: &str| {
        r.not_patched
            .iter()
            .find(|n| n.server == s)
            .map(|n| (n.source.as_str(), n.reason.as_str(), n.fix.as_deref()))
            .unwrap_or_else(|| panic!("{s} not listed"))
    };
    assert_eq!(why("se01.ams.contoso.com").0, "journal");
    assert!(why("se01.ams.contoso.com").1.contains("1.2 GiB free"));
    let (source, reason, fix) = why("se02.tyo.contoso.com");
    assert_eq!(source, "plan");
    assert!(reason.contains("over-budget"), "{reason}");
    assert!(fix.is_some());
    assert!(why("be03.ams.contoso.com").1.contains("comes after"));
    assert!(
        r.not_patched
            .iter()
            .all(|n| n.server != "be02.ams.contoso.com")
    );

    // The run log: start, the pause, the halt, the end.
    let log: Vec<&str> = r.log.iter().map(|l| l.event.as_str()).collect();
    assert_eq!(
        log,
        [
            "run-started",
            "pool-halted",
            "paused",
            "unpaused",
            "run-finished"
        ]
    );
    assert_eq!(r.log[2].at_ms, 40 * 60_000);

    // Pools: halted, with the actual span of its outages.
    let pool = r
        .pools
        .iter()
        .find(|p| p.fqdn == "pool01.ams.contoso.com")
        .unwrap();
    assert_eq!(
        pool.halted.as_deref(),
        Some("be01.ams.contoso.com did not complete")
    );
    assert_eq!(pool.servers_done, 1);
    assert_eq!(pool.actual.unwrap().start_ms, 60_000);
}

#[test]
fn text_report_is_terminal_safe() {
    let text = fixture_report().to_text();
    assert!(
        !text.contains('\u{1b}'),
        "no escape sequence reaches the terminal"
    );
    assert!(text.contains("\\u{1b}[31mERROR 1603"));
    assert!(text.contains("FAILED at install-update (services restored)"));
    assert!(text.contains("BREACH") || text.contains("breach"));
}

#[test]
fn a_torn_journal_still_renders_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path());
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("journal.jsonl"))
        .unwrap();
    f.write_all(br#"{"v":1,"seq":999,"at":"2024-07-14T21:0"#)
        .unwrap();
    drop(f);
    let r = report::load(dir.path()).unwrap();
    let lines = std::fs::read_to_string(dir.path().join("journal.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(r.source.journal_torn_last_line, Some(lines));
    assert!(r.warnings.iter().any(|w| w.contains("torn")));
    assert!(r.to_text().contains("torn by a crash"));
    assert!(r.to_markdown().contains("torn by a crash"));
    let html = r.to_html();
    roxmltree::Document::parse_with_options(
        &html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(html.contains("torn by a crash"));
}

#[test]
fn an_unfinished_run_says_so_and_keeps_the_server_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let plan = report_fixture::plan();
    std::fs::write(dir.path().join("plan.json"), plan.to_json()).unwrap();
    let mut s = report_fixture::Script::default();
    s.at(
        0,
        poolpatch::journal::Event::RunStarted {
            change: plan.change.name.clone(),
            inventory: "estate.yaml".into(),
            change_file: "change.yaml".into(),
            servers: 9,
            operator: "op".into(),
            rehearsal: false,
        },
    );
    s.at(
        5_000,
        poolpatch::journal::Event::OutageStarted {
            server: "be01.nyc.contoso.com".into(),
            pool: "pool01.nyc.contoso.com".into(),
        },
    );
    s.step(
        "be01.nyc.contoso.com",
        5_000,
        StepKind::StopServices,
        95_000,
        false,
        (poolpatch::journal::ExitRecord::Code { code: 0 }, "", ""),
    );
    s.write(dir.path());
    let r = report::load(dir.path()).unwrap();
    assert_eq!(r.overall.outcome, Outcome::NotFinished);
    let s = r.server("be01.nyc.contoso.com").unwrap();
    assert_eq!(s.result, ServerResult::InFlight);
    assert_eq!(s.actual.as_ref().unwrap().down_at_least_ms, Some(95_000));
    assert!(r.warnings.iter().any(|w| w.contains("has not finished")));
    let n = r
        .not_patched
        .iter()
        .find(|n| n.server == "be01.nyc.contoso.com")
        .unwrap();
    assert!(n.reason.contains("may still be down"), "{}", n.reason);
}

#[test]
fn missing_or_damaged_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path());

    let journal = std::fs::read(dir.path().join("journal.jsonl")).unwrap();
    let mut damaged = b"{not a record}\n".to_vec();
    damaged.extend_from_slice(&journal);
    std::fs::write(dir.path().join("journal.jsonl"), &damaged).unwrap();
    let e = report::load(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("journal.jsonl:1: not a valid journal record"),
        "{e}"
    );
    assert!(e.contains("damaged, not torn"), "{e}");

    std::fs::write(
        dir.path().join("plan.json"),
        "{\"schema\": \"poolpatch.plan/v1\"",
    )
    .unwrap();
    let e = report::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("plan.json is damaged or not a plan"), "{e}");

    std::fs::remove_file(dir.path().join("plan.json")).unwrap();
    let e = report::load(dir.path()).unwrap_err().to_string();
    assert!(e.starts_with("cannot read the plan "), "{e}");
    assert!(e.contains("plan.json"), "{e}");
    assert!(
        e.contains("a run directory holds plan.json and journal.jsonl"),
        "{e}"
    );

    let e = report::load(&dir.path().join("nope"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("is not a run directory"), "{e}");

    // A journal that is missing, with a good plan.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("plan.json"),
        report_fixture::plan().to_json(),
    )
    .unwrap();
    let e = report::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("journal.jsonl"), "{e}");
}

#[test]
fn a_rehearsal_reads_in_the_plan_time() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_run(dir.path());
    // The journal above is in real time; as a rehearsal at 4x, its durations read 4x longer.
    report::write_rehearsal(dir.path(), 4.0, &plan).unwrap();
    let r = report::load(dir.path()).unwrap();
    assert_eq!(r.source.rehearsal_speed, Some(4.0));
    let a = r
        .server("be02.ams.contoso.com")
        .unwrap()
        .actual
        .clone()
        .unwrap();
    assert_eq!(a.outage_ms, Some(4 * 1_300_000));
    assert!(r.to_text().contains("simulated at 4x speed"));
    assert!(r.to_html().contains("simulated at 4x speed"));

    std::fs::write(dir.path().join(report::REHEARSAL_FILE), "{}").unwrap();
    let e = report::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("rehearsal.json is damaged"), "{e}");
}

#[test]
fn the_command_line_writes_each_format_and_fails_clearly() {
    let bin = env!("CARGO_BIN_EXE_poolpatch");
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    write_run(&run);
    for (format, start) in [
        ("text", "Outage report: "),
        ("md", "# Outage report: "),
        ("json", "{"),
        ("html", "<!DOCTYPE html>"),
    ] {
        let out = Command::new(bin)
            .args(["report", "--run"])
            .arg(&run)
            .args(["--format", format])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{format}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.starts_with(start),
            "{format}: {}",
            &text[..80.min(text.len())]
        );
    }
    let file = dir.path().join("r.html");
    let out = Command::new(bin)
        .args(["report", "--format", "html", "--run"])
        .arg(&run)
        .arg("--output")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .ends_with("</html>\n")
    );

    std::fs::remove_file(run.join("plan.json")).unwrap();
    let out = Command::new(bin)
        .args(["report", "--run"])
        .arg(&run)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error: cannot read the plan"), "{err}");
}

#[test]
fn plan_html_from_the_command_line() {
    let bin = env!("CARGO_BIN_EXE_poolpatch");
    let root = report_fixture::root();
    let out = Command::new(bin)
        .args(["plan", "--format", "html", "--inventory"])
        .arg(root.join("inventory/examples/estate.yaml"))
        .arg("--change")
        .arg(root.join("plans/examples/change.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let html = String::from_utf8(out.stdout).unwrap();
    assert!(html.contains("Outage prediction"));
    assert!(html.contains(r#"class="timeline""#));
}

/// Every field name of a JSON object in `v`, recursively.
fn keys(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                out.insert(k.clone());
                keys(v, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

#[test]
fn every_json_field_is_documented() {
    let doc =
        std::fs::read_to_string(report_fixture::root().join("docs/usage/reports.md")).unwrap();
    let mut all = std::collections::BTreeSet::new();
    for r in [
        fixture_report(),
        report::from_plan(&report_fixture::canary_plan()),
    ] {
        keys(&serde_json::from_str(&r.to_json()).unwrap(), &mut all);
    }
    let missing: Vec<&String> = all
        .iter()
        .filter(|k| !doc.contains(&format!("`{k}`")) && !doc.contains(&format!("\"{k}\"")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in docs/usage/reports.md: {missing:?}"
    );
    assert!(doc.contains("poolpatch.report/v1"));
}
