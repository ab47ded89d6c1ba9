//! What must hold, besides the safety rules, before the next server starts: its
//! maintenance window, its canary stage, and the failure limit.
//!
//! - **Windows.** A server of a calendar (a site's or a pool's weekly windows and blackouts,
//!   as the plan lists its openings) starts only inside an opening that its predicted outage
//!   fits before the opening closes; otherwise it waits for the next opening it fits in. No
//!   opening left within the plan's horizon: it is skipped with the reason.
//! - **Stages.** A server of a stage starts only when every earlier stage has *passed*: all
//!   its servers succeeded, then its bake time went by with health checks (all Lync services
//!   running, w3svc running, and the stage's own command if any) repeating and holding.
//! - **Failure limit.** When as many servers have failed as the change allows, nothing more
//!   starts anywhere.
//!
//! Times are the run clock's (`RunClock::now`), so a rehearsal that pretends another time
//! (`--now`) and runs faster meets its windows as it should.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use poolpatch_inventory::Fqdn;
use poolpatch_plans::Plan;
use poolpatch_plans::plan::Opening;

/// Where a stage stands.
#[derive(Debug, Clone, PartialEq)]
pub enum StageState {
    /// Servers of it are still to run or running.
    Running,
    /// All its servers succeeded; the bake runs until then.
    Baking {
        /// When the bake ends (run clock).
        until: Timestamp,
        /// When the next health check is due (run clock).
        next_check: Timestamp,
    },
    /// Passed: later stages may start.
    Passed,
    /// Failed: the rollout halts.
    Failed(String),
}

/// One stage of the rollout.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Its name.
    pub name: String,
    /// Its scheduled servers.
    pub servers: Vec<Fqdn>,
    /// Its bake time.
    pub bake: Duration,
    /// The stage's own health command, and its timeout.
    pub health: Option<(String, Duration)>,
    /// Where it stands.
    pub state: StageState,
}

/// What the plan says of windows, stages and failures.
#[derive(Debug, Clone, Default)]
pub struct Gates {
    openings: BTreeMap<String, Vec<Opening>>,
    calendar_of: BTreeMap<Fqdn, String>,
    stage_of: BTreeMap<Fqdn, usize>,
    /// The stages, in order.
    pub stages: Vec<Stage>,
    /// Failed servers that halt the rollout.
    pub failure_limit: Option<usize>,
}

/// The window gate's answer for one server now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowGate {
    /// No calendar binds it, or it fits the opening it is in.
    Open,
    /// It fits an opening that starts later.
    WaitUntil {
        /// The calendar.
        calendar: String,
        /// When that opening starts.
        opens_at: Timestamp,
    },
    /// No opening left in the plan fits it.
    Never {
        /// Why.
        reason: String,
    },
}

/// The stage gate's answer for one server now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageGate {
    /// Every earlier stage passed.
    Open,
    /// An earlier stage is still running or baking.
    Wait,
    /// An earlier stage failed: it never starts.
    Never(String),
}

impl Gates {
    /// Reads the windows, stages and failure limit of `plan`.
    pub fn from_plan(plan: &Plan) -> Gates {
        let mut g = Gates::default();
        if let Some(w) = &plan.windows {
            for cal in &w.calendars {
                g.openings.insert(cal.id.clone(), cal.openings.clone());
            }
        }
        for s in plan.scheduled() {
            let Ok(fqdn) = Fqdn::parse(&s.fqdn) else {
                continue;
            };
            if let Some(c) = &s.calendar {
                g.calendar_of.insert(fqdn.clone(), c.clone());
            }
            if let Some(stage) = &s.stage
                && let Some(i) = plan.stages.iter().position(|st| &st.name == stage)
            {
                g.stage_of.insert(fqdn, i);
            }
        }
        for st in &plan.stages {
            let servers: Vec<Fqdn> = st
                .servers
                .iter()
                .filter_map(|s| Fqdn::parse(s).ok())
                .filter(|s| g.stage_of.contains_key(s))
                .collect();
            g.stages.push(Stage {
                name: st.name.clone(),
                servers,
                bake: st.bake,
                health: st.health.as_ref().map(|h| (h.command.clone(), h.timeout)),
                state: StageState::Running,
            });
        }
        g.failure_limit = plan.policy.failure_limit.as_ref().map(|f| f.servers);
        g
    }

    /// May `server`, whose outage is predicted to last `predicted`, start at `now`?
    pub fn window(&self, server: &Fqdn, predicted: Duration, now: Timestamp) -> WindowGate {
        let Some(cal) = self.calendar_of.get(server) else {
            return WindowGate::Open;
        };
        let Some(openings) = self.openings.get(cal) else {
            return WindowGate::Open;
        };
        let fits = |o: &Opening| {
            let from = if now > o.opens_at { now } else { o.opens_at };
            o.closes_at.duration_since(from)
                >= jiff::SignedDuration::try_from(predicted).unwrap_or(jiff::SignedDuration::MAX)
        };
        for o in openings {
            if o.closes_at <= now || !fits(o) {
                continue;
            }
            if o.opens_at <= now {
                return WindowGate::Open;
            }
            return WindowGate::WaitUntil {
                calendar: cal.clone(),
                opens_at: o.opens_at,
            };
        }
        WindowGate::Never {
            reason: format!(
                "no opening of {cal} left in the plan fits its predicted outage of {}",
                humantime::format_duration(Duration::from_secs(predicted.as_secs()))
            ),
        }
    }

    /// The stage of `server`, if the change has stages.
    pub fn stage_of(&self, server: &Fqdn) -> Option<usize> {
        self.stage_of.get(server).copied()
    }

    /// May a server of stage `stage` start?
    pub fn stage(&self, stage: Option<usize>) -> StageGate {
        let Some(k) = stage else {
            return StageGate::Open;
        };
        for earlier in &self.stages[..k.min(self.stages.len())] {
            match &earlier.state {
                StageState::Passed => {}
                StageState::Failed(why) => {
                    return StageGate::Never(format!("stage {} failed ({why})", earlier.name));
                }
                StageState::Running | StageState::Baking { .. } => return StageGate::Wait,
            }
        }
        StageGate::Open
    }
}

/// Runs a stage's own health command on the controller (`sh -c`), with the stage's name
/// and servers in `POOLPATCH_STAGE` and `POOLPATCH_SERVERS`: exit 0 within `timeout` is
/// healthy.
pub async fn run_health_command(
    command: &str,
    timeout: Duration,
    stage: &str,
    servers: &[String],
) -> Result<(), String> {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("POOLPATCH_STAGE", stage)
        .env("POOLPATCH_SERVERS", servers.join(" "))
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(timeout, child).await {
        Err(_) => Err(format!(
            "the health command `{command}` did not finish within {}",
            humantime::format_duration(timeout)
        )),
        Ok(Err(e)) => Err(format!("cannot run the health command `{command}`: {e}")),
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => Err(format!(
            "the health command `{command}` failed ({}): {}",
            out.status,
            crate::journal::tail(&[out.stdout, out.stderr].concat(), 5, 600)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn gates() -> Gates {
        let mut g = Gates::default();
        let o = |a: &str, b: &str| Opening {
            opens_at: ts(a),
            closes_at: ts(b),
            opens: Duration::ZERO,
            closes: Duration::ZERO,
            opens_local: String::new(),
            closes_local: String::new(),
        };
        g.openings.insert(
            "site amsterdam".into(),
            vec![
                o("2026-11-28T21:00:00Z", "2026-11-29T03:00:00Z"),
                o("2026-12-05T21:00:00Z", "2026-12-06T03:00:00Z"),
            ],
        );
        g.calendar_of.insert(
            Fqdn::parse("be01.ams.contoso.com").unwrap(),
            "site amsterdam".into(),
        );
        g
    }

    #[test]
    fn a_server_starts_only_when_its_outage_fits_the_opening() {
        let g = gates();
        let be = Fqdn::parse("be01.ams.contoso.com").unwrap();
        let other = Fqdn::parse("se01.tyo.contoso.com").unwrap();
        let outage = Duration::from_secs(22 * 60);
        assert_eq!(
            g.window(&other, outage, ts("2026-11-25T12:00:00Z")),
            WindowGate::Open
        );
        assert_eq!(
            g.window(&be, outage, ts("2026-11-25T12:00:00Z")),
            WindowGate::WaitUntil {
                calendar: "site amsterdam".into(),
                opens_at: ts("2026-11-28T21:00:00Z")
            }
        );
        assert_eq!(
            g.window(&be, outage, ts("2026-11-28T22:00:00Z")),
            WindowGate::Open
        );
        // 10 minutes before the close, a 22-minute outage waits for next week.
        assert_eq!(
            g.window(&be, outage, ts("2026-11-29T02:50:00Z")),
            WindowGate::WaitUntil {
                calendar: "site amsterdam".into(),
                opens_at: ts("2026-12-05T21:00:00Z")
            }
        );
        assert!(matches!(
            g.window(&be, outage, ts("2026-12-06T02:50:00Z")),
            WindowGate::Never { .. }
        ));
    }
}
