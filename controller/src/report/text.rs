//! The report as text for a terminal: aligned tables, no control character from a
//! command's output reaches the terminal.

use std::fmt::Write as _;

use super::tables::{self, Table};
use super::{Report, ReportKind};

/// `s` with control characters written as `\u{..}` (line breaks too: a cell is one line).
fn safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

fn table(out: &mut String, t: &Table) {
    let cells: Vec<Vec<String>> =
        std::iter::once(t.head.iter().map(|h| h.to_uppercase()).collect())
            .chain(t.rows.iter().map(|r| r.iter().map(|c| safe(c)).collect()))
            .collect();
    let cols = t.head.len();
    let mut widths = vec![0usize; cols];
    for row in &cells {
        for (i, c) in row.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    for row in &cells {
        let mut line = String::from("  ");
        for (i, w) in widths.iter().enumerate() {
            let c = row.get(i).map_or("", String::as_str);
            let pad = w.saturating_sub(c.chars().count());
            if i > 0 {
                line.push_str("  ");
            }
            if t.right.contains(&i) {
                line.push_str(&" ".repeat(pad));
                line.push_str(c);
            } else {
                line.push_str(c);
                if i + 1 < cols {
                    line.push_str(&" ".repeat(pad));
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// An output tail, every line indented and made safe.
fn tail(out: &mut String, label: &str, text: &str) {
    if text.trim().is_empty() {
        return;
    }
    for line in text.lines() {
        let _ = writeln!(out, "      {label} | {}", safe(line));
    }
}

pub(crate) fn render(r: &Report) -> String {
    let mut out = String::new();
    let title = match r.kind {
        ReportKind::Run => "Outage report",
        ReportKind::Plan => "Outage prediction",
    };
    let _ = writeln!(out, "{title}: {}\n", safe(&r.change));
    let overview = tables::overview(r);
    let width = overview.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    for (k, v) in &overview {
        let _ = writeln!(out, "{:<width$} {}", format!("{k}:"), safe(v));
    }
    for w in &r.warnings {
        let _ = writeln!(out, "{:<width$} {}", "WARNING:", safe(w));
    }
    if !r.breaches.is_empty() {
        let _ = writeln!(out, "\nBreaches");
        for b in &r.breaches {
            let _ = writeln!(out, "  - {}", safe(&b.explanation));
        }
    }
    if !r.log.is_empty() {
        let _ = writeln!(out, "\nRun log");
        table(&mut out, &tables::log(r));
    }
    let _ = writeln!(out, "\nPools");
    table(&mut out, &tables::pools(r));
    let _ = writeln!(out, "\nServers");
    table(&mut out, &tables::servers(r));
    let _ = writeln!(
        out,
        "\n{}",
        match r.kind {
            ReportKind::Run => "Not patched",
            ReportKind::Plan => "Not scheduled",
        }
    );
    if r.not_patched.is_empty() {
        let _ = writeln!(
            out,
            "  none: every server in scope is {}",
            match r.kind {
                ReportKind::Run => "patched",
                ReportKind::Plan => "scheduled",
            }
        );
    } else {
        table(&mut out, &tables::not_patched(r));
    }
    if r.kind == ReportKind::Plan {
        let _ = writeln!(out, "\nEstimates per step");
        table(&mut out, &tables::estimates(r));
        return out;
    }
    let _ = writeln!(out, "\nServers in detail");
    for s in &r.servers {
        let _ = writeln!(
            out,
            "\n  {} ({})\n  {}",
            safe(&s.fqdn),
            safe(&s.pool),
            safe(&tables::server_line(r, s))
        );
        if !s.steps.is_empty() {
            let mut t = String::new();
            table(&mut t, &tables::steps(r, s));
            for line in t.lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
        if let Some(f) = &s.failure {
            let at = f
                .step
                .map(|k| format!(" at {}", k.name()))
                .unwrap_or_default();
            let restored = if f.restored {
                "services restored"
            } else {
                "SERVICES NOT RESTORED"
            };
            let _ = writeln!(out, "    FAILED{at} ({restored}): {}", safe(&f.reason));
            tail(&mut out, "stdout", &f.stdout_tail);
            tail(&mut out, "stderr", &f.stderr_tail);
        }
        if r.kind == ReportKind::Run
            && let Some(l) = tables::left_to_do(s)
        {
            let _ = writeln!(out, "    left to do: {l}");
        }
    }
    out
}
