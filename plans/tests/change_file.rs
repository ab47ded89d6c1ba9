//! The change file: every rule with a bad file and the message an operator sees.

use std::time::Duration;

use poolpatch_inventory::Product;
use poolpatch_plans::change::{OnBudgetExhausted, OnFailure, change_from_str};
use poolpatch_plans::procedure::{FinalStep, StepKind};

const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn minimal() -> String {
    format!(
        "version: 1\nname: \"SfB 2015 CU 2024-07\"\nupdate:\n  remote_dir: 'C:\\ProgramData\\poolpatch\\updates'\n  installers:\n    sfb2015: {{ file: ./updates/SkypeServerUpdateInstaller.exe, sha256: {DIGEST}, version: \"6.0.9319.690\" }}\n"
    )
}

/// Every problem of `text`, one per line as `line:col field: message | help`.
fn problems(text: &str) -> Vec<String> {
    let err = change_from_str("dir/change.yaml", text).expect_err("the file has problems");
    err.items
        .iter()
        .map(|d| {
            assert_eq!(d.file, "dir/change.yaml");
            format!(
                "{}:{} {}: {} | {}",
                d.pos.line,
                d.pos.column,
                d.field,
                d.message,
                d.help.as_deref().unwrap_or("")
            )
        })
        .collect()
}

fn assert_one(text: &str, expected_prefix: &str, help_contains: &str) {
    let p = problems(text);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(p[0].starts_with(expected_prefix), "{}", p[0]);
    assert!(
        p[0].split(" | ")
            .nth(1)
            .unwrap_or("")
            .contains(help_contains),
        "{}",
        p[0]
    );
}

#[test]
fn minimal_file_gets_documented_defaults() {
    let c = change_from_str("dir/change.yaml", &minimal()).unwrap();
    assert_eq!(c.version, 1);
    assert_eq!(c.name, "SfB 2015 CU 2024-07");
    assert_eq!(
        c.update.remote_dir.path,
        "C:\\ProgramData\\poolpatch\\updates"
    );
    assert_eq!(c.update.min_free_bytes, 4 << 30);
    let i = &c.update.installers[&Product::Sfb2015];
    assert_eq!(
        i.file,
        std::path::Path::new("dir/./updates/SkypeServerUpdateInstaller.exe")
    );
    assert_eq!(i.sha256, DIGEST);
    assert_eq!(i.version, "6.0.9319.690");
    assert!(c.scope.is_everything());
    assert_eq!(c.outage.threshold, Duration::from_secs(30 * 60));
    assert_eq!(c.outage.budget, Duration::from_secs(25 * 60));
    assert_eq!(c.outage.on_budget_exhausted, OnBudgetExhausted::Restore);
    assert_eq!(c.on_failure, OnFailure::HaltPool);
    assert_eq!(c.concurrency.pools, 1);
    assert_eq!(c.final_step, FinalStep::StartServices);
    assert!(c.estimates.defaults.is_empty());
    assert_eq!(c.timeouts.connect, Duration::from_secs(15));
    assert_eq!(c.step_timeout(StepKind::InstallUpdate), c.outage.budget);
}

#[test]
fn full_file_is_read() {
    let text = format!(
        "{}  min_free_space: 500MiB\nscope: {{ sites: [amsterdam], pools: [POOL01.ams.contoso.com], servers: [se01.tok.contoso.com] }}\noutage:\n  threshold: 28m\n  budget: 20m\n  on_budget_exhausted: finish\non_failure: halt-all\nconcurrency: {{ pools: 3 }}\nfinal_step: reboot\nestimates:\n  defaults: {{ install-update: 10m }}\n  pools: {{ pool01.ams.contoso.com: {{ install-update: 15m }} }}\n  servers: {{ be01.ams.contoso.com: {{ update-databases: 6m }} }}\ntimeouts:\n  connect: 20s\n  steps: {{ install-update: 1h 30m }}\n",
        minimal()
    );
    let c = change_from_str("change.yaml", &text).unwrap();
    assert_eq!(c.update.min_free_bytes, 500 << 20);
    assert_eq!(c.scope.sites[0].value, "amsterdam");
    assert_eq!(c.scope.pools[0].value.as_str(), "pool01.ams.contoso.com");
    assert_eq!(c.scope.pools[0].field, "scope.pools[0]");
    assert_eq!(c.outage.threshold, Duration::from_secs(28 * 60));
    assert_eq!(c.outage.on_budget_exhausted, OnBudgetExhausted::Finish);
    assert_eq!(c.on_failure, OnFailure::HaltAll);
    assert_eq!(c.concurrency.pools, 3);
    assert_eq!(c.final_step, FinalStep::Reboot);
    assert_eq!(
        c.estimates.defaults[&StepKind::InstallUpdate],
        Duration::from_secs(600)
    );
    let pool = c.estimates.pools.values().next().unwrap();
    assert_eq!(pool.field, "estimates.pools[\"pool01.ams.contoso.com\"]");
    assert_eq!(
        pool.steps[&StepKind::InstallUpdate],
        Duration::from_secs(900)
    );
    assert_eq!(
        c.step_timeout(StepKind::InstallUpdate),
        Duration::from_secs(5400)
    );
    assert_eq!(
        c.step_timeout(StepKind::StopW3svc),
        Duration::from_secs(1200)
    );
}

#[test]
fn every_problem_of_a_file_is_reported_in_one_pass() {
    let text = "version: 2\nname: \"\"\nupdate:\n  remote_dir: 'C:\\Temp;calc'\n  min_free_space: 4096\n  installers:\n    sfb2016: { file: ./x.exe, sha256: abc, version: 6.0 }\n  target_version: \"6.0.1.1\"\nscope: { sites: [], pools: [] }\noutage: { threshold: 45m, budget: soon, on_budget_exhausted: restor }\non_failur: halt-all\nconcurrency: { pools: 0 }\nfinal_step: restart\nestimates:\n  defaults: { install-updates: 12m }\ntimeouts: { connect: 0s }\n";
    let p = problems(text);
    let expected = [
        "1:10 version: this poolpatch reads change files of version 1, not 2 | write `version: 1`",
        "2:7 name: the change's name is empty |",
        "4:15 update.remote_dir: `;` is not allowed in a staging path",
        "5:19 update.min_free_space: `4096` has no unit | write a number and a unit, such as `500MiB` or `4GiB`",
        "7:5 update.installers.sfb2016: `sfb2016` is not a product | did you mean `sfb2015`?",
        "7:39 update.installers.sfb2016.sha256: a SHA-256 digest has 64 hexadecimal digits, this has 3 | copy the digest from `Get-FileHash",
        "7:53 update.installers.sfb2016.version: expected text, found a number | put the value in quotes",
        "8:19 update.target_version: the target version is given per installer",
        "9:8 scope: the scope names no site, pool or server | list `sites:`, `pools:` or `servers:`, or remove `scope:`",
        "10:22 outage.threshold: 45m is above the 30m after which users drop into resiliency mode |",
        "10:35 outage.budget: `soon` is not a duration",
        "10:62 outage.on_budget_exhausted: `restor` is not a valid value | did you mean `restore`?",
        "11:1 on_failur: unknown field `on_failur` | did you mean `on_failure`?",
        "12:23 concurrency.pools: 0 is out of range: expected a whole number from 1 to 1000 |",
        "13:13 final_step: `restart` is not a valid value | one of: start-services, reboot",
        "15:15 estimates.defaults.install-updates: `install-updates` is not a step kind | did you mean `install-update`?",
        "16:22 timeouts.connect: a duration of zero is not allowed here |",
    ];
    for (got, want) in p.iter().zip(expected) {
        assert!(got.starts_with(want), "got:  {got}\nwant: {want}");
    }
    assert_eq!(p.len(), expected.len(), "{p:#?}");
}

#[test]
fn budget_must_stay_below_threshold() {
    let text = format!("{}outage:\n  threshold: 20m\n", minimal());
    assert_one(
        &text,
        "8:3 outage.budget: the budget (25m) is not below the threshold (20m)",
        "set `budget:` below the threshold, e.g. 15m",
    );
    let text = format!("{}outage: {{ budget: 30m }}\n", minimal());
    assert_one(
        &text,
        "7:19 outage.budget: the budget (30m) is not below the threshold (30m)",
        "resiliency mode",
    );
}

#[test]
fn missing_required_fields_say_what_to_write() {
    let p = problems(
        "name: x\nupdate: { remote_dir: /srv/updates, installers: { sfb2015: { file: a.exe } } }\n",
    );
    let expected = [
        "1:1 version: missing field `version` | add `version:` with the format version, `1`",
        "2:60 update.installers.sfb2015.sha256: missing field `sha256` | add `sha256:` with the installer's SHA-256",
        "2:60 update.installers.sfb2015.version: missing field `version` | add `version:` with the version servers report once updated",
    ];
    assert_eq!(p.len(), expected.len(), "{p:#?}");
    for (got, want) in p.iter().zip(expected) {
        assert!(got.starts_with(want), "got:  {got}\nwant: {want}");
    }
}

#[test]
fn durations_without_unit_or_unparsable_get_examples() {
    let text = format!(
        "{}estimates:\n  defaults: {{ install-update: 12, stop-services: twelve minutes, reboot: [1] }}\n",
        minimal()
    );
    let p = problems(&text);
    assert_eq!(p.len(), 3, "{p:#?}");
    assert!(p[0].starts_with("8:31 estimates.defaults.install-update: `12` has no unit | write a number and a unit, such as `90s`, `25m` or `1h 30m`"), "{}", p[0]);
    assert!(
        p[1].starts_with(
            "8:50 estimates.defaults.stop-services: `twelve minutes` is not a duration"
        ),
        "{}",
        p[1]
    );
    assert!(
        p[2].starts_with("8:74 estimates.defaults.reboot: expected a duration, found a list"),
        "{}",
        p[2]
    );
}

#[test]
fn duplicate_and_bad_names_in_estimates() {
    let text = format!(
        "{}estimates:\n  pools:\n    pool01.ams.contoso.com: {{ install-update: 15m }}\n    POOL01.ams.contoso.com: {{ install-update: 16m }}\n  servers:\n    'be01;calc.contoso.com': {{ reboot: 5m }}\n",
        minimal()
    );
    let p = problems(&text);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(p[0].starts_with("10:5 estimates.pools[\"POOL01.ams.contoso.com\"]: `pool01.ams.contoso.com` is listed twice | merge"), "{}", p[0]);
    assert!(
        p[1].starts_with(
            "12:5 estimates.servers[\"be01;calc.contoso.com\"]: `;` is not allowed in an FQDN"
        ),
        "{}",
        p[1]
    );
}

#[test]
fn yaml_syntax_errors_and_unreadable_files_are_diagnostics() {
    let p = problems("version: 1\nname: [unclosed\n");
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(p[0].contains("not valid YAML"), "{}", p[0]);
    let err =
        poolpatch_plans::change::load_change(std::path::Path::new("/nonexistent/change.yaml"))
            .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/change.yaml:1:1: cannot read the file: no such file"),
        "{err}"
    );
}

#[test]
fn installer_entries_are_checked() {
    let text = "version: 1\nname: x\nupdate:\n  target_version: \"6.0.9319.690\"\n  remote_dir: /srv/updates\n  installers:\n    lync2013: { sha256: 12, version: \"5.0.8308.1182\" }\n    sfb2019: ./SkypeServerUpdateInstaller.exe\n";
    let expected = [
        "4:19 update.target_version: the target version is given per installer, not for the whole update | write `version: \"6.0.9319.690\"` in each entry of `update.installers`",
        "7:15 update.installers.lync2013.file: missing field `file`",
        "7:25 update.installers.lync2013.sha256: expected text, found a number",
        "8:14 update.installers.sfb2019: expected a mapping",
    ];
    let p = problems(text);
    assert_eq!(p.len(), expected.len(), "{p:#?}");
    for (got, want) in p.iter().zip(expected) {
        assert!(got.starts_with(want), "got:  {got}\nwant: {want}");
    }
}

fn example_estate() -> poolpatch_inventory::Inventory {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../inventory/examples/estate.yaml");
    let opts = poolpatch_inventory::LoadOptions {
        home: Some("/home/operator".into()),
        base_dir: None,
    };
    poolpatch_inventory::load_with(&path, &opts).unwrap_or_else(|d| panic!("{d}"))
}

/// Stage 2 problems of `text` against the example estate, as in [`problems`].
fn problems_against_estate(text: &str) -> Vec<String> {
    let change = change_from_str("dir/change.yaml", text).unwrap_or_else(|d| panic!("{d}"));
    let err = change
        .check_against(&example_estate())
        .expect_err("the file has problems");
    err.items
        .iter()
        .map(|d| {
            format!(
                "{}:{} {}: {} | {}",
                d.pos.line,
                d.pos.column,
                d.field,
                d.message,
                d.help.as_deref().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn names_must_exist_in_the_inventory() {
    let text = format!(
        "{}scope:\n  sites: [amsterdm]\n  pools: [pool01.ams.contoso.com, be01.ams.contoso.com, pool9.example.com]\n  servers: [fe01.ams.contoso.com, be01.tyo.contoso.co]\nestimates:\n  pools: {{ pool01.nyc.contoso.co: {{ reboot: 5m }} }}\n  servers: {{ pool02.ams.contoso.com: {{ reboot: 5m }} }}\n",
        minimal()
    );
    let p = problems_against_estate(&text);
    let expected = [
        "8:11 scope.sites[0]: there is no site `amsterdm` in the inventory | did you mean `amsterdam`?",
        "9:35 scope.pools[1]: there is no pool `be01.ams.contoso.com` in the inventory | `be01.ams.contoso.com` is a Back End or Standard Edition server: list it under `servers`",
        "9:57 scope.pools[2]: there is no pool `pool9.example.com` in the inventory | no pool of the inventory is named like this; check the spelling",
        "10:13 scope.servers[0]: there is no Back End or Standard Edition server `fe01.ams.contoso.com` in the inventory | `fe01.ams.contoso.com` is a Front End server: poolpatch patches back ends and Standard Edition servers, so name its pool",
        "10:35 scope.servers[1]: there is no Back End or Standard Edition server `be01.tyo.contoso.co` in the inventory | did you mean `be01.tyo.contoso.com`?",
        "12:12 estimates.pools[\"pool01.nyc.contoso.co\"]: there is no pool `pool01.nyc.contoso.co` in the inventory | did you mean `pool01.nyc.contoso.com`?",
        "13:14 estimates.servers[\"pool02.ams.contoso.com\"]: there is no Back End or Standard Edition server `pool02.ams.contoso.com` in the inventory | `pool02.ams.contoso.com` is a pool: list it under `pools` (estimates.pools)",
    ];
    for (got, want) in p.iter().zip(expected) {
        assert_eq!(got, want);
    }
    assert_eq!(p.len(), expected.len(), "{p:#?}");
}

#[test]
fn every_product_in_scope_needs_an_installer() {
    // The minimal file has an installer for sfb2015 only; the estate also runs sfb2019 and
    // lync2013.
    let p = problems_against_estate(&minimal());
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(p[0].starts_with("6:5 update.installers: no installer for lync2013 (Lync Server 2013), which pools in scope run: pool01.tyo.contoso.com, se01.tyo.contoso.com, se02.tyo.contoso.com | add `lync2013: { file: ./updates/LyncServerUpdateInstaller.exe"), "{}", p[0]);
    assert!(p[1].starts_with("6:5 update.installers: no installer for sfb2019 (Skype for Business Server 2019), which pools in scope run: pool02.ams.contoso.com, se01.ams.contoso.com | add `sfb2019:"), "{}", p[1]);
    // A scope without those products needs no installer for them.
    let text = format!("{}scope: {{ sites: [newyork] }}\n", minimal());
    let change = change_from_str("c.yaml", &text).unwrap();
    change
        .check_against(&example_estate())
        .unwrap_or_else(|d| panic!("{d}"));
}

#[test]
fn installer_files_are_checked_against_their_digests() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.exe"), b"test").unwrap();
    let text = format!(
        "version: 1\nname: x\nupdate:\n  remote_dir: /srv/u\n  installers:\n    sfb2015: {{ file: a.exe, sha256: {DIGEST}, version: \"6.0.1.1\" }}\n    sfb2019: {{ file: missing.exe, sha256: {DIGEST}, version: \"7.0.1.1\" }}\n    lync2013: {{ file: a.exe, sha256: \"{}\", version: \"5.0.1.1\" }}\n",
        "00".repeat(32)
    );
    let path = dir.path().join("change.yaml");
    std::fs::write(&path, text).unwrap();
    let change = poolpatch_plans::load_change(&path).unwrap_or_else(|d| panic!("{d}"));
    let err = change.verify_installers().unwrap_err();
    let got: Vec<String> = err
        .items
        .iter()
        .map(|d| format!("{}:{} {}: {}", d.pos.line, d.pos.column, d.field, d.message))
        .collect();
    assert_eq!(got.len(), 2, "{got:#?}");
    // sha256("test") is DIGEST: the sfb2015 entry is right.
    assert!(
        got[0].starts_with("7:5 update.installers.sfb2019.file: cannot read"),
        "{}",
        got[0]
    );
    assert!(
        got[1].starts_with("8:5 update.installers.lync2013.sha256: ")
            && got[1].contains(&format!(
                "has SHA-256 {DIGEST}, not the {}",
                "00".repeat(32)
            )),
        "{}",
        got[1]
    );
}

mod never_panics {
    use poolpatch_plans::change_from_str;
    use poolpatch_plans::units::{
        RemoteDir, parse_duration, parse_sha256, parse_size, parse_version,
    };
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn value_parsers_take_any_text(s in "\\PC*") {
            let _ = parse_duration(&s);
            let _ = parse_size(&s);
            let _ = parse_sha256(&s);
            let _ = parse_version(&s);
            if let Ok(d) = RemoteDir::parse(&s) {
                // What the grammar accepts can never close a PowerShell literal early or
                // start an expansion.
                let bad = ['\'', '"', '$', '`', ';', '&', '|', '\n', '\u{2019}'];
                prop_assert!(!d.path.contains(bad), "accepted {:?}", d.path);
            }
        }

        #[test]
        fn change_files_of_any_shape_give_diagnostics(
            keys in prop::collection::vec(prop::sample::select(vec!["version", "name", "update", "remote_dir", "installers", "sfb2015", "file", "sha256", "scope", "pools", "outage", "budget", "estimates", "defaults", "install-update", "timeouts", "steps", "concurrency"]), 0..12),
            values in prop::collection::vec("[a-z0-9:{}\\[\\], '\"-]{0,12}", 0..12),
            indents in prop::collection::vec(0usize..4, 0..12),
        ) {
            let text: String = keys
                .iter()
                .zip(values.iter().chain(std::iter::repeat(&String::new())))
                .zip(indents.iter().chain(std::iter::repeat(&0)))
                .map(|((k, v), i)| format!("{}{k}: {v}\n", "  ".repeat(*i)))
                .collect();
            match change_from_str("fuzz.yaml", &text) {
                Ok(_) => {}
                Err(d) => prop_assert!(!d.is_empty()),
            }
        }
    }
}
