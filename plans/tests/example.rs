//! The example change over the example estate: it validates, its installers match their
//! digests, and its plan (text, Markdown, JSON) is pinned by snapshots.

use std::path::Path;

use poolpatch_inventory::{Inventory, LoadOptions, load_with};
use poolpatch_plans::plan::{NotScheduledReason, PoolPlanStatus};
use poolpatch_plans::{Change, Plan, change_from_str, load_change, plan};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new(".."))
}

fn estate() -> Inventory {
    let opts = LoadOptions {
        home: Some("/home/operator".into()),
        base_dir: None,
    };
    load_with(&root().join("inventory/examples/estate.yaml"), &opts)
        .unwrap_or_else(|d| panic!("{d}"))
}

fn example_change() -> Change {
    load_change(&root().join("plans/examples/change.yaml")).unwrap_or_else(|d| panic!("{d}"))
}

#[test]
fn example_change_is_valid_for_the_example_estate() {
    let (inventory, change) = (estate(), example_change());
    change
        .check_against(&inventory)
        .unwrap_or_else(|d| panic!("{d}"));
    change.verify_installers().unwrap_or_else(|d| panic!("{d}"));
}

#[test]
fn example_plan_text() {
    let p = plan(&estate(), &example_change());
    assert!(p.to_text().is_ascii());
    insta::assert_snapshot!("example_text", p.to_text());
}

#[test]
fn example_plan_markdown() {
    insta::assert_snapshot!(
        "example_markdown",
        plan(&estate(), &example_change()).to_markdown()
    );
}

#[test]
fn example_plan_json_round_trips() {
    let p = plan(&estate(), &example_change());
    let json = p.to_json();
    insta::assert_snapshot!("example_json", json);
    assert_eq!(Plan::from_json(&json).unwrap(), p);
    let other = json.replacen("poolpatch.plan/v1", "poolpatch.plan/v9", 1);
    assert_eq!(
        Plan::from_json(&other).unwrap_err().to_string(),
        "this poolpatch reads plans of schema `poolpatch.plan/v1`, not `poolpatch.plan/v9`"
    );
}

/// A canary over two sites with a tighter budget: one server over budget, its pool's
/// dependants held back, the rest out of scope.
fn canary() -> Change {
    let text = std::fs::read_to_string(root().join("plans/examples/change.yaml")).unwrap();
    let text = text
        .replace("# scope: { pools: [se01.ams.contoso.com] }", "scope: { sites: [amsterdam], pools: [pool01.nyc.contoso.com] }")
        .replace("budget: 25m ", "budget: 23m ")
        .replace("    be01.nyc.contoso.com: { update-databases: 5m }", "    be01.nyc.contoso.com: { update-databases: 5m }\n    be02.ams.contoso.com: { install-update: 14m }");
    let name = root()
        .join("plans/examples/canary.yaml")
        .display()
        .to_string();
    change_from_str(&name, &text).unwrap_or_else(|d| panic!("{d}"))
}

#[test]
fn canary_plan_explains_what_is_not_scheduled() {
    let inventory = estate();
    let change = canary();
    change
        .check_against(&inventory)
        .unwrap_or_else(|d| panic!("{d}"));
    let p = plan(&inventory, &change);
    let reasons: Vec<(&str, NotScheduledReason)> = p
        .not_scheduled()
        .map(|s| (s.fqdn.as_str(), s.not_scheduled.as_ref().unwrap().reason))
        .collect();
    assert_eq!(
        reasons,
        [
            (
                "be01.ams.contoso.com",
                NotScheduledReason::MirrorSideNotScheduled
            ),
            ("be02.ams.contoso.com", NotScheduledReason::OverBudget),
            ("be03.ams.contoso.com", NotScheduledReason::WaitsForPool),
            ("be01.nyc.contoso.com", NotScheduledReason::OverBudget),
        ]
    );
    let be02 = p
        .servers
        .iter()
        .find(|s| s.fqdn == "be02.ams.contoso.com")
        .unwrap();
    assert_eq!(
        be02.not_scheduled.as_ref().unwrap().fix.as_deref(),
        Some(
            "if install-update really takes less, lower its estimate (14m, from estimates.servers[\"be02.ams.contoso.com\"]) below 13m; or raise `outage.budget` above 24m (it must stay below the 30m threshold)"
        )
    );
    assert_eq!(p.totals.servers_out_of_scope, 5);
    assert_eq!(p.pools[0].status, PoolPlanStatus::NotScheduled);
    insta::assert_snapshot!("canary_text", p.to_text());
}
