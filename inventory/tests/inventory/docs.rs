//! docs/usage/inventory.md stays true: its examples load (or fail) as it says.

use crate::helpers::{example_text, load};

fn doc() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/usage/inventory.md");
    std::fs::read_to_string(path).expect("docs/usage/inventory.md exists")
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
    let text = block(&doc(), "## A small example", "yaml");
    let inv = load(&text).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(inv.pools.len(), 2);
}

#[test]
fn the_five_mistakes_print_as_shown() {
    let doc = doc();
    let text = block(&doc, "This file has five mistakes", "yaml");
    let shown = block(&doc, "prints all five", "text");
    let d = poolpatch_inventory::from_str("estate.yaml", &text).expect_err("five mistakes");
    assert_eq!(d.render(&|_| Some(text.clone())) + "\n", shown);
}

#[test]
fn the_full_example_is_the_example_file() {
    assert_eq!(block(&doc(), "## A full example", "yaml"), example_text());
}

#[test]
fn the_mermaid_drawing_is_current() {
    let shown = block(&doc(), "the Mermaid output draws as", "mermaid");
    let snapshot = include_str!("snapshots/inventory__graph__mermaid_drawing.snap");
    let current = snapshot
        .split_once("flowchart LR\n")
        .map(|(_, rest)| rest)
        .expect("a flowchart");
    assert_eq!(shown, format!("flowchart LR\n{current}"));
}
