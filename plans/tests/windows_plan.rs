//! Plans with maintenance windows, blackouts and stages: the example estate with windows and
//! its canary change (pinned by snapshots), and one case per reason a server cannot run in a
//! window, across daylight-saving changes.

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use poolpatch_inventory::{Inventory, LoadOptions, from_str_with, load_with};
use poolpatch_plans::plan::{NotScheduledReason, Plan, StageStatus};
use poolpatch_plans::{Change, PlanInput, change_from_str, load_change, plan, plan_with};

const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// Saturday 2026-11-28 21:00 UTC: 22:00 in Amsterdam, 16:00 in New York, Sunday 06:00 in
/// Tokyo. The start the end-to-end test and `poolpatch demo` should use with the windows
/// example.
const SATURDAY_NIGHT: &str = "2026-11-28T21:00:00Z";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new(".."))
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn example() -> (Inventory, Change) {
    let opts = LoadOptions {
        home: Some("/home/operator".into()),
        base_dir: None,
    };
    let inv = load_with(
        &root().join("inventory/examples/estate-windows.yaml"),
        &opts,
    )
    .unwrap_or_else(|d| panic!("{d}"));
    let change = load_change(&root().join("plans/examples/change-canary.yaml"))
        .unwrap_or_else(|d| panic!("{d}"));
    change.check_against(&inv).unwrap_or_else(|d| panic!("{d}"));
    (inv, change)
}

fn plan_at(inv: &Inventory, change: &Change, now: &str) -> Plan {
    plan_with(&PlanInput::new(inv, change).starting_at(ts(now)))
}

fn server<'a>(p: &'a Plan, fqdn: &str) -> &'a poolpatch_plans::plan::ServerPlan {
    p.servers
        .iter()
        .find(|s| s.fqdn == fqdn)
        .unwrap_or_else(|| panic!("{fqdn} is in the plan"))
}

/// `(server, start)` for the scheduled servers, starts in UTC.
fn starts(p: &Plan) -> Vec<(String, String)> {
    p.scheduled()
        .map(|s| {
            let at = p.instant_at(s.window.unwrap().start).unwrap();
            (s.fqdn.clone(), at.to_string())
        })
        .collect()
}

#[test]
fn the_windows_example_on_a_saturday_night_schedules_everything_in_its_windows() {
    let (inv, change) = example();
    change.verify_installers().unwrap_or_else(|d| panic!("{d}"));
    let p = plan_at(&inv, &change, SATURDAY_NIGHT);
    assert_eq!(p.totals.servers_not_scheduled, 0, "{}", p.to_text());
    assert_eq!(p.starts_at, Some(ts(SATURDAY_NIGHT)));
    // The canary first (its pool's own window is open), Amsterdam after a 2h bake, then
    // Tokyo (any time) after 1h more, and New York when its night starts at 22:00 EST.
    let s = starts(&p);
    let at = |f: &str| s.iter().find(|(x, _)| x == f).unwrap().1.clone();
    assert_eq!(
        s[0],
        ("se01.ams.contoso.com".into(), "2026-11-28T21:00:00Z".into())
    );
    assert_eq!(at("be02.ams.contoso.com"), "2026-11-28T23:22:40Z");
    assert_eq!(at("be01.tyo.contoso.com"), "2026-11-29T01:30:40Z");
    assert_eq!(at("be01.nyc.contoso.com"), "2026-11-29T03:00:00Z");
    // Every scheduled server bound by windows runs inside the opening the plan names.
    for sp in p.scheduled() {
        let w = sp.window.unwrap();
        let o = sp
            .maintenance_window
            .as_ref()
            .expect("every site has a calendar here");
        assert!(o.opens <= w.start && w.end <= o.closes, "{}", sp.fqdn);
    }
    let se01 = server(&p, "se01.ams.contoso.com");
    assert_eq!(se01.calendar.as_deref(), Some("pool se01.ams.contoso.com"));
    assert_eq!(se01.stage.as_deref(), Some("canary"));
    assert_eq!(se01.time_zone, "Europe/Amsterdam");
    let nyc = server(&p, "be01.nyc.contoso.com")
        .maintenance_window
        .clone()
        .unwrap();
    assert_eq!(
        nyc.opens_local,
        "2026-11-28T22:00:00-05:00[America/New_York]"
    );
    assert_eq!(nyc.closes_at, ts("2026-11-29T09:00:00Z"));
    // Stages: in order, each after the previous one's bake.
    let names: Vec<(&str, StageStatus, usize)> = p
        .stages
        .iter()
        .map(|s| (s.name.as_str(), s.status, s.servers.len()))
        .collect();
    assert_eq!(
        names,
        [
            ("canary", StageStatus::Complete, 1),
            ("amsterdam", StageStatus::Complete, 3),
            ("rest", StageStatus::Complete, 6)
        ]
    );
    for pair in p.stages.windows(2) {
        let (a, b) = (pair[0].timeline.unwrap(), pair[1].timeline.unwrap());
        assert_eq!(Some(b.opens), a.end);
        assert!(b.start.unwrap() >= a.servers_end.unwrap() + pair[0].bake);
    }
    assert_eq!(
        p.stages[0].health.as_ref().unwrap().timeout,
        Duration::from_secs(300)
    );
    assert_eq!(p.policy.failure_limit.as_ref().unwrap().servers, 1);
    let w = p.windows.as_ref().unwrap();
    assert_eq!(w.horizon_end, Some(ts("2027-01-23T21:00:00Z")));
    assert_eq!(w.calendars.len(), 4);
    // The JSON reads back, and the same inputs give the same bytes.
    let json = p.to_json();
    assert_eq!(Plan::from_json(&json).unwrap(), p);
    assert_eq!(plan_at(&inv, &change, SATURDAY_NIGHT).to_json(), json);
    assert!(p.to_text().is_ascii());
    insta::assert_snapshot!("windows_example_text", p.to_text());
    insta::assert_snapshot!("windows_example_markdown", p.to_markdown());
}

#[test]
fn without_a_start_time_servers_bound_by_windows_or_blackouts_are_not_scheduled() {
    let (inv, change) = example();
    let p = plan(&inv, &change);
    assert_eq!(p.starts_at, None);
    assert_eq!(p.totals.servers_scheduled, 0);
    for s in p.not_scheduled() {
        let why = s.not_scheduled.as_ref().unwrap();
        assert_eq!(why.reason, NotScheduledReason::NeedsStartTime, "{}", s.fqdn);
        assert!(why.fix.as_deref().unwrap().contains("--now"));
    }
    assert!(
        server(&p, "be01.tyo.contoso.com")
            .not_scheduled
            .as_ref()
            .unwrap()
            .message
            .starts_with("the change has blackouts for site tokyo")
    );
    // Estates without windows or blackouts plan as before, with or without a start.
    let plain = load_with(
        &root().join("inventory/examples/estate.yaml"),
        &LoadOptions {
            home: Some("/home/operator".into()),
            base_dir: None,
        },
    )
    .unwrap();
    let change = load_change(&root().join("plans/examples/change.yaml")).unwrap();
    let without = plan(&plain, &change);
    assert_eq!(without.totals.servers_not_scheduled, 0);
    assert!(without.windows.is_none() && without.stages.is_empty());
    let with = plan_at(&plain, &change, SATURDAY_NIGHT);
    assert_eq!(with.servers.len(), without.servers.len());
    for (a, b) in with.servers.iter().zip(&without.servers) {
        assert_eq!((&a.fqdn, a.window), (&b.fqdn, b.window));
    }
}

#[test]
fn a_change_planned_into_the_freeze_waits_until_after_it() {
    // Saturday 2026-12-19, 22:00 in Amsterdam: the freeze starts at midnight local time. The
    // canary fits before it; Amsterdam's stage, after the bake, waits for the first Saturday
    // after the freeze.
    let (inv, change) = example();
    let p = plan_at(&inv, &change, "2026-12-19T21:00:00Z");
    assert_eq!(p.totals.servers_not_scheduled, 0, "{}", p.to_text());
    let s = starts(&p);
    assert_eq!(
        s[0],
        ("se01.ams.contoso.com".into(), "2026-12-19T21:00:00Z".into())
    );
    assert_eq!(
        s[1],
        ("be02.ams.contoso.com".into(), "2027-01-09T21:00:00Z".into())
    );
    let o = server(&p, "se01.ams.contoso.com")
        .maintenance_window
        .clone()
        .unwrap();
    assert_eq!(
        o.closes_local,
        "2026-12-20T00:00:00+01:00[Europe/Amsterdam]"
    );
}

/// An estate of one site in `zone` with `windows`, one Enterprise pool of `back_ends` back
/// ends and one Standard Edition pool.
fn estate(zone: &str, windows: &str, back_ends: usize) -> Inventory {
    let mut bes = String::new();
    for k in 1..=back_ends {
        bes.push_str(&format!(
            "      - {{ fqdn: be{k}.ber.contoso.com, sql_server: be{k}.ber.contoso.com }}\n"
        ));
    }
    let text = format!(
        "version: 1\ndefaults:\n  ssh: {{ user: svc, identity_file: /k/id, known_hosts: /k/kh }}\nsites:\n  - {{ name: berlin, time_zone: {zone}, windows: {windows} }}\npools:\n  - fqdn: pool.ber.contoso.com\n    site: berlin\n    edition: enterprise\n    product: sfb2015\n    back_ends:\n{bes}  - fqdn: se1.ber.contoso.com\n    site: berlin\n    edition: standard\n    product: sfb2015\n    server: {{}}\n"
    );
    from_str_with("estate.yaml", &text, &LoadOptions::default()).unwrap_or_else(|d| panic!("{d}"))
}

fn change(extra: &str) -> Change {
    let text = format!(
        "version: 1\nname: t\nupdate:\n  remote_dir: 'D:\\Staging'\n  installers:\n    sfb2015: {{ file: s.exe, sha256: {DIGEST}, version: \"6.0.9319.690\" }}\n{extra}"
    );
    change_from_str("change.yaml", &text).unwrap_or_else(|d| panic!("{d}"))
}

#[test]
fn windows_across_daylight_saving_changes() {
    // A window opening in Berlin's spring-forward gap opens at 03:30 CEST.
    let inv = estate("Europe/Berlin", "[\"Sun 02:30 for 2h\"]", 1);
    let p = plan_at(&inv, &change(""), "2026-03-28T12:00:00Z");
    let o = server(&p, "be1.ber.contoso.com")
        .maintenance_window
        .clone()
        .unwrap();
    assert_eq!(o.opens_at, ts("2026-03-29T01:30:00Z"));
    assert_eq!(o.opens_local, "2026-03-29T03:30:00+02:00[Europe/Berlin]");
    assert_eq!(o.closes_local, "2026-03-29T05:30:00+02:00[Europe/Berlin]");
    // Two hours hold two slots of 22m 40s... and a third, which the pool's one-at-a-time
    // rule does not touch (another pool), fits beside them.
    assert_eq!(p.totals.servers_not_scheduled, 0);

    // A window opening in New York's autumn fold opens at the first 01:30 (EDT) and lasts
    // two elapsed hours, to 02:30 EST.
    let inv = estate("America/New_York", "[\"Sun 01:30 for 2h\"]", 1);
    let p = plan_at(&inv, &change(""), "2026-10-31T12:00:00Z");
    let o = server(&p, "be1.ber.contoso.com")
        .maintenance_window
        .clone()
        .unwrap();
    assert_eq!(o.opens_local, "2026-11-01T01:30:00-04:00[America/New_York]");
    assert_eq!(
        o.closes_local,
        "2026-11-01T02:30:00-05:00[America/New_York]"
    );
    assert_eq!(o.closes.saturating_sub(o.opens), Duration::from_secs(7200));

    // A window that spans Berlin's change: Saturday 22:00 CET for 6h ends at 05:00 CEST.
    let inv = estate("Europe/Berlin", "[\"Sat 22:00 for 6h\"]", 1);
    let p = plan_at(&inv, &change(""), "2026-03-28T12:00:00Z");
    let o = server(&p, "be1.ber.contoso.com")
        .maintenance_window
        .clone()
        .unwrap();
    assert_eq!(o.opens_local, "2026-03-28T22:00:00+01:00[Europe/Berlin]");
    assert_eq!(o.closes_local, "2026-03-29T05:00:00+02:00[Europe/Berlin]");
}

#[test]
fn a_window_shorter_than_the_slot_is_explained_with_a_fix() {
    let inv = estate("Asia/Tokyo", "[\"Sat 22:00 for 20m\"]", 1);
    let p = plan_at(&inv, &change(""), "2026-11-28T00:00:00Z");
    assert_eq!(p.totals.servers_scheduled, 0);
    let why = server(&p, "be1.ber.contoso.com")
        .not_scheduled
        .clone()
        .unwrap();
    assert_eq!(why.reason, NotScheduledReason::NoWindow);
    assert_eq!(
        why.message,
        "its slot (22m 40s: preflight and predicted outage) is longer than the longest window of site berlin (Sat 22:00 for 20m)"
    );
    assert_eq!(
        why.fix.as_deref(),
        Some(
            "lengthen a window of site berlin to at least 22m 40s (such as `Sat 22:00 for 30m`), or lower the estimates if the steps really take less"
        )
    );
}

#[test]
fn windows_all_blacked_out_in_the_horizon_are_explained_with_a_fix() {
    let inv = estate("Asia/Tokyo", "[\"Sat 22:00 for 6h\"]", 1);
    let c = change("blackouts: [{ from: 2026-11-01, to: 2027-03-31, reason: migration }]\n");
    let p = plan_at(&inv, &c, "2026-11-28T00:00:00Z");
    let why = server(&p, "se1.ber.contoso.com")
        .not_scheduled
        .clone()
        .unwrap();
    assert_eq!(why.reason, NotScheduledReason::NoWindow);
    assert_eq!(
        why.message,
        "every window of site berlin in the 8-week planning horizon (2026-11-28 00:00 UTC to 2027-01-23 00:00 UTC) falls in a blackout (2026-11-01..2027-03-31 (migration))"
    );
    assert_eq!(
        why.fix.as_deref(),
        Some(
            "plan the change for after the blackout (`--now 2027-04-01T00:00:00Z` or later), or shorten the blackout"
        )
    );
    // A blackout for another site leaves this one alone.
    let c = change(
        "blackouts: [{ from: 2026-11-01, to: 2027-03-31, reason: migration, sites: [elsewhere] }]\n",
    );
    assert!(c.check_against(&inv).is_err());
    assert_eq!(
        plan_at(&inv, &c, "2026-11-28T00:00:00Z")
            .totals
            .servers_not_scheduled,
        0
    );
}

#[test]
fn servers_that_no_window_left_in_the_horizon_holds_are_not_scheduled() {
    // One slot a week fits a 30-minute window, and the pool's back ends go one at a time:
    // eight weeks hold eight of the nine.
    let inv = estate("UTC", "[\"Sat 22:00 for 30m\"]", 9);
    let p = plan_at(&inv, &change(""), "2026-11-28T00:00:00Z");
    let pool: Vec<&str> = p
        .scheduled()
        .filter(|s| s.pool == "pool.ber.contoso.com")
        .map(|s| s.fqdn.as_str())
        .collect();
    assert_eq!(pool.len(), 8);
    let why = server(&p, "be9.ber.contoso.com")
        .not_scheduled
        .clone()
        .unwrap();
    assert_eq!(why.reason, NotScheduledReason::NoWindow);
    assert_eq!(
        why.message,
        "no window of site berlin left in the planning horizon (to 2027-01-23 00:00 UTC) holds its slot (22m 40s) once it could start, at 2027-01-16 22:22:40 UTC"
    );
    // Every slot is inside its window, and none ends after the horizon.
    let horizon = p.windows.as_ref().unwrap().horizon;
    for s in p.scheduled() {
        let w = s.window.unwrap();
        let o = s.maintenance_window.as_ref().unwrap();
        assert!(o.opens <= w.start && w.end <= o.closes && w.end <= horizon);
    }
}

#[test]
fn a_stage_that_cannot_complete_holds_back_the_later_ones() {
    let inv = estate("UTC", "any", 2);
    let c = change(
        "stages:\n  - { name: canary, scope: { pools: [se1.ber.contoso.com] }, bake: 30m }\n  - { name: rest }\nestimates:\n  servers: { se1.ber.contoso.com: { install-update: 30m } }\n",
    );
    c.check_against(&inv).unwrap_or_else(|d| panic!("{d}"));
    let p = plan(&inv, &c);
    assert_eq!(p.totals.servers_scheduled, 0);
    let why = server(&p, "be1.ber.contoso.com")
        .not_scheduled
        .clone()
        .unwrap();
    assert_eq!(why.reason, NotScheduledReason::WaitsForStage);
    assert_eq!(
        why.message,
        "stage `rest` starts only once stage `canary` is complete, and not every server of `canary` is scheduled"
    );
    assert_eq!(p.stages[0].status, StageStatus::NotScheduled);
    assert_eq!(p.stages[1].timeline, None);
    // Without the slow estimate, `rest` opens after canary's 22m 40s and 30m bake.
    let c = change(
        "stages:\n  - { name: canary, scope: { pools: [se1.ber.contoso.com] }, bake: 30m }\n  - { name: rest }\n",
    );
    let p = plan(&inv, &c);
    assert_eq!(
        p.stages[1].timeline.unwrap().opens,
        Duration::from_secs(22 * 60 + 40 + 30 * 60)
    );
    assert_eq!(p.policy.failure_limit.as_ref().unwrap().as_written, None);
}

#[test]
fn extreme_start_times_never_panic() {
    let (inv, change) = example();
    for now in [
        Timestamp::MIN,
        Timestamp::MAX,
        Timestamp::MAX
            .checked_sub(jiff::SignedDuration::from_hours(24 * 30))
            .unwrap(),
        Timestamp::MIN
            .checked_add(jiff::SignedDuration::from_hours(1))
            .unwrap(),
        "2026-11-28T21:00:00.5Z".parse().unwrap(),
    ] {
        let p = plan_with(&PlanInput::new(&inv, &change).starting_at(now));
        assert!(p.to_text().is_ascii());
        let _ = p.to_markdown();
        assert_eq!(Plan::from_json(&p.to_json()).unwrap(), p);
    }
    // A start within a second is rounded up to the next whole second.
    let p = plan_with(
        &PlanInput::new(&inv, &change).starting_at("2026-11-28T21:00:00.5Z".parse().unwrap()),
    );
    assert_eq!(p.starts_at, Some(ts("2026-11-28T21:00:01Z")));
}
