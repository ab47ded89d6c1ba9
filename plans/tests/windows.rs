//! Window arithmetic: tables of instants in Europe/Berlin, America/New_York, Asia/Tokyo and
//! UTC across daylight-saving changes, and properties over random calendars.

use std::time::Duration;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use poolpatch_inventory::WeeklyWindow;
use poolpatch_inventory::windows::parse_window;
use poolpatch_plans::windows::{Calendar, DateRange, Interval, Openings};
use proptest::prelude::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn date(s: &str) -> Date {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn windows(list: &[&str]) -> Vec<WeeklyWindow> {
    list.iter()
        .flat_map(|w| parse_window(w).unwrap_or_else(|e| panic!("{w}: {e}")))
        .collect()
}

fn calendar(zone: &str, list: &[&str], blackouts: &[(&str, &str)]) -> Calendar {
    let blackouts: Vec<DateRange> = blackouts
        .iter()
        .map(|(f, t)| DateRange {
            from: date(f),
            to: date(t),
        })
        .collect();
    Calendar::new(TimeZone::get(zone).unwrap(), &windows(list), &blackouts)
}

/// `start..end` in UTC, for compact assertions.
fn span(iv: Option<Interval>) -> Option<String> {
    iv.map(|iv| format!("{}..{}", iv.start, iv.end))
}

#[test]
fn a_start_in_the_spring_forward_gap_opens_after_the_jump() {
    // Europe/Berlin jumps from 02:00 CET to 03:00 CEST on Sunday 2026-03-29: 02:30 does not
    // exist, and the window opens at 03:30 CEST (01:30 UTC), lasting two elapsed hours.
    let cal = calendar("Europe/Berlin", &["Sun 02:30 for 2h"], &[]);
    assert_eq!(
        span(cal.window_at(ts("2026-03-29T02:00:00Z"))).as_deref(),
        Some("2026-03-29T01:30:00Z..2026-03-29T03:30:00Z")
    );
    assert_eq!(cal.window_at(ts("2026-03-29T01:29:59Z")), None);
    // A week later (CEST all along), 02:30 local is 00:30 UTC.
    assert_eq!(
        span(cal.next_start(ts("2026-03-29T04:00:00Z"), ts("2026-05-01T00:00:00Z"))).as_deref(),
        Some("2026-04-05T00:30:00Z..2026-04-05T02:30:00Z")
    );
    // New York's gap (2026-03-08 02:00 EST -> 03:00 EDT) works the same way.
    let ny = calendar("America/New_York", &["Sun 02:30 for 1h"], &[]);
    assert_eq!(
        span(ny.window_at(ts("2026-03-08T08:00:00Z"))).as_deref(),
        Some("2026-03-08T07:30:00Z..2026-03-08T08:30:00Z")
    );
}

#[test]
fn a_start_in_the_autumn_fold_opens_at_the_first_of_the_two() {
    // America/New_York falls back from 02:00 EDT to 01:00 EST on Sunday 2026-11-01: 01:30
    // happens twice; the window opens at the first (01:30 EDT, 05:30 UTC) and closes two
    // elapsed hours later, at 02:30 EST.
    let cal = calendar("America/New_York", &["Sun 01:30 for 2h"], &[]);
    assert_eq!(
        span(cal.window_at(ts("2026-11-01T06:45:00Z"))).as_deref(),
        Some("2026-11-01T05:30:00Z..2026-11-01T07:30:00Z")
    );
    // The second 01:30 (EST, 06:30 UTC) is inside the window, not a new opening.
    assert_eq!(
        span(cal.next_start(ts("2026-11-01T06:30:00Z"), ts("2026-11-30T00:00:00Z"))).as_deref(),
        Some("2026-11-08T06:30:00Z..2026-11-08T08:30:00Z")
    );
}

#[test]
fn a_window_that_spans_the_change_lasts_its_elapsed_length() {
    // Berlin, Saturday 22:00 CET for 6h on the spring-forward night: 21:00Z to 03:00Z, which
    // is 05:00 CEST on the local clock (seven clock hours).
    let berlin = calendar("Europe/Berlin", &["Sat 22:00 for 6h"], &[]);
    let w = berlin.window_at(ts("2026-03-29T02:59:59Z")).unwrap();
    assert_eq!(w.start, ts("2026-03-28T21:00:00Z"));
    assert_eq!(w.end, ts("2026-03-29T03:00:00Z"));
    assert_eq!(
        w.end
            .to_zoned(TimeZone::get("Europe/Berlin").unwrap())
            .time()
            .to_string(),
        "05:00:00"
    );
    assert_eq!(w.length(), Duration::from_secs(6 * 3600));
    // New York, Saturday 22:00 EDT for 6h on the fall-back night: 02:00Z to 08:00Z, which is
    // 03:00 EST (five clock hours).
    let ny = calendar("America/New_York", &["Sat 22:00 for 6h"], &[]);
    let w = ny.window_at(ts("2026-11-01T07:59:59Z")).unwrap();
    assert_eq!(w.start, ts("2026-11-01T02:00:00Z"));
    assert_eq!(w.end, ts("2026-11-01T08:00:00Z"));
    assert_eq!(ny.window_at(ts("2026-11-01T08:00:00Z")), None);
}

#[test]
fn tokyo_has_no_daylight_saving_and_utc_windows_cross_the_week_s_end() {
    let tokyo = calendar("Asia/Tokyo", &["Sat 22:00 for 6h"], &[]);
    for (at, open) in [
        ("2026-03-28T12:59:59Z", false),
        ("2026-03-28T13:00:00Z", true),
        ("2026-03-28T18:59:59Z", true),
        ("2026-03-28T19:00:00Z", false),
        ("2026-10-31T13:00:00Z", true),
    ] {
        assert_eq!(tokyo.window_at(ts(at)).is_some(), open, "{at}");
    }
    // Sunday 23:00 for 2h runs into Monday: the week's end is not a boundary.
    let utc = calendar("UTC", &["Sun 23:00 for 2h"], &[]);
    assert_eq!(
        span(utc.window_at(ts("2026-06-01T00:30:00Z"))).as_deref(),
        Some("2026-05-31T23:00:00Z..2026-06-01T01:00:00Z")
    );
}

#[test]
fn overlapping_windows_are_one_and_the_end_is_excluded() {
    // The example: Saturday 22:00 for 6h and Sunday 01:00 for 4h.
    let cal = calendar("UTC", &["Sat 22:00 for 6h", "Sun 01:00 for 4h"], &[]);
    assert_eq!(
        span(cal.window_at(ts("2026-11-29T04:59:59Z"))).as_deref(),
        Some("2026-11-28T22:00:00Z..2026-11-29T05:00:00Z")
    );
    assert_eq!(cal.window_at(ts("2026-11-29T05:00:00Z")), None);
    // Touching windows merge too.
    let cal = calendar("UTC", &["Sat 22:00 for 2h", "Sun 00:00 for 2h"], &[]);
    assert_eq!(
        cal.window_at(ts("2026-11-28T23:00:00Z")).unwrap().end,
        ts("2026-11-29T02:00:00Z")
    );
}

#[test]
fn blackouts_close_whole_local_days_in_each_zone() {
    // 2026-12-20..2027-01-03 in Berlin is 2026-12-19T23:00Z..2027-01-03T23:00Z; in Tokyo
    // 2026-12-19T15:00Z..2027-01-03T15:00Z.
    let berlin = calendar(
        "Europe/Berlin",
        &["Sat 22:00 for 6h"],
        &[("2026-12-20", "2027-01-03")],
    );
    // Saturday 2026-12-19 22:00 CET (21:00Z) is cut at midnight local.
    assert_eq!(
        span(berlin.window_at(ts("2026-12-19T22:00:00Z"))).as_deref(),
        Some("2026-12-19T21:00:00Z..2026-12-19T23:00:00Z")
    );
    assert_eq!(berlin.window_at(ts("2026-12-26T22:00:00Z")), None);
    assert_eq!(
        span(berlin.next_start(ts("2026-12-20T00:00:00Z"), ts("2027-03-01T00:00:00Z"))).as_deref(),
        Some("2027-01-09T21:00:00Z..2027-01-10T03:00:00Z")
    );
    let tokyo_any = calendar("Asia/Tokyo", &[], &[("2026-12-20", "2027-01-03")]);
    assert!(tokyo_any.window_at(ts("2026-12-19T14:59:59Z")).is_some());
    assert!(tokyo_any.window_at(ts("2026-12-19T15:00:00Z")).is_none());
    assert!(tokyo_any.window_at(ts("2027-01-03T14:59:59Z")).is_none());
    assert!(tokyo_any.window_at(ts("2027-01-03T15:00:00Z")).is_some());
    // The end of a blackout is where the next opening starts.
    assert_eq!(
        tokyo_any
            .next_start(ts("2026-12-25T00:00:00Z"), ts("2027-02-01T00:00:00Z"))
            .map(|iv| iv.start),
        Some(ts("2027-01-03T15:00:00Z"))
    );
}

#[test]
fn earliest_fit_skips_windows_too_short_or_too_late_to_hold_the_slot() {
    let cal = calendar("UTC", &["Sat 22:00 for 1h", "Sun 22:00 for 3h"], &[]);
    let until = ts("2027-01-01T00:00:00Z");
    let two_hours = Duration::from_secs(7200);
    // Saturday's hour is too short: Sunday's window takes it.
    assert_eq!(
        cal.earliest_fit(ts("2026-11-28T12:00:00Z"), two_hours, until),
        Some(ts("2026-11-29T22:00:00Z"))
    );
    // Inside Sunday's window with two hours left: now.
    assert_eq!(
        cal.earliest_fit(ts("2026-11-29T23:00:00Z"), two_hours, until),
        Some(ts("2026-11-29T23:00:00Z"))
    );
    // With less than two hours left: next Sunday.
    assert_eq!(
        cal.earliest_fit(ts("2026-11-29T23:30:00Z"), two_hours, until),
        Some(ts("2026-12-06T22:00:00Z"))
    );
    // Nothing ends by `until`.
    assert_eq!(
        cal.earliest_fit(ts("2026-12-31T00:00:00Z"), two_hours, until),
        None
    );
}

#[test]
fn openings_are_offsets_from_the_plan_s_start() {
    let cal = calendar("Europe/Amsterdam", &["Sat 22:00 for 6h"], &[]);
    let start = ts("2026-11-28T21:30:00Z");
    let o = Openings::of(&cal, start, Duration::from_secs(14 * 24 * 3600));
    let h = |x: u64| Duration::from_secs(x * 3600);
    // Open at the start (cut there), next week's, and the one after cut at the horizon.
    let secs = |(a, b): (Duration, Duration)| (a.as_secs(), b.as_secs());
    let got: Vec<(u64, u64)> = o.intervals.iter().copied().map(secs).collect();
    assert_eq!(
        got,
        [(0, 19_800), (603_000, 624_600), (1_207_800, 1_209_600)]
    );
    assert_eq!(o.earliest_fit(Duration::ZERO, h(5)), Some(Duration::ZERO));
    assert_eq!(o.earliest_fit(h(1), h(5)), Some(o.intervals[1].0));
    assert_eq!(o.earliest_fit(h(1), h(7)), None);
    assert_eq!(o.containing(h(2)), Some(o.intervals[0]));
    assert_eq!(o.containing(h(6)), None);
    assert_eq!(o.longest(), h(6));
}

// Properties over random calendars and instants.

const ZONES: [&str; 6] = [
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "UTC",
    "Australia/Lord_Howe",
    "America/Santiago",
];

fn window_strategy() -> impl Strategy<Value = WeeklyWindow> {
    (
        0i8..7,
        0u8..24,
        prop::sample::select(vec![0u8, 15, 30, 59]),
        1u64..(60 * 60),
    )
        .prop_map(|(d, hour, minute, len_min)| WeeklyWindow {
            day: jiff::civil::Weekday::from_monday_zero_offset(d).unwrap(),
            hour,
            minute,
            length: Duration::from_secs(len_min * 60),
        })
}

/// Blackouts within 2026–2027.
fn blackout_strategy() -> impl Strategy<Value = DateRange> {
    (0i64..700, 0i64..20).prop_map(|(start, len)| {
        let from = date("2026-01-01").checked_add(start.days()).unwrap();
        DateRange {
            from,
            to: from.checked_add(len.days()).unwrap(),
        }
    })
}

/// Instants in 2026–2027, on whole minutes half the time (window edges are on minutes).
fn instant_strategy() -> impl Strategy<Value = Timestamp> {
    let base = ts("2026-01-01T00:00:00Z").as_second();
    prop_oneof![
        (0i64..(2 * 365 * 24 * 60))
            .prop_map(move |m| Timestamp::from_second(base + m * 60).unwrap()),
        (0i64..(2 * 365 * 24 * 3600)).prop_map(move |s| Timestamp::from_second(base + s).unwrap()),
    ]
}

/// Whether `t` is inside an opening of `w`, computed another way: through `Zoned` for each
/// local date near `t`'s.
fn oracle_in_window(tz: &TimeZone, ws: &[WeeklyWindow], t: Timestamp) -> bool {
    let day = t.to_zoned(tz.clone()).date();
    (-8i64..=1).any(|k| {
        let d = day.checked_add(k.days()).unwrap();
        ws.iter().filter(|w| w.day == d.weekday()).any(|w| {
            let opens = d
                .at(w.hour as i8, w.minute as i8, 0, 0)
                .to_zoned(tz.clone())
                .unwrap()
                .timestamp();
            let closes = opens + SignedDuration::try_from(w.length).unwrap();
            opens <= t && t < closes
        })
    })
}

/// Whether `t`'s local date is in a blackout.
fn oracle_blacked_out(tz: &TimeZone, bs: &[DateRange], t: Timestamp) -> bool {
    let day = t.to_zoned(tz.clone()).date();
    bs.iter().any(|b| b.from <= day && day <= b.to)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn an_instant_is_open_exactly_when_a_window_holds_it_and_no_blackout_does(
        zone in prop::sample::select(ZONES.to_vec()),
        ws in prop::collection::vec(window_strategy(), 0..4),
        bs in prop::collection::vec(blackout_strategy(), 0..3),
        t in instant_strategy(),
    ) {
        let tz = TimeZone::get(zone).unwrap();
        let cal = Calendar::new(tz.clone(), &ws, &bs);
        let expected = (ws.is_empty() || oracle_in_window(&tz, &ws, t))
            && !oracle_blacked_out(&tz, &bs, t);
        let got = cal.window_at(t);
        prop_assert_eq!(got.is_some(), expected, "{} {:?} {:?}", t, ws, bs);
        if let Some(iv) = got {
            prop_assert!(iv.contains(t));
        }
    }

    #[test]
    fn openings_are_sorted_disjoint_and_never_overlap_a_blackout(
        zone in prop::sample::select(ZONES.to_vec()),
        ws in prop::collection::vec(window_strategy(), 0..4),
        bs in prop::collection::vec(blackout_strategy(), 0..3),
        t in instant_strategy(),
    ) {
        let tz = TimeZone::get(zone).unwrap();
        let cal = Calendar::new(tz.clone(), &ws, &bs);
        let until = t + SignedDuration::from_hours(24 * 21);
        let open = cal.open(t, until);
        for pair in open.windows(2) {
            prop_assert!(pair[0].end < pair[1].start, "{:?}", pair);
        }
        for iv in &open {
            prop_assert!(iv.start < iv.end && t <= iv.start && iv.end <= until);
            for b in cal.blackout_intervals(t, until) {
                prop_assert!(!iv.overlaps(&b), "{:?} overlaps blackout {:?}", iv, b);
            }
            // Both ends agree with the oracle: open just inside, in a blackout or closed
            // just outside (unless cut at the range's ends).
            prop_assert!(!oracle_blacked_out(&tz, &bs, iv.start));
            let last = iv.end - SignedDuration::from_secs(1);
            prop_assert!(ws.is_empty() || oracle_in_window(&tz, &ws, last));
            prop_assert!(!oracle_blacked_out(&tz, &bs, last));
        }
    }

    #[test]
    fn the_next_start_is_never_in_the_past_and_is_inside_its_window(
        zone in prop::sample::select(ZONES.to_vec()),
        ws in prop::collection::vec(window_strategy(), 1..4),
        bs in prop::collection::vec(blackout_strategy(), 0..3),
        t in instant_strategy(),
    ) {
        let tz = TimeZone::get(zone).unwrap();
        let cal = Calendar::new(tz, &ws, &bs);
        let until = t + SignedDuration::from_hours(24 * 70);
        let Some(next) = cal.next_start(t, until) else {
            // Then nothing opens from `t` until `until`.
            let starts = cal
                .open(t - SignedDuration::from_hours(24 * 8), until)
                .into_iter()
                .filter(|iv| iv.start >= t)
                .count();
            prop_assert_eq!(starts, 0);
            return Ok(());
        };
        prop_assert!(next.start >= t);
        let around = cal.window_at(next.start);
        prop_assert_eq!(around.map(|w| w.start), Some(next.start));
        // No opening starts between `t` and it.
        let earlier = cal
            .open(t - SignedDuration::from_hours(24 * 8), next.start)
            .into_iter()
            .any(|iv| iv.start >= t && iv.start < next.start);
        prop_assert!(!earlier);
        // Just before it, it is closed.
        prop_assert!(cal.window_at(next.start - SignedDuration::from_secs(1)).is_none());
    }

    #[test]
    fn an_earliest_fit_holds_the_whole_slot_and_nothing_earlier_does(
        zone in prop::sample::select(ZONES.to_vec()),
        ws in prop::collection::vec(window_strategy(), 0..4),
        bs in prop::collection::vec(blackout_strategy(), 0..3),
        t in instant_strategy(),
        minutes in 1u64..(10 * 60),
    ) {
        let tz = TimeZone::get(zone).unwrap();
        let cal = Calendar::new(tz, &ws, &bs);
        let until = t + SignedDuration::from_hours(24 * 56);
        let len = Duration::from_secs(minutes * 60);
        if let Some(s) = cal.earliest_fit(t, len, until) {
            prop_assert!(s >= t);
            let end = s + SignedDuration::try_from(len).unwrap();
            prop_assert!(end <= until);
            let w = cal.window_at(s);
            prop_assert!(w.is_some_and(|w| w.contains(s) && end <= w.end), "{:?} {} {}", w, s, end);
            // Nothing earlier: at `t` it does not fit, and `s` is `t` or an opening.
            if s > t {
                let at_t = cal.window_at(t);
                prop_assert!(at_t.is_none_or(|w| t + SignedDuration::try_from(len).unwrap() > w.end));
                prop_assert_eq!(cal.window_at(s - SignedDuration::from_secs(1)), None);
            }
        } else {
            // Then no opening up to `until` is long enough.
            prop_assert!(cal.open(t, until).iter().all(|iv| iv.length() < len));
        }
    }
}
