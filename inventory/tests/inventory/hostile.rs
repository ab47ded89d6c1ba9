//! Hostile and mangled inputs: never a panic, always a diagnostic inside the file.

use proptest::prelude::*;

use crate::helpers::{example_text, load};

/// Checks that loading `text` ends without a panic, and that every diagnostic points at a
/// line of the file (or the line after its end) and renders.
fn check(text: &str) {
    if let Err(d) = load(text) {
        assert!(!d.is_empty());
        let lines = text.lines().count().max(1) + 1;
        for item in &d.items {
            assert_eq!(item.file, "inv.yaml");
            assert!(
                item.pos.line >= 1 && item.pos.line <= lines,
                "{item} (of {lines} lines)"
            );
            assert!(item.pos.column >= 1, "{item}");
        }
        let _ = d.render(&|_| Some(text.to_string()));
    }
}

/// Characters that mean something to YAML, to shells, or to our grammar.
const SPICY: &[char] = &[
    ':', '-', ' ', '\n', '\t', '[', ']', '{', '}', '"', '\'', '&', '*', '!', '|', '>', '#', '%',
    '@', '`', '~', '\\', ';', '$', '.', '0', '\u{0}', '\u{feff}', 'é', '→',
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check(&text);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn yaml_shaped_noise_never_panics(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("version: 1\n".to_string()),
                Just("pools:\n  - ".to_string()),
                Just("sites:\n  - ".to_string()),
                Just("fqdn: a.b\n".to_string()),
                Just("back_ends: [".to_string()),
                Just("mirror: {role: principal, partner: a.b}".to_string()),
                Just("after: [a.b, a.b]\n".to_string()),
                Just("&x [*x]".to_string()),
                "[a-z_]{1,12}: [a-z0-9.]{0,12}\n",
            ],
            0..40,
        )
    ) {
        check(&parts.concat());
    }

    #[test]
    fn mutated_example_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0..5u8, prop::sample::select(SPICY)), 1..6)
    ) {
        let mut text: Vec<char> = example_text().chars().collect();
        for (at, op, c) in edits {
            if text.is_empty() {
                break;
            }
            let i = at.index(text.len());
            match op {
                0 => { text.remove(i); }
                1 => text.insert(i, c),
                2 => text[i] = c,
                3 => text.truncate(i),
                _ => {
                    // Duplicate the line around i.
                    let s: String = text.iter().collect();
                    let start = s[..s.char_indices().nth(i).map_or(s.len(), |(b, _)| b)]
                        .rfind('\n')
                        .map_or(0, |b| b + 1);
                    let end = s[start..].find('\n').map_or(s.len(), |b| start + b + 1);
                    let line = s[start..end].to_string();
                    let mut out = s.clone();
                    out.insert_str(start, &line);
                    text = out.chars().collect();
                }
            }
        }
        check(&text.into_iter().collect::<String>());
    }

    #[test]
    fn dropping_any_line_of_the_example_never_panics(at in any::<prop::sample::Index>()) {
        let text = example_text();
        let lines: Vec<&str> = text.lines().collect();
        let i = at.index(lines.len());
        let kept: Vec<&str> = lines.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, l)| *l).collect();
        check(&kept.join("\n"));
    }
}

#[test]
fn many_bad_time_zones_are_each_reported() {
    let mut text = String::from("version: 1\nsites:\n");
    for i in 0..5000 {
        text.push_str(&format!(
            "  - {{ name: s{i}, time_zone: Europe/Amsterdm }}\n"
        ));
    }
    text.push_str("pools: []\n");
    // Every one is reported (the speed of this is the scale benchmark's to measure).
    let d = load(&text).expect_err("every time zone is wrong");
    assert_eq!(d.len(), 5001, "each time zone, and no pools");
}

#[test]
fn many_bad_references_are_each_reported() {
    // Thousands of misspelt references: "did you mean" must not make this quadratic.
    let mut text = String::from(
        "version: 1\ndefaults: { ssh: { user: u, agent: true } }\nsites: [{ name: s, time_zone: UTC }]\npools:\n",
    );
    for i in 0..3000 {
        text.push_str(&format!(
            "  - {{ fqdn: se{i}.contoso.com, site: x{i}, edition: standard, product: sfb2019, after: [sf{i}.contoso.com], server: {{}} }}\n"
        ));
    }
    let d = load(&text).expect_err("every pool is wrong");
    assert_eq!(d.len(), 6000);
}
