//! Estimates that learn from the journals of past runs: reading run directories (what
//! counts, what is tolerated, what is skipped), the percentile policy, precedence against
//! the change file, and the plan's predictions, verdicts and words.

use std::path::{Path, PathBuf};
use std::time::Duration;

use poolpatch_inventory::{Fqdn, Inventory, LoadOptions, from_str_with};
use poolpatch_plans::estimates::EstimateSource;
use poolpatch_plans::history::{
    History, HistoryPolicy, HistoryRead, Observation, percentile, read_history,
};
use poolpatch_plans::plan::{NotScheduledReason, Plan, ServerPlan, Verdict};
use poolpatch_plans::procedure::StepKind;
use poolpatch_plans::{Change, PlanInput, change_from_str, plan, plan_with};

const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const BE1: &str = "be1.ams.contoso.com";
const BE2: &str = "be2.ams.contoso.com";
const POOL: &str = "pool.ams.contoso.com";

fn inventory() -> Inventory {
    let text = format!(
        "version: 1\ndefaults:\n  ssh: {{ user: svc, identity_file: /k/id, known_hosts: /k/kh }}\nsites:\n  - {{ name: ams, time_zone: Europe/Amsterdam }}\npools:\n  - fqdn: {POOL}\n    site: ams\n    edition: enterprise\n    product: sfb2015\n    front_ends: [{{ fqdn: fe1.ams.contoso.com }}]\n    back_ends:\n      - {{ fqdn: {BE1}, sql_server: sql1.ams.contoso.com }}\n      - {{ fqdn: {BE2}, sql_server: sql2.ams.contoso.com }}\n"
    );
    from_str_with("estate.yaml", &text, &LoadOptions::default()).unwrap_or_else(|d| panic!("{d}"))
}

fn change(extra: &str) -> Change {
    let text = format!(
        "version: 1\nname: t\nupdate:\n  remote_dir: 'D:\\Staging'\n  installers:\n    sfb2015: {{ file: s.exe, sha256: {DIGEST}, version: \"6.0.9319.690\" }}\n{extra}"
    );
    change_from_str("change.yaml", &text).unwrap_or_else(|d| panic!("{d}"))
}

fn fqdn(s: &str) -> Fqdn {
    Fqdn::parse(s).unwrap()
}

fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

/// A `step-finished` journal line as the controller writes it.
fn step(server: &str, step: &str, ok: bool, recovery: bool, ms: u64) -> String {
    format!(
        r#"{{"v":1,"seq":0,"at":"2025-03-01T22:00:00Z","elapsed_ms":0,"event":"step-finished","server":"{server}","step":"{step}","recovery":{recovery},"exit":{{"kind":"code","code":0}},"ok":{ok},"duration_ms":{ms},"stdout_tail":"","stderr_tail":""}}"#
    )
}

fn run_started(extra: &str) -> String {
    format!(
        r#"{{"v":1,"seq":0,"at":"2025-03-01T22:00:00Z","elapsed_ms":0,"event":"run-started","change":"t","inventory":"estate.yaml","change_file":"change.yaml","servers":2,"operator":"op@host pid 1"{extra}}}"#
    )
}

/// Writes a run directory: the plan of the test estate and a journal of `lines`.
fn write_run(dir: &Path, lines: &[String]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("plan.json"),
        plan(&inventory(), &change("")).to_json(),
    )
    .unwrap();
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(dir.join("journal.jsonl"), text).unwrap();
    dir.to_path_buf()
}

/// `runs/run-N` for each of `installs` (be1's install-update minutes, be2 always 10m).
fn runs_with_installs(root: &Path, installs: &[u64]) -> PathBuf {
    let runs = root.join("runs");
    for (i, m) in installs.iter().enumerate() {
        write_run(
            &runs.join(format!("run-{i}")),
            &[
                run_started(""),
                step(BE1, "stop-services", true, false, 90_000),
                step(BE1, "install-update", true, false, m * 60_000),
                step(BE2, "install-update", true, false, 10 * 60_000),
            ],
        );
    }
    runs
}

fn read(paths: &[PathBuf]) -> HistoryRead {
    read_history(paths, HistoryPolicy::default())
}

fn server<'a>(p: &'a Plan, fqdn: &str) -> &'a ServerPlan {
    p.servers.iter().find(|s| s.fqdn == fqdn).unwrap()
}

fn outage_step(s: &ServerPlan, kind: StepKind) -> &poolpatch_plans::plan::PlannedStep {
    s.steps
        .outage
        .iter()
        .find(|st| st.step.kind == kind)
        .unwrap()
}

fn plan_with_history(change: &Change, history: &History) -> Plan {
    let inv = inventory();
    plan_with(&PlanInput::new(&inv, change).with_history(history))
}

#[test]
fn p90_of_few_and_of_many_samples() {
    let tmp = tempfile::tempdir().unwrap();
    // 3 samples: the nearest rank of 90% of 3 is the 3rd, the slowest.
    let runs = runs_with_installs(tmp.path(), &[13, 11, 12]);
    let r = read(&[runs]);
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    assert_eq!(r.runs.len(), 3);
    let e = r
        .history
        .estimate(&fqdn(BE1), StepKind::InstallUpdate)
        .unwrap();
    assert_eq!(e.duration, mins(13));
    assert_eq!((e.percentile, e.samples, e.runs), (90, 3, 3));
    assert_eq!(r.history.runs(), 3);

    // 10 samples: the 9th.
    let tmp = tempfile::tempdir().unwrap();
    let runs = runs_with_installs(tmp.path(), &[20, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    let r = read(&[runs]);
    let e = r
        .history
        .estimate(&fqdn(BE1), StepKind::InstallUpdate)
        .unwrap();
    assert_eq!(e.duration, mins(19));
    assert_eq!(e.samples, 10);
    assert_eq!(
        r.history.durations(&fqdn(BE1), StepKind::InstallUpdate)[0],
        mins(11),
        "durations are kept sorted"
    );
    // Another percentile of the same samples.
    let p50 = r.history.clone().with_policy(HistoryPolicy::new(50, 3));
    assert_eq!(
        p50.estimate(&fqdn(BE1), StepKind::InstallUpdate)
            .unwrap()
            .duration,
        mins(15)
    );
}

#[test]
fn fewer_samples_than_min_samples_fall_back() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = runs_with_installs(tmp.path(), &[20, 20]);
    let r = read(std::slice::from_ref(&runs));
    assert_eq!(
        r.history
            .durations(&fqdn(BE1), StepKind::InstallUpdate)
            .len(),
        2
    );
    assert_eq!(
        r.history.estimate(&fqdn(BE1), StepKind::InstallUpdate),
        None
    );
    let p = plan_with_history(&change(""), &r.history);
    let st = outage_step(server(&p, BE1), StepKind::InstallUpdate);
    assert_eq!(st.estimate_source, EstimateSource::BuiltIn);
    assert_eq!(st.estimate, mins(12));
    // The change file's estimate is the fallback before the built-in one.
    let p = plan_with_history(
        &change("estimates:\n  defaults: { install-update: 14m }\n"),
        &r.history,
    );
    let st = outage_step(server(&p, BE1), StepKind::InstallUpdate);
    assert_eq!(st.estimate_source, EstimateSource::ChangeDefault);
    // With a lower minimum, two samples are enough.
    let r = read_history(&[runs], HistoryPolicy::new(90, 2));
    let p = plan_with_history(&change(""), &r.history);
    let st = outage_step(server(&p, BE1), StepKind::InstallUpdate);
    assert_eq!(st.estimate, mins(20));
    assert_eq!(st.estimate_source.describe(), "history p90 of 2");
}

#[test]
fn failed_recovery_and_reboot_durations_are_not_learnt() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    for i in 0..3 {
        write_run(
            &runs.join(format!("r{i}")),
            &[
                run_started(""),
                step(BE1, "stop-w3svc", true, false, 20_000),
                // A failed attempt and the recovery path do not say how long the step takes.
                step(BE1, "start-w3svc", false, false, 3_600_000),
                step(BE1, "start-services", true, true, 3_600_000),
                step(BE1, "start-services", true, false, 100_000),
                // A reboot's journaled duration is only the time to send Restart-Computer.
                step(BE1, "reboot", true, false, 1_000),
                // Unknown step kinds and names that are not FQDNs match nothing.
                step(BE1, "defragment", true, false, 1_000),
                step("be1;calc", "stop-w3svc", true, false, 1_000),
                // Other events are read past.
                r#"{"v":1,"seq":9,"at":"2025-03-01T22:00:00Z","elapsed_ms":0,"event":"server-failed","server":"be1.ams.contoso.com","step":null,"reason":"x","restored":true}"#.to_string(),
            ],
        );
    }
    let r = read(&[runs]);
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    let h = &r.history;
    assert_eq!(h.durations(&fqdn(BE1), StepKind::StopW3svc).len(), 3);
    assert!(h.durations(&fqdn(BE1), StepKind::StartW3svc).is_empty());
    assert!(h.durations(&fqdn(BE1), StepKind::Reboot).is_empty());
    let e = h.estimate(&fqdn(BE1), StepKind::StartServices).unwrap();
    assert_eq!((e.duration, e.samples), (Duration::from_secs(100), 3));
    assert_eq!(r.runs.iter().map(|r| r.samples).sum::<usize>(), 6);
}

#[test]
fn a_torn_last_line_is_tolerated_but_damage_and_newer_records_skip_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = runs_with_installs(tmp.path(), &[12, 12, 12]);
    // run-0: the crash hit mid-write: the last line has no newline (even a complete one).
    let j = runs.join("run-0/journal.jsonl");
    let mut bytes = std::fs::read(&j).unwrap();
    bytes.extend_from_slice(step(BE1, "update-databases", true, false, 60_000).as_bytes());
    bytes.truncate(bytes.len() - 5);
    std::fs::write(&j, &bytes).unwrap();
    // run-1: a damaged line in the middle.
    let j = runs.join("run-1/journal.jsonl");
    let text = std::fs::read_to_string(&j).unwrap();
    std::fs::write(&j, format!("{{not json}}\n{text}")).unwrap();
    // run-2: a record of a newer version.
    let j = runs.join("run-2/journal.jsonl");
    let text = std::fs::read_to_string(&j).unwrap();
    std::fs::write(&j, text.replace("{\"v\":1,", "{\"v\":2,")).unwrap();

    let r = read(std::slice::from_ref(&runs));
    assert_eq!(r.runs.len(), 1);
    assert!(r.runs[0].torn_last_line);
    assert_eq!(r.runs[0].samples, 3);
    assert!(
        r.history
            .durations(&fqdn(BE1), StepKind::UpdateDatabases)
            .is_empty()
    );
    let reasons: Vec<String> = r.skipped.iter().map(ToString::to_string).collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].contains("run-1"), "{reasons:?}");
    assert!(
        reasons[0].contains("journal.jsonl:1: not a journal record"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("run-2"), "{reasons:?}");
    assert!(
        reasons[1].contains("record version 2 is newer"),
        "{reasons:?}"
    );
}

#[test]
fn unreadable_directories_are_skipped_and_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = runs_with_installs(tmp.path(), &[12, 13, 14]);
    // Not a run: no journal.
    std::fs::create_dir_all(runs.join("notes")).unwrap();
    // A run without its plan.
    let no_plan = runs.join("run-x");
    std::fs::create_dir_all(&no_plan).unwrap();
    std::fs::write(no_plan.join("journal.jsonl"), run_started("") + "\n").unwrap();
    // A plan that is not a plan.
    let bad_plan = write_run(&runs.join("run-y"), &[run_started("")]);
    std::fs::write(bad_plan.join("plan.json"), "{\"schema\": \"other/v9\"}").unwrap();
    // A file among the runs is ignored.
    std::fs::write(runs.join("README"), "runs").unwrap();
    let missing = tmp.path().join("no-such-dir");
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();

    // The same run named twice is read once.
    let r = read(&[missing.clone(), runs.clone(), runs.join("run-1"), empty]);
    assert_eq!(r.runs.len(), 3);
    assert_eq!(
        r.history
            .estimate(&fqdn(BE1), StepKind::InstallUpdate)
            .unwrap()
            .samples,
        3
    );
    let reasons: Vec<String> = r.skipped.iter().map(ToString::to_string).collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert!(reasons[0].starts_with(&missing.display().to_string()));
    assert!(reasons[0].contains("cannot read it as a directory"));
    assert!(reasons[1].contains("notes: not a run directory (no journal.jsonl)"));
    assert!(reasons[2].contains("run-x: cannot read its plan.json"));
    assert!(reasons[3].contains("run-y: plan.json:"));
    assert!(reasons[4].contains("empty: neither a run directory"));
}

#[test]
fn rehearsals_do_not_teach_production_estimates() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = runs_with_installs(tmp.path(), &[1, 1, 1, 1]);
    // run-0: a plan whose time was compressed (as `poolpatch demo` does).
    let mut compressed = plan(&inventory(), &change(""));
    for s in &mut compressed.servers {
        for st in s.steps.preflight.iter_mut().chain(&mut s.steps.outage) {
            st.estimate /= 240;
        }
    }
    std::fs::write(runs.join("run-0/plan.json"), compressed.to_json()).unwrap();
    // run-1: a journal that says it is a rehearsal.
    write_run(
        &runs.join("run-1"),
        &[
            run_started(r#","rehearsal":true"#),
            step(BE1, "install-update", true, false, 60_000),
        ],
    );
    let r = read(&[runs]);
    assert_eq!(r.runs.len(), 2);
    assert_eq!(r.skipped.len(), 2);
    assert!(
        r.skipped[0]
            .reason
            .starts_with("a rehearsal: its plan.json shows compressed time"),
        "{}",
        r.skipped[0]
    );
    assert!(
        r.skipped[1]
            .reason
            .starts_with("a rehearsal (its journal says so)")
    );
    assert_eq!(
        r.history.estimate(&fqdn(BE1), StepKind::InstallUpdate),
        None
    );
}

#[test]
fn a_slow_installer_in_the_history_puts_a_server_over_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = runs_with_installs(tmp.path(), &[16, 20, 17, 19, 18]);
    let r = read(&[runs]);
    let without = plan(&inventory(), &change(""));
    assert_eq!(without.totals.servers_scheduled, 2);
    let p = plan_with_history(&change(""), &r.history);

    let be1 = server(&p, BE1);
    let st = outage_step(be1, StepKind::InstallUpdate);
    assert_eq!(st.estimate, mins(20));
    assert_eq!(
        st.estimate_source,
        EstimateSource::History {
            server: BE1.into(),
            percentile: 90,
            samples: 5,
            runs: 5,
        }
    );
    // 2m + 30s + 20m + 1m + 30s + 3m + 3m, with stop-services' own history: 1m 30s.
    assert_eq!(be1.outage.predicted, mins(29) + Duration::from_secs(30));
    assert_eq!(be1.outage.verdict, Verdict::OverBudget);
    assert!(be1.window.is_none());
    let why = be1.not_scheduled.as_ref().unwrap();
    assert_eq!(why.reason, NotScheduledReason::OverBudget);
    let fix = why.fix.as_deref().unwrap();
    assert!(
        fix.starts_with(&format!(
            "if install-update really takes less now, set `estimates.servers[\"{BE1}\"].install-update` below 15m 30s (an explicit estimate wins over the history, which puts it at 20m: history p90 of 5)"
        )),
        "{fix}"
    );

    // be2's history is fast: it still fits, its estimate from history too.
    let be2 = server(&p, BE2);
    assert_eq!(be2.outage.verdict, Verdict::Fits);
    assert_eq!(
        outage_step(be2, StepKind::InstallUpdate)
            .estimate_source
            .describe(),
        "history p90 of 5"
    );
    assert_eq!(p.totals.servers_scheduled, 1);

    // The renderers show where each estimate comes from.
    assert!(p.to_text().contains("history p90 of 5"));
    assert!(p.to_markdown().contains("| history p90 of 5 |"));
    let json = p.to_json();
    assert!(json.contains("\"kind\": \"history\""));
    assert_eq!(Plan::from_json(&json).unwrap(), p);
    // And the notes say what the history did.
    assert!(
        p.notes.iter().any(|n| n.starts_with(
            "Estimates learn from the history of 5 past runs: a step of a server takes the 90th percentile"
        ) && n.ends_with("3 step estimates on 2 servers come from it.")),
        "{:?}",
        p.notes
    );
}

#[test]
fn an_explicit_server_estimate_wins_then_history_then_pool_and_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = runs_with_installs(tmp.path(), &[16, 16, 16]);
    let r = read(&[runs]);
    let c = change(&format!(
        "estimates:\n  defaults: {{ install-update: 9m, stop-services: 9m }}\n  pools:\n    {POOL}: {{ install-update: 8m }}\n  servers:\n    {BE1}: {{ install-update: 10m }}\n"
    ));
    let p = plan_with_history(&c, &r.history);
    let be1 = server(&p, BE1);
    let st = outage_step(be1, StepKind::InstallUpdate);
    assert_eq!(st.estimate, mins(10));
    assert_eq!(st.estimate_source.label(), "server");
    // History beats the pool's and the change's estimates.
    let st = outage_step(be1, StepKind::StopServices);
    assert_eq!(st.estimate, Duration::from_secs(90));
    assert_eq!(st.estimate_source.label(), "history");
    let be2 = server(&p, BE2);
    assert_eq!(
        outage_step(be2, StepKind::InstallUpdate).estimate,
        mins(10),
        "be2's own history (10m), not the pool's 8m"
    );
    // Steps without history keep the change's estimates.
    assert_eq!(
        outage_step(be2, StepKind::StopServices).estimate_source,
        EstimateSource::ChangeDefault
    );
    // The plan says when an explicit estimate is below what the history shows.
    assert!(
        p.notes.iter().any(|n| n
            == &format!(
                "estimates.servers[\"{BE1}\"] sets install-update to 10m, below what its history shows (16m, p90 of 3 in 3 runs): the explicit estimate wins; check it still holds."
            )),
        "{:?}",
        p.notes
    );
}

#[test]
fn the_same_history_gives_the_same_plan() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = runs_with_installs(tmp.path(), &[13, 17, 11, 15, 19, 12]);
    let mut dirs: Vec<PathBuf> = (0..6).map(|i| runs.join(format!("run-{i}"))).collect();
    let a = read(&dirs);
    dirs.reverse();
    let b = read(&dirs);
    let c = read(std::slice::from_ref(&runs));
    assert_eq!(a.history, b.history);
    assert_eq!(a.history, c.history.clone().with_policy(a.history.policy()));
    let pa = plan_with_history(&change(""), &a.history).to_json();
    let pb = plan_with_history(&change(""), &b.history).to_json();
    let pc = plan_with_history(&change(""), &c.history).to_json();
    assert_eq!(pa, pb);
    assert_eq!(pa, pc);

    // Observations in any order make the same history.
    let obs: Vec<Observation> = [5u64, 1, 4, 2, 3]
        .iter()
        .map(|s| Observation {
            run: format!("r{s}"),
            server: fqdn(BE1),
            step: StepKind::CheckDisk,
            duration: Duration::from_secs(*s),
        })
        .collect();
    let mut rev = obs.clone();
    rev.reverse();
    let h1 = History::from_observations(HistoryPolicy::default(), obs);
    let h2 = History::from_observations(HistoryPolicy::default(), rev);
    assert_eq!(h1, h2);
    assert_eq!(
        h1.estimate(&fqdn(BE1), StepKind::CheckDisk)
            .unwrap()
            .duration,
        Duration::from_secs(5)
    );
    assert_eq!(
        percentile(
            h1.durations(&fqdn(BE1), StepKind::CheckDisk),
            h1.policy().percentile()
        ),
        Some(Duration::from_secs(5))
    );
}

#[test]
fn an_empty_history_changes_nothing_but_a_note() {
    let without = plan(&inventory(), &change(""));
    let h = History::default();
    assert!(h.is_empty());
    let with = plan_with_history(&change(""), &h);
    assert_eq!(with.servers, without.servers);
    assert_eq!(with.notes.len(), without.notes.len() + 1);
    assert!(
        with.notes
            .last()
            .unwrap()
            .ends_with("No estimate of this plan comes from it.")
    );
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new(".."))
}

fn doc(name: &str) -> String {
    std::fs::read_to_string(root().join("docs/usage").join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn the_docs_history_examples_are_true() {
    // plan-json.md: the source object reads back and is shown as the docs say.
    let json = doc("plan-json.md");
    let from = json.find("#### History of past runs").unwrap();
    let start = json[from..].find("```json\n").unwrap() + from + 8;
    let end = json[start..].find("```\n").unwrap() + start;
    let source: EstimateSource = serde_json::from_str(&json[start..end]).unwrap();
    assert_eq!(
        source,
        EstimateSource::History {
            server: "se01.nyc.contoso.com".into(),
            percentile: 90,
            samples: 5,
            runs: 5,
        }
    );
    assert_eq!(source.describe(), "history p90 of 5");
    assert!(json.contains("`history p90 of 5`"));

    // change.md: the quoted fix is the example estate's, with five slow installs.
    let change_md = doc("change.md");
    let from = change_md.find("gets a fix that says so").unwrap();
    let quoted: Vec<&str> = change_md[from..]
        .lines()
        .skip_while(|l| !l.starts_with("> "))
        .take_while(|l| l.starts_with("> "))
        .map(|l| &l[2..])
        .collect();
    let quoted = quoted.join(" ");
    let inv = poolpatch_inventory::load(&root().join("inventory/examples/estate.yaml"))
        .unwrap_or_else(|d| panic!("{d}"));
    let change = poolpatch_plans::load_change(&root().join("plans/examples/change.yaml"))
        .unwrap_or_else(|d| panic!("{d}"));
    let history = History::from_observations(
        HistoryPolicy::default(),
        (16..=20).map(|m| Observation {
            run: format!("run-{m}"),
            server: fqdn("se01.nyc.contoso.com"),
            step: StepKind::InstallUpdate,
            duration: mins(m),
        }),
    );
    let p = plan_with(&PlanInput::new(&inv, &change).with_history(&history));
    let se = server(&p, "se01.nyc.contoso.com");
    assert_eq!(
        se.not_scheduled.as_ref().unwrap().fix.as_deref(),
        Some(quoted.as_str())
    );
}
