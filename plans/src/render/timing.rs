//! The start, the stages and the maintenance windows of a plan, as the text and Markdown
//! renderers show them: every instant in the site's local time and in UTC.

use std::time::Duration;

use jiff::Timestamp;

use crate::plan::{
    Opening, Plan, ServerPlan, StagePlan, WindowCalendar, local_with, utc_short, utc_with,
};
use crate::units::{format_duration, format_offset};

/// How many openings of a calendar are listed.
const OPENINGS_SHOWN: usize = 3;

/// Header rows: the start, the stages and the failure limit, when there are any.
pub(crate) fn header_rows(plan: &Plan) -> Vec<(&'static str, String)> {
    let mut rows = Vec::new();
    if let Some(start) = plan.starts_at {
        let mut v = format!("{} (offsets count from it)", utc_short(start));
        if let Some(end) = plan.windows.as_ref().and_then(|w| w.horizon_end) {
            v.push_str(&format!("; windows are looked up to {}", utc_short(end)));
        }
        rows.push(("Starts", v));
    }
    if !plan.stages.is_empty() {
        let names: Vec<&str> = plan.stages.iter().map(|s| s.name.as_str()).collect();
        rows.push(("Stages", names.join(" -> ")));
    }
    if let Some(l) = &plan.policy.failure_limit {
        rows.push((
            "Failure limit",
            format!(
                "{} failed server{} halt{} the rollout ({})",
                l.servers,
                if l.servers == 1 { "" } else { "s" },
                if l.servers == 1 { "s" } else { "" },
                match &l.as_written {
                    Some(w) => format!("failure_limit: {w}"),
                    None => "the default for a change with stages".into(),
                }
            ),
        ));
    }
    rows
}

/// Extra schedule columns: the stage, and the start in UTC and local time.
pub(crate) fn schedule_headers(plan: &Plan) -> Vec<&'static str> {
    let mut h = Vec::new();
    if !plan.stages.is_empty() {
        h.push("STAGE");
    }
    if plan.starts_at.is_some() {
        h.extend(["START (UTC)", "START (LOCAL)"]);
    }
    h
}

/// The cells of [`schedule_headers`] for `s`.
pub(crate) fn schedule_cells(plan: &Plan, s: &ServerPlan) -> Vec<String> {
    let mut c = Vec::new();
    if !plan.stages.is_empty() {
        c.push(s.stage.clone().unwrap_or_else(|| "-".into()));
    }
    if plan.starts_at.is_some() {
        let at = s.window.and_then(|w| plan.instant_at(w.start));
        c.push(at.map_or_else(
            || "-".into(),
            |t| t.strftime("%Y-%m-%d %H:%M:%S").to_string(),
        ));
        c.push(at.map_or_else(
            || "-".into(),
            |t| {
                t.to_zoned(zone(&s.time_zone))
                    .strftime("%a %H:%M:%S %Z")
                    .to_string()
            },
        ));
    }
    c
}

fn zone(name: &str) -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get(name).unwrap_or(jiff::tz::TimeZone::UTC)
}

/// `local .. local (utc .. utc)`, with seconds on both ends when either has any.
fn span(from: Timestamp, to: Timestamp, tz: &str) -> String {
    let secs = from.as_second() % 60 != 0 || to.as_second() % 60 != 0;
    format!(
        "{} .. {} ({} .. {})",
        local_with(from, tz, secs),
        local_with(to, tz, secs),
        utc_with(from, secs),
        utc_with(to, secs)
    )
}

fn opening_text(o: &Opening, tz: &str) -> String {
    span(o.opens_at, o.closes_at, tz)
}

/// A server's lines under its name: its stage, its slot in local time and UTC, and its
/// maintenance window. `(label, text)` pairs.
pub(crate) fn server_lines(plan: &Plan, s: &ServerPlan) -> Vec<(&'static str, String)> {
    let mut lines = Vec::new();
    if let Some(stage) = &s.stage {
        let k = plan.stages.iter().position(|st| &st.name == stage);
        lines.push((
            "stage",
            match k {
                Some(k) => format!("{stage} ({} of {})", k + 1, plan.stages.len()),
                None => stage.clone(),
            },
        ));
    }
    if let Some(w) = s.window
        && let (Some(a), Some(b)) = (plan.instant_at(w.start), plan.instant_at(w.end))
    {
        lines.push(("at", span(a, b, &s.time_zone)));
    }
    if plan.windows.is_some() {
        let cal = s
            .calendar
            .as_deref()
            .and_then(|id| plan.windows.as_ref()?.calendars.iter().find(|c| c.id == id));
        let text = match (cal, &s.maintenance_window) {
            (Some(c), Some(o)) => Some(format!("{}, {}", opening_text(o, &c.time_zone), rules(c))),
            (Some(c), None) => Some(rules(c)),
            (None, _) => Some("any time (no windows or blackouts apply)".to_string()),
        };
        if let Some(t) = text {
            lines.push(("window", t));
        }
    }
    lines
}

/// `site amsterdam: Sat 22:00 for 6h, Sun 22:00 for 4h (Europe/Amsterdam); blackouts ...`.
fn rules(c: &WindowCalendar) -> String {
    let weekly = if c.weekly.is_empty() {
        "any time".to_string()
    } else {
        c.weekly.join(", ")
    };
    let mut s = format!("{}: {weekly} ({})", c.id, c.time_zone);
    if !c.blackouts.is_empty() {
        s.push_str(&format!("; blackouts {}", c.blackouts.join(", ")));
    }
    s
}

/// The stages as table rows: #, name, status, opens, start, servers done, bake, end,
/// servers.
pub(crate) fn stage_rows(plan: &Plan) -> Vec<Vec<String>> {
    let off = |d: Option<Duration>| d.map_or_else(|| "-".to_string(), format_offset);
    plan.stages
        .iter()
        .enumerate()
        .map(|(k, st)| {
            let t = st.timeline;
            vec![
                (k + 1).to_string(),
                st.name.clone(),
                st.status.name().into(),
                off(t.map(|t| t.opens)),
                off(t.and_then(|t| t.start)),
                off(t.and_then(|t| t.servers_end)),
                format_duration(st.bake),
                off(t.and_then(|t| t.end)),
                if st.servers.is_empty() {
                    "-".into()
                } else {
                    st.servers.join(", ")
                },
            ]
        })
        .collect()
}

/// The header of [`stage_rows`].
pub(crate) const STAGE_HEADERS: [&str; 9] = [
    "#", "STAGE", "STATUS", "OPENS", "START", "DONE", "BAKE", "END", "SERVERS",
];

/// One sentence per stage with a scope or a health check: what it names and what runs at
/// the end of its bake.
pub(crate) fn stage_sentences(plan: &Plan) -> Vec<String> {
    plan.stages.iter().map(stage_sentence).collect()
}

fn stage_sentence(st: &StagePlan) -> String {
    let names = match &st.scope {
        None => "the servers no earlier stage names".to_string(),
        Some(sc) => {
            let mut parts = Vec::new();
            for (what, list) in [
                ("sites", &sc.sites),
                ("pools", &sc.pools),
                ("servers", &sc.servers),
            ] {
                if !list.is_empty() {
                    parts.push(format!("{what} {}", list.join(", ")));
                }
            }
            parts.join("; ")
        }
    };
    let mut s = format!("{}: {names}", st.name);
    if let Some(h) = &st.health {
        s.push_str(&format!(
            "; during the {} bake, `{}` must keep succeeding (each run within {})",
            format_duration(st.bake),
            h.command,
            format_duration(h.timeout)
        ));
    } else if !st.bake.is_zero() {
        s.push_str(&format!("; then a {} bake", format_duration(st.bake)));
    }
    s.push('.');
    s
}

/// The lines of the maintenance-windows section: where they are looked up, the blackouts,
/// then per calendar its rules, servers and first openings. `(first, rest)` pairs of a
/// heading line and its indented lines.
pub(crate) fn window_sections(plan: &Plan) -> (Vec<String>, Vec<(String, Vec<String>)>) {
    let Some(w) = &plan.windows else {
        return (Vec::new(), Vec::new());
    };
    let mut intro = Vec::new();
    let weeks = w.horizon.as_secs() / (7 * 24 * 3600);
    match (plan.starts_at, w.horizon_end) {
        (Some(s), Some(e)) => intro.push(format!(
            "Windows are looked up from {} to the end of the {weeks}-week planning horizon, {}.",
            utc_short(s),
            utc_short(e)
        )),
        _ => intro.push(
            "The plan has no start time: no window can be placed, and servers bound by windows or blackouts are not scheduled.".into(),
        ),
    }
    for b in &w.blackouts {
        intro.push(format!(
            "Blackout {}..{}{}, {}: nothing runs on these local dates.",
            b.from,
            b.to,
            b.reason
                .as_ref()
                .map_or_else(String::new, |r| format!(" ({r})")),
            if b.sites.is_empty() {
                "every site".to_string()
            } else {
                format!("sites {}", b.sites.join(", "))
            }
        ));
    }
    let cals = w
        .calendars
        .iter()
        .map(|c| {
            let mut lines = vec![format!("servers: {}", c.servers.join(", "))];
            for o in c.openings.iter().take(OPENINGS_SHOWN) {
                lines.push(format!("opens {}", opening_text(o, &c.time_zone)));
            }
            let more = c.openings.len().saturating_sub(OPENINGS_SHOWN);
            if more > 0 {
                lines.push(format!("and {more} more openings in the horizon"));
            }
            if plan.starts_at.is_some() && c.openings.is_empty() {
                lines.push("no opening in the horizon".into());
            }
            (rules(c), lines)
        })
        .collect();
    (intro, cals)
}
