//! The rollout fields of the change file (`stages`, `failure_limit`, `blackouts`): what they
//! read to, and every rule with a bad file and the message an operator sees, on its own and
//! against the example estate.

use std::time::Duration;

use poolpatch_plans::change::{FailureLimit, change_from_str};

const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// A change with installers for every product of the example estate, then `extra`.
fn change(extra: &str) -> String {
    format!(
        "version: 1\nname: rollout\nupdate:\n  remote_dir: 'C:\\ProgramData\\poolpatch'\n  installers:\n    lync2013: {{ file: l.exe, sha256: {DIGEST}, version: \"5.0.8308.1182\" }}\n    sfb2015: {{ file: s.exe, sha256: {DIGEST}, version: \"6.0.9319.690\" }}\n    sfb2019: {{ file: t.exe, sha256: {DIGEST}, version: \"7.0.2046.530\" }}\n{extra}"
    )
}

fn format(d: &poolpatch_inventory::Diagnostic) -> String {
    format!(
        "{}:{} {}: {} | {}",
        d.pos.line,
        d.pos.column,
        d.field,
        d.message,
        d.help.as_deref().unwrap_or("")
    )
}

fn problems(extra: &str) -> Vec<String> {
    change_from_str("change.yaml", &change(extra))
        .expect_err("the file has problems")
        .items
        .iter()
        .map(format)
        .collect()
}

fn estate() -> poolpatch_inventory::Inventory {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../inventory/examples/estate.yaml");
    let opts = poolpatch_inventory::LoadOptions {
        home: Some("/home/operator".into()),
        base_dir: None,
    };
    poolpatch_inventory::load_with(&path, &opts).unwrap_or_else(|d| panic!("{d}"))
}

fn problems_against_estate(extra: &str) -> Vec<String> {
    let c = change_from_str("change.yaml", &change(extra)).unwrap_or_else(|d| panic!("{d}"));
    c.check_against(&estate())
        .expect_err("the file has problems")
        .items
        .iter()
        .map(format)
        .collect()
}

#[track_caller]
fn assert_lines(got: &[String], want: &[&str]) {
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (g, w) in got.iter().zip(want) {
        assert!(g.starts_with(w), "got:  {g}\nwant: {w}");
    }
}

#[test]
fn stages_failure_limit_and_blackouts_are_read() {
    let text = change(
        "stages:\n  - name: canary\n    scope: { pools: [se01.ams.contoso.com] }\n    bake: 2h\n    health: { command: \"check-lync --pool se01.ams.contoso.com\", timeout: 2m }\n  - { name: amsterdam, scope: { sites: [amsterdam] }, bake: 1d }\n  - { name: rest }\nfailure_limit: 10%\nblackouts:\n  - { from: 2026-12-20, to: 2027-01-03, reason: \"year-end freeze\" }\n  - { from: \"2026-11-26\", to: \"2026-11-27\", sites: [newyork] }\n",
    );
    let c = change_from_str("change.yaml", &text).unwrap_or_else(|d| panic!("{d}"));
    let names: Vec<&str> = c.stages.iter().map(|s| s.name.value.as_str()).collect();
    assert_eq!(names, ["canary", "amsterdam", "rest"]);
    assert_eq!(c.stages[0].bake, Duration::from_secs(2 * 3600));
    assert_eq!(c.stages[1].bake, Duration::from_secs(24 * 3600));
    assert_eq!(c.stages[2].bake, Duration::ZERO);
    assert!(c.stages[2].scope.is_none());
    let h = c.stages[0].health.as_ref().unwrap();
    assert_eq!(h.command, "check-lync --pool se01.ams.contoso.com");
    assert_eq!(h.timeout, Duration::from_secs(120));
    assert_eq!(c.failure_limit, Some(FailureLimit::Percent(10)));
    assert_eq!(c.failure_limit_servers(10), Some(1));
    assert_eq!(c.failure_limit_servers(11), Some(2));
    assert_eq!(c.blackouts.len(), 2);
    assert_eq!(c.blackouts[0].dates.from.to_string(), "2026-12-20");
    assert_eq!(c.blackouts[0].reason.as_deref(), Some("year-end freeze"));
    assert!(c.blackouts[0].applies_to("tokyo"));
    assert!(c.blackouts[1].applies_to("newyork") && !c.blackouts[1].applies_to("tokyo"));
    c.check_against(&estate()).unwrap_or_else(|d| panic!("{d}"));

    // A server belongs to the first stage that names it.
    let inv = estate();
    let stage = |fqdn: &str| {
        let f = poolpatch_inventory::Fqdn::parse(fqdn).unwrap();
        let s = inv.server(&f).unwrap();
        c.stage_of(inv.pool(&s.pool).unwrap(), s)
    };
    assert_eq!(stage("se01.ams.contoso.com"), Some(0));
    assert_eq!(stage("be01.ams.contoso.com"), Some(1));
    assert_eq!(stage("be01.tyo.contoso.com"), Some(2));
}

#[test]
fn without_stages_no_failure_limit_applies_unless_written() {
    let c = change_from_str("change.yaml", &change("")).unwrap();
    assert_eq!(c.failure_limit_servers(10), None);
    let c = change_from_str("change.yaml", &change("failure_limit: 3\n")).unwrap();
    assert_eq!(c.failure_limit_servers(10), Some(3));
    let c = change_from_str(
        "change.yaml",
        &change("stages: [{ name: canary, scope: { sites: [tokyo] } }, { name: rest }]\n"),
    )
    .unwrap();
    assert_eq!(
        c.failure_limit_servers(10),
        Some(1),
        "a canary stops at its first failure"
    );
    assert_eq!(FailureLimit::Percent(100).servers(0), 1);
}

#[test]
fn stage_rules_on_their_own() {
    let p = problems(
        "stages:\n  - { name: canary, scope: {}, bake: 8d }\n  - { name: \"can ary\" }\n  - { name: canary, scope: { sites: [tokyo] }, bak: 1h }\n  - { name: c2, scope: { sites: [newyork] }, health: { command: \"\" } }\n  - { name: rest }\n",
    );
    assert_lines(
        &p,
        &[
            "10:28 stages[0].scope: the scope names no site, pool or server | list `sites:`, `pools:` or `servers:`, or remove `scope:` to make this the last stage, which takes the rest",
            "10:38 stages[0].bake: `8d` is longer than 168h | write how long to watch the stage",
            "11:13 stages[1].name: ` ` is not allowed in a stage name",
            "12:48 stages[2].bak: unknown field `bak` | did you mean `bake`?",
            "13:65 stages[3].health.command: the health command is empty",
        ],
    );
    assert_lines(
        &problems(
            "stages:\n  - { name: canary, scope: { sites: [tokyo] } }\n  - { name: canary, scope: { sites: [newyork] } }\n  - { name: rest }\n",
        ),
        &[
            "11:13 stages[1].name: the stage name `canary` is already used at line 10, column 13 (stages[0].name) | give each stage its own name",
        ],
    );
    assert_lines(
        &problems("stages: []\n"),
        &["9:9 stages: the list of stages is empty"],
    );
    assert_lines(
        &problems("stages:\n  - { name: rest }\n  - { name: canary, scope: { sites: [tokyo] } }\n"),
        &[
            "10:13 stages[0].name: stage `rest` has no `scope`, but only the last stage may take the rest",
        ],
    );
}

#[test]
fn failure_limit_and_blackout_rules() {
    for (text, want) in [
        (
            "failure_limit: 0\n",
            "9:16 failure_limit: 0 is out of range",
        ),
        (
            "failure_limit: 150%\n",
            "9:16 failure_limit: `150%` is not a failure limit",
        ),
        (
            "failure_limit: ten\n",
            "9:16 failure_limit: `ten` is not a failure limit",
        ),
        (
            "failure_limit: 0.5\n",
            "9:16 failure_limit: expected a number or a percentage, found a number",
        ),
        (
            "blackouts: [{ from: 2027-01-03, to: 2026-12-20 }]\n",
            "9:37 blackouts[0].to: the freeze ends (2026-12-20) before it starts (2027-01-03)",
        ),
        (
            "blackouts: [{ from: 20261220, to: 2026-12-20 }]\n",
            "9:21 blackouts[0].from: expected a date, found a number",
        ),
        (
            "blackouts: [{ from: 2026-12-32, to: 2027-01-03 }]\n",
            "9:21 blackouts[0].from: `2026-12-32` is not a date",
        ),
        (
            "blackouts: [{ from: 2026-12-20T10:00, to: 2027-01-03 }]\n",
            "9:21 blackouts[0].from: `2026-12-20T10:00` is not a date",
        ),
        (
            "blackouts: [{ to: 2027-01-03 }]\n",
            "9:13 blackouts[0].from: missing field `from`",
        ),
        (
            "blackouts: [{ from: 2026-12-20, to: 2027-01-03, reasn: x }]\n",
            "9:49 blackouts[0].reasn: unknown field `reasn` | did you mean `reason`?",
        ),
    ] {
        assert_lines(&problems(text), &[want]);
    }
}

#[test]
fn stages_against_the_inventory() {
    // Names must exist, in stage scopes and blackouts.
    assert_lines(
        &problems_against_estate(
            "stages:\n  - { name: canary, scope: { pools: [se01.ams.contoso.co] } }\n  - { name: rest }\nblackouts: [{ from: 2026-12-20, to: 2027-01-03, sites: [tokio] }]\n",
        ),
        &[
            "10:38 stages[0].scope.pools[0]: there is no pool `se01.ams.contoso.co` in the inventory | did you mean `se01.ams.contoso.com`?",
            "12:57 blackouts[0].sites[0]: there is no site `tokio` in the inventory | did you mean `tokyo`?",
        ],
    );
    // A later stage that names only servers an earlier stage took; a stage that gets none; a
    // last stage with nothing left.
    assert_lines(
        &problems_against_estate(
            "stages:\n  - { name: amsterdam, scope: { sites: [amsterdam] } }\n  - { name: canary, scope: { pools: [se01.ams.contoso.com] } }\n  - { name: others, scope: { sites: [newyork, tokyo] } }\n  - { name: rest }\n",
        ),
        &[
            "11:38 stages[1].scope.pools[0]: every server `se01.ams.contoso.com` names is already in stage `amsterdam` | a server belongs to the first stage that names it",
            "13:13 stages[3].name: the last stage `rest` takes the servers no earlier stage names, but none is left | remove this stage",
        ],
    );
    // Servers in no stage; an entry outside the change's scope.
    assert_lines(
        &problems_against_estate(
            "scope: { sites: [amsterdam, tokyo] }\nstages:\n  - { name: canary, scope: { sites: [newyork, amsterdam] } }\n",
        ),
        &[
            "10:1 stages: 3 servers in scope are in no stage: be01.tyo.contoso.com, se01.tyo.contoso.com, se02.tyo.contoso.com | add a last stage without `scope`",
            "11:38 stages[0].scope.sites[0]: `newyork` names no server in the change's scope",
        ],
    );
    // A stage waiting for a later one: `after:` and the mirror side first.
    assert_lines(
        &problems_against_estate(
            "stages:\n  - { name: early, scope: { pools: [pool02.ams.contoso.com], servers: [be01.ams.contoso.com] } }\n  - { name: rest }\n",
        ),
        &[
            "10:13 stages[0].name: be01.ams.contoso.com holds the principal and is in stage `early`, but its mirror side be02.ams.contoso.com is in the later stage `rest`",
            "10:13 stages[0].name: pool pool02.ams.contoso.com (stage `early`) comes `after:` pool pool01.ams.contoso.com, whose server be02.ams.contoso.com is in the later stage `rest`: it could never start",
        ],
    );
}
