//! The report as Markdown (GitHub-flavoured tables), to paste into a change request.

use std::fmt::Write as _;

use super::tables::{self, Table};
use super::{Report, ReportKind};

/// `s` safe in a table cell or a line of text: Markdown's punctuation that could change the
/// structure is escaped, line breaks become spaces, HTML cannot open.
fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '|' | '`' | '*' | '_' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            c if c.is_control() => {
                let _ = write!(out, "\\\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

fn table(out: &mut String, t: &Table) {
    let _ = writeln!(out, "| {} |", t.head.join(" | "));
    let aligns: Vec<&str> = (0..t.head.len())
        .map(|i| if t.right.contains(&i) { "---:" } else { "---" })
        .collect();
    let _ = writeln!(out, "|{}|", aligns.join("|"));
    for row in &t.rows {
        let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
}

/// A fenced code block that `text` cannot close: the fence is longer than any run of
/// backticks inside.
fn fenced(out: &mut String, label: &str, text: &str) {
    if text.trim().is_empty() {
        return;
    }
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest.max(2) + 1);
    let mut clean = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            let _ = write!(clean, "\\u{{{:x}}}", u32::from(c));
        } else {
            clean.push(c);
        }
    }
    let _ = writeln!(
        out,
        "{label}:\n\n{fence}text\n{}\n{fence}\n",
        clean.trim_end()
    );
}

pub(crate) fn render(r: &Report) -> String {
    let mut out = String::new();
    let title = match r.kind {
        ReportKind::Run => "Outage report",
        ReportKind::Plan => "Outage prediction",
    };
    let _ = writeln!(out, "# {title}: {}\n", cell(&r.change));
    for w in &r.warnings {
        let _ = writeln!(out, "> **Warning:** {}\n", cell(w));
    }
    let _ = writeln!(out, "| | |\n|---|---|");
    for (k, v) in tables::overview(r) {
        let _ = writeln!(out, "| {k} | {} |", cell(&v));
    }
    out.push('\n');
    if r.kind == ReportKind::Run {
        let _ = writeln!(out, "## Breaches\n");
        if r.breaches.is_empty() {
            let _ = writeln!(
                out,
                "None: no server was down for the {} threshold.\n",
                super::fmt::dur(r.policy.threshold_ms)
            );
        }
        for b in &r.breaches {
            let _ = writeln!(out, "- **{}**: {}", cell(&b.server), cell(&b.explanation));
        }
        if !r.breaches.is_empty() {
            out.push('\n');
        }
    }
    if !r.log.is_empty() {
        let _ = writeln!(out, "## Run log\n");
        table(&mut out, &tables::log(r));
    }
    let _ = writeln!(out, "## Pools\n");
    table(&mut out, &tables::pools(r));
    let _ = writeln!(out, "## Servers\n");
    table(&mut out, &tables::servers(r));
    match r.kind {
        ReportKind::Run => {
            let _ = writeln!(out, "## Not patched\n");
        }
        ReportKind::Plan => {
            let _ = writeln!(out, "## Not scheduled\n");
        }
    }
    if r.not_patched.is_empty() {
        let _ = writeln!(out, "None.\n");
    } else {
        table(&mut out, &tables::not_patched(r));
    }
    if r.kind == ReportKind::Plan {
        let _ = writeln!(out, "## Estimates per step\n");
        table(&mut out, &tables::estimates(r));
    }
    let details = r.servers.iter().filter(|_| r.kind == ReportKind::Run);
    if r.kind == ReportKind::Run {
        let _ = writeln!(out, "## Servers in detail\n");
    }
    for s in details {
        let _ = writeln!(
            out,
            "### {}\n\n{}\n",
            cell(&s.fqdn),
            cell(&tables::server_line(r, s))
        );
        if !s.steps.is_empty() {
            table(&mut out, &tables::steps(r, s));
        }
        if let Some(f) = &s.failure {
            let at = f
                .step
                .map(|k| format!(" at {}", k.name()))
                .unwrap_or_default();
            let restored = if f.restored {
                "services restored"
            } else {
                "**services NOT restored**"
            };
            let _ = writeln!(out, "**Failed{at}** ({restored}): {}\n", cell(&f.reason));
            fenced(&mut out, "Standard output (last lines)", &f.stdout_tail);
            fenced(&mut out, "Standard error (last lines)", &f.stderr_tail);
        }
        if r.kind == ReportKind::Run
            && let Some(l) = tables::left_to_do(s)
        {
            let _ = writeln!(out, "Left to do: {}\n", cell(&l));
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}
