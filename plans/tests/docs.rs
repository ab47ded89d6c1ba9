//! docs/usage/change.md and plan-json.md stay true: their examples load, fail, or match
//! the plan as they say.

use std::path::Path;

use poolpatch_plans::change_from_str;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new(".."))
}

fn doc(name: &str) -> String {
    std::fs::read_to_string(root().join("docs/usage").join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The first fenced block of `lang` after `marker`.
fn block(doc: &str, marker: &str, lang: &str) -> String {
    let from = doc
        .find(marker)
        .unwrap_or_else(|| panic!("the doc has {marker:?}"));
    let fence = format!("```{lang}\n");
    let start = doc[from..].find(&fence).expect("a block follows") + from + fence.len();
    let end = doc[start..].find("```\n").expect("the block ends") + start;
    doc[start..end].to_string()
}

#[test]
fn the_small_example_loads() {
    let text = block(&doc("change.md"), "## A small example", "yaml");
    let change = change_from_str("change.yaml", &text).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(change.update.installers.len(), 1);
}

#[test]
fn the_seven_mistakes_print_as_shown() {
    let doc = doc("change.md");
    let text = block(&doc, "This file has seven mistakes", "yaml");
    let shown = block(&doc, "poolpatch prints all seven", "text");
    let d = change_from_str("change.yaml", &text).expect_err("seven mistakes");
    assert_eq!(d.render(&|_| Some(text.clone())) + "\n", shown);
}

#[test]
fn the_full_example_is_the_example_file() {
    let file = std::fs::read_to_string(root().join("plans/examples/change.yaml")).unwrap();
    assert_eq!(block(&doc("change.md"), "## A full example", "yaml"), file);
}

#[test]
fn the_built_in_estimates_table_is_current() {
    let doc = doc("change.md");
    let from = doc.find("### Built-in estimates").unwrap();
    for (kind, d) in poolpatch_plans::estimates::DEFAULT_ESTIMATES {
        let row = format!(
            "| `{}` | {} |",
            kind.name(),
            poolpatch_plans::units::format_duration(d)
        );
        assert!(doc[from..].contains(&row), "missing row {row}");
    }
}

#[test]
fn the_json_example_is_the_example_plan() {
    let shown: serde_json::Value = {
        let text = block(&doc("plan-json.md"), "## Example", "json");
        serde_json::from_str(&text).unwrap()
    };
    let snap =
        std::fs::read_to_string(root().join("plans/tests/snapshots/example__example_json.snap"))
            .unwrap();
    let json = snap.splitn(3, "---\n").nth(2).unwrap();
    let plan: serde_json::Value = serde_json::from_str(json).unwrap();
    let server = plan["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["fqdn"] == shown["fqdn"])
        .unwrap();
    for (k, v) in shown.as_object().unwrap() {
        if k != "steps" {
            assert_eq!(&server[k], v, "field {k}");
        }
    }
    assert_eq!(server["steps"]["outage"][5], shown["steps"]["outage"][1]);
    assert_eq!(
        server["steps"]["recovery"][0],
        shown["steps"]["recovery"][0]
    );
}

#[test]
fn windows_md_examples_hold() {
    let windows = doc("windows.md");
    // The stages block is a valid part of a change file.
    let stages = block(&windows, "A canary rollout, in the change file", "yaml");
    let small = block(&doc("change.md"), "## A small example", "yaml");
    let change = change_from_str("change.yaml", &format!("{small}{stages}"))
        .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(change.stages.len(), 3);
    // So is the blackouts block.
    let blackouts = block(&windows, "## Blackouts", "yaml");
    let change = change_from_str("change.yaml", &format!("{small}{blackouts}"))
        .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(change.blackouts.len(), 2);
    // The window line shown is the plan's.
    let shown = block(&windows, "with the rules it comes from", "text");
    let snap = std::fs::read_to_string(
        root().join("plans/tests/snapshots/windows_plan__windows_example_text.snap"),
    )
    .unwrap();
    assert!(snap.contains(&shown), "not in the snapshot:\n{shown}");
}

#[test]
fn change_md_rollout_examples_load() {
    let doc = doc("change.md");
    let small = block(&doc, "## A small example", "yaml");
    for marker in ["### `stages`", "### `blackouts`"] {
        let part = block(&doc, marker, "yaml");
        change_from_str("change.yaml", &format!("{small}{part}"))
            .unwrap_or_else(|d| panic!("{marker}: {d}"));
    }
}

#[test]
fn the_json_opening_is_the_windows_example_s() {
    let shown: serde_json::Value =
        serde_json::from_str(&block(&doc("plan-json.md"), "### An opening", "json")).unwrap();
    let opts = poolpatch_inventory::LoadOptions {
        home: Some("/home/operator".into()),
        base_dir: None,
    };
    let inv = poolpatch_inventory::load_with(
        &root().join("inventory/examples/estate-windows.yaml"),
        &opts,
    )
    .unwrap();
    let change =
        poolpatch_plans::load_change(&root().join("plans/examples/change-canary.yaml")).unwrap();
    let now = "2026-11-28T21:00:00Z".parse().unwrap();
    let p = poolpatch_plans::plan_with(
        &poolpatch_plans::PlanInput::new(&inv, &change).starting_at(now),
    );
    let nyc = p
        .servers
        .iter()
        .find(|s| s.fqdn == "be01.nyc.contoso.com")
        .unwrap();
    assert_eq!(
        serde_json::to_value(&nyc.maintenance_window).unwrap(),
        shown
    );
}
