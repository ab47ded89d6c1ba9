//! The spanned YAML tree: positions and hostile inputs.

use poolpatch_inventory::yaml::{Value, parse};

#[test]
fn every_node_knows_its_line_and_column() {
    let doc = "sites:\n  - name: ams\n    time_zone: Europe/Amsterdam\nport: 22\nempty:\n";
    let root = parse("f.yaml", doc).unwrap();
    let Value::Map(entries) = &root.value else {
        panic!("root is a map")
    };
    assert_eq!(entries[0].0.name, "sites");
    assert_eq!((entries[0].0.pos.line, entries[0].0.pos.column), (1, 1));
    let Value::Seq(sites) = &entries[0].1.value else {
        panic!("sites is a list")
    };
    let Value::Map(site) = &sites[0].value else {
        panic!("site is a map")
    };
    assert_eq!(site[1].0.name, "time_zone");
    assert_eq!((site[1].1.pos.line, site[1].1.pos.column), (3, 16));
    assert_eq!(entries[1].1.value, Value::Int(22));
    assert_eq!(entries[2].1.value, Value::Null);
}

/// Refused, not expanded: the parser's alias budget stops it (how fast is a benchmark's
/// question, not a test's).
#[test]
fn alias_bomb_is_refused() {
    let mut doc = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    let mut prev = 'a';
    for c in 'b'..='l' {
        doc.push_str(&format!("{c}: &{c} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        prev = c;
    }
    let err = parse("bomb.yaml", &doc).unwrap_err();
    assert!(err.to_string().starts_with("bomb.yaml:"), "{err}");
}

#[test]
fn deep_nesting_binary_and_empty_files_are_errors_not_panics() {
    let deep = "[".repeat(100_000);
    assert!(parse("deep.yaml", &deep).is_err());
    let deep_block: String = (0..5000)
        .map(|i| format!("{}k:\n", " ".repeat(i)))
        .collect();
    assert!(parse("deep2.yaml", &deep_block).is_err());
    let binary = String::from_utf8_lossy(&[0u8, 159, 146, 150, 255, 0, 1, 2]).into_owned();
    let _ = parse("bin.yaml", &binary);
    assert!(
        parse("empty.yaml", "  \n")
            .unwrap_err()
            .message
            .contains("empty")
    );
    let huge = "a".repeat(poolpatch_inventory::yaml::MAX_FILE_BYTES + 1);
    assert!(
        parse("huge.yaml", &huge)
            .unwrap_err()
            .message
            .contains("bytes")
    );
}
