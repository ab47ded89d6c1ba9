//! Renderers of a [`Plan`](crate::plan::Plan): terminal text ([`Plan::to_text`]), Markdown
//! for a change request ([`Plan::to_markdown`]); JSON is [`Plan::to_json`].
//!
//! [`Plan::to_text`]: crate::plan::Plan::to_text
//! [`Plan::to_markdown`]: crate::plan::Plan::to_markdown
//! [`Plan::to_json`]: crate::plan::Plan::to_json

mod markdown;
mod text;
mod timing;

use std::time::Duration;

use crate::plan::{OutagePrediction, Verdict};
use crate::units::format_duration;

/// `s` with every character outside printable ASCII written as `\u{..}`, so that terminal
/// output stays aligned and no control sequence from an input file reaches the terminal.
pub(crate) fn ascii_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == ' ' || c.is_ascii_graphic() {
            out.push(c);
        } else {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        }
    }
    out
}

/// Rows as an aligned table: columns separated by two spaces, every line indented by
/// `indent`; columns listed in `right` are right-aligned. Cells are made ASCII-safe.
pub(crate) fn table(
    indent: &str,
    header: &[&str],
    rows: &[Vec<String>],
    right: &[usize],
) -> String {
    let cells: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| h.to_string()).collect())
        .chain(
            rows.iter()
                .map(|r| r.iter().map(|c| ascii_safe(c)).collect()),
        )
        .collect();
    let cols = header.len();
    let mut widths = vec![0; cols];
    for row in &cells {
        for (i, c) in row.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(c.len());
        }
    }
    let mut out = String::new();
    for row in &cells {
        let mut line = String::from(indent);
        for (i, w) in widths.iter().enumerate() {
            let c = row.get(i).map_or("", String::as_str);
            if i > 0 {
                line.push_str("  ");
            }
            if right.contains(&i) {
                line.push_str(&format!("{c:>w$}"));
            } else if i + 1 == cols {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}"));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `text` wrapped at `width` columns, the first line after `first`, the others after
/// `rest` (both prefixes count towards the width). ASCII-safe.
pub(crate) fn wrap(text: &str, width: usize, first: &str, rest: &str) -> String {
    let mut out = String::new();
    let mut line = String::from(first);
    let mut empty = true;
    for word in ascii_safe(text).split_whitespace() {
        if !empty && line.len() + 1 + word.len() > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(rest);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

/// `budget - predicted`, signed, as `3m` or `-2m 30s`.
pub(crate) fn margin(o: &OutagePrediction) -> String {
    if o.margin_secs >= 0 {
        format_duration(Duration::from_secs(o.margin_secs.unsigned_abs()))
    } else {
        format!(
            "-{}",
            format_duration(Duration::from_secs(o.margin_secs.unsigned_abs()))
        )
    }
}

/// The verdict in a sentence: `22m predicted: fits, 3m below the 25m budget (threshold 30m)`.
pub(crate) fn verdict_sentence(o: &OutagePrediction) -> String {
    let p = format_duration(o.predicted);
    let b = format_duration(o.budget);
    let t = format_duration(o.threshold);
    let mut s = match o.verdict {
        Verdict::Fits => format!(
            "{p} predicted: fits, {} below the {b} budget (threshold {t})",
            margin(o)
        ),
        Verdict::OverBudget => format!(
            "{p} predicted: OVER BUDGET by {} (budget {b}, threshold {t})",
            format_duration(o.predicted.saturating_sub(o.budget))
        ),
    };
    if let Some(r) = o.if_reboot_requested {
        s.push_str(&format!(
            "; {} if the installer asks for a reboot",
            format_duration(r)
        ));
        if r >= o.threshold {
            s.push_str(" (reaches the threshold)");
        } else if r >= o.budget {
            s.push_str(" (reaches the budget)");
        }
    }
    s.push_str(&format!(
        "; restore by {} into the outage to be back within the budget",
        format_duration(o.restore_by)
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_stay_ascii() {
        let t = table(
            "  ",
            &["A", "BB", "C"],
            &[
                vec!["xxx".into(), "1".into(), "caf\u{e9}\u{1b}[31m".into()],
                vec!["y".into(), "22".into(), "z".into()],
            ],
            &[1],
        );
        assert_eq!(
            t,
            "  A    BB  C\n  xxx   1  caf\\u{e9}\\u{1b}[31m\n  y    22  z\n"
        );
        assert!(t.is_ascii());
    }

    #[test]
    fn wrapping_keeps_words_and_prefixes() {
        let w = wrap("one two three four five", 12, "- ", "  ");
        assert_eq!(w, "- one two\n  three four\n  five\n");
    }
}
