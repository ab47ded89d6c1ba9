//! Going on with a server that was in flight when the controller stopped.
//!
//! The journal says where the controller *was*; the host says where it *is*. Resume asks the
//! host (the read-only probe of `plans::procedure::probe`) and follows it:
//!
//! | the host | goes on with |
//! |---|---|
//! | the installer still runs | waits for it (polling), then asks again |
//! | update not installed | step 4 (stopping services again is harmless), the whole procedure |
//! | installed, restart pending | the restart, then step 9 |
//! | installed, databases stale | step 9 |
//! | installed, databases current, services down | start w3svc, start services and verify |
//! | all of it done and running | nothing: the outage is over |
//!
//! The outage clock goes on from the journaled start, so the watchdog and the breach alarm
//! fire when they would have. If the watchdog had already acted with `restore`, resume
//! restores. If services were found running (started by hand), the outage of the journal is
//! over; when work is left, a new outage starts.

use std::time::Duration;

use poolpatch_plans::procedure::{self, Step, StepKind};
use tokio::time::{Instant, sleep};

use super::{OutageClock, ServerOutcome, ServerRun, Waited, describe_failure, is_ok, ms};
use crate::journal::{Event, WatchdogAction};

/// What the probe found on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// Lync services not Running.
    pub services_down: u32,
    /// Whether w3svc runs.
    pub w3svc_running: bool,
    /// Whether the update installer still runs.
    pub installer_running: bool,
    /// The installed version.
    pub version: String,
    /// Databases not at the expected version.
    pub databases_stale: u32,
    /// Whether a restart is pending.
    pub reboot_pending: bool,
}

impl HostFacts {
    /// Reads the probe's `key=value` lines; every key must be there.
    pub fn parse(stdout: &str) -> Result<HostFacts, String> {
        let get = |key: &str| -> Result<String, String> {
            stdout
                .lines()
                .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
                .map(|v| v.trim().to_string())
                .ok_or_else(|| format!("the probe did not report `{key}`"))
        };
        let number = |v: String, key: &str| {
            v.parse::<u32>()
                .map_err(|_| format!("the probe reported `{key}={v}`, not a number"))
        };
        let flag = |v: String| v.eq_ignore_ascii_case("true");
        Ok(HostFacts {
            services_down: number(get("services-down")?, "services-down")?,
            w3svc_running: get("w3svc")?.eq_ignore_ascii_case("running"),
            installer_running: flag(get("installer-running")?),
            version: get("version")?,
            databases_stale: number(get("databases-stale")?, "databases-stale")?,
            reboot_pending: flag(get("reboot-pending")?),
        })
    }

    /// In words, for the journal.
    pub fn describe(&self, target_version: &str) -> String {
        format!(
            "{} Lync service(s) down, w3svc {}, installer {}, version {} ({}), {} stale database(s){}",
            self.services_down,
            if self.w3svc_running {
                "running"
            } else {
                "stopped"
            },
            if self.installer_running {
                "RUNNING"
            } else {
                "not running"
            },
            self.version,
            if self.version == target_version {
                "updated"
            } else {
                "not updated"
            },
            self.databases_stale,
            if self.reboot_pending {
                ", restart pending"
            } else {
                ""
            }
        )
    }
}

/// What the journal says of a server that was in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// How long ago its outage started (journaled start to now).
    pub down_for: Duration,
    /// What the watchdog did, if it acted.
    pub watchdog: Option<WatchdogAction>,
    /// Whether a breach was journaled.
    pub breached: bool,
    /// Steps of the outage that finished successfully.
    pub finished_ok: Vec<StepKind>,
}

impl ServerRun<'_> {
    /// Asks the host, and goes on from where it really is (see the module documentation).
    pub async fn resume_outage(&mut self, in_flight: &InFlight) -> ServerOutcome {
        let now = Instant::now();
        let start = now.checked_sub(in_flight.down_for).unwrap_or(now);
        let mut clock = OutageClock::starting(start, &self.policy);
        clock.breach_reported = in_flight.breached;
        clock.watchdog_fired = in_flight.watchdog.is_some();
        let all: Vec<StepKind> = self.job.procedure.outage.iter().map(|s| s.kind).collect();

        let facts = match self.probe_until_installer_done(&mut clock).await {
            Ok(f) => f,
            Err(Probed::Abandoned) => return self.restore(&mut clock, all, None, None).await,
            Err(Probed::Failed(reason)) => {
                // Not knowing the state, the safe thing is to bring services back.
                return self
                    .restore(&mut clock, all, Some(StepKind::Probe), Some(reason))
                    .await;
            }
        };
        let target = self.job.target_version.clone();
        let found = facts.describe(&target);
        let installed = facts.version == target;
        let mut notes = Vec::new();
        if installed && !in_flight.finished_ok.contains(&StepKind::InstallUpdate) {
            notes.push(
                "the update is installed although the journal did not see the installer finish"
                    .to_string(),
            );
        }
        let services_up = facts.services_down == 0;
        if services_up {
            notes.push("Lync services were running (started by hand?)".to_string());
        }

        if in_flight.watchdog == Some(WatchdogAction::Restore) && !services_up {
            notes.push("the watchdog had acted: restoring services".to_string());
            self.resumed(found, None, &notes).await;
            let remaining = self.remaining_after(installed, &facts);
            return self.restore(&mut clock, remaining, None, None).await;
        }

        let complete = installed
            && facts.databases_stale == 0
            && !facts.reboot_pending
            && services_up
            && facts.w3svc_running;
        if complete {
            // Everything is done and running: the outage of the journal is over.
            self.resumed(found, None, &notes).await;
            let outage = clock.start.elapsed();
            let _ = self
                .recorder
                .record(Event::OutageEnded {
                    server: self.job.name(),
                    outage_ms: ms(outage),
                })
                .await;
            let _ = self
                .recorder
                .record(Event::ServerDone {
                    server: self.job.name(),
                    outage_ms: ms(outage),
                })
                .await;
            return ServerOutcome::Done {
                outage,
                overrun: clock.watchdog_fired,
            };
        }
        let steps = self.steps_from(installed, &facts);
        self.resumed(found, steps.first().map(|s| s.kind), &notes)
            .await;
        if services_up {
            // The journal's outage ended when services came back; the work left is a new one.
            let _ = self
                .recorder
                .record(Event::OutageEnded {
                    server: self.job.name(),
                    outage_ms: ms(clock.start.elapsed()),
                })
                .await;
            let _ = self
                .recorder
                .record(Event::OutageStarted {
                    server: self.job.name(),
                    pool: self.job.server.pool.to_string(),
                })
                .await;
            clock = OutageClock::starting(Instant::now(), &self.policy);
        }
        self.outage_steps(&mut clock, steps).await
    }

    async fn resumed(&self, found: String, continue_with: Option<StepKind>, notes: &[String]) {
        let _ = self
            .recorder
            .record(Event::ServerResumed {
                server: self.job.name(),
                found,
                continue_with,
                note: notes.join("; "),
            })
            .await;
    }

    /// The outage steps left for a host in this state.
    fn steps_from(&self, installed: bool, facts: &HostFacts) -> Vec<Step> {
        let outage = &self.job.procedure.outage;
        let from_kind = if !installed {
            StepKind::StopServices
        } else if facts.reboot_pending || facts.databases_stale > 0 {
            StepKind::StopServicesAgain
        } else {
            StepKind::StartW3svc
        };
        let from = outage.iter().position(|s| s.kind == from_kind).unwrap_or(0);
        let mut steps: Vec<Step> = outage[from..].to_vec();
        if installed && !facts.reboot_pending && facts.databases_stale == 0 {
            steps.retain(|s| s.kind != StepKind::UpdateDatabases);
        }
        if installed && facts.reboot_pending {
            steps.insert(0, self.job.procedure.reboot.clone());
        }
        steps
    }

    fn remaining_after(&self, installed: bool, facts: &HostFacts) -> Vec<StepKind> {
        self.steps_from(installed, facts)
            .iter()
            .map(|s| s.kind)
            .collect()
    }

    /// Runs the probe; while the installer still runs, waits and asks again.
    async fn probe_until_installer_done(
        &mut self,
        clock: &mut OutageClock,
    ) -> Result<HostFacts, Probed> {
        let probe = procedure::probe(&self.job.server, self.job.product);
        loop {
            if self.connection().await.is_err() {
                self.reconnect_under_alarms(clock)
                    .await
                    .map_err(|e| Probed::Failed(format!("cannot reach the server: {e}")))?;
            }
            let out = match self.step_under_alarms(clock, &probe, &[], false).await {
                Waited::Finished(out) => out,
                Waited::Abandoned => return Err(Probed::Abandoned),
                Waited::Stopped => return Err(Probed::Failed(super::STOPPED.into())),
            };
            if !is_ok(&probe, &out) {
                return Err(Probed::Failed(describe_failure(&probe, &out)));
            }
            let facts =
                HostFacts::parse(&String::from_utf8_lossy(&out.stdout)).map_err(Probed::Failed)?;
            if !facts.installer_running {
                return Ok(facts);
            }
            // The installer must not be interrupted, nor run twice: wait for it.
            sleep(self.policy.reconnect_every).await;
        }
    }

    /// Before restoring services after the installer step was lost (connection dropped,
    /// timed out), waits while the installer still runs on the host: starting services
    /// under a running installer would break the update.
    pub(super) async fn wait_for_installer(&mut self, clock: &mut OutageClock) {
        let _ = self.probe_until_installer_done(clock).await;
    }
}

impl ServerRun<'_> {
    /// A health check during a stage's bake: every Lync service and w3svc must be running
    /// (the read-only probe). `Err` says what is wrong.
    pub async fn health_check(&mut self) -> Result<(), String> {
        let probe = procedure::probe(&self.job.server, self.job.product);
        let out = self.send(&probe).await;
        if !is_ok(&probe, &out) {
            return Err(describe_failure(&probe, &out));
        }
        let facts = HostFacts::parse(&String::from_utf8_lossy(&out.stdout))?;
        if facts.services_down > 0 || !facts.w3svc_running {
            return Err(format!(
                "{}: {} Lync service(s) not running, w3svc {}",
                self.job.name(),
                facts.services_down,
                if facts.w3svc_running {
                    "running"
                } else {
                    "stopped"
                }
            ));
        }
        Ok(())
    }
}

enum Probed {
    /// The watchdog abandoned the probe (restore policy).
    Abandoned,
    /// The host's state could not be read.
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_parse_from_the_probe_output() {
        let out = "services-down=3\r\nw3svc=Stopped\r\ninstaller-running=False\r\nversion=6.0.9319.690\r\ndatabases-stale=1\r\nreboot-pending=False\r\n";
        let f = HostFacts::parse(out).unwrap();
        assert_eq!(f.services_down, 3);
        assert!(!f.w3svc_running && !f.installer_running && !f.reboot_pending);
        assert_eq!(f.version, "6.0.9319.690");
        assert_eq!(f.databases_stale, 1);
        assert!(HostFacts::parse("services-down=x\n").is_err());
        assert!(
            HostFacts::parse("w3svc=Running\n")
                .unwrap_err()
                .contains("services-down")
        );
    }
}
