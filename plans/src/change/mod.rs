//! The change file: which update, where, how much outage is allowed, and how to proceed.
//!
//! Read in two stages, each reporting *every* problem with file, line, column, field path and
//! what would be right:
//! 1. [`load_change`] / [`change_from_str`]: grammar and consistency of the file on its own
//!    (durations, sizes, paths, digests, budget below threshold, ...);
//! 2. [`Change::check_against`]: names that must exist in the inventory (sites, pools and
//!    servers in `scope` and `estimates`), and an installer for every product in scope.
//!
//! [`Change::verify_installers`] reads the installer files and checks their SHA-256; it is
//! separate because it reads (possibly large) files, which planning does not need.
//!
//! ```
//! let text = r#"
//! version: 1
//! name: "SfB 2015 CU 2024-07"
//! update:
//!   remote_dir: 'C:\ProgramData\poolpatch\updates'
//!   installers:
//!     sfb2015:
//!       file: ./SkypeServerUpdateInstaller.exe
//!       sha256: "0000000000000000000000000000000000000000000000000000000000000000"
//!       version: "6.0.9319.690"
//! outage: { budget: 20m }
//! "#;
//! let change = poolpatch_plans::change::change_from_str("change.yaml", text).unwrap();
//! assert_eq!(change.outage.budget.as_secs(), 20 * 60);
//! assert_eq!(change.concurrency.pools, 1);
//! ```

mod check;
mod decode;
mod notify;
mod rollout;
mod values;

pub use notify::{
    DEFAULT_WEBHOOK_RETRIES, DEFAULT_WEBHOOK_TIMEOUT, MAX_WEBHOOK_RETRIES, MAX_WEBHOOK_TIMEOUT,
    Notify, NotifyEvent, Webhook, WebhookUrl,
};
pub use rollout::{Blackout, DEFAULT_HEALTH_TIMEOUT, FailureLimit, HealthCheck, MAX_BAKE, Stage};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use poolpatch_inventory::decode::At;
use poolpatch_inventory::{Diagnostics, Fqdn, Pool, Pos, Product, Server};
use serde::{Deserialize, Serialize};

use crate::procedure::{FinalStep, StepKind};
use crate::units::RemoteDir;

/// The change-file format version this build reads.
pub const CHANGE_FORMAT_VERSION: u32 = 1;

/// Outage threshold used when the file sets none: Lync Server 2013 and Skype for Business
/// Server put users into resiliency mode when a back end has been unavailable this long.
pub const DEFAULT_THRESHOLD: Duration = Duration::from_secs(30 * 60);

/// The highest threshold accepted: the product's own resiliency-mode threshold. A lower value
/// adds margin; a higher one would plan outages that users notice.
pub const MAX_THRESHOLD: Duration = DEFAULT_THRESHOLD;

/// Outage budget used when the file sets none.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(25 * 60);

/// Free space required on the staging drive when the file sets none (4 GiB).
pub const DEFAULT_MIN_FREE_BYTES: u64 = 4 << 30;

/// SSH connect timeout used when the file sets none.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The most pools the file may ask to patch at once.
pub const MAX_CONCURRENT_POOLS: u32 = 1000;

/// A validated change.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The change file as the operator named it (used in diagnostics).
    pub file: String,
    /// The directory installer `file:` paths are relative to (the change file's directory).
    pub base_dir: PathBuf,
    /// Format version of the file (`version:`), currently always 1.
    pub version: u32,
    /// The change's title, shown in the plan and reports.
    pub name: String,
    /// What is installed, and where it is staged.
    pub update: Update,
    /// Which servers the change covers.
    pub scope: Scope,
    /// Outage threshold, budget, and what happens when the budget runs out.
    pub outage: OutagePolicy,
    /// What a failure stops.
    pub on_failure: OnFailure,
    /// How many pools are patched at once.
    pub concurrency: Concurrency,
    /// How each server's procedure ends.
    pub final_step: FinalStep,
    /// Step duration estimates that override the built-in defaults.
    pub estimates: EstimateOverrides,
    /// Timeouts for the executor.
    pub timeouts: Timeouts,
    /// The rollout's stages, in order; empty: one stage of every server in scope. A server
    /// belongs to the first stage that names it (see [`Change::stage_of`]).
    pub stages: Vec<Stage>,
    /// Where `stages:` is written (or the file's start), for problems of the list as a whole.
    pub stages_pos: Pos,
    /// `failure_limit`, as written; see [`Change::failure_limit_servers`].
    pub failure_limit: Option<FailureLimit>,
    /// Change freezes: local dates during which nothing may run.
    pub blackouts: Vec<Blackout>,
    /// Webhooks told about the run's important events (`notify:`); none by default.
    pub notify: Notify,
}

/// The update: staging directory, installers and the versions they bring.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// Where the installer is staged on each server.
    pub remote_dir: RemoteDir,
    /// Free space required on the staging drive, in bytes.
    pub min_free_bytes: u64,
    /// The installer of each product, by product.
    pub installers: BTreeMap<Product, Installer>,
    /// Where `update.installers` (or `update`) is written, for "no installer for ..." errors.
    pub installers_pos: Pos,
}

/// One product's installer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installer {
    /// The local file to upload, resolved against [`Change::base_dir`].
    pub file: PathBuf,
    /// The path as written in the change file.
    pub file_as_written: String,
    /// Expected SHA-256, lower-case hex.
    pub sha256: String,
    /// The version servers of this product report once updated (`6.0.9319.690`): each
    /// product has its own version line, so there is one per installer.
    pub version: String,
    /// Where the installer is written.
    pub pos: Pos,
}

/// Which servers the change covers. Empty lists everywhere mean every server of the
/// inventory; otherwise a server is in scope if its site, its pool or itself is listed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scope {
    /// Site names.
    pub sites: Vec<At<String>>,
    /// Pool FQDNs.
    pub pools: Vec<At<Fqdn>>,
    /// Server FQDNs (Back End or Standard Edition servers).
    pub servers: Vec<At<Fqdn>>,
}

impl Scope {
    /// Whether the scope covers everything (no `scope:` in the file).
    pub fn is_everything(&self) -> bool {
        self.sites.is_empty() && self.pools.is_empty() && self.servers.is_empty()
    }

    /// Whether `server` of `pool` is in scope. Linear in the scope's length; for many
    /// lookups build a [`ScopeIndex`].
    pub fn contains(&self, pool: &Pool, server: &Server) -> bool {
        self.is_everything()
            || self.sites.iter().any(|s| s.value == pool.site)
            || self.pools.iter().any(|p| p.value == pool.fqdn)
            || self.servers.iter().any(|s| s.value == server.fqdn)
    }

    /// An index for fast lookups.
    pub fn index(&self) -> ScopeIndex<'_> {
        ScopeIndex {
            everything: self.is_everything(),
            sites: self.sites.iter().map(|s| s.value.as_str()).collect(),
            pools: self.pools.iter().map(|p| &p.value).collect(),
            servers: self.servers.iter().map(|s| &s.value).collect(),
        }
    }
}

/// A [`Scope`] prepared for many lookups (O(log n) each).
#[derive(Debug, Clone)]
pub struct ScopeIndex<'a> {
    everything: bool,
    sites: std::collections::BTreeSet<&'a str>,
    pools: std::collections::BTreeSet<&'a Fqdn>,
    servers: std::collections::BTreeSet<&'a Fqdn>,
}

impl ScopeIndex<'_> {
    /// Whether `server` of `pool` is in scope.
    pub fn contains(&self, pool: &Pool, server: &Server) -> bool {
        self.everything
            || self.sites.contains(pool.site.as_str())
            || self.pools.contains(&pool.fqdn)
            || self.servers.contains(&server.fqdn)
    }
}

/// Outage threshold, budget and what happens when the budget runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutagePolicy {
    /// Outage length at which users notice (resiliency mode); at most 30 minutes.
    pub threshold: Duration,
    /// The longest outage poolpatch plans for and allows; always below the threshold.
    pub budget: Duration,
    /// What the watchdog does when a server's outage reaches the budget.
    pub on_budget_exhausted: OnBudgetExhausted,
    /// What happens to servers in flight when the run is stopped (`poolpatch ctl abort`,
    /// SIGINT, SIGTERM): `finish` their procedure (the default) or `restore` their services
    /// at once (a step that must not be interrupted is waited for first).
    pub on_stop: OnBudgetExhausted,
}

/// What the watchdog does when an outage reaches the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OnBudgetExhausted {
    /// Stop the procedure after the running step (install and database steps are never
    /// interrupted) and bring services back.
    #[default]
    Restore,
    /// Let the procedure finish, and report the overrun.
    Finish,
}

impl OnBudgetExhausted {
    /// The spellings used in the change file.
    pub const NAMES: [&'static str; 2] = ["restore", "finish"];

    /// The spelling used in the change file.
    pub fn name(self) -> &'static str {
        match self {
            OnBudgetExhausted::Restore => "restore",
            OnBudgetExhausted::Finish => "finish",
        }
    }
}

/// What a failed server stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Stop the failed server's pool (and pools that must come after it); others go on.
    #[default]
    HaltPool,
    /// Stop everything: no new server starts anywhere.
    HaltAll,
}

impl OnFailure {
    /// The spellings used in the change file.
    pub const NAMES: [&'static str; 2] = ["halt-pool", "halt-all"];

    /// The spelling used in the change file.
    pub fn name(self) -> &'static str {
        match self {
            OnFailure::HaltPool => "halt-pool",
            OnFailure::HaltAll => "halt-all",
        }
    }
}

/// How much happens at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concurrency {
    /// Pools patched at the same time (within a pool, servers are always one at a time).
    pub pools: u32,
}

/// Step duration estimates from the change file, by step kind.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EstimateOverrides {
    /// Replace the built-in defaults for every server.
    pub defaults: BTreeMap<StepKind, Duration>,
    /// Per pool (servers of that pool).
    pub pools: BTreeMap<Fqdn, Overrides>,
    /// Per server.
    pub servers: BTreeMap<Fqdn, Overrides>,
}

/// Estimates for one pool or server, with where they are written.
#[derive(Debug, Clone, PartialEq)]
pub struct Overrides {
    /// Where the pool's or server's name is written.
    pub pos: Pos,
    /// Its field path (`estimates.pools["pool01.ams.contoso.com"]`).
    pub field: String,
    /// The estimates, by step kind.
    pub steps: BTreeMap<StepKind, Duration>,
}

/// Timeouts for the executor.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeouts {
    /// SSH connection (TCP, key exchange, authentication).
    pub connect: Duration,
    /// Per step kind; a kind not listed gets the outage budget.
    pub steps: BTreeMap<StepKind, Duration>,
}

impl Change {
    /// The timeout of a step of `kind`: the one set in `timeouts.steps`, else the budget.
    pub fn step_timeout(&self, kind: StepKind) -> Duration {
        self.timeouts
            .steps
            .get(&kind)
            .copied()
            .unwrap_or(self.outage.budget)
    }

    /// The stage (index into [`Change::stages`]) of `server` of `pool`: the first whose scope
    /// contains it, or a last stage without scope; `None` when the change has no stages, or
    /// names the server in none of them.
    pub fn stage_of(&self, pool: &Pool, server: &Server) -> Option<usize> {
        self.stages.iter().position(|s| {
            s.scope
                .as_ref()
                .is_none_or(|scope| scope.contains(pool, server))
        })
    }

    /// How many failed servers halt the rollout, for `in_scope` servers in scope:
    /// `failure_limit` when written; else 1 when the change has stages (a canary stops at
    /// its first failure); else `None` (only `on_failure` applies).
    pub fn failure_limit_servers(&self, in_scope: usize) -> Option<usize> {
        match self.failure_limit {
            Some(l) => Some(l.servers(in_scope)),
            None if !self.stages.is_empty() => Some(1),
            None => None,
        }
    }

    /// The blackouts that close `site`.
    pub fn blackouts_of<'a>(&'a self, site: &'a str) -> impl Iterator<Item = &'a Blackout> + 'a {
        self.blackouts.iter().filter(move |b| b.applies_to(site))
    }

    /// Checks names against `inventory`: see [`check`](Change::check_against) for the rules.
    pub fn check_against(
        &self,
        inventory: &poolpatch_inventory::Inventory,
    ) -> Result<(), Diagnostics> {
        check::check_against(self, inventory)
    }

    /// Reads every installer file and compares its SHA-256 with the one in the change file.
    pub fn verify_installers(&self) -> Result<(), Diagnostics> {
        check::verify_installers(self)
    }
}

/// Reads and validates the change file at `path`. Installer paths are relative to its
/// directory.
pub fn load_change(path: &Path) -> Result<Change, Diagnostics> {
    let text =
        poolpatch_inventory::load::read_text(path).map_err(|d| Diagnostics { items: vec![d] })?;
    change_from_str(&path.display().to_string(), &text)
}

/// Validates the change file `text`, named `name` in diagnostics. Installer paths are
/// relative to the directory part of `name` (the current directory if it has none).
pub fn change_from_str(name: &str, text: &str) -> Result<Change, Diagnostics> {
    let base_dir = Path::new(name)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    decode::decode(name, text, base_dir)
}
