//! Window arithmetic: when may a site's (or a pool's) servers be patched?
//!
//! A [`Calendar`] is a time zone, the weekly windows of the inventory
//! ([`WeeklyWindow`]: `Sat 22:00 for 6h`) and the blackouts of the change (local dates, both
//! ends included). It answers, for an instant, the open interval containing it
//! ([`Calendar::window_at`]), the next opening ([`Calendar::next_start`]) and the earliest
//! start at which a slot of a given length fits ([`Calendar::earliest_fit`]). Pure: every
//! answer depends on the arguments only, never on the clock.
//!
//! The rules (documented for operators in `docs/usage/windows.md`):
//! - a window opens on its day at its local time, in the calendar's time zone, and stays open
//!   for its length of **elapsed** time: across a daylight-saving change the local closing
//!   time moves (`Sat 22:00 for 6h` closes at 05:00 local on the spring-forward night);
//! - an opening time that does not exist (the spring-forward gap) opens when the clock
//!   reaches it after the jump (jiff's *compatible* disambiguation: Berlin's 02:30 on
//!   2026-03-29 opens at 03:30 CEST); one that exists twice (the autumn fold) opens at the
//!   first of them (New York's 01:30 on 2026-11-01 opens at 01:30 EDT);
//! - windows that overlap or touch are one open interval;
//! - a blackout closes whole local days, from the start of `from` to the end of `to`, in the
//!   calendar's time zone, and cuts every window that reaches into it;
//! - a calendar without weekly windows is open at any time except during blackouts.
//!
//! Intervals are computed over a bounded range (the planner uses [`PLANNING_HORIZON`]), so
//! every answer is finite and every loop ends.
//!
//! ```
//! use jiff::{Timestamp, tz::TimeZone};
//! use poolpatch_inventory::windows::parse_window;
//! use poolpatch_plans::windows::Calendar;
//!
//! let tz = TimeZone::get("Europe/Berlin").unwrap();
//! let cal = Calendar::new(tz, &parse_window("Sat 22:00 for 6h").unwrap(), &[]);
//! // On the spring-forward night, six hours from 22:00 CET end at 05:00 CEST.
//! let t: Timestamp = "2026-03-28T23:00:00Z".parse().unwrap();
//! let w = cal.window_at(t).unwrap();
//! assert_eq!(w.start.to_string(), "2026-03-28T21:00:00Z");
//! assert_eq!(w.end.to_string(), "2026-03-29T03:00:00Z");
//! ```

use std::time::Duration;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use poolpatch_inventory::WeeklyWindow;

/// How far ahead a plan looks for windows: eight weeks from its start. A server that cannot
/// start and finish within a window in that time is not scheduled (and the plan says why).
pub const PLANNING_HORIZON: Duration = Duration::from_secs(8 * 7 * 24 * 3600);

/// How far before an instant a window may have opened and still contain it: the longest
/// window (a week) plus a day of slack for time-zone offsets.
const LOOKBACK_DAYS: i64 = 8;

/// Local dates, both ends included, during which nothing may run: a blackout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateRange {
    /// The first day closed.
    pub from: Date,
    /// The last day closed.
    pub to: Date,
}

/// A half-open span of time: from `start` (included) to `end` (excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    /// Where it starts (included).
    pub start: Timestamp,
    /// Where it ends (excluded).
    pub end: Timestamp,
}

impl Interval {
    /// Whether `t` is inside.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }

    /// Whether the two share an instant.
    pub fn overlaps(&self, other: &Interval) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// How long it lasts (zero when empty).
    pub fn length(&self) -> Duration {
        to_duration(self.end.duration_since(self.start))
    }
}

/// A non-negative [`SignedDuration`] as a [`Duration`] (negative ones are zero).
fn to_duration(d: SignedDuration) -> Duration {
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}

/// The weekly windows and blackouts of a group of servers, in their time zone.
#[derive(Debug, Clone)]
pub struct Calendar {
    tz: TimeZone,
    /// The windows opening on each day, Monday first.
    by_day: [Vec<WeeklyWindow>; 7],
    weekly: bool,
    blackouts: Vec<DateRange>,
}

impl Calendar {
    /// A calendar of `weekly` windows (none: any time) and `blackouts` in `tz`.
    pub fn new(tz: TimeZone, weekly: &[WeeklyWindow], blackouts: &[DateRange]) -> Calendar {
        let mut by_day: [Vec<WeeklyWindow>; 7] = Default::default();
        for w in weekly {
            let i = usize::from(w.day.to_monday_zero_offset().unsigned_abs());
            if let Some(day) = by_day.get_mut(i) {
                day.push(*w);
            }
        }
        Calendar {
            tz,
            by_day,
            weekly: !weekly.is_empty(),
            blackouts: blackouts.to_vec(),
        }
    }

    /// Its time zone.
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// Whether it is open at any time: no weekly windows and no blackouts.
    pub fn is_any_time(&self) -> bool {
        !self.weekly && self.blackouts.is_empty()
    }

    /// Every opening of a weekly window that overlaps `[from, to)`, sorted by start, not
    /// merged and not cut by blackouts.
    pub fn occurrences(&self, from: Timestamp, to: Timestamp) -> Vec<Interval> {
        let mut out = Vec::new();
        if !self.weekly || from >= to {
            return out;
        }
        let Some(mut day) = from
            .to_zoned(self.tz.clone())
            .date()
            .checked_sub(LOOKBACK_DAYS.days())
            .ok()
        else {
            return out;
        };
        let last = to.to_zoned(self.tz.clone()).date();
        while day <= last {
            let i = usize::from(day.weekday().to_monday_zero_offset().unsigned_abs());
            for w in self.by_day.get(i).into_iter().flatten() {
                if let Some(iv) = self.opening(day, w)
                    && iv.start < to
                    && iv.end > from
                {
                    out.push(iv);
                }
            }
            match day.tomorrow() {
                Ok(d) => day = d,
                Err(_) => break,
            }
        }
        out.sort();
        out
    }

    /// The opening of `w` on local date `day` (which is its weekday).
    fn opening(&self, day: Date, w: &WeeklyWindow) -> Option<Interval> {
        let local = day.to_datetime(w.start_time());
        let start = self.tz.to_ambiguous_timestamp(local).compatible().ok()?;
        let end = start.checked_add(w.length).ok()?;
        Some(Interval { start, end })
    }

    /// Every blackout as instants, overlapping `[from, to)`, sorted.
    pub fn blackout_intervals(&self, from: Timestamp, to: Timestamp) -> Vec<Interval> {
        let mut out: Vec<Interval> = self
            .blackouts
            .iter()
            .filter_map(|b| {
                let start = b.from.to_zoned(self.tz.clone()).ok()?.timestamp();
                let end =
                    b.to.tomorrow()
                        .ok()
                        .and_then(|d| d.to_zoned(self.tz.clone()).ok())
                        .map_or(Timestamp::MAX, |z| z.timestamp());
                Some(Interval { start, end })
            })
            .filter(|b| b.start < to && b.end > from && b.start < b.end)
            .collect();
        out.sort();
        out
    }

    /// The open intervals overlapping `[from, to)`, cut to it: the weekly windows merged
    /// where they overlap or touch (or all of it without weekly windows), less the blackouts.
    /// Sorted, disjoint, none empty, none touching another.
    pub fn open(&self, from: Timestamp, to: Timestamp) -> Vec<Interval> {
        if from >= to {
            return Vec::new();
        }
        let base = if self.weekly {
            merge(self.occurrences(from, to))
        } else {
            vec![Interval {
                start: from,
                end: to,
            }]
        };
        let cut = subtract(base, &self.blackout_intervals(from, to));
        cut.into_iter()
            .filter_map(|iv| {
                let iv = Interval {
                    start: iv.start.max(from),
                    end: iv.end.min(to),
                };
                (iv.start < iv.end).then_some(iv)
            })
            .collect()
    }

    /// The open interval containing `t`, if any. It is computed over the eight days either
    /// side of `t`: a calendar open for longer than that (any time, say) gives an interval
    /// cut at those bounds.
    pub fn window_at(&self, t: Timestamp) -> Option<Interval> {
        let span = SignedDuration::from_hours(24 * LOOKBACK_DAYS);
        let from = t.checked_sub(span).unwrap_or(Timestamp::MIN);
        let to = t.checked_add(span).unwrap_or(Timestamp::MAX);
        self.open(from, to).into_iter().find(|iv| iv.contains(t))
    }

    /// The first open interval that starts at or after `t` and before `until` (a window
    /// open at `t` has started already: the next one is meant). A blackout's end, inside a
    /// window, is a start.
    pub fn next_start(&self, t: Timestamp, until: Timestamp) -> Option<Interval> {
        let span = SignedDuration::from_hours(24 * LOOKBACK_DAYS);
        let from = t.checked_sub(span).unwrap_or(Timestamp::MIN);
        // Look a little past `until` so that the interval is not cut at it.
        let to = until.checked_add(span).unwrap_or(Timestamp::MAX);
        self.open(from, to)
            .into_iter()
            .find(|iv| iv.start >= t && iv.start < until && iv.start > from)
    }

    /// The earliest instant at or after `t` at which a slot of `length` can start and end
    /// inside one open interval, ending by `until`.
    pub fn earliest_fit(
        &self,
        t: Timestamp,
        length: Duration,
        until: Timestamp,
    ) -> Option<Timestamp> {
        self.open(t, until).into_iter().find_map(|iv| {
            let end = iv.start.checked_add(length).ok()?;
            (end <= iv.end).then_some(iv.start)
        })
    }
}

/// Sorted intervals merged where they overlap or touch.
fn merge(mut v: Vec<Interval>) -> Vec<Interval> {
    v.sort();
    let mut out: Vec<Interval> = Vec::with_capacity(v.len());
    for iv in v {
        match out.last_mut() {
            Some(last) if iv.start <= last.end => last.end = last.end.max(iv.end),
            _ => out.push(iv),
        }
    }
    out
}

/// `base` (sorted, disjoint) less every interval of `holes` (sorted).
fn subtract(base: Vec<Interval>, holes: &[Interval]) -> Vec<Interval> {
    let mut out = Vec::with_capacity(base.len());
    for iv in base {
        let mut start = iv.start;
        for h in holes.iter().filter(|h| h.overlaps(&iv)) {
            if h.start > start {
                out.push(Interval {
                    start,
                    end: h.start,
                });
            }
            start = start.max(h.end);
        }
        if start < iv.end {
            out.push(Interval { start, end: iv.end });
        }
    }
    out
}

/// The open intervals of a calendar as offsets from a plan's start: what the scheduler
/// works with. Sorted, disjoint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Openings {
    /// `(opens, closes)` offsets.
    pub intervals: Vec<(Duration, Duration)>,
}

impl Openings {
    /// The open intervals of `calendar` from `start` for `horizon`, as offsets from
    /// `start` (openings start at whole seconds rounded up, close rounded down).
    pub fn of(calendar: &Calendar, start: Timestamp, horizon: Duration) -> Openings {
        let until = start.checked_add(horizon).unwrap_or(Timestamp::MAX);
        let intervals = calendar
            .open(start, until)
            .into_iter()
            .filter_map(|iv| {
                let opens = iv.start.duration_since(start);
                let closes = iv.end.duration_since(start);
                let opens = Duration::from_secs(
                    u64::try_from(opens.as_secs()).ok()? + u64::from(opens.subsec_nanos() > 0),
                );
                let closes = Duration::from_secs(u64::try_from(closes.as_secs()).ok()?);
                (opens < closes).then_some((opens, closes))
            })
            .collect();
        Openings { intervals }
    }

    /// The earliest offset at or after `at` at which a slot of `length` starts and ends
    /// inside one opening; `None` when no opening left has room for it.
    pub fn earliest_fit(&self, at: Duration, length: Duration) -> Option<Duration> {
        let first = self.intervals.partition_point(|&(_, closes)| closes <= at);
        self.intervals[first..].iter().find_map(|&(opens, closes)| {
            let s = opens.max(at);
            (s.checked_add(length)? <= closes).then_some(s)
        })
    }

    /// The opening that contains offset `at`, if any.
    pub fn containing(&self, at: Duration) -> Option<(Duration, Duration)> {
        let i = self.intervals.partition_point(|&(_, closes)| closes <= at);
        self.intervals
            .get(i)
            .copied()
            .filter(|&(opens, _)| opens <= at)
    }

    /// The longest opening.
    pub fn longest(&self) -> Duration {
        self.intervals
            .iter()
            .map(|&(o, c)| c.saturating_sub(o))
            .max()
            .unwrap_or(Duration::ZERO)
    }
}
