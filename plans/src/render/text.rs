//! The plan as plain, aligned, ASCII-only text for a terminal.

use super::{ascii_safe, margin, table, timing, verdict_sentence, wrap};
use crate::plan::{Plan, PlannedStep, ServerPlan};
use crate::units::{format_duration, format_offset, format_size};

/// Width long sentences are wrapped at.
const WIDTH: usize = 100;

impl Plan {
    /// The plan for a terminal: a header with the policies, the schedule, the pools, every
    /// server with its steps and commands, what is not scheduled and why, and the notes.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let title = format!("poolpatch plan: {}", ascii_safe(&self.change.name));
        out.push_str(&format!("{title}\n{}\n", "=".repeat(title.len())));
        out.push_str(&self.header_text());
        out.push_str(&self.schedule_text());
        out.push_str(&self.pools_text());
        out.push_str(&self.stages_text());
        out.push_str(&self.windows_text());
        if self.servers.iter().any(|s| s.window.is_some()) {
            out.push_str("\nServers\n-------\n");
            for s in self.scheduled() {
                out.push_str(&server_text(self, s));
            }
        }
        if self.totals.servers_not_scheduled > 0 {
            out.push_str("\nNot scheduled\n-------------\n");
            for s in self.not_scheduled() {
                out.push_str(&server_text(self, s));
            }
        }
        if !self.out_of_scope.is_empty() {
            out.push_str("\nOut of scope\n------------\n");
            let rows: Vec<Vec<String>> = self
                .out_of_scope
                .iter()
                .map(|o| vec![o.fqdn.clone(), o.pool.clone(), o.site.clone()])
                .collect();
            out.push_str(&table("  ", &["SERVER", "POOL", "SITE"], &rows, &[]));
        }
        if !self.notes.is_empty() {
            out.push_str("\nNotes\n-----\n");
            for n in &self.notes {
                out.push_str(&wrap(n, WIDTH, "  - ", "    "));
            }
        }
        out
    }

    fn header_text(&self) -> String {
        let p = &self.policy;
        let t = &self.totals;
        let mut rows = vec![
            vec![
                "Schema".into(),
                format!(
                    "{} (change file version {})",
                    self.schema, self.change.format_version
                ),
            ],
            vec![
                "Outage budget".into(),
                format!(
                    "{} per server, below the {} resiliency threshold; when exhausted: {}",
                    format_duration(p.budget),
                    format_duration(p.threshold),
                    p.on_budget_exhausted.name()
                ),
            ],
            vec!["On failure".into(), p.on_failure.name().into()],
            vec!["Pools at once".into(), p.max_concurrent_pools.to_string()],
            vec![
                "Final step".into(),
                match p.final_step {
                    crate::procedure::FinalStep::StartServices => "start-services".into(),
                    crate::procedure::FinalStep::Reboot => "reboot".into(),
                },
            ],
            vec![
                "Staging".into(),
                format!(
                    "{} (at least {} free)",
                    self.change.remote_dir,
                    format_size(self.change.min_free_bytes)
                ),
            ],
        ];
        for (i, inst) in self.change.installers.iter().enumerate() {
            rows.push(vec![
                if i == 0 {
                    "Installers".into()
                } else {
                    String::new()
                },
                format!(
                    "{} {} {} sha256 {}",
                    inst.product, inst.version, inst.local_file, inst.sha256
                ),
            ]);
        }
        rows.push(vec![
            "Servers".into(),
            format!(
                "{} in scope in {} pools: {} scheduled, {} not scheduled; {} out of scope",
                t.servers_in_scope,
                t.pools_in_scope,
                t.servers_scheduled,
                t.servers_not_scheduled,
                t.servers_out_of_scope
            ),
        ]);
        rows.push(vec![
            "Duration".into(),
            format!("{} (predicted)", format_duration(t.duration)),
        ]);
        for (k, v) in timing::header_rows(self) {
            rows.push(vec![k.into(), v]);
        }
        format!(
            "\n{}",
            table("", &["", ""], &rows, &[])
                .split_once('\n')
                .map_or("", |x| x.1)
        )
    }

    fn schedule_text(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .scheduled()
            .enumerate()
            .filter_map(|(i, s)| {
                let w = s.window?;
                let mut row = vec![
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
                row.extend(timing::schedule_cells(self, s));
                Some(row)
            })
            .collect();
        let mut out = String::from("\nSchedule\n--------\n");
        if rows.is_empty() {
            out.push_str("  (no server is scheduled)\n");
        } else {
            let mut header = vec![
                "#", "START", "DOWN", "UP", "SERVER", "POOL", "SITE", "OUTAGE", "MARGIN", "VERDICT",
            ];
            header.extend(timing::schedule_headers(self));
            out.push_str(&table("  ", &header, &rows, &[0, 7, 8]));
        }
        out
    }

    fn pools_text(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .pools
            .iter()
            .map(|p| {
                let (start, end, dur) = match p.window {
                    Some(w) => (
                        format_offset(w.start),
                        format_offset(w.end),
                        format_duration(w.duration()),
                    ),
                    None => ("-".into(), "-".into(), "-".into()),
                };
                vec![
                    p.fqdn.clone(),
                    p.site.clone(),
                    p.edition.clone(),
                    p.product.clone(),
                    p.status.name().into(),
                    start,
                    end,
                    dur,
                    if p.servers.is_empty() {
                        "-".into()
                    } else {
                        p.servers.join(", ")
                    },
                ]
            })
            .collect();
        let mut out = String::from("\nPools (in priority order)\n-------------------------\n");
        out.push_str(&table(
            "  ",
            &[
                "POOL", "SITE", "EDITION", "PRODUCT", "STATUS", "START", "END", "DURATION",
                "SERVERS",
            ],
            &rows,
            &[7],
        ));
        out
    }
}

impl Plan {
    fn stages_text(&self) -> String {
        if self.stages.is_empty() {
            return String::new();
        }
        let mut out = String::from("\nStages (in order)\n-----------------\n");
        out.push_str(&table(
            "  ",
            &timing::STAGE_HEADERS,
            &timing::stage_rows(self),
            &[0, 6],
        ));
        for s in timing::stage_sentences(self) {
            out.push_str(&wrap(&s, WIDTH, "  - ", "    "));
        }
        out
    }

    fn windows_text(&self) -> String {
        let (intro, cals) = timing::window_sections(self);
        if intro.is_empty() && cals.is_empty() {
            return String::new();
        }
        let mut out = String::from("\nMaintenance windows\n-------------------\n");
        for line in intro {
            out.push_str(&wrap(&line, WIDTH, "  ", "  "));
        }
        for (head, lines) in cals {
            out.push('\n');
            out.push_str(&wrap(&head, WIDTH, "  ", "    "));
            for line in lines {
                out.push_str(&wrap(&line, WIDTH, "    ", "      "));
            }
        }
        out
    }
}

fn server_text(plan: &Plan, s: &ServerPlan) -> String {
    let mut out = format!(
        "\n{}  ({}, {}, {} -> {})\n",
        s.fqdn,
        s.pool,
        s.site,
        s.product,
        if s.target_version.is_empty() {
            "?"
        } else {
            &s.target_version
        }
    );
    let role = match &s.role {
        crate::plan::PlannedRole::BackEnd {
            sql_server,
            collocated_databases,
            ..
        } => {
            let mut r = format!("{}; SQL Server {sql_server}", s.role.describe());
            if !collocated_databases.is_empty() {
                r.push_str(&format!(
                    "; collocated: {}",
                    collocated_databases.join(", ")
                ));
            }
            r
        }
        crate::plan::PlannedRole::StandardEdition => s.role.describe(),
    };
    out.push_str(&wrap(&role, WIDTH, "    role     ", "             "));
    if let Some(w) = s.window {
        out.push_str(&format!(
            "    slot     {} .. {}, outage from {}\n",
            format_offset(w.start),
            format_offset(w.end),
            format_offset(w.outage_start)
        ));
    }
    for (label, text) in timing::server_lines(plan, s) {
        out.push_str(&wrap(
            &text,
            WIDTH,
            &format!("    {label:<9}"),
            "             ",
        ));
    }
    if let Some(n) = &s.not_scheduled {
        out.push_str(&wrap(
            &format!("NOT SCHEDULED ({}): {}", n.reason.name(), n.message),
            WIDTH,
            "    why      ",
            "             ",
        ));
        if let Some(fix) = &n.fix {
            out.push_str(&wrap(fix, WIDTH, "    fix      ", "             "));
        }
    }
    out.push_str(&wrap(
        &verdict_sentence(&s.outage),
        WIDTH,
        "    outage   ",
        "             ",
    ));
    out.push_str(&wrap(
        &s.impact.summary,
        WIDTH,
        "    impact   ",
        "             ",
    ));
    let mut rows = Vec::new();
    let mut push = |phase: &str, steps: &[PlannedStep]| {
        for (i, st) in steps.iter().enumerate() {
            rows.push(vec![
                if i == 0 {
                    phase.to_string()
                } else {
                    String::new()
                },
                st.at.map_or_else(|| "-".into(), format_offset),
                st.step.kind.name().into(),
                format_duration(st.estimate),
                st.estimate_source.describe(),
                format_duration(st.timeout),
                st.step.command.clone(),
            ]);
        }
    };
    push("preflight", &s.steps.preflight);
    push("outage", &s.steps.outage);
    push("recovery", &s.steps.recovery);
    push("on 3010", std::slice::from_ref(&s.steps.reboot));
    out.push_str(&table(
        "    ",
        &["PHASE", "AT", "STEP", "EST", "SOURCE", "TIMEOUT", "COMMAND"],
        &rows,
        &[3, 5],
    ));
    out
}
