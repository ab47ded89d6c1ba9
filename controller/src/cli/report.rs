//! `poolpatch report`: the change board's outage report of a run, from its run directory.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use poolpatch_plans::Plan;

use super::{Exit, emit};
use crate::report::{self, Report};

/// Output formats of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Readable on a terminal.
    Text,
    /// Markdown, to paste into a change request.
    Md,
    /// One self-contained HTML file (timeline, dependency graph, tables), printable.
    Html,
    /// The versioned JSON document `poolpatch.report/v1` (docs/usage/reports.md).
    Json,
}

/// Arguments of `poolpatch report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run directory (holds plan.json and journal.jsonl).
    #[arg(long)]
    pub run: PathBuf,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "text")]
    pub format: ReportFormat,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// The maintenance windows of `plan`, per server, as spans of its timeline (offsets from
/// the plan's start): the openings of each server's calendar, to shade on the HTML timeline.
pub(crate) fn maintenance_windows(plan: &Plan) -> report::MaintenanceWindows {
    let mut out = report::MaintenanceWindows::new();
    let Some(w) = &plan.windows else {
        return out;
    };
    for s in plan.scheduled() {
        let Some(cal) = s
            .calendar
            .as_ref()
            .and_then(|c| w.calendars.iter().find(|x| &x.id == c))
        else {
            continue;
        };
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let spans = cal
            .openings
            .iter()
            .map(|o| report::Span {
                start_ms: ms(o.opens),
                end_ms: ms(o.closes),
                duration_ms: ms(o.closes.saturating_sub(o.opens)),
            })
            .collect();
        out.insert(s.fqdn.clone(), spans);
    }
    out
}

/// The plan kept in a run directory, if it reads.
fn plan_of(run_dir: &Path) -> Option<Plan> {
    let text = std::fs::read_to_string(run_dir.join(crate::exec::PLAN_FILE)).ok()?;
    Plan::from_json(&text).ok()
}

/// The report in `format` (the HTML shades the plan's maintenance windows, if any).
fn rendered(r: &Report, format: ReportFormat, plan: Option<&Plan>) -> String {
    match format {
        ReportFormat::Text => r.to_text(),
        ReportFormat::Md => r.to_markdown(),
        ReportFormat::Html => match plan {
            Some(p) => r.to_html_with(&maintenance_windows(p)),
            None => r.to_html(),
        },
        ReportFormat::Json => r.to_json(),
    }
}

/// Writes the report of a run directory. Exit 0 when it is written, whatever the run's
/// outcome (the report says it); 2 when the directory cannot be read; 3 when the output
/// cannot be written.
pub fn report(a: &ReportArgs) -> Exit {
    let r = match report::load(&a.run) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Invalid;
        }
    };
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    let plan = plan_of(&a.run);
    match emit(&rendered(&r, a.format, plan.as_ref()), a.output.as_ref()) {
        Ok(()) => Exit::Ok,
        Err(e) => e,
    }
}

/// After a rehearsal: notes its speed and uncompressed plan beside the journal (so reports
/// read in the plan's time), writes `report.html` into the run directory and prints its
/// path. A report that cannot be written is a warning: the run itself is over.
pub(crate) fn write_rehearsal_report(run_dir: &Path, speed: f64, plan: &Plan) {
    if let Err(e) = report::write_rehearsal(run_dir, speed, plan) {
        eprintln!(
            "warning: cannot write {} in {}: {e}",
            report::REHEARSAL_FILE,
            run_dir.display()
        );
    }
    let path = run_dir.join("report.html");
    match report::load(run_dir) {
        Ok(r) => match std::fs::write(&path, r.to_html_with(&maintenance_windows(plan))) {
            Ok(()) => println!("report: {}", path.display()),
            Err(e) => eprintln!("warning: cannot write {}: {e}", path.display()),
        },
        Err(e) => eprintln!("warning: no report: {e}"),
    }
}
