//! Shared helpers: load a text with fixed options, find a diagnostic.

use std::path::PathBuf;

use poolpatch_inventory::{Diagnostic, Diagnostics, Inventory, LoadOptions, from_str_with};

/// The home directory tests expand `~` to.
pub const HOME: &str = "/home/operator";

/// Options with a fixed HOME and no base directory.
pub fn opts() -> LoadOptions {
    LoadOptions {
        home: Some(PathBuf::from(HOME)),
        base_dir: None,
    }
}

/// Loads `text` as `inv.yaml`.
pub fn load(text: &str) -> Result<Inventory, Diagnostics> {
    from_str_with("inv.yaml", text, &opts())
}

/// The path of the example estate.
pub fn example_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/estate.yaml")
}

/// The text of the example estate.
pub fn example_text() -> String {
    std::fs::read_to_string(example_path()).expect("the example file is part of the crate")
}

/// Removes the common leading indentation of `s` (and a leading newline), so that test
/// documents can be indented with the code.
pub fn dedent(s: &str) -> String {
    let s = s.strip_prefix('\n').unwrap_or(s);
    let indent = s
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    s.lines()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The problems of `text`, which must not load.
pub fn problems(text: &str) -> Vec<Diagnostic> {
    match load(&dedent(text)) {
        Ok(_) => panic!(
            "expected problems, but the inventory loaded:\n{}",
            dedent(text)
        ),
        Err(d) => d.items,
    }
}

/// Asserts that `text` has exactly one problem, at `line:column` in `field`, whose message
/// contains `message` and whose help contains `help`.
#[track_caller]
pub fn expect_one(
    text: &str,
    (line, column): (usize, usize),
    field: &str,
    message: &str,
    help: &str,
) {
    let all = problems(text);
    assert_eq!(
        all.len(),
        1,
        "expected one problem, got:\n{}",
        Diagnostics { items: all.clone() }
    );
    expect(&all[0], (line, column), field, message, help);
}

/// Asserts that `text` has a problem in `field` as described (others may exist).
#[track_caller]
pub fn expect_among(
    text: &str,
    (line, column): (usize, usize),
    field: &str,
    message: &str,
    help: &str,
) {
    let all = problems(text);
    let Some(d) = all
        .iter()
        .find(|d| d.field == field && d.message.contains(message))
    else {
        panic!(
            "no problem in `{field}` containing {message:?}; got:\n{}",
            Diagnostics { items: all }
        );
    };
    expect(d, (line, column), field, message, help);
}

#[track_caller]
fn expect(d: &Diagnostic, (line, column): (usize, usize), field: &str, message: &str, help: &str) {
    assert_eq!(d.file, "inv.yaml", "{d}");
    assert_eq!(
        (d.pos.line, d.pos.column),
        (line, column),
        "position of: {d}"
    );
    assert_eq!(d.field, field, "field of: {d}");
    assert!(
        d.message.contains(message),
        "message of: {d}\nexpected to contain: {message}"
    );
    let h = d.help.as_deref().unwrap_or("");
    assert!(
        h.contains(help),
        "help of: {d}\n  help: {h}\nexpected to contain: {help}"
    );
}
