//! Weekly maintenance windows: when a site's (or a pool's) servers may be patched.
//!
//! A window is written `DAY HH:MM for LENGTH` (`Sat 22:00 for 6h`) or as a mapping
//! (`{ day: sat, start: "22:00", length: 6h }`). It opens every week on that day at that
//! local time, in the site's time zone, and stays open for LENGTH of **elapsed** time (the
//! outage budget is measured in elapsed time too). `DAY` may also be `daily` or a range such
//! as `Mon-Fri`, which give one window per day. Turning windows into instants (daylight
//! saving, blackouts) is the planner's job: this module only reads and checks them.
//!
//! ```
//! use poolpatch_inventory::windows::{WeeklyWindow, parse_window};
//! let w = parse_window("Sat 22:00 for 6h").unwrap();
//! assert_eq!(w.len(), 1);
//! assert_eq!(w[0].to_string(), "Sat 22:00 for 6h");
//! assert_eq!(parse_window("mon-wed 1:30 for 90m").unwrap().len(), 3);
//! assert!(parse_window("Sat 24:00 for 6h").is_err());
//! ```

use std::fmt;
use std::time::Duration;

use jiff::civil::{Time, Weekday};
use serde::{Serialize, Serializer};

use crate::decode::Ctx;
use crate::diag::{Pos, did_you_mean};
use crate::yaml::{Node, Value};

/// The longest window: a week (a window that long is always open).
pub const MAX_WINDOW_LENGTH: Duration = Duration::from_secs(7 * 24 * 3600);

/// How a window is written, for help texts.
pub const WINDOW_EXAMPLE: &str = "write `DAY HH:MM for LENGTH` in the site's local time, such as `Sat 22:00 for 6h`, `Sun 01:00 for 4h 30m` or `Mon-Fri 23:00 for 2h`";

/// The days in file spelling, Monday first.
const DAYS: [(&str, &str, Weekday); 7] = [
    ("Mon", "Monday", Weekday::Monday),
    ("Tue", "Tuesday", Weekday::Tuesday),
    ("Wed", "Wednesday", Weekday::Wednesday),
    ("Thu", "Thursday", Weekday::Thursday),
    ("Fri", "Friday", Weekday::Friday),
    ("Sat", "Saturday", Weekday::Saturday),
    ("Sun", "Sunday", Weekday::Sunday),
];

/// One weekly maintenance window: opens every week on `day` at `hour:minute` local time
/// and stays open for `length` of elapsed time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WeeklyWindow {
    /// The day it opens on, in the site's time zone.
    pub day: Weekday,
    /// The local hour it opens at (0–23).
    pub hour: u8,
    /// The local minute it opens at (0–59).
    pub minute: u8,
    /// How long it stays open: elapsed time, whole minutes, from one minute to a week.
    pub length: Duration,
}

impl WeeklyWindow {
    /// The local opening time.
    pub fn start_time(&self) -> Time {
        // hour < 24 and minute < 60 by construction; midnight is the harmless fallback.
        Time::new(
            i8::try_from(self.hour).unwrap_or(0),
            i8::try_from(self.minute).unwrap_or(0),
            0,
            0,
        )
        .unwrap_or(Time::midnight())
    }

    /// Minutes from Monday 00:00 to the opening (for ordering).
    pub fn minute_of_week(&self) -> u32 {
        u32::from(self.day.to_monday_zero_offset().unsigned_abs()) * 24 * 60
            + u32::from(self.hour) * 60
            + u32::from(self.minute)
    }
}

impl fmt::Display for WeeklyWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:02}:{:02} for {}",
            day_name(self.day),
            self.hour,
            self.minute,
            format_length(self.length)
        )
    }
}

impl Serialize for WeeklyWindow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The short English name of a day (`Sat`).
pub fn day_name(day: Weekday) -> &'static str {
    DAYS.iter()
        .find(|(_, _, d)| *d == day)
        .map_or("?", |(short, _, _)| short)
}

/// A window length as written back: `6h`, `4h 30m`, `45m`.
pub fn format_length(d: Duration) -> String {
    let minutes = d.as_secs() / 60;
    let (h, m) = (minutes / 60, minutes % 60);
    match (h, m) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h {m}m"),
    }
}

/// Reads `DAY HH:MM for LENGTH`; a `daily` or ranged day gives several windows.
pub fn parse_window(text: &str) -> Result<Vec<WeeklyWindow>, String> {
    let t = text.trim();
    let words: Vec<&str> = t.split_whitespace().collect();
    let for_at = words.iter().position(|w| w.eq_ignore_ascii_case("for"));
    let (head, length) = match for_at {
        Some(i) => (&words[..i], words[i + 1..].join(" ")),
        None => {
            return Err(format!(
                "`{t}` has no length: a window is `DAY HH:MM for LENGTH`"
            ));
        }
    };
    let (days, time) = match head {
        [day, time] => (*day, *time),
        [] | [_] => {
            return Err(format!("`{t}` needs a day and a start time before `for`"));
        }
        _ => {
            return Err(format!(
                "`{}` is not a day followed by a start time",
                head.join(" ")
            ));
        }
    };
    let days = parse_days(days)?;
    let (hour, minute) = parse_start(time)?;
    let length = parse_length(&length)?;
    Ok(days
        .into_iter()
        .map(|day| WeeklyWindow {
            day,
            hour,
            minute,
            length,
        })
        .collect())
}

/// Reads a day (`Sat`, `saturday`), `daily`, or a range (`Mon-Fri`, `Fri-Mon`).
pub fn parse_days(text: &str) -> Result<Vec<Weekday>, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("daily") {
        return Ok(DAYS.iter().map(|(_, _, d)| *d).collect());
    }
    if let Some((a, b)) = t.split_once('-') {
        let (a, b) = (parse_day(a)?, parse_day(b)?);
        let mut days = vec![a];
        let mut d = a;
        while d != b {
            d = d.wrapping_add(1);
            days.push(d);
        }
        return Ok(days);
    }
    parse_day(t).map(|d| vec![d])
}

fn parse_day(text: &str) -> Result<Weekday, String> {
    let t = text.trim();
    if let Some((_, _, d)) = DAYS
        .iter()
        .find(|(short, long, _)| t.eq_ignore_ascii_case(short) || t.eq_ignore_ascii_case(long))
    {
        return Ok(*d);
    }
    let names = DAYS.iter().flat_map(|(s, l, _)| [*s, *l]);
    let mut why = format!("`{t}` is not a day of the week");
    if let Some(s) = did_you_mean(t, names) {
        why.push_str(&format!(" (did you mean `{s}`?)"));
    }
    Err(why)
}

/// Reads a local start time `HH:MM` (00:00 to 23:59).
pub fn parse_start(text: &str) -> Result<(u8, u8), String> {
    let t = text.trim();
    let bad = || format!("`{t}` is not a time of day: write `HH:MM`, from 00:00 to 23:59");
    let (h, m) = t.split_once(':').ok_or_else(bad)?;
    let digits = |s: &str, n: std::ops::RangeInclusive<usize>| {
        n.contains(&s.len()) && s.chars().all(|c| c.is_ascii_digit())
    };
    if !digits(h, 1..=2) || !digits(m, 2..=2) {
        return Err(bad());
    }
    let (h, m): (u8, u8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h == 24 && m == 0 {
        return Err(format!(
            "`{t}` is not a time of day: write 00:00 of the next day"
        ));
    }
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok((h, m))
}

/// Reads a window length: numbers with `d`, `h` or `m` (`6h`, `4h 30m`, `90m`, `2d`), whole
/// minutes, from one minute to a week.
pub fn parse_length(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("the length is missing after `for`".into());
    }
    if t.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("`{t}` has no unit: write `6h`, `90m` or `1h 30m`"));
    }
    let bad = || format!("`{t}` is not a length: write `6h`, `90m` or `1h 30m`");
    let mut minutes: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let factor = match rest[..unit_len].to_ascii_lowercase().as_str() {
            "d" | "day" | "days" => 24 * 60,
            "h" | "hr" | "hrs" | "hour" | "hours" => 60,
            "m" | "min" | "mins" | "minute" | "minutes" => 1,
            _ => return Err(bad()),
        };
        minutes = minutes
            .checked_add(n.checked_mul(factor).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        rest = rest[unit_len..].trim_start();
    }
    let d = Duration::from_secs(minutes.saturating_mul(60));
    if d.is_zero() {
        return Err("a window of zero length never opens".into());
    }
    if d > MAX_WINDOW_LENGTH {
        return Err(format!(
            "`{t}` is longer than a week; a window repeats every week"
        ));
    }
    Ok(d)
}

/// `windows:` as written on a site or a pool.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WindowsInput {
    /// `windows: any`: any time.
    Any,
    /// The windows, expanded (one per day).
    Weekly(Vec<WeeklyWindow>),
}

impl WindowsInput {
    /// The windows, empty for any time.
    pub(crate) fn into_windows(self) -> Vec<WeeklyWindow> {
        match self {
            WindowsInput::Any => Vec::new(),
            WindowsInput::Weekly(w) => w,
        }
    }
}

/// Reads `windows:`: `any`, or a list of windows, each text or a `{ day, start, length }`
/// mapping. Every problem is recorded in `ctx`; `None` when anything is wrong.
pub(crate) fn decode(ctx: &mut Ctx, node: &Node, path: &str) -> Option<WindowsInput> {
    match &node.value {
        Value::Str(s) if s.trim().eq_ignore_ascii_case("any") => return Some(WindowsInput::Any),
        Value::Str(s) => {
            let help = if parse_window(s).is_ok() {
                format!("put it in a list: `windows: [\"{}\"]`", s.trim())
            } else {
                format!("write a list of windows, or `any` for any time; {WINDOW_EXAMPLE}")
            };
            ctx.error_help(
                node.pos,
                path,
                format!("expected a list of windows or `any`, found `{}`", s.trim()),
                help,
            );
            return None;
        }
        _ => {}
    }
    let items = ctx.list(node, path)?;
    if items.is_empty() {
        ctx.error_help(
            node.pos,
            path,
            "an empty list of windows would never open",
            "list the windows, write `any` for any time, or remove `windows:`",
        );
        return None;
    }
    let mut ok = true;
    let mut out: Vec<(WeeklyWindow, Pos, String)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("{path}[{i}]");
        let Some(windows) = decode_one(ctx, item, &field) else {
            ok = false;
            continue;
        };
        for w in windows {
            if let Some((_, pos, first)) = out.iter().find(|(x, _, _)| *x == w) {
                ctx.error_help(
                    item.pos,
                    &field,
                    format!(
                        "`{w}` is already given at line {}, column {} ({first})",
                        pos.line, pos.column
                    ),
                    "list each window once",
                );
                ok = false;
            } else {
                out.push((w, item.pos, field.clone()));
            }
        }
    }
    ok.then(|| WindowsInput::Weekly(out.into_iter().map(|(w, _, _)| w).collect()))
}

fn decode_one(ctx: &mut Ctx, node: &Node, path: &str) -> Option<Vec<WeeklyWindow>> {
    match &node.value {
        Value::Str(s) => match parse_window(s) {
            Ok(w) => Some(w),
            Err(why) => {
                ctx.error_help(node.pos, path, why, WINDOW_EXAMPLE);
                None
            }
        },
        Value::Map(_) => {
            let mut f = ctx.fields(node, path)?;
            let day = f
                .required(ctx, "day", "the day it opens: `sat`, `daily` or `mon-fri`")
                .and_then(|n| part(ctx, n, &f.path_of("day"), parse_days));
            let start = f
                .required(
                    ctx,
                    "start",
                    "the local opening time in quotes, such as \"22:00\"",
                )
                .and_then(|n| part(ctx, n, &f.path_of("start"), parse_start));
            let length = f
                .required(ctx, "length", "how long it stays open, such as `6h`")
                .and_then(|n| part(ctx, n, &f.path_of("length"), parse_length));
            f.finish(ctx);
            let (days, (hour, minute), length) = (day?, start?, length?);
            Some(
                days.into_iter()
                    .map(|day| WeeklyWindow {
                        day,
                        hour,
                        minute,
                        length,
                    })
                    .collect(),
            )
        }
        other => {
            ctx.error_help(
                node.pos,
                path,
                format!("expected a window, found {}", other.kind()),
                WINDOW_EXAMPLE,
            );
            None
        }
    }
}

/// One field of the mapping form, read as text (a number such as `1320`, which is what
/// some YAML readers make of an unquoted `22:00`, is refused with a hint to quote it).
fn part<T>(
    ctx: &mut Ctx,
    node: &Node,
    path: &str,
    parse: fn(&str) -> Result<T, String>,
) -> Option<T> {
    let text = match &node.value {
        Value::Str(s) => s.clone(),
        other => {
            ctx.error_help(
                node.pos,
                path,
                format!("expected text, found {}", other.kind()),
                "put the value in quotes, such as \"22:00\"",
            );
            return None;
        }
    };
    match parse(&text) {
        Ok(v) => Some(v),
        Err(why) => {
            ctx.error_help(node.pos, path, why, WINDOW_EXAMPLE);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> WeeklyWindow {
        let w = parse_window(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(w.len(), 1, "{s}");
        w[0]
    }

    #[test]
    fn reads_and_writes_back() {
        assert_eq!(one("Sat 22:00 for 6h").to_string(), "Sat 22:00 for 6h");
        assert_eq!(
            one("saturday 1:05 FOR 90m").to_string(),
            "Sat 01:05 for 1h 30m"
        );
        assert_eq!(
            one("Sun 00:00 for 2d").length,
            Duration::from_secs(48 * 3600)
        );
        assert_eq!(
            one("Sun 00:00 for 4 hours 30 minutes").to_string(),
            "Sun 00:00 for 4h 30m"
        );
        assert_eq!(one("Mon 23:59 for 7d").length, MAX_WINDOW_LENGTH);
    }

    #[test]
    fn days_expand() {
        let d: Vec<String> = parse_window("Fri-Mon 22:00 for 1h")
            .unwrap()
            .iter()
            .map(|w| day_name(w.day).to_string())
            .collect();
        assert_eq!(d, ["Fri", "Sat", "Sun", "Mon"]);
        assert_eq!(parse_window("daily 03:00 for 1h").unwrap().len(), 7);
        assert_eq!(parse_window("Sat-Sat 03:00 for 1h").unwrap().len(), 1);
    }

    #[test]
    fn refuses_with_reasons() {
        for (text, why) in [
            ("Sat 22:00", "has no length"),
            ("Sat for 6h", "needs a day and a start time"),
            ("Satruday 22:00 for 6h", "did you mean `Saturday`?"),
            ("Sat 24:00 for 6h", "00:00 of the next day"),
            ("Sat 22:60 for 6h", "not a time of day"),
            ("Sat 22h for 6h", "not a time of day"),
            ("Sat 22:00 for 6", "has no unit"),
            ("Sat 22:00 for 0h", "zero length"),
            ("Sat 22:00 for 8d", "longer than a week"),
            ("Sat 22:00 for 6 parsecs", "not a length"),
            ("Sat 22:00 for", "missing"),
            ("Sat at 22:00 for 6h", "not a day followed by a start time"),
            ("Sat 22:00 for 99999999999999999999h", "not a length"),
        ] {
            let e = parse_window(text).expect_err(text);
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn minute_of_week_orders_from_monday() {
        assert_eq!(one("Mon 00:00 for 1h").minute_of_week(), 0);
        assert_eq!(one("Sun 23:59 for 1h").minute_of_week(), 7 * 24 * 60 - 1);
    }
}
