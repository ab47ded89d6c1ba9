//! The plan: what will be done to which server, when, with which commands, and what the
//! outage will cost. A value: built by [`plan`] from the inventory and the change,
//! serialised as the versioned JSON document described in `docs/usage/plan-json.md`, and
//! read back by the executor and by reports with [`Plan::from_json`].
//!
//! Durations are [`Duration`]s here and whole seconds in JSON, under names ending in `_secs`.

mod advice;
mod build;
mod secs;
mod timing;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use build::{PlanInput, plan, plan_with};
pub use timing::{
    BlackoutPlan, FailureLimitPlan, HealthCheckPlan, Opening, StagePlan, StageScopePlan,
    StageStatus, StageTimeline, WindowCalendar, WindowsPlan,
};
pub(crate) use timing::{local_with, utc_short, utc_with};

use crate::change::{OnBudgetExhausted, OnFailure};
use crate::estimates::EstimateSource;
use crate::procedure::{FinalStep, InstallerOnHost, Step};
use crate::units::PathStyle;

fn finish() -> OnBudgetExhausted {
    OnBudgetExhausted::Finish
}

/// The schema identifier written in every plan; a reader refuses any other.
pub const PLAN_SCHEMA: &str = "poolpatch.plan/v1";

/// A complete plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Always [`PLAN_SCHEMA`].
    pub schema: String,
    /// When the timeline starts (`now`, whole seconds): every offset counts from it. `None`
    /// when the plan was made without a start time (then servers bound by windows or
    /// blackouts are not scheduled).
    #[serde(default)]
    pub starts_at: Option<jiff::Timestamp>,
    /// The change this plan carries out.
    pub change: ChangeInfo,
    /// Limits and policies from the change.
    pub policy: Policy,
    /// Counts and the predicted total duration.
    pub totals: Totals,
    /// Every pool of the inventory, in priority order (`after:` first, then file order).
    pub pools: Vec<PoolPlan>,
    /// The stages of the rollout, in order; empty when the change has none (one stage).
    #[serde(default)]
    pub stages: Vec<StagePlan>,
    /// Maintenance windows and blackouts; `None` when none applies to a server in scope.
    #[serde(default)]
    pub windows: Option<WindowsPlan>,
    /// Every server in scope: scheduled ones in timeline order, then the ones that are not
    /// scheduled, in inventory order.
    pub servers: Vec<ServerPlan>,
    /// Servers of the inventory the change does not cover, in inventory order.
    pub out_of_scope: Vec<OutOfScope>,
    /// Things the change board should know that are not about one server.
    pub notes: Vec<String>,
}

/// What the change is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeInfo {
    /// The change's title.
    pub name: String,
    /// The change file's format version.
    pub format_version: u32,
    /// The staging directory on each server.
    pub remote_dir: String,
    /// Whether `remote_dir` is a Windows or a POSIX path.
    pub remote_dir_style: PathStyle,
    /// Free space required on the staging drive, in bytes.
    pub min_free_bytes: u64,
    /// The installers, by product name.
    pub installers: Vec<InstallerInfo>,
}

/// One product's installer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallerInfo {
    /// Product name (`sfb2015`).
    pub product: String,
    /// The local file uploaded, as written in the change file.
    pub local_file: String,
    /// Where it is staged on each server of that product.
    pub remote_path: String,
    /// Its SHA-256, lower-case hex.
    pub sha256: String,
    /// The version servers of that product report once updated.
    pub version: String,
}

/// Limits and policies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Outage at which users notice (resiliency mode).
    #[serde(rename = "threshold_secs", with = "secs")]
    pub threshold: Duration,
    /// The longest outage planned and allowed.
    #[serde(rename = "budget_secs", with = "secs")]
    pub budget: Duration,
    /// What the watchdog does when an outage reaches the budget.
    pub on_budget_exhausted: OnBudgetExhausted,
    /// What happens to servers in flight when the run is stopped: `finish` or `restore`
    /// (plans written before this field existed read as `finish`).
    #[serde(default = "finish")]
    pub on_stop: OnBudgetExhausted,
    /// What a failure stops.
    pub on_failure: OnFailure,
    /// Pools patched at once.
    pub max_concurrent_pools: u32,
    /// How each server's procedure ends.
    pub final_step: FinalStep,
    /// SSH connect timeout.
    #[serde(rename = "connect_timeout_secs", with = "secs")]
    pub connect_timeout: Duration,
    /// How many failed servers halt the whole rollout; `None`: only `on_failure` applies.
    #[serde(default)]
    pub failure_limit: Option<FailureLimitPlan>,
}

/// Counts and durations over the whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// From the first start to the last end of the simulated timeline.
    #[serde(rename = "duration_secs", with = "secs")]
    pub duration: Duration,
    /// Servers the change covers.
    pub servers_in_scope: usize,
    /// Of those, servers on the timeline.
    pub servers_scheduled: usize,
    /// Of those, servers not on the timeline (each says why).
    pub servers_not_scheduled: usize,
    /// Servers the change does not cover.
    pub servers_out_of_scope: usize,
    /// Pools with at least one server in scope.
    pub pools_in_scope: usize,
}

/// A pool in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolPlan {
    /// Its FQDN.
    pub fqdn: String,
    /// Its site.
    pub site: String,
    /// `enterprise` or `standard`.
    pub edition: String,
    /// Product name (`sfb2015`).
    pub product: String,
    /// Its paired (backup) pool.
    pub backup_pool: Option<String>,
    /// Pools that must be done before it starts.
    pub after: Vec<String>,
    /// Its Front End servers.
    pub front_ends: Vec<String>,
    /// What the plan does with it.
    pub status: PoolPlanStatus,
    /// Its servers in scope, in the order they are patched (not scheduled ones last).
    pub servers: Vec<String>,
    /// When its first server starts and its last ends, if any is scheduled.
    pub window: Option<Window>,
}

/// What the plan does with a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PoolPlanStatus {
    /// Every server in scope is scheduled.
    Complete,
    /// Some servers in scope are scheduled, some are not.
    Partial,
    /// No server in scope is scheduled.
    NotScheduled,
    /// No server of it is in scope.
    OutOfScope,
}

impl PoolPlanStatus {
    /// The name used in JSON and tables.
    pub fn name(self) -> &'static str {
        match self {
            PoolPlanStatus::Complete => "complete",
            PoolPlanStatus::Partial => "partial",
            PoolPlanStatus::NotScheduled => "not-scheduled",
            PoolPlanStatus::OutOfScope => "out-of-scope",
        }
    }
}

/// A span of the simulated timeline, as offsets from the start of the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Start.
    #[serde(rename = "start_secs", with = "secs")]
    pub start: Duration,
    /// End.
    #[serde(rename = "end_secs", with = "secs")]
    pub end: Duration,
}

impl Window {
    /// How long it lasts.
    pub fn duration(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }
}

/// A server's place on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerWindow {
    /// Its procedure starts (preflight).
    #[serde(rename = "start_secs", with = "secs")]
    pub start: Duration,
    /// Its services are stopped: the outage starts.
    #[serde(rename = "outage_start_secs", with = "secs")]
    pub outage_start: Duration,
    /// Its services are verified running: the outage ends.
    #[serde(rename = "end_secs", with = "secs")]
    pub end: Duration,
}

/// A server in scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerPlan {
    /// Its FQDN.
    pub fqdn: String,
    /// Its pool.
    pub pool: String,
    /// Its pool's site.
    pub site: String,
    /// Its site's IANA time zone (local times in the plan are in it).
    #[serde(default)]
    pub time_zone: String,
    /// Its pool's product (`sfb2015`).
    pub product: String,
    /// The version it reports once updated (empty when the change has no installer for
    /// its product).
    pub target_version: String,
    /// What it is, which decides the database command.
    pub role: PlannedRole,
    /// The installer as staged on it.
    pub installer: InstallerOnHost,
    /// Its place on the timeline; `None` when it is not scheduled.
    pub window: Option<ServerWindow>,
    /// Its stage; `None` when the change has no stages.
    #[serde(default)]
    pub stage: Option<String>,
    /// The id of its calendar in [`Plan::windows`]; `None`: it may run at any time.
    #[serde(default)]
    pub calendar: Option<String>,
    /// The opening of its calendar its slot is planned in; `None` when it is not scheduled
    /// or may run at any time.
    #[serde(default)]
    pub maintenance_window: Option<Opening>,
    /// Why it is not scheduled, and what would fix it; `None` when it is.
    pub not_scheduled: Option<NotScheduled>,
    /// Its predicted outage against the budget and threshold.
    pub outage: OutagePrediction,
    /// Who loses what while it is down.
    pub impact: Impact,
    /// Every step, with commands, scripts, estimates and timeouts.
    pub steps: PlannedSteps,
}

/// A server's role in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PlannedRole {
    /// An Enterprise Edition Back End server.
    BackEnd {
        /// The SQL Server FQDN given to `Install-CsDatabase`.
        sql_server: String,
        /// `principal` or `mirror`, when mirrored.
        mirror_role: Option<String>,
        /// The mirror partner, when mirrored.
        mirror_partner: Option<String>,
        /// Databases collocated on it (then `-ExcludeCollocatedStores`).
        collocated_databases: Vec<String>,
    },
    /// A Standard Edition server.
    StandardEdition,
}

impl PlannedRole {
    /// A short description: `back end (mirror side of be01...)`, `Standard Edition`.
    pub fn describe(&self) -> String {
        match self {
            PlannedRole::BackEnd {
                mirror_role: Some(r),
                mirror_partner: Some(p),
                ..
            } => {
                let side = if r == "principal" {
                    "principal"
                } else {
                    "mirror side"
                };
                format!("back end, {side} (partner {p})")
            }
            PlannedRole::BackEnd { .. } => "back end".into(),
            PlannedRole::StandardEdition => "Standard Edition".into(),
        }
    }
}

/// Why a server in scope is not scheduled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotScheduled {
    /// The kind of reason.
    pub reason: NotScheduledReason,
    /// The reason, in words.
    pub message: String,
    /// What would fix it, when poolpatch knows.
    pub fix: Option<String>,
}

/// The kinds of reasons a server is not scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotScheduledReason {
    /// Its predicted outage is not below the budget.
    OverBudget,
    /// The change has no installer for its product.
    NoInstaller,
    /// It holds a mirroring principal whose mirror side is in scope but not scheduled.
    MirrorSideNotScheduled,
    /// Its pool must come after a pool this plan does not complete.
    WaitsForPool,
    /// A safety rule refused it (or the server before it in its pool) for good.
    Blocked,
    /// No maintenance window in the planning horizon can hold its slot.
    NoWindow,
    /// It is bound by windows or blackouts and the plan has no start time.
    NeedsStartTime,
    /// Its stage never starts: an earlier stage does not complete.
    WaitsForStage,
}

impl NotScheduledReason {
    /// The name used in JSON and tables.
    pub fn name(self) -> &'static str {
        match self {
            NotScheduledReason::OverBudget => "over-budget",
            NotScheduledReason::NoInstaller => "no-installer",
            NotScheduledReason::MirrorSideNotScheduled => "mirror-side-not-scheduled",
            NotScheduledReason::WaitsForPool => "waits-for-pool",
            NotScheduledReason::Blocked => "blocked",
            NotScheduledReason::NoWindow => "no-window",
            NotScheduledReason::NeedsStartTime => "needs-start-time",
            NotScheduledReason::WaitsForStage => "waits-for-stage",
        }
    }
}

/// A server's predicted outage, and the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutagePrediction {
    /// Sum of the outage steps' estimates: from `Stop-CsWindowsService` to services
    /// verified running.
    #[serde(rename = "predicted_secs", with = "secs")]
    pub predicted: Duration,
    /// The budget.
    #[serde(rename = "budget_secs", with = "secs")]
    pub budget: Duration,
    /// The threshold.
    #[serde(rename = "threshold_secs", with = "secs")]
    pub threshold: Duration,
    /// Budget minus prediction, in seconds; negative when over.
    pub margin_secs: i64,
    /// Whether it fits.
    pub verdict: Verdict,
    /// The outage if the installer asks for a reboot (exit 3010), when the final step is
    /// not already a reboot.
    #[serde(rename = "if_reboot_requested_secs", with = "secs::option")]
    pub if_reboot_requested: Option<Duration>,
    /// Latest point in the outage at which restoring services (the recovery steps) must
    /// start for them to be back within the budget: budget minus the recovery estimate.
    #[serde(rename = "restore_by_secs", with = "secs")]
    pub restore_by: Duration,
}

/// Whether a server's predicted outage fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Below the budget (and so below the threshold).
    Fits,
    /// Not below the budget: the server is not scheduled.
    OverBudget,
}

impl Verdict {
    /// The name used in JSON and tables.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Fits => "fits",
            Verdict::OverBudget => "over-budget",
        }
    }
}

/// Who loses what while a server is down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impact {
    /// The kind of impact.
    pub kind: ImpactKind,
    /// The pool affected.
    pub pool: String,
    /// The Front End servers that lose their back end (empty for the other kinds).
    pub front_ends: Vec<String>,
    /// For how long (the predicted outage).
    #[serde(rename = "duration_secs", with = "secs")]
    pub duration: Duration,
    /// In words.
    pub summary: String,
}

/// The kinds of impact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImpactKind {
    /// The pool's Front End servers lose this back end.
    FrontEndsLoseBackEnd,
    /// A mirror-side back end: the principal keeps serving, mirroring is suspended.
    MirrorOnly,
    /// A Standard Edition server: the whole pool (its users) is down.
    StandardEditionPoolDown,
}

/// Every step of a server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedSteps {
    /// Checks before the outage.
    pub preflight: Vec<PlannedStep>,
    /// The outage, from stopping services to services verified running.
    pub outage: Vec<PlannedStep>,
    /// What brings services back after a failure or when the budget runs out.
    pub recovery: Vec<PlannedStep>,
    /// Sent when the installer asks for a reboot (exit 3010); then the outage goes on.
    pub reboot: PlannedStep,
}

/// One step with its estimate and timeout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    /// The step: kind, command, script, exit codes.
    #[serde(flatten)]
    pub step: Step,
    /// How long it is expected to take.
    #[serde(rename = "estimate_secs", with = "secs")]
    pub estimate: Duration,
    /// Where the estimate comes from.
    pub estimate_source: EstimateSource,
    /// When the executor gives up waiting for it.
    #[serde(rename = "timeout_secs", with = "secs")]
    pub timeout: Duration,
    /// When it starts on the simulated timeline (scheduled preflight and outage steps).
    #[serde(
        rename = "at_secs",
        with = "secs::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub at: Option<Duration>,
}

/// A server the change does not cover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutOfScope {
    /// Its FQDN.
    pub fqdn: String,
    /// Its pool.
    pub pool: String,
    /// Its pool's site.
    pub site: String,
}

/// Why a document is not a plan this build can read.
#[derive(Debug, thiserror::Error)]
pub enum PlanReadError {
    /// Not JSON of the plan's shape.
    #[error("not a poolpatch plan: {0}")]
    Json(#[from] serde_json::Error),
    /// A plan of another schema version.
    #[error("this poolpatch reads plans of schema `{PLAN_SCHEMA}`, not `{0}`")]
    Schema(String),
}

impl Plan {
    /// The plan as pretty-printed JSON (the documented schema), ending with a newline.
    pub fn to_json(&self) -> String {
        match serde_json::to_string_pretty(self) {
            Ok(mut s) => {
                s.push('\n');
                s
            }
            // Serialising these types cannot fail (string keys only); should it ever,
            // produce a document a reader refuses rather than panic.
            Err(e) => format!(
                "{{\"schema\": \"error\", \"error\": {:?}}}\n",
                e.to_string()
            ),
        }
    }

    /// Reads a plan written by [`Plan::to_json`]; refuses other schema versions.
    pub fn from_json(text: &str) -> Result<Plan, PlanReadError> {
        #[derive(Deserialize)]
        struct Head {
            schema: String,
        }
        let head: Head = serde_json::from_str(text)?;
        if head.schema != PLAN_SCHEMA {
            return Err(PlanReadError::Schema(head.schema));
        }
        Ok(serde_json::from_str(text)?)
    }

    /// The scheduled servers, in timeline order.
    pub fn scheduled(&self) -> impl Iterator<Item = &ServerPlan> {
        self.servers.iter().filter(|s| s.window.is_some())
    }

    /// The servers in scope that are not scheduled.
    pub fn not_scheduled(&self) -> impl Iterator<Item = &ServerPlan> {
        self.servers.iter().filter(|s| s.window.is_none())
    }

    /// The instant at `offset` from the plan's start, when it has one.
    pub fn instant_at(&self, offset: Duration) -> Option<jiff::Timestamp> {
        self.starts_at?.checked_add(offset).ok()
    }
}
