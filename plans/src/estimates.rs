//! How long each step is expected to take, and where that expectation comes from.
//!
//! An estimate is resolved from the most specific source that has one: the server's entry in
//! the change file's `estimates.servers` (the operator said so), the server's own history of
//! past runs (a percentile of the durations observed, once there are enough of them; see
//! [`crate::history`]), its pool's entry in `estimates.pools`, the change file's
//! `estimates.defaults`, and finally the built-in [`DEFAULT_ESTIMATES`].

use std::time::Duration;

use poolpatch_inventory::Fqdn;
use serde::{Deserialize, Serialize};

use crate::change::Change;
use crate::history::History;
use crate::procedure::StepKind;

const fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

/// Built-in estimates per step kind, in [`StepKind::ALL`] order. Chosen so that the outage
/// of a server with the default final step (22m) fits the default 25m budget with margin;
/// measure your own estate and override them in the change file.
pub const DEFAULT_ESTIMATES: [(StepKind, Duration); 11] = [
    (StepKind::CheckGroups, Duration::from_secs(5)),
    (StepKind::CheckInstaller, Duration::from_secs(30)),
    (StepKind::CheckDisk, Duration::from_secs(5)),
    (StepKind::StopServices, mins(2)),
    (StepKind::StopW3svc, Duration::from_secs(30)),
    (StepKind::InstallUpdate, mins(12)),
    (StepKind::Reboot, mins(8)),
    (StepKind::StopServicesAgain, mins(1)),
    (StepKind::StartW3svc, Duration::from_secs(30)),
    (StepKind::UpdateDatabases, mins(3)),
    (StepKind::StartServices, mins(3)),
];

/// The built-in estimate for `kind`.
pub fn default_estimate(kind: StepKind) -> Duration {
    DEFAULT_ESTIMATES
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(Duration::ZERO, |(_, d)| *d)
}

/// Where an estimate comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum EstimateSource {
    /// poolpatch's built-in default ([`DEFAULT_ESTIMATES`]).
    BuiltIn,
    /// The change file's `estimates.defaults`.
    ChangeDefault,
    /// The change file's `estimates.pools` entry of this pool.
    Pool {
        /// The pool's FQDN.
        pool: String,
    },
    /// The change file's `estimates.servers` entry of this server.
    Server {
        /// The server's FQDN.
        server: String,
    },
    /// The server's own history: the `percentile`th percentile of the durations of this
    /// step observed in past runs (successful, not part of a recovery).
    History {
        /// The server's FQDN.
        server: String,
        /// Which percentile (nearest rank), e.g. 90.
        percentile: u8,
        /// How many durations it was taken from.
        samples: usize,
        /// How many runs those durations come from.
        runs: usize,
    },
}

impl EstimateSource {
    /// A short label: `built-in`, `change`, `pool`, `server`, `history`.
    pub fn label(&self) -> &'static str {
        match self {
            EstimateSource::BuiltIn => "built-in",
            EstimateSource::ChangeDefault => "change",
            EstimateSource::Pool { .. } => "pool",
            EstimateSource::Server { .. } => "server",
            EstimateSource::History { .. } => "history",
        }
    }

    /// The label for tables: [`label`](Self::label), with the percentile and the number of
    /// samples for history (`history p90 of 5`).
    pub fn describe(&self) -> String {
        match self {
            EstimateSource::History {
                percentile,
                samples,
                ..
            } => format!("history p{percentile} of {samples}"),
            other => other.label().to_string(),
        }
    }

    /// Where to change the estimate, for advice: `estimates.pools["pool01..."]`.
    pub fn where_to_change(&self) -> String {
        match self {
            EstimateSource::BuiltIn | EstimateSource::ChangeDefault => "estimates.defaults".into(),
            EstimateSource::Pool { pool } => format!("estimates.pools[\"{pool}\"]"),
            // An explicit server estimate wins over the server's history.
            EstimateSource::Server { server } | EstimateSource::History { server, .. } => {
                format!("estimates.servers[\"{server}\"]")
            }
        }
    }
}

/// An estimate and its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estimate {
    /// The expected duration.
    pub duration: Duration,
    /// Where it comes from.
    pub source: EstimateSource,
}

/// Resolves estimates for the servers of one change.
#[derive(Debug, Clone, Copy)]
pub struct Estimator<'a> {
    change: &'a Change,
    history: Option<&'a History>,
}

impl<'a> Estimator<'a> {
    /// An estimator for `change`, without history.
    pub fn new(change: &'a Change) -> Self {
        Estimator {
            change,
            history: None,
        }
    }

    /// An estimator for `change` that also learns from `history`.
    pub fn with_history(change: &'a Change, history: Option<&'a History>) -> Self {
        Estimator { change, history }
    }

    /// The estimate of a step of `kind` on `server` of `pool`: server override, the
    /// server's history (when it has enough samples), pool override, change default,
    /// built-in default, in that order.
    pub fn estimate(&self, pool: &Fqdn, server: &Fqdn, kind: StepKind) -> Estimate {
        let e = &self.change.estimates;
        if let Some(d) = e.servers.get(server).and_then(|o| o.steps.get(&kind)) {
            return Estimate {
                duration: *d,
                source: EstimateSource::Server {
                    server: server.to_string(),
                },
            };
        }
        if let Some(h) = self.history.and_then(|h| h.estimate(server, kind)) {
            return Estimate {
                duration: h.duration,
                source: EstimateSource::History {
                    server: server.to_string(),
                    percentile: h.percentile,
                    samples: h.samples,
                    runs: h.runs,
                },
            };
        }
        if let Some(d) = e.pools.get(pool).and_then(|o| o.steps.get(&kind)) {
            return Estimate {
                duration: *d,
                source: EstimateSource::Pool {
                    pool: pool.to_string(),
                },
            };
        }
        if let Some(d) = e.defaults.get(&kind) {
            return Estimate {
                duration: *d,
                source: EstimateSource::ChangeDefault,
            };
        }
        Estimate {
            duration: default_estimate(kind),
            source: EstimateSource::BuiltIn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::change_from_str;

    #[test]
    fn defaults_cover_every_kind_and_fit_the_default_budget() {
        for (i, k) in StepKind::ALL.iter().enumerate() {
            assert_eq!(DEFAULT_ESTIMATES[i].0, *k);
        }
        let outage: Duration = DEFAULT_ESTIMATES
            .iter()
            .filter(|(k, _)| k.in_outage() && *k != StepKind::Reboot)
            .map(|(_, d)| *d)
            .sum();
        assert_eq!(outage, mins(22));
        assert!(outage < crate::change::DEFAULT_BUDGET);
    }

    #[test]
    fn history_sources_are_described_and_overridden_per_server() {
        let h = EstimateSource::History {
            server: "s.example.com".into(),
            percentile: 90,
            samples: 5,
            runs: 4,
        };
        assert_eq!(h.label(), "history");
        assert_eq!(h.describe(), "history p90 of 5");
        assert_eq!(h.where_to_change(), "estimates.servers[\"s.example.com\"]");
        assert_eq!(EstimateSource::BuiltIn.describe(), "built-in");
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            r#"{"kind":"history","server":"s.example.com","percentile":90,"samples":5,"runs":4}"#
        );
    }

    #[test]
    fn most_specific_source_wins() {
        let text = "version: 1\nname: x\nupdate:\n  remote_dir: /srv/u\n  installers:\n    sfb2015: { file: a.exe, version: \"6.0.1.2\", sha256: \"0000000000000000000000000000000000000000000000000000000000000000\" }\nestimates:\n  defaults: { install-update: 10m, reboot: 6m }\n  pools: { p.example.com: { install-update: 15m, reboot: 7m } }\n  servers: { s.example.com: { install-update: 20m } }\n";
        let change = change_from_str("c.yaml", text).unwrap();
        let e = Estimator::new(&change);
        let p = Fqdn::parse("p.example.com").unwrap();
        let s = Fqdn::parse("s.example.com").unwrap();
        let other = Fqdn::parse("o.example.com").unwrap();
        let get = |pool: &Fqdn, server: &Fqdn, k| e.estimate(pool, server, k);
        assert_eq!(get(&p, &s, StepKind::InstallUpdate).duration, mins(20));
        assert_eq!(
            get(&p, &s, StepKind::InstallUpdate).source,
            EstimateSource::Server {
                server: "s.example.com".into()
            }
        );
        assert_eq!(get(&p, &s, StepKind::Reboot).duration, mins(7));
        assert_eq!(get(&p, &s, StepKind::Reboot).source.label(), "pool");
        assert_eq!(
            get(&other, &other, StepKind::Reboot).source,
            EstimateSource::ChangeDefault
        );
        assert_eq!(
            get(&other, &other, StepKind::StopW3svc).source,
            EstimateSource::BuiltIn
        );
        assert_eq!(
            get(&other, &other, StepKind::StopW3svc).duration,
            Duration::from_secs(30)
        );
    }
}
