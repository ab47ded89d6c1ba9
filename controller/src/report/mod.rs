//! Outage reports for the change board: what was predicted and what happened.
//!
//! A report is derived from a run directory only — its `plan.json` and `journal.jsonl`
//! (see [`load()`]) — or from a plan alone (the prediction, before the change). Both give the
//! same [`Report`] value, rendered as terminal text, Markdown, one self-contained HTML file
//! (inline CSS and SVG: a timeline and the dependency graph), or the versioned JSON
//! document `poolpatch.report/v1` described in `docs/usage/reports.md`.
//!
//! - [`build`](mod@build): the report from a plan and a journal (per server: predicted and
//!   actual outage, steps against their estimates, watchdog actions, breaches, failures,
//!   what is left to do; per pool and overall);
//! - [`mod@load`]: reading a run directory (with a clear error when it is not one);
//! - `text`, `markdown`, `html`: the renderers; `timeline` and `graph` draw the SVGs, `xml`
//!   escapes every text that reaches the markup.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let report = poolpatch::report::load(std::path::Path::new("runs/20240714T200000Z-cu"))?;
//! std::fs::write("report.html", report.to_html())?;
//! # Ok(()) }
//! ```

pub mod build;
mod fmt;
mod graph;
mod html;
pub mod load;
mod markdown;
mod svg;
mod tables;
mod text;
mod timeline;
mod xml;

use jiff::Timestamp;
use poolpatch_plans::procedure::StepKind;
use serde::{Deserialize, Serialize};

pub use build::{from_plan, from_run};
pub use load::{LoadError, REHEARSAL_FILE, load, write_rehearsal};
pub use timeline::MaintenanceWindows;

use crate::journal::{ExitRecord, WatchdogAction};

/// The schema identifier written in every JSON report; readers refuse any other.
pub const REPORT_SCHEMA: &str = "poolpatch.report/v1";

/// A report of a run (prediction and what happened) or of a plan (prediction only).
///
/// Durations are milliseconds in fields ending in `_ms`; offsets (`*_ms` of a point in
/// time) are milliseconds since the run (or the plan's timeline) started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`REPORT_SCHEMA`].
    pub schema: String,
    /// A run's report or a plan's.
    pub kind: ReportKind,
    /// The change's name.
    pub change: String,
    /// What the report was built from.
    pub source: Source,
    /// The run, for a run's report.
    pub run: Option<RunInfo>,
    /// The outage budget, threshold and policies of the plan.
    pub policy: PolicyInfo,
    /// Totals over the whole change.
    pub overall: Overall,
    /// Every pool of the plan, in its priority order.
    pub pools: Vec<PoolReport>,
    /// Every server in scope, in the plan's order (then servers only the journal names).
    pub servers: Vec<ServerReport>,
    /// Every threshold breach, explained.
    pub breaches: Vec<BreachReport>,
    /// Every server in scope that is not patched, and why.
    pub not_patched: Vec<NotPatched>,
    /// What happened to the run as a whole, in order: start, resumes, pauses, aborts,
    /// maintenance-window waits, stages, halts, the end (empty for a plan's report).
    pub log: Vec<LogEntry>,
    /// The plan's notes: things the change board should know that are not about one
    /// server.
    pub notes: Vec<String>,
    /// Things the reader must know about the report itself (a torn journal, an
    /// unfinished run, time scaled from a rehearsal).
    pub warnings: Vec<String>,
}

/// The kinds of report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportKind {
    /// Prediction and journal of a run.
    Run,
    /// The prediction only (`poolpatch plan --format html`).
    Plan,
}

/// What the report was built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// The run directory, as named by the operator (none for a plan's report).
    pub run_dir: Option<String>,
    /// The plan's schema.
    pub plan_schema: String,
    /// Journal records read.
    pub journal_records: usize,
    /// The 1-based line of a torn last journal line that was dropped (a crash mid-write).
    pub journal_torn_last_line: Option<usize>,
    /// For a rehearsal (`poolpatch demo`): how much faster than real time it ran. Actual
    /// durations are multiplied by it, so they read in the plan's time.
    pub rehearsal_speed: Option<f64>,
}

/// The run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Who ran it (`user@host pid N`).
    pub operator: String,
    /// When it started.
    pub started_at: Option<Timestamp>,
    /// When its last event was journaled.
    pub last_event_at: Option<Timestamp>,
    /// Whether the journal ends with the run's end.
    pub finished: bool,
    /// Why the run halted, if it did.
    pub halted: Option<String>,
}

/// Limits and policies from the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyInfo {
    /// The longest outage planned and allowed per server.
    pub budget_ms: u64,
    /// The outage at which users drop into resiliency mode.
    pub threshold_ms: u64,
    /// What the watchdog does at the budget (`restore`, `finish`).
    pub on_budget_exhausted: String,
    /// What a failure stops (`halt-pool`, `halt-all`).
    pub on_failure: String,
    /// Pools patched at once.
    pub max_concurrent_pools: u32,
}

/// How the change went, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// A plan's report: nothing ran yet.
    Planned,
    /// The journal does not end with the run's end.
    NotFinished,
    /// A server reached the threshold.
    Breach,
    /// Finished, but not every server in scope is patched.
    Incomplete,
    /// Every server in scope is patched, no breach.
    Complete,
}

impl Outcome {
    /// The name used in JSON and tables.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Planned => "planned",
            Outcome::NotFinished => "not-finished",
            Outcome::Breach => "breach",
            Outcome::Incomplete => "incomplete",
            Outcome::Complete => "complete",
        }
    }
}

/// Totals over the whole change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overall {
    /// In one word.
    pub outcome: Outcome,
    /// The plan's predicted duration (the end of its last slot).
    pub predicted_duration_ms: u64,
    /// From the run's start to its last journaled event (none for a plan's report).
    pub actual_duration_ms: Option<u64>,
    /// Servers the change covers.
    pub servers_in_scope: usize,
    /// Of those, servers the plan scheduled.
    pub servers_scheduled: usize,
    /// Servers of the inventory the change does not cover.
    pub servers_out_of_scope: usize,
    /// Servers per state ([`ServerResult`] names).
    pub counts: Counts,
    /// Threshold breaches.
    pub breaches: usize,
    /// Watchdog actions.
    pub watchdog_actions: usize,
    /// The longest actual outage (the longest predicted one for a plan's report).
    pub longest_outage: Option<LongestOutage>,
}

/// Servers per state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Patched.
    pub done: usize,
    /// Failed.
    pub failed: usize,
    /// Restored after the budget ran out, not patched.
    pub budget_exhausted: usize,
    /// Not started by the run, with a reason.
    pub skipped: usize,
    /// Outage started and not ended in the journal.
    pub in_flight: usize,
    /// Scheduled but never started (or not yet).
    pub not_started: usize,
    /// Not on the plan's timeline.
    pub not_scheduled: usize,
    /// On the plan's timeline (a plan's report only).
    pub scheduled: usize,
}

/// The longest outage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LongestOutage {
    /// The server.
    pub server: String,
    /// Its outage.
    pub outage_ms: u64,
    /// Its share of the budget, in percent.
    pub budget_used_pct: Option<f64>,
}

/// A span on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// Start offset.
    pub start_ms: u64,
    /// End offset.
    pub end_ms: u64,
    /// `end_ms - start_ms`.
    pub duration_ms: u64,
}

impl Span {
    /// The span from `start_ms` to `end_ms` (empty when the end is before the start).
    pub fn new(start_ms: u64, end_ms: u64) -> Span {
        Span {
            start_ms,
            end_ms: end_ms.max(start_ms),
            duration_ms: end_ms.saturating_sub(start_ms),
        }
    }
}

/// A pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolReport {
    /// Its FQDN.
    pub fqdn: String,
    /// Its site.
    pub site: String,
    /// `enterprise` or `standard`.
    pub edition: String,
    /// Its product (`sfb2015`).
    pub product: String,
    /// What the plan does with it (`complete`, `partial`, `not-scheduled`, `out-of-scope`).
    pub plan_status: String,
    /// Its paired (backup) pool.
    pub backup_pool: Option<String>,
    /// Pools that must be done before it starts.
    pub after: Vec<String>,
    /// Its Front End servers.
    pub front_ends: Vec<String>,
    /// Its servers in scope, in the order they are patched.
    pub servers: Vec<String>,
    /// Its servers the change does not cover.
    pub out_of_scope: Vec<String>,
    /// Of its servers in scope, those patched.
    pub servers_done: usize,
    /// Its predicted span: from its first server's outage start to its last server's
    /// end on the plan's timeline (preflight, done ahead of time, is left out).
    pub predicted: Option<Span>,
    /// Its actual span, the same from the journal: first outage start of its servers to
    /// the last event of a server whose outage started.
    pub actual: Option<Span>,
    /// Breaches of its servers.
    pub breaches: usize,
    /// Why no further server of it started, if the run halted it.
    pub halted: Option<String>,
}

/// Where a server ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerResult {
    /// Patched, services verified running.
    Done,
    /// A step failed (services restored or not: see the failure).
    Failed,
    /// Restored after the budget ran out; the update is not complete.
    BudgetExhausted,
    /// Not started by the run, with a reason.
    Skipped,
    /// Its outage started and the journal ends before it did: it may still be down.
    InFlight,
    /// Scheduled, never started (or not yet, in a run that has not finished).
    NotStarted,
    /// Not on the plan's timeline.
    NotScheduled,
    /// On the plan's timeline (a plan's report).
    Scheduled,
}

impl ServerResult {
    /// The name used in JSON and tables.
    pub fn name(self) -> &'static str {
        match self {
            ServerResult::Done => "done",
            ServerResult::Failed => "failed",
            ServerResult::BudgetExhausted => "budget-exhausted",
            ServerResult::Skipped => "skipped",
            ServerResult::InFlight => "in-flight",
            ServerResult::NotStarted => "not-started",
            ServerResult::NotScheduled => "not-scheduled",
            ServerResult::Scheduled => "scheduled",
        }
    }
}

/// A server's role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleInfo {
    /// `back-end` or `standard-edition`.
    pub kind: String,
    /// `principal` or `mirror` for a mirrored back end.
    pub mirror_role: Option<String>,
    /// The mirror partner.
    pub mirror_partner: Option<String>,
    /// In words.
    pub description: String,
}

/// A server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerReport {
    /// Its FQDN.
    pub fqdn: String,
    /// Its pool.
    pub pool: String,
    /// Its pool's site.
    pub site: String,
    /// Its role.
    pub role: RoleInfo,
    /// Where it ended up.
    pub result: ServerResult,
    /// What the plan predicted.
    pub predicted: Predicted,
    /// What happened (none for a plan's report or a server the journal never names).
    pub actual: Option<Actual>,
    /// Steps run, in the order they started, with their estimates (a plan's report: the
    /// outage steps with estimates only).
    pub steps: Vec<StepReport>,
    /// Watchdog actions.
    pub watchdog: Vec<WatchdogReport>,
    /// Breaches.
    pub breaches: Vec<ServerBreach>,
    /// Whether the installer asked for a reboot.
    pub reboot_requested: bool,
    /// Why it failed, with the failing step's output.
    pub failure: Option<Failure>,
    /// Steps of the procedure not done on it (empty when done).
    pub left_to_do: Vec<StepKind>,
}

/// A server's prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Predicted {
    /// Whether it is on the plan's timeline.
    pub scheduled: bool,
    /// Its slot: preflight start, outage start, end.
    pub window: Option<PredictedWindow>,
    /// Its predicted outage.
    pub outage_ms: u64,
    /// The budget.
    pub budget_ms: u64,
    /// The threshold.
    pub threshold_ms: u64,
    /// The predicted outage's share of the budget, in percent (none for a zero budget).
    pub budget_used_pct: Option<f64>,
    /// `fits` or `over-budget`.
    pub verdict: String,
}

/// A server's slot on the plan's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PredictedWindow {
    /// Preflight starts.
    pub start_ms: u64,
    /// Services are stopped.
    pub outage_start_ms: u64,
    /// Services are verified running.
    pub end_ms: u64,
}

/// What happened to a server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Actual {
    /// Its first journaled event.
    pub started_ms: u64,
    /// Its preflight ended (passed or failed).
    pub preflight_end_ms: Option<u64>,
    /// Its last journaled event.
    pub last_event_ms: u64,
    /// Services were stopped.
    pub outage_start_ms: Option<u64>,
    /// Services were verified running again.
    pub outage_end_ms: Option<u64>,
    /// The outage, when it ended.
    pub outage_ms: Option<u64>,
    /// When the outage did not end in the journal: down for at least this long (to the
    /// journal's last event).
    pub down_at_least_ms: Option<u64>,
    /// The outage's (or `down_at_least_ms`') share of the budget, in percent.
    pub budget_used_pct: Option<f64>,
}

/// One step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// The step.
    pub kind: StepKind,
    /// Whether it is part of the recovery path.
    pub recovery: bool,
    /// When it started.
    pub started_ms: Option<u64>,
    /// How long it took (none when it never ended).
    pub duration_ms: Option<u64>,
    /// The plan's estimate.
    pub estimate_ms: Option<u64>,
    /// Duration minus estimate.
    pub delta_ms: Option<i64>,
    /// How it ended.
    pub exit: Option<ExitRecord>,
    /// Whether the exit counts as success.
    pub ok: Option<bool>,
    /// What the report knows about the outcome beyond the exit, e.g. that a failed
    /// `check-installer` only found the installer not staged yet, and it was uploaded.
    pub note: Option<String>,
}

/// A watchdog action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchdogReport {
    /// When.
    pub at_ms: u64,
    /// What it did.
    pub action: WatchdogAction,
    /// How long the server had been down.
    pub down_ms: u64,
    /// Steps not done when it acted.
    pub remaining: Vec<StepKind>,
}

/// A breach, on the server's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerBreach {
    /// When.
    pub at_ms: u64,
    /// How long the server had been down.
    pub down_ms: u64,
}

/// Why a server failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The step that failed, if any.
    pub step: Option<StepKind>,
    /// Why, in the executor's words.
    pub reason: String,
    /// Whether services were verified running again.
    pub restored: bool,
    /// The last lines of the failing step's standard output.
    pub stdout_tail: String,
    /// The last lines of its standard error.
    pub stderr_tail: String,
}

/// A breach, explained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreachReport {
    /// The server.
    pub server: String,
    /// Its pool.
    pub pool: String,
    /// Its site.
    pub site: String,
    /// When the threshold was reached (the journal's clock).
    pub at: Timestamp,
    /// The same, as an offset.
    pub at_ms: u64,
    /// How long it had been down then.
    pub down_ms: u64,
    /// Its whole outage, when it ended.
    pub outage_ms: Option<u64>,
    /// Whether it is still down at the journal's end.
    pub still_down: bool,
    /// What the watchdog had done before.
    pub watchdog: Option<WatchdogAction>,
    /// In words.
    pub explanation: String,
}

/// A line of the run log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// When (the journal's clock).
    pub at: Timestamp,
    /// The same, as an offset.
    pub at_ms: u64,
    /// The journal event's name (`run-resumed`, `paused`, …).
    pub event: String,
    /// The server it is about, if any.
    pub server: Option<String>,
    /// In words.
    pub text: String,
}

/// A server in scope that is not patched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotPatched {
    /// The server.
    pub server: String,
    /// Its pool.
    pub pool: String,
    /// Where it ended up.
    pub result: ServerResult,
    /// Where the reason comes from: `journal` (the run said), `plan` (not scheduled),
    /// `run` (derived: never started, still in flight).
    pub source: String,
    /// Why.
    pub reason: String,
    /// What would fix it, when poolpatch knows.
    pub fix: Option<String>,
}

impl Report {
    /// The report as pretty-printed JSON (`poolpatch.report/v1`), ending with a newline.
    pub fn to_json(&self) -> String {
        match serde_json::to_string_pretty(self) {
            Ok(mut s) => {
                s.push('\n');
                s
            }
            // These types serialise without failing (string keys, finite numbers); should
            // it ever fail, write a document readers refuse rather than panic.
            Err(e) => format!(
                "{{\"schema\": \"error\", \"error\": {:?}}}\n",
                e.to_string()
            ),
        }
    }

    /// Reads a report written by [`Report::to_json`]; refuses other schemas.
    pub fn from_json(text: &str) -> Result<Report, String> {
        #[derive(Deserialize)]
        struct Head {
            schema: String,
        }
        let head: Head = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if head.schema != REPORT_SCHEMA {
            return Err(format!(
                "this poolpatch reads reports of schema `{REPORT_SCHEMA}`, not `{}`",
                head.schema
            ));
        }
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// The server named `fqdn`.
    pub fn server(&self, fqdn: &str) -> Option<&ServerReport> {
        self.servers.iter().find(|s| s.fqdn == fqdn)
    }

    /// The report as text for a terminal.
    pub fn to_text(&self) -> String {
        text::render(self)
    }

    /// The report as Markdown, to paste into a change request.
    pub fn to_markdown(&self) -> String {
        markdown::render(self)
    }

    /// The report as one self-contained HTML file (XHTML-compatible markup: an XML parser
    /// reads the whole document).
    pub fn to_html(&self) -> String {
        html::render(self)
    }

    /// The same, with `windows` shaded behind their servers' rows on the timeline (the
    /// plan's maintenance windows: `poolpatch plan` and `report` pass them).
    pub fn to_html_with(&self, windows: &MaintenanceWindows) -> String {
        html::render_with(self, windows)
    }
}

/// A share of the budget in percent, to one decimal (none for a zero budget).
pub(crate) fn percent(part_ms: u64, whole_ms: u64) -> Option<f64> {
    if whole_ms == 0 {
        return None;
    }
    let tenths = (u128::from(part_ms) * 1000 + u128::from(whole_ms) / 2) / u128::from(whole_ms);
    Some(u64::try_from(tenths).unwrap_or(u64::MAX) as f64 / 10.0)
}
