//! Maintenance windows and stages in the plan: the calendars of the servers in scope, the
//! reasons a server cannot run in any window, the stages on the timeline, and the plan data
//! the executor needs to wait for windows and run stages (see `docs/usage/plan-json.md`).

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use poolpatch_inventory::{Inventory, Pool, Server, WeeklyWindow};
use serde::{Deserialize, Serialize};

use super::secs;
use super::{NotScheduled, NotScheduledReason, ServerPlan};
use crate::change::Change;
use crate::schedule::{Schedule, StageSpec, Timing};
use crate::units::format_duration as fmt;
use crate::windows::{Calendar, DateRange, Openings, PLANNING_HORIZON};

/// Maintenance windows and blackouts as they apply to the servers in scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowsPlan {
    /// The end of the planning horizon ([`PLANNING_HORIZON`] after the plan's start): no
    /// server is scheduled to end after it, and openings are listed up to it. `None` when the
    /// plan has no start time.
    pub horizon_end: Option<Timestamp>,
    /// The horizon's length.
    #[serde(rename = "horizon_secs", with = "secs")]
    pub horizon: Duration,
    /// The change's blackouts.
    pub blackouts: Vec<BlackoutPlan>,
    /// One calendar per site (or pool with its own windows) whose servers in scope are bound
    /// by windows or blackouts, in inventory order.
    pub calendars: Vec<WindowCalendar>,
}

/// A blackout of the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlackoutPlan {
    /// First local date closed (`2026-12-20`).
    pub from: String,
    /// Last local date closed (included).
    pub to: String,
    /// Why.
    pub reason: Option<String>,
    /// The sites it closes; empty: every site.
    pub sites: Vec<String>,
}

/// When a group of servers may run: a time zone, weekly windows, blackouts, and the openings
/// they leave within the horizon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowCalendar {
    /// `site amsterdam`, or `pool se01.ams.contoso.com` for a pool with its own windows.
    pub id: String,
    /// The site's IANA time zone.
    pub time_zone: String,
    /// The weekly windows, as written back (`Sat 22:00 for 6h`); empty: any time outside
    /// blackouts.
    pub weekly: Vec<String>,
    /// The blackouts that close it, as `from..to (reason)`.
    pub blackouts: Vec<String>,
    /// The open intervals from the plan's start to the horizon's end, in order (empty when
    /// the plan has no start time). A server of this calendar runs only inside one of them.
    pub openings: Vec<Opening>,
    /// Its servers in scope.
    pub servers: Vec<String>,
}

/// One open interval of a calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opening {
    /// When it opens (UTC).
    pub opens_at: Timestamp,
    /// When it closes (UTC, excluded).
    pub closes_at: Timestamp,
    /// When it opens, as an offset from the plan's start.
    #[serde(rename = "opens_secs", with = "secs")]
    pub opens: Duration,
    /// When it closes, as an offset from the plan's start.
    #[serde(rename = "closes_secs", with = "secs")]
    pub closes: Duration,
    /// When it opens, in the calendar's local time (RFC 9557).
    pub opens_local: String,
    /// When it closes, in the calendar's local time (RFC 9557).
    pub closes_local: String,
}

/// A stage of the rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagePlan {
    /// Its name.
    pub name: String,
    /// What it names, as written; `None` for a last stage that takes the rest.
    pub scope: Option<StageScopePlan>,
    /// Its servers in scope: scheduled ones in timeline order, then the others.
    pub servers: Vec<String>,
    /// How long after its last server is done the next stage may start.
    #[serde(rename = "bake_secs", with = "secs")]
    pub bake: Duration,
    /// The health check at the end of its bake.
    pub health: Option<HealthCheckPlan>,
    /// Whether every server of it is scheduled.
    pub status: StageStatus,
    /// Its place on the timeline; `None` when it never starts.
    pub timeline: Option<StageTimeline>,
}

/// The names of a stage's scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageScopePlan {
    /// Site names.
    pub sites: Vec<String>,
    /// Pool FQDNs.
    pub pools: Vec<String>,
    /// Server FQDNs.
    pub servers: Vec<String>,
}

/// A stage's health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheckPlan {
    /// The command line, as written.
    pub command: String,
    /// How long to wait for it.
    #[serde(rename = "timeout_secs", with = "secs")]
    pub timeout: Duration,
}

/// Whether a stage's servers are all scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StageStatus {
    /// Every server is scheduled: the next stage can start after the bake.
    Complete,
    /// Some servers are scheduled, some are not: later stages never start.
    Partial,
    /// No server is scheduled.
    NotScheduled,
}

impl StageStatus {
    /// The name used in JSON and tables.
    pub fn name(self) -> &'static str {
        match self {
            StageStatus::Complete => "complete",
            StageStatus::Partial => "partial",
            StageStatus::NotScheduled => "not-scheduled",
        }
    }
}

/// A stage on the timeline, as offsets from the start of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageTimeline {
    /// When it may start: the previous stage's end (its last server done, bake passed).
    #[serde(rename = "opens_secs", with = "secs")]
    pub opens: Duration,
    /// When its first server starts.
    #[serde(rename = "start_secs", with = "secs::option")]
    pub start: Option<Duration>,
    /// When its last server ends.
    #[serde(rename = "servers_end_secs", with = "secs::option")]
    pub servers_end: Option<Duration>,
    /// When its bake ends; `None` when it does not complete.
    #[serde(rename = "end_secs", with = "secs::option")]
    pub end: Option<Duration>,
}

/// How many failed servers halt the rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureLimitPlan {
    /// `failure_limit` as written (`1`, `10%`); `None` for the default of a staged change.
    pub as_written: Option<String>,
    /// The limit in servers: when this many servers have failed, no server starts any more.
    pub servers: usize,
}

/// One distinct calendar of the servers in scope, while the plan is built.
struct Cal {
    id: String,
    time_zone: String,
    tz: TimeZone,
    weekly: Vec<WeeklyWindow>,
    blackouts: Vec<usize>,
    openings: Openings,
    servers: Vec<String>,
}

/// What windows and stages make of a change, for one plan.
pub(super) struct Setup<'a> {
    /// The plan's start, if given (whole seconds).
    pub now: Option<Timestamp>,
    /// For the scheduler.
    pub timing: Timing,
    change: &'a Change,
    cals: Vec<Cal>,
    calendar_of: Vec<Option<usize>>,
    stage_of: Vec<Option<usize>>,
    zone_of: Vec<Option<String>>,
}

impl<'a> Setup<'a> {
    /// The calendars and stages of the servers `pairs[i]` for which `in_scope(i)`.
    pub fn new(
        inventory: &Inventory,
        change: &'a Change,
        pairs: &[(&Pool, &Server)],
        in_scope: impl Fn(usize) -> bool,
        now: Option<Timestamp>,
    ) -> Setup<'a> {
        let mut cals: Vec<Cal> = Vec::new();
        let mut ids: BTreeMap<String, usize> = BTreeMap::new();
        let mut calendar_of = vec![None; pairs.len()];
        let mut stage_of = vec![None; pairs.len()];
        let mut zone_of = vec![None; pairs.len()];
        for (i, (pool, server)) in pairs.iter().enumerate() {
            if !in_scope(i) {
                continue;
            }
            zone_of[i] = inventory.site(&pool.site).map(|s| s.time_zone.clone());
            if !change.stages.is_empty() {
                stage_of[i] = change.stage_of(pool, server);
            }
            let weekly = inventory.windows_of(pool);
            let blackouts: Vec<usize> = change
                .blackouts
                .iter()
                .enumerate()
                .filter(|(_, b)| b.applies_to(&pool.site))
                .map(|(k, _)| k)
                .collect();
            if weekly.is_empty() && blackouts.is_empty() {
                continue;
            }
            let id = if pool.windows.is_some() {
                format!("pool {}", pool.fqdn)
            } else {
                format!("site {}", pool.site)
            };
            let c = *ids.entry(id.clone()).or_insert_with(|| {
                let time_zone = inventory
                    .site(&pool.site)
                    .map_or_else(|| "UTC".to_string(), |s| s.time_zone.clone());
                // The inventory checked the name against the same bundled database.
                let tz = TimeZone::get(&time_zone).unwrap_or(TimeZone::UTC);
                let dates: Vec<DateRange> = blackouts
                    .iter()
                    .map(|&k| change.blackouts[k].dates)
                    .collect();
                let calendar = Calendar::new(tz.clone(), weekly, &dates);
                let openings = now.map_or_else(Openings::default, |n| {
                    Openings::of(&calendar, n, PLANNING_HORIZON)
                });
                cals.push(Cal {
                    id,
                    time_zone,
                    tz,
                    weekly: weekly.to_vec(),
                    blackouts: blackouts.clone(),
                    openings,
                    servers: Vec::new(),
                });
                cals.len() - 1
            });
            cals[c].servers.push(server.fqdn.to_string());
            calendar_of[i] = Some(c);
        }
        let stages = change
            .stages
            .iter()
            .enumerate()
            .map(|(k, s)| StageSpec {
                bake: s.bake,
                servers: stage_of.iter().filter(|x| **x == Some(k)).count(),
            })
            .collect();
        let timing = Timing {
            calendars: cals.iter().map(|c| c.openings.clone()).collect(),
            calendar_of: calendar_of.clone(),
            stage_of: stage_of.iter().map(|s| s.unwrap_or(0)).collect(),
            stages,
        };
        Setup {
            now,
            timing,
            change,
            cals,
            calendar_of,
            stage_of,
            zone_of,
        }
    }

    fn cal(&self, i: usize) -> Option<&Cal> {
        self.cals.get((*self.calendar_of.get(i)?)?)
    }

    fn stage_name(&self, k: usize) -> &str {
        self.change
            .stages
            .get(k)
            .map_or("?", |s| s.name.value.as_str())
    }

    /// The instant at `offset` from the plan's start.
    fn at(&self, offset: Duration) -> Option<Timestamp> {
        self.now?.checked_add(offset).ok()
    }

    /// `2026-11-28 21:00 UTC`, or the offset when the plan has no start.
    fn when(&self, offset: Duration) -> String {
        match self.at(offset) {
            Some(t) => utc_short(t),
            None => crate::units::format_offset(offset),
        }
    }

    fn horizon_end(&self) -> Option<Timestamp> {
        self.at(PLANNING_HORIZON)
    }

    fn blackout_text(&self, k: usize) -> String {
        let b = &self.change.blackouts[k];
        match &b.reason {
            Some(r) => format!("{}..{} ({r})", b.dates.from, b.dates.to),
            None => format!("{}..{}", b.dates.from, b.dates.to),
        }
    }

    /// Why server `i`, whose slot lasts `slot`, cannot be scheduled whatever else happens:
    /// it is in no stage, its windows need a start time, or no opening of the horizon can
    /// hold its slot.
    pub fn static_reason(&self, i: usize, slot: Duration) -> Option<NotScheduled> {
        if !self.change.stages.is_empty() && self.stage_of.get(i).copied().flatten().is_none() {
            return Some(NotScheduled {
                reason: NotScheduledReason::Blocked,
                message: "it is in no stage of the change".into(),
                fix: Some(
                    "name it in a stage, or add a last stage without `scope` to take the rest"
                        .into(),
                ),
            });
        }
        let cal = self.cal(i)?;
        let bound = match (cal.weekly.is_empty(), cal.blackouts.is_empty()) {
            (false, true) => format!("{} has maintenance windows", cal.id),
            (true, false) => format!("the change has blackouts for {}", cal.id),
            _ => format!(
                "{} has maintenance windows and the change has blackouts for it",
                cal.id
            ),
        };
        let Some(now) = self.now else {
            return Some(NotScheduled {
                reason: NotScheduledReason::NeedsStartTime,
                message: format!(
                    "{bound}, and the plan was made without a start time, so no window can be placed"
                ),
                fix: Some(
                    "plan with a start time: `poolpatch plan` uses the current time, `--now 2026-11-28T21:00:00Z` pretends another".into(),
                ),
            });
        };
        let horizon = format!(
            "the {}-week planning horizon ({} to {})",
            PLANNING_HORIZON.as_secs() / (7 * 24 * 3600),
            utc_short(now),
            self.horizon_end().map_or_else(String::new, utc_short)
        );
        let blackouts = || {
            cal.blackouts
                .iter()
                .map(|&k| self.blackout_text(k))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let after_blackouts = || {
            cal.blackouts
                .iter()
                .map(|&k| self.change.blackouts[k].dates.to)
                .max()
                .and_then(|d| d.tomorrow().ok())
                .map_or_else(String::new, |d| {
                    format!(" (`--now {d}T00:00:00Z` or later)")
                })
        };
        if cal.openings.intervals.is_empty() {
            let message = if cal.weekly.is_empty() {
                format!("{horizon} is blacked out for {} ({})", cal.id, blackouts())
            } else {
                format!(
                    "every window of {} in {horizon} falls in a blackout ({})",
                    cal.id,
                    blackouts()
                )
            };
            return Some(NotScheduled {
                reason: NotScheduledReason::NoWindow,
                message,
                fix: Some(format!(
                    "plan the change for after the blackout{}, or shorten the blackout",
                    after_blackouts()
                )),
            });
        }
        let longest = cal.openings.longest();
        if longest >= slot {
            return None;
        }
        let widest = cal.weekly.iter().max_by_key(|w| w.length);
        let (message, fix) = match widest {
            Some(w) if w.length < slot => (
                format!(
                    "its slot ({}: preflight and predicted outage) is longer than the longest window of {} ({w})",
                    fmt(slot),
                    cal.id
                ),
                format!(
                    "lengthen a window of {} to at least {} (such as `{}`), or lower the estimates if the steps really take less",
                    cal.id,
                    fmt(slot),
                    WeeklyWindow {
                        length: round_up_to_quarter(slot),
                        ..*w
                    }
                ),
            ),
            _ => (
                format!(
                    "blackouts ({}) leave no opening of {} in {horizon} long enough for its slot ({}; the longest is {})",
                    blackouts(),
                    cal.id,
                    fmt(slot),
                    fmt(longest)
                ),
                format!(
                    "plan the change for after the blackout{}",
                    after_blackouts()
                ),
            ),
        };
        Some(NotScheduled {
            reason: NotScheduledReason::NoWindow,
            message,
            fix: Some(fix),
        })
    }

    /// Why server `i` (slot `slot`) was not scheduled when it could have started at offset
    /// `from`, but no opening left held it.
    pub fn no_window_left(&self, i: usize, slot: Duration, from: Duration) -> NotScheduled {
        let id = self.cal(i).map_or("its site", |c| c.id.as_str());
        NotScheduled {
            reason: NotScheduledReason::NoWindow,
            message: format!(
                "no window of {id} left in the planning horizon (to {}) holds its slot ({}) once it could start, at {}",
                self.horizon_end().map_or_else(String::new, utc_short),
                fmt(slot),
                self.when(from)
            ),
            fix: Some(format!(
                "add or lengthen windows of {id}, raise `concurrency.pools`, or split the change: the plan looks {} weeks ahead",
                PLANNING_HORIZON.as_secs() / (7 * 24 * 3600)
            )),
        }
    }

    /// Why server `i` was not scheduled: stage `blocker` does not complete.
    pub fn waits_for_stage(&self, i: usize, blocker: usize) -> NotScheduled {
        let own = self
            .stage_of
            .get(i)
            .copied()
            .flatten()
            .map_or("?", |k| self.stage_name(k));
        let blocker = self.stage_name(blocker);
        NotScheduled {
            reason: NotScheduledReason::WaitsForStage,
            message: format!(
                "stage `{own}` starts only once stage `{blocker}` is complete, and not every server of `{blocker}` is scheduled"
            ),
            fix: Some(format!(
                "see why the servers of stage `{blocker}` are not scheduled"
            )),
        }
    }

    /// Fills in each server's stage, calendar and the opening its slot is in;
    /// `index_of(fqdn)` is the server's index in inventory order.
    pub fn annotate(&self, servers: &mut [ServerPlan], index_of: impl Fn(&str) -> Option<usize>) {
        for s in servers {
            let Some(i) = index_of(&s.fqdn) else { continue };
            if let Some(zone) = self.zone_of.get(i).cloned().flatten() {
                s.time_zone = zone;
            }
            s.stage = self
                .stage_of
                .get(i)
                .copied()
                .flatten()
                .map(|k| self.stage_name(k).to_string());
            let Some(cal) = self.cal(i) else { continue };
            s.calendar = Some(cal.id.clone());
            s.maintenance_window = s.window.and_then(|w| {
                let (opens, closes) = cal.openings.containing(w.start)?;
                self.opening(cal, opens, closes)
            });
        }
    }

    fn opening(&self, cal: &Cal, opens: Duration, closes: Duration) -> Option<Opening> {
        let (opens_at, closes_at) = (self.at(opens)?, self.at(closes)?);
        Some(Opening {
            opens_at,
            closes_at,
            opens,
            closes,
            opens_local: opens_at.to_zoned(cal.tz.clone()).to_string(),
            closes_local: closes_at.to_zoned(cal.tz.clone()).to_string(),
        })
    }

    /// The windows part of the plan; `None` when no server in scope is bound by windows or
    /// blackouts (and the change has no blackouts).
    pub fn windows_plan(&self) -> Option<WindowsPlan> {
        if self.cals.is_empty() && self.change.blackouts.is_empty() {
            return None;
        }
        Some(WindowsPlan {
            horizon_end: self.horizon_end(),
            horizon: PLANNING_HORIZON,
            blackouts: self
                .change
                .blackouts
                .iter()
                .map(|b| BlackoutPlan {
                    from: b.dates.from.to_string(),
                    to: b.dates.to.to_string(),
                    reason: b.reason.clone(),
                    sites: b.sites.iter().map(|s| s.value.clone()).collect(),
                })
                .collect(),
            calendars: self
                .cals
                .iter()
                .map(|c| WindowCalendar {
                    id: c.id.clone(),
                    time_zone: c.time_zone.clone(),
                    weekly: c.weekly.iter().map(ToString::to_string).collect(),
                    blackouts: c.blackouts.iter().map(|&k| self.blackout_text(k)).collect(),
                    openings: c
                        .openings
                        .intervals
                        .iter()
                        .filter_map(|&(o, cl)| self.opening(c, o, cl))
                        .collect(),
                    servers: c.servers.clone(),
                })
                .collect(),
        })
    }

    /// The stages part of the plan, from the schedule and the assembled servers.
    pub fn stage_plans(&self, schedule: &Schedule, servers: &[ServerPlan]) -> Vec<StagePlan> {
        self.change
            .stages
            .iter()
            .enumerate()
            .map(|(k, st)| {
                let mine: Vec<&ServerPlan> = servers
                    .iter()
                    .filter(|s| s.stage.as_deref() == Some(st.name.value.as_str()))
                    .collect();
                let scheduled = mine.iter().filter(|s| s.window.is_some()).count();
                let status = if scheduled == 0 {
                    StageStatus::NotScheduled
                } else if scheduled < mine.len() {
                    StageStatus::Partial
                } else {
                    StageStatus::Complete
                };
                let span = schedule.stages.get(k);
                StagePlan {
                    name: st.name.value.clone(),
                    scope: st.scope.as_ref().map(|sc| StageScopePlan {
                        sites: sc.sites.iter().map(|s| s.value.clone()).collect(),
                        pools: sc.pools.iter().map(|p| p.value.to_string()).collect(),
                        servers: sc.servers.iter().map(|s| s.value.to_string()).collect(),
                    }),
                    servers: mine.iter().map(|s| s.fqdn.clone()).collect(),
                    bake: st.bake,
                    health: st.health.as_ref().map(|h| HealthCheckPlan {
                        command: h.command.clone(),
                        timeout: h.timeout,
                    }),
                    status,
                    timeline: span.and_then(|sp| {
                        Some(StageTimeline {
                            opens: sp.opens?,
                            start: sp.start,
                            servers_end: sp.servers_end,
                            end: sp.end,
                        })
                    }),
                }
            })
            .collect()
    }

    /// The failure limit for `in_scope` servers.
    pub fn failure_limit(&self, in_scope: usize) -> Option<FailureLimitPlan> {
        Some(FailureLimitPlan {
            as_written: self.change.failure_limit.map(|l| l.as_written()),
            servers: self.change.failure_limit_servers(in_scope)?,
        })
    }

    /// Notes on the start, windows and stages of the plan.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(now) = self.now {
            notes.push(format!(
                "The plan starts at {} (`now`): every offset counts from it, and each server's window is shown in its site's local time and in UTC.",
                utc_short(now)
            ));
        }
        if !self.cals.is_empty() {
            notes.push(format!(
                "Maintenance windows are weekly, in each site's time zone; a window lasts its length in elapsed time, across daylight-saving changes too, and a start time that does not exist (spring forward) opens when the clock jumps past it. A server starts only if its slot (preflight and predicted outage) ends before its window closes, otherwise it waits for the next window; the plan looks {} weeks ahead. See docs/usage/windows.md.",
                PLANNING_HORIZON.as_secs() / (7 * 24 * 3600)
            ));
        }
        if !self.change.stages.is_empty() {
            let names: Vec<&str> = self
                .change
                .stages
                .iter()
                .map(|s| s.name.value.as_str())
                .collect();
            notes.push(format!(
                "The rollout has {} stages ({}): a stage starts only once every server of the previous stage is done, its bake has passed and its health check (if any) succeeded.",
                names.len(),
                names.join(", ")
            ));
        }
        notes
    }
}

/// `2026-11-28 21:00 UTC` (with seconds when `t` has any).
pub(crate) fn utc_short(t: Timestamp) -> String {
    utc_with(t, t.as_second() % 60 != 0)
}

/// `2026-11-28 21:00 UTC`, or `2026-11-28 21:00:00 UTC` with `seconds`.
pub(crate) fn utc_with(t: Timestamp, seconds: bool) -> String {
    let z = t.to_zoned(TimeZone::UTC);
    if seconds {
        z.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
    } else {
        z.strftime("%Y-%m-%d %H:%M UTC").to_string()
    }
}

/// `Sat 2026-11-28 22:00 CET` in the zone named `tz` (UTC when unknown), with seconds when
/// `seconds`.
pub(crate) fn local_with(t: Timestamp, tz: &str, seconds: bool) -> String {
    let z = t.to_zoned(TimeZone::get(tz).unwrap_or(TimeZone::UTC));
    if seconds {
        z.strftime("%a %Y-%m-%d %H:%M:%S %Z").to_string()
    } else {
        z.strftime("%a %Y-%m-%d %H:%M %Z").to_string()
    }
}

/// `d` rounded up to a quarter of an hour, for suggested window lengths.
fn round_up_to_quarter(d: Duration) -> Duration {
    let q = 15 * 60;
    Duration::from_secs(d.as_secs().div_ceil(q) * q)
}
