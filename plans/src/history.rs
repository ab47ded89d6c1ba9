//! The history of past runs: how long each step really took on each server, so that a plan's
//! estimates learn from what was observed.
//!
//! A [`History`] is a value built from [`Observation`]s (a server, a step kind, a duration,
//! and the run it was seen in). For each server and step it yields, under a
//! [`HistoryPolicy`], the chosen percentile of the observed durations (nearest rank, rounded
//! up to whole seconds), with the number of samples and runs, once there are at least
//! `min_samples` of them. [`Estimator`](crate::estimates::Estimator) puts it between the
//! change file's per-server estimates and its per-pool ones; `plan()` takes it as an input
//! ([`PlanInput::with_history`](crate::plan::PlanInput::with_history)) and stays pure.
//!
//! [`read_history`] builds one from run directories (`plan.json` + `journal.jsonl`, as
//! written by `poolpatch run`). It reads only what it needs of each journal line — the
//! record version `v`, the `event` name, and of `step-finished` records `server`, `step`,
//! `ok`, `recovery` and `duration_ms` — and counts a duration only when the step succeeded
//! outside a recovery. `reboot` durations are not learnt: the journal's duration of a reboot
//! is the time to send `Restart-Computer`, not the time until the server is back. Runs of
//! rehearsals (compressed time) are left out. Whatever cannot be read is skipped and listed
//! in [`HistoryRead::skipped`]; nothing here fails or panics on any input.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use poolpatch_inventory::Fqdn;
use serde::Deserialize;

use crate::estimates::{EstimateSource, default_estimate};
use crate::plan::PLAN_SCHEMA;
use crate::procedure::StepKind;
use crate::units::format_duration;

/// The percentile used by default: 9 runs out of 10 were at least this fast.
pub const DEFAULT_PERCENTILE: u8 = 90;

/// Samples a server's step needs before its history is used, by default.
pub const DEFAULT_MIN_SAMPLES: usize = 3;

/// The journal's file name in a run directory (as written by the controller).
pub const JOURNAL_FILE: &str = "journal.jsonl";

/// The plan's file name in a run directory (as written by the controller).
pub const PLAN_FILE: &str = "plan.json";

/// The newest journal record version this reader understands. A journal with newer records
/// is skipped (their meaning may have changed), as the controller's own reader refuses them.
pub const JOURNAL_RECORD_VERSION: u32 = 1;

/// How observed durations become an estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HistoryPolicy {
    percentile: u8,
    min_samples: usize,
}

impl HistoryPolicy {
    /// A policy: the `percentile`th percentile (kept within 1..=100) of at least
    /// `min_samples` (at least 1) durations.
    pub fn new(percentile: u8, min_samples: usize) -> HistoryPolicy {
        HistoryPolicy {
            percentile: percentile.clamp(1, 100),
            min_samples: min_samples.max(1),
        }
    }

    /// The percentile, 1..=100.
    pub fn percentile(self) -> u8 {
        self.percentile
    }

    /// The fewest samples a step needs for its history to be used, at least 1.
    pub fn min_samples(self) -> usize {
        self.min_samples
    }
}

impl Default for HistoryPolicy {
    /// p90 of at least 3 samples.
    fn default() -> Self {
        HistoryPolicy::new(DEFAULT_PERCENTILE, DEFAULT_MIN_SAMPLES)
    }
}

/// One observed duration of a step on a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Which run it was seen in (any label; runs are counted by distinct labels).
    pub run: String,
    /// The server.
    pub server: Fqdn,
    /// The step.
    pub step: StepKind,
    /// How long it took.
    pub duration: Duration,
}

/// What the history says about one server's step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryEstimate {
    /// The percentile of the samples, rounded up to whole seconds.
    pub duration: Duration,
    /// Which percentile.
    pub percentile: u8,
    /// How many durations it was taken from.
    pub samples: usize,
    /// How many runs those come from.
    pub runs: usize,
}

impl HistoryEstimate {
    /// The estimate source it becomes for `server`.
    pub fn source(&self, server: &Fqdn) -> EstimateSource {
        EstimateSource::History {
            server: server.to_string(),
            percentile: self.percentile,
            samples: self.samples,
            runs: self.runs,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct StepSamples {
    /// Ascending.
    durations: Vec<Duration>,
    runs: BTreeSet<String>,
}

/// Observed step durations per server, and the policy that turns them into estimates.
/// Independent of the order observations arrive in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    policy: HistoryPolicy,
    steps: BTreeMap<(Fqdn, StepKind), StepSamples>,
    runs: BTreeSet<String>,
}

impl History {
    /// A history of `observations` under `policy`.
    pub fn from_observations(
        policy: HistoryPolicy,
        observations: impl IntoIterator<Item = Observation>,
    ) -> History {
        let mut steps: BTreeMap<(Fqdn, StepKind), StepSamples> = BTreeMap::new();
        let mut runs = BTreeSet::new();
        for o in observations {
            let entry = steps.entry((o.server, o.step)).or_default();
            entry.durations.push(o.duration);
            if !entry.runs.contains(&o.run) {
                entry.runs.insert(o.run.clone());
            }
            runs.insert(o.run);
        }
        for s in steps.values_mut() {
            s.durations.sort_unstable();
        }
        History {
            policy,
            steps,
            runs,
        }
    }

    /// The policy.
    pub fn policy(&self) -> HistoryPolicy {
        self.policy
    }

    /// The same observations under another policy.
    pub fn with_policy(mut self, policy: HistoryPolicy) -> History {
        self.policy = policy;
        self
    }

    /// Whether nothing was observed.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// How many distinct runs the observations come from.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Every duration observed for `step` on `server`, ascending.
    pub fn durations(&self, server: &Fqdn, step: StepKind) -> &[Duration] {
        self.steps
            .get(&(server.clone(), step))
            .map_or(&[], |s| s.durations.as_slice())
    }

    /// The estimate for `step` on `server`: the policy's percentile of its durations, or
    /// `None` when it has fewer than `min_samples`.
    pub fn estimate(&self, server: &Fqdn, step: StepKind) -> Option<HistoryEstimate> {
        let s = self.steps.get(&(server.clone(), step))?;
        if s.durations.len() < self.policy.min_samples {
            return None;
        }
        let d = percentile(&s.durations, self.policy.percentile)?;
        Some(HistoryEstimate {
            duration: whole_seconds_up(d),
            percentile: self.policy.percentile,
            samples: s.durations.len(),
            runs: s.runs.len(),
        })
    }
}

/// The `p`th percentile (nearest rank: the smallest sample with at least `p`% of the samples
/// at or below it) of `sorted` (ascending); `None` when empty. `p` is kept within 1..=100.
pub fn percentile(sorted: &[Duration], p: u8) -> Option<Duration> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let p = usize::from(p.clamp(1, 100));
    let rank = n.saturating_mul(p).div_ceil(100).clamp(1, n);
    sorted.get(rank - 1).copied()
}

fn whole_seconds_up(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0)))
}

/// Something [`read_history`] left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The directory (or file) left out.
    pub path: PathBuf,
    /// Why, in words.
    pub reason: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// A run directory that was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRead {
    /// The run directory.
    pub dir: PathBuf,
    /// Durations it contributed.
    pub samples: usize,
    /// Whether its journal's last line was torn (a crash mid-write, or a run still going)
    /// and dropped.
    pub torn_last_line: bool,
}

/// The result of [`read_history`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRead {
    /// What was observed.
    pub history: History,
    /// The run directories read, in the order read.
    pub runs: Vec<RunRead>,
    /// What was left out and why, in the order met.
    pub skipped: Vec<Skipped>,
}

/// Reads the history of past runs from `paths`, each a run directory (holding
/// `journal.jsonl` and `plan.json`) or a directory of run directories such as `runs/` (one
/// level; its subdirectories are read in name order). A run named twice is read once.
/// Unreadable directories, damaged journals, journals of a newer record version and
/// rehearsals are skipped and listed.
pub fn read_history<P: AsRef<Path>>(paths: &[P], policy: HistoryPolicy) -> HistoryRead {
    let mut skipped = Vec::new();
    let mut runs = Vec::new();
    let mut observations = Vec::new();
    let mut seen = BTreeSet::new();
    for path in paths {
        for dir in run_dirs(path.as_ref(), &mut skipped) {
            let key = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
            if !seen.insert(key) {
                continue;
            }
            let label = dir.display().to_string();
            match read_run(&dir, &label) {
                Ok(run) => {
                    runs.push(RunRead {
                        dir,
                        samples: run.observations.len(),
                        torn_last_line: run.torn_last_line,
                    });
                    observations.extend(run.observations);
                }
                Err(reason) => skipped.push(Skipped { path: dir, reason }),
            }
        }
    }
    HistoryRead {
        history: History::from_observations(policy, observations),
        runs,
        skipped,
    }
}

/// `path` itself when it is a run directory, else its subdirectories that are.
fn run_dirs(path: &Path, skipped: &mut Vec<Skipped>) -> Vec<PathBuf> {
    if path.join(JOURNAL_FILE).is_file() {
        return vec![path.to_path_buf()];
    }
    let mut skip = |path: &Path, reason: String| {
        skipped.push(Skipped {
            path: path.to_path_buf(),
            reason,
        });
    };
    let entries = match std::fs::read_dir(path) {
        Ok(e) => e,
        Err(e) => {
            skip(path, format!("cannot read it as a directory: {e}"));
            return Vec::new();
        }
    };
    let mut subdirs = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) if e.path().is_dir() => subdirs.push(e.path()),
            Ok(_) => {}
            Err(e) => skip(path, format!("cannot list it completely: {e}")),
        }
    }
    subdirs.sort();
    if subdirs.is_empty() {
        skip(
            path,
            format!(
                "neither a run directory (no {JOURNAL_FILE}) nor a directory of run directories"
            ),
        );
    }
    let mut runs = Vec::new();
    for d in subdirs {
        if d.join(JOURNAL_FILE).is_file() {
            runs.push(d);
        } else {
            skip(&d, format!("not a run directory (no {JOURNAL_FILE})"));
        }
    }
    runs
}

struct RunObservations {
    observations: Vec<Observation>,
    torn_last_line: bool,
}

fn read_run(dir: &Path, label: &str) -> Result<RunObservations, String> {
    let plan_text = std::fs::read_to_string(dir.join(PLAN_FILE)).map_err(|e| {
        format!("cannot read its {PLAN_FILE} ({e}); a run directory holds {PLAN_FILE} and {JOURNAL_FILE}")
    })?;
    let plan: PlanLines = serde_json::from_str(&plan_text)
        .map_err(|e| format!("{PLAN_FILE}: not a poolpatch plan: {e}"))?;
    if plan.schema != PLAN_SCHEMA {
        return Err(format!(
            "{PLAN_FILE}: this poolpatch reads plans of schema `{PLAN_SCHEMA}`, not `{}`",
            plan.schema
        ));
    }
    if let Some(why) = compressed_time(&plan) {
        return Err(format!(
            "a rehearsal: {why}; its durations are not those of production servers"
        ));
    }
    let bytes = std::fs::read(dir.join(JOURNAL_FILE))
        .map_err(|e| format!("cannot read its {JOURNAL_FILE}: {e}"))?;
    parse_journal(label, &bytes)
}

/// The minimal part of every journal record read here.
#[derive(Deserialize)]
struct Head {
    v: u32,
    event: String,
}

/// The part of a `run-started` record read here: the controller writes `rehearsal: true`
/// for runs against simulated hosts (`poolpatch demo`), and such a journal is left out.
#[derive(Deserialize)]
struct RunStartedLine {
    #[serde(default)]
    rehearsal: bool,
}

/// The part of a `step-finished` record read here.
#[derive(Deserialize)]
struct StepFinishedLine {
    server: String,
    step: String,
    ok: bool,
    recovery: bool,
    duration_ms: u64,
}

/// Observations of one journal (`bytes`), labelled `run`. A last line without its newline
/// was never completely written and is dropped; any other line that is not a record makes
/// the whole journal unusable.
fn parse_journal(run: &str, bytes: &[u8]) -> Result<RunObservations, String> {
    let ends_clean = bytes.is_empty() || bytes.ends_with(b"\n");
    let lines: Vec<&[u8]> = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let mut observations = Vec::new();
    let mut torn_last_line = false;
    for (i, line) in lines.iter().enumerate() {
        if i + 1 == lines.len() && !ends_clean {
            torn_last_line = true;
            break;
        }
        let damaged = |e: serde_json::Error| {
            format!(
                "{JOURNAL_FILE}:{}: not a journal record ({e}); the journal is damaged, so the run is left out",
                i + 1
            )
        };
        let head: Head = serde_json::from_slice(line).map_err(damaged)?;
        if head.v > JOURNAL_RECORD_VERSION {
            return Err(format!(
                "{JOURNAL_FILE}:{}: record version {} is newer than this poolpatch reads ({JOURNAL_RECORD_VERSION})",
                i + 1,
                head.v
            ));
        }
        match head.event.as_str() {
            "run-started" => {
                let r: RunStartedLine = serde_json::from_slice(line).map_err(damaged)?;
                if r.rehearsal {
                    return Err(
                        "a rehearsal (its journal says so); its durations are not those of production servers"
                            .into(),
                    );
                }
            }
            "step-finished" => {
                let r: StepFinishedLine = serde_json::from_slice(line).map_err(damaged)?;
                if !r.ok || r.recovery {
                    continue;
                }
                // A step kind this build does not know, or a name no inventory can hold,
                // cannot match any server planned here.
                let (Some(step), Ok(server)) =
                    (StepKind::from_name(&r.step), Fqdn::parse(&r.server))
                else {
                    continue;
                };
                if step == StepKind::Reboot {
                    continue;
                }
                observations.push(Observation {
                    run: run.to_string(),
                    server,
                    step,
                    duration: Duration::from_millis(r.duration_ms),
                });
            }
            _ => {}
        }
    }
    Ok(RunObservations {
        observations,
        torn_last_line,
    })
}

/// The part of `plan.json` read here: enough to tell a rehearsal's plan, and nothing that
/// later versions of the plan may reshape without changing its schema.
#[derive(Deserialize)]
struct PlanLines {
    schema: String,
    #[serde(default)]
    servers: Vec<PlanServerLines>,
}

#[derive(Deserialize)]
struct PlanServerLines {
    fqdn: String,
    steps: PlanStepsLines,
}

#[derive(Deserialize)]
struct PlanStepsLines {
    #[serde(default)]
    preflight: Vec<PlanStepLines>,
    #[serde(default)]
    outage: Vec<PlanStepLines>,
    #[serde(default)]
    recovery: Vec<PlanStepLines>,
    #[serde(default)]
    reboot: Option<PlanStepLines>,
}

#[derive(Deserialize)]
struct PlanStepLines {
    kind: String,
    estimate_secs: u64,
    estimate_source: SourceLines,
}

#[derive(Deserialize)]
struct SourceLines {
    kind: String,
}

/// Why `plan` looks like a rehearsal's (its time compressed), if it does: a step whose
/// estimate says it is the built-in default but is not. A plan with no built-in estimate
/// cannot be told apart this way.
fn compressed_time(plan: &PlanLines) -> Option<String> {
    plan.servers.iter().find_map(|s| {
        s.steps
            .preflight
            .iter()
            .chain(&s.steps.outage)
            .chain(&s.steps.recovery)
            .chain(&s.steps.reboot)
            .find_map(|st| {
                let kind = StepKind::from_name(&st.kind)?;
                let default = default_estimate(kind);
                (st.estimate_source.kind == "built-in" && st.estimate_secs != default.as_secs())
                    .then(|| {
                        format!(
                            "its {PLAN_FILE} shows compressed time ({} on {} has the built-in estimate {}, not {})",
                            kind.name(),
                            s.fqdn,
                            format_duration(Duration::from_secs(st.estimate_secs)),
                            format_duration(default)
                        )
                    })
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &[u64]) -> Vec<Duration> {
        s.iter().map(|s| Duration::from_secs(*s)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 90), None);
        assert_eq!(percentile(&secs(&[7]), 90), Some(Duration::from_secs(7)));
        // 3 samples: rank ceil(2.7) = 3, the largest.
        assert_eq!(
            percentile(&secs(&[1, 2, 3]), 90),
            Some(Duration::from_secs(3))
        );
        // 10 samples: rank 9.
        let ten = secs(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(percentile(&ten, 90), Some(Duration::from_secs(9)));
        assert_eq!(percentile(&ten, 50), Some(Duration::from_secs(5)));
        assert_eq!(percentile(&ten, 100), Some(Duration::from_secs(10)));
        // Out of range percentiles are kept within 1..=100.
        assert_eq!(percentile(&ten, 0), Some(Duration::from_secs(1)));
        assert_eq!(percentile(&ten, 255), Some(Duration::from_secs(10)));
    }

    #[test]
    fn policies_stay_in_range() {
        let p = HistoryPolicy::new(0, 0);
        assert_eq!((p.percentile(), p.min_samples()), (1, 1));
        let p = HistoryPolicy::new(200, 5);
        assert_eq!((p.percentile(), p.min_samples()), (100, 5));
        assert_eq!(HistoryPolicy::default(), HistoryPolicy::new(90, 3));
    }

    #[test]
    fn estimates_round_up_to_whole_seconds() {
        let s = Fqdn::parse("be1.example.com").unwrap();
        let h = History::from_observations(
            HistoryPolicy::new(90, 1),
            [Observation {
                run: "r".into(),
                server: s.clone(),
                step: StepKind::StopW3svc,
                duration: Duration::from_millis(30_001),
            }],
        );
        let e = h.estimate(&s, StepKind::StopW3svc).unwrap();
        assert_eq!(e.duration, Duration::from_secs(31));
        assert_eq!((e.samples, e.runs, e.percentile), (1, 1, 90));
    }

    proptest::proptest! {
        #[test]
        fn any_journal_bytes_are_read_without_panicking(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        ) {
            let _ = parse_journal("r", &bytes);
        }

        #[test]
        fn any_samples_give_an_estimate_among_them(
            ms in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..40),
            p in proptest::prelude::any::<u8>(),
            min in 0usize..50,
        ) {
            let s = Fqdn::parse("be1.example.com").unwrap();
            let policy = HistoryPolicy::new(p, min);
            let h = History::from_observations(
                policy,
                ms.iter().enumerate().map(|(i, m)| Observation {
                    run: format!("r{}", i % 3),
                    server: s.clone(),
                    step: StepKind::InstallUpdate,
                    duration: Duration::from_millis(*m),
                }),
            );
            match h.estimate(&s, StepKind::InstallUpdate) {
                None => proptest::prop_assert!(ms.len() < policy.min_samples()),
                Some(e) => {
                    proptest::prop_assert!(ms.len() >= policy.min_samples());
                    proptest::prop_assert_eq!(e.samples, ms.len());
                    proptest::prop_assert!(e.runs <= 3);
                    let lo = ms.iter().min().copied().unwrap_or(0) / 1000;
                    let hi = ms.iter().max().copied().unwrap_or(0).div_ceil(1000);
                    proptest::prop_assert!((lo..=hi).contains(&e.duration.as_secs()));
                }
            }
        }
    }

    #[test]
    fn journals_of_any_bytes_never_panic() {
        for bytes in [
            &b""[..],
            b"\n\n",
            b"{",
            b"{}\n",
            b"{\"v\":1,\"event\":\"step-finished\"}\n",
            b"\xff\xfe\n",
            b"{\"v\":1,\"event\":\"step-finished\",\"server\":\"a;b\",\"step\":\"x\",\"ok\":true,\"recovery\":false,\"duration_ms\":18446744073709551615}\n",
        ] {
            let _ = parse_journal("r", bytes);
        }
    }
}
