//! What the timeline and the graph share: text placement with a width estimate that keeps
//! clipped text inside its column, the colours of results, and the legend.

use std::fmt::Write as _;

use super::ServerResult;
use super::xml::{esc, num};

/// Estimated advance of one character, in em: generous for the sans-serif fonts used, so
/// text clipped to fit stays inside its column.
pub(crate) const CHAR_EM: f64 = 0.62;

/// Text.
pub(crate) const INK: &str = "#111827";
/// Secondary text and lines.
pub(crate) const MUTED: &str = "#6b7280";
/// The prediction's outline.
pub(crate) const PREDICTED: &str = "#2563eb";

/// The colour of a result.
pub(crate) fn result_colour(r: ServerResult) -> &'static str {
    match r {
        ServerResult::Done => "#16a34a",
        ServerResult::Failed => "#dc2626",
        ServerResult::BudgetExhausted => "#d97706",
        ServerResult::InFlight => "#7c3aed",
        ServerResult::Skipped | ServerResult::NotStarted | ServerResult::NotScheduled => "#9ca3af",
        ServerResult::Scheduled => PREDICTED,
    }
}

/// The width `text` is taken to need at `size` px.
pub(crate) fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * CHAR_EM
}

/// How many characters fit in `width` px at `size` px.
pub(crate) fn fits(width: f64, size: f64) -> usize {
    (width / (size * CHAR_EM)).floor().max(1.0) as usize
}

/// A `<text>` at an absolute position, its content escaped.
pub(crate) fn text(out: &mut String, x: f64, y: f64, size: f64, attrs: &str, s: &str) {
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" font-size="{}" {attrs}>{}</text>"#,
        num(x),
        num(y),
        num(size),
        esc(s)
    );
}

/// A legend of (label, glyph) items from `left`, wrapping before `right`; each glyph is
/// drawn in a 22 x 14 box. Returns the y below it.
pub(crate) fn legend(out: &mut String, items: &[(String, String)], left: f64, right: f64) -> f64 {
    let size = 11.0;
    let (mut x, mut y) = (left, 10.0);
    out.push_str(r#"<g class="legend">"#);
    for (label, glyph) in items {
        let w = 28.0 + text_width(label, size) + 18.0;
        if x + w > right && x > left {
            x = left;
            y += 20.0;
        }
        let _ = write!(
            out,
            r#"<g transform="translate({},{})">{glyph}</g>"#,
            num(x),
            num(y)
        );
        text(
            out,
            x + 28.0,
            y + 11.0,
            size,
            &format!(r#"fill="{INK}""#),
            label,
        );
        x += w;
    }
    out.push_str("</g>");
    y + 24.0
}
