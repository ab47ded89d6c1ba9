//! The plan as Markdown (GitHub-flavoured tables), to paste into a change request.

use super::{margin, timing, verdict_sentence};
use crate::plan::{Plan, PlannedStep, ServerPlan};
use crate::units::{format_duration, format_offset, format_size};

/// `s` safe inside a table cell: `|` escaped, line breaks as spaces.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
        .replace('<', "&lt;")
}

/// `s` as inline code inside a table cell: backslashes are literal in code, `|` still needs
/// its escape for the table.
fn code(s: &str) -> String {
    let s = s.replace('|', "\\|").replace(['\n', '\r'], " ");
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

fn row(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

fn head(cells: &[&str]) -> String {
    let mut s = format!("| {} |\n", cells.join(" | "));
    s.push_str(&format!("|{}\n", "---|".repeat(cells.len())));
    s
}

impl Plan {
    /// The plan as Markdown: a summary table, installers, the schedule, pools, impact, what
    /// is not scheduled and why, notes, and the steps of every server.
    pub fn to_markdown(&self) -> String {
        let p = &self.policy;
        let t = &self.totals;
        let mut out = format!("# Plan: {}\n\n", cell(&self.change.name));
        out.push_str(&head(&["", ""]));
        for (k, v) in [
            ("Plan schema", code(&self.schema)),
            (
                "Outage budget",
                format!(
                    "{} per server, below the {} resiliency threshold; when exhausted: {}",
                    format_duration(p.budget),
                    format_duration(p.threshold),
                    p.on_budget_exhausted.name()
                ),
            ),
            ("On failure", p.on_failure.name().to_string()),
            ("Pools at once", p.max_concurrent_pools.to_string()),
            (
                "Final step",
                match p.final_step {
                    crate::procedure::FinalStep::StartServices => "start-services".into(),
                    crate::procedure::FinalStep::Reboot => "reboot".into(),
                },
            ),
            (
                "Staging directory",
                format!(
                    "{} (at least {} free)",
                    code(&self.change.remote_dir),
                    format_size(self.change.min_free_bytes)
                ),
            ),
            (
                "Servers",
                format!(
                    "{} in scope in {} pools: {} scheduled, {} not scheduled; {} out of scope",
                    t.servers_in_scope,
                    t.pools_in_scope,
                    t.servers_scheduled,
                    t.servers_not_scheduled,
                    t.servers_out_of_scope
                ),
            ),
            ("Predicted duration", format_duration(t.duration)),
        ] {
            out.push_str(&row(&[format!("**{k}**"), v]));
        }
        for (k, v) in timing::header_rows(self) {
            out.push_str(&row(&[format!("**{k}**"), cell(&v)]));
        }

        out.push_str("\n## Installers\n\n");
        out.push_str(&head(&[
            "Product",
            "Version",
            "File",
            "Staged as",
            "SHA-256",
        ]));
        for i in &self.change.installers {
            out.push_str(&row(&[
                i.product.clone(),
                i.version.clone(),
                code(&i.local_file),
                code(&i.remote_path),
                code(&i.sha256),
            ]));
        }

        out.push_str("\n## Schedule\n\n");
        if t.servers_scheduled == 0 {
            out.push_str("No server is scheduled.\n");
        } else {
            let mut header = vec![
                "#",
                "Start",
                "Outage from",
                "End",
                "Server",
                "Pool",
                "Site",
                "Predicted outage",
                "Margin",
                "Verdict",
            ];
            header.extend(timing::schedule_headers(self).into_iter().map(md_header));
            out.push_str(&head(&header));
            for (i, s) in self.scheduled().enumerate() {
                let Some(w) = s.window else { continue };
                let mut cells = vec![
                    (i + 1).to_string(),
                    format_offset(w.start),
                    format_offset(w.outage_start),
                    format_offset(w.end),
                    s.fqdn.clone(),
                    s.pool.clone(),
                    s.site.clone(),
                    format_duration(s.outage.predicted),
                    margin(&s.outage),
                    s.outage.verdict.name().into(),
                ];
                cells.extend(timing::schedule_cells(self, s).iter().map(|c| cell(c)));
                out.push_str(&row(&cells));
            }
        }

        out.push_str("\n## Pools\n\nIn priority order: pools named in `after:` first, then inventory order.\n\n");
        out.push_str(&head(&[
            "Pool", "Site", "Edition", "Product", "Status", "Start", "End", "Duration", "Servers",
        ]));
        for pool in &self.pools {
            let (start, end, dur) = match pool.window {
                Some(w) => (
                    format_offset(w.start),
                    format_offset(w.end),
                    format_duration(w.duration()),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            out.push_str(&row(&[
                pool.fqdn.clone(),
                cell(&pool.site),
                pool.edition.clone(),
                pool.product.clone(),
                pool.status.name().into(),
                start,
                end,
                dur,
                if pool.servers.is_empty() {
                    "-".into()
                } else {
                    pool.servers.join(", ")
                },
            ]));
        }

        out.push_str(&self.stages_markdown());
        out.push_str(&self.windows_markdown());

        if !self.servers.is_empty() {
            out.push_str("\n## Impact\n\n");
            out.push_str(&head(&["Server", "While it is down", "For about"]));
            for s in &self.servers {
                out.push_str(&row(&[
                    s.fqdn.clone(),
                    cell(&s.impact.summary),
                    format_duration(s.impact.duration),
                ]));
            }
        }

        if t.servers_not_scheduled > 0 {
            out.push_str("\n## Not scheduled\n\n");
            out.push_str(&head(&[
                "Server",
                "Pool",
                "Reason",
                "Why",
                "What would fix it",
            ]));
            for s in self.not_scheduled() {
                let Some(n) = &s.not_scheduled else { continue };
                out.push_str(&row(&[
                    s.fqdn.clone(),
                    s.pool.clone(),
                    n.reason.name().into(),
                    cell(&n.message),
                    n.fix.as_deref().map_or_else(|| "-".into(), cell),
                ]));
            }
        }

        if !self.out_of_scope.is_empty() {
            out.push_str("\n## Out of scope\n\n");
            out.push_str(&head(&["Server", "Pool", "Site"]));
            for o in &self.out_of_scope {
                out.push_str(&row(&[o.fqdn.clone(), o.pool.clone(), cell(&o.site)]));
            }
        }

        if !self.notes.is_empty() {
            out.push_str("\n## Notes\n\n");
            for n in &self.notes {
                out.push_str(&format!("- {}\n", cell(n)));
            }
        }

        if !self.servers.is_empty() {
            out.push_str("\n## Steps\n");
            for s in &self.servers {
                out.push_str(&server_markdown(self, s));
            }
        }
        out
    }
}

/// A text renderer's column header in Markdown's case: `START (UTC)` -> `Start (UTC)`.
fn md_header(h: &str) -> &'static str {
    match h {
        "STAGE" => "Stage",
        "START (UTC)" => "Start (UTC)",
        "START (LOCAL)" => "Start (local)",
        _ => "",
    }
}

impl Plan {
    fn stages_markdown(&self) -> String {
        if self.stages.is_empty() {
            return String::new();
        }
        let mut out = String::from(
            "\n## Stages\n\nIn order: a stage starts once every server of the previous one is done and its bake has passed.\n\n",
        );
        out.push_str(&head(&[
            "#", "Stage", "Status", "Opens", "Start", "Done", "Bake", "End", "Servers",
        ]));
        for r in timing::stage_rows(self) {
            out.push_str(&row(&r.iter().map(|c| cell(c)).collect::<Vec<_>>()));
        }
        out.push('\n');
        for s in timing::stage_sentences(self) {
            out.push_str(&format!("- {}\n", cell(&s)));
        }
        out
    }

    fn windows_markdown(&self) -> String {
        let (intro, cals) = timing::window_sections(self);
        if intro.is_empty() && cals.is_empty() {
            return String::new();
        }
        let mut out = String::from("\n## Maintenance windows\n\n");
        for line in intro {
            out.push_str(&format!("{}\n", cell(&line)));
        }
        for (h, lines) in cals {
            out.push_str(&format!("\n**{}**\n\n", cell(&h)));
            for line in lines {
                out.push_str(&format!("- {}\n", cell(&line)));
            }
        }
        out
    }
}

fn server_markdown(plan: &Plan, s: &ServerPlan) -> String {
    let mut out = format!("\n### {}\n\n", s.fqdn);
    out.push_str(&format!(
        "Pool {} ({}), {} -> {}; {}.\n",
        s.pool,
        cell(&s.site),
        s.product,
        if s.target_version.is_empty() {
            "?"
        } else {
            &s.target_version
        },
        cell(&s.role.describe())
    ));
    if let Some(w) = s.window {
        out.push_str(&format!(
            "Slot {} to {}, outage from {}.\n",
            format_offset(w.start),
            format_offset(w.end),
            format_offset(w.outage_start)
        ));
    }
    for (label, text) in timing::server_lines(plan, s) {
        let label = match label {
            "stage" => "Stage",
            "at" => "At",
            _ => "Window",
        };
        out.push_str(&format!("{label}: {}.\n", cell(&text)));
    }
    if let Some(n) = &s.not_scheduled {
        out.push_str(&format!(
            "**Not scheduled** ({}): {}\n",
            n.reason.name(),
            cell(&n.message)
        ));
        if let Some(fix) = &n.fix {
            out.push_str(&format!("Fix: {}\n", cell(fix)));
        }
    }
    out.push_str(&format!(
        "Outage: {}.\n\n",
        cell(&verdict_sentence(&s.outage))
    ));
    out.push_str(&head(&[
        "Phase", "At", "Step", "Command", "Estimate", "Source", "Timeout",
    ]));
    let mut push = |phase: &str, steps: &[PlannedStep]| {
        for st in steps {
            out.push_str(&row(&[
                phase.to_string(),
                st.at.map_or_else(|| "-".into(), format_offset),
                st.step.kind.name().into(),
                code(&st.step.command),
                format_duration(st.estimate),
                st.estimate_source.describe(),
                format_duration(st.timeout),
            ]));
        }
    };
    push("preflight", &s.steps.preflight);
    push("outage", &s.steps.outage);
    push("recovery", &s.steps.recovery);
    push("on exit 3010", std::slice::from_ref(&s.steps.reboot));
    out
}
