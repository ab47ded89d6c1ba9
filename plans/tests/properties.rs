//! Properties of plans over random estates: the timeline honours every safety rule, every
//! server gets the database command of its role, and planning is deterministic.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{PoolSpec, build, change_text, pool_name, server_name};
use poolpatch_inventory::{Inventory, MirrorRole, Role};
use poolpatch_plans::plan::{Plan, PoolPlanStatus, Verdict};
use poolpatch_plans::procedure::{StepKind, database_command};
use poolpatch_plans::{change_from_str, plan};
use proptest::prelude::*;

/// What proptest draws for one pool; turned into a [`PoolSpec`] by [`specs`].
type Draw = (u8, u8, u8, bool, u8, u8, u16, u8, u16);

fn specs(draws: &[Draw], cycles: bool) -> Vec<PoolSpec> {
    let n = draws.len();
    // A hidden order (by key) keeps `after:` acyclic while references go both ways in file
    // order; with `cycles`, any pool may name any other.
    let rank: Vec<(u16, usize)> = draws.iter().enumerate().map(|(i, d)| (d.8, i)).collect();
    draws
        .iter()
        .enumerate()
        .map(
            |(i, &(kind, bes, pairs, first, site, product, after_bits, pair, _))| PoolSpec {
                standard: kind < 3,
                back_ends: usize::from(bes % 4) + 1,
                mirrored_pairs: usize::from(pairs % 3),
                principal_first: first,
                collocated: kind % 2 == 0,
                site: usize::from(site),
                product: usize::from(product),
                after: (0..n)
                    .filter(|&j| {
                        j != i && after_bits & (1 << (j % 16)) != 0 && (j * 5 + i) % 3 == 0
                    })
                    .filter(|&j| cycles || rank[j] < rank[i])
                    .collect(),
                backup: (pair < 200).then_some(usize::from(pair) % n.max(1)),
            },
        )
        .collect()
}

/// Pairing made symmetric (one side would be enough for poolpatch, but the example
/// estates write both), skipping pools already paired.
fn pair_up(specs: &mut [PoolSpec]) {
    let mut paired = BTreeSet::new();
    for i in 0..specs.len() {
        match specs[i].backup {
            Some(b) if b != i && !paired.contains(&i) && !paired.contains(&b) => {
                paired.insert(i);
                paired.insert(b);
                specs[b].backup = Some(i);
            }
            _ => specs[i].backup = None,
        }
    }
    for s in specs.iter_mut() {
        if s.backup.is_some_and(|b| !paired.contains(&b)) {
            s.backup = None;
        }
    }
}

fn plan_for(
    inv: &Inventory,
    budget: u64,
    pools_at_once: u32,
    estimates: &[u8],
    scope_bits: Option<u16>,
) -> Plan {
    let mut est = Vec::new();
    for (i, server) in inv.servers().enumerate() {
        let e = estimates
            .get(i % estimates.len().max(1))
            .copied()
            .unwrap_or(0);
        est.push((server.fqdn.to_string(), 8 + u64::from(e % 9)));
    }
    let scope: Option<Vec<String>> = scope_bits.map(|bits| {
        (0..inv.pools.len())
            .filter(|i| bits & (1 << (i % 16)) != 0)
            .map(pool_name)
            .collect()
    });
    let text = change_text(budget, pools_at_once, &est, scope.as_deref());
    let change = change_from_str("generated.yaml", &text).unwrap_or_else(|d| panic!("{d}\n{text}"));
    plan(inv, &change)
}

/// Every safety property of a plan's timeline.
fn check_invariants(inv: &Inventory, p: &Plan) -> Result<(), TestCaseError> {
    let n = p.policy.max_concurrent_pools as usize;
    let by_fqdn: BTreeMap<&str, _> = p.servers.iter().map(|s| (s.fqdn.as_str(), s)).collect();
    let pools: BTreeMap<&str, _> = p.pools.iter().map(|x| (x.fqdn.as_str(), x)).collect();
    let overlap = |a: (Duration, Duration), b: (Duration, Duration)| a.0 < b.1 && b.0 < a.1;

    for pool in &inv.pools {
        // One server at a time per pool.
        let mut wins: Vec<_> = pool
            .servers
            .iter()
            .filter_map(|s| by_fqdn.get(s.fqdn.as_str()).and_then(|x| x.window))
            .map(|w| (w.start, w.end))
            .collect();
        wins.sort();
        for pair in wins.windows(2) {
            prop_assert!(
                pair[0].1 <= pair[1].0,
                "two servers of {} overlap: {:?}",
                pool.fqdn,
                pair
            );
        }
        for server in &pool.servers {
            let Some(sp) = by_fqdn.get(server.fqdn.as_str()) else {
                continue;
            };
            // The database command of its role, exactly once.
            let db: Vec<_> = sp
                .steps
                .outage
                .iter()
                .filter(|s| s.step.kind == StepKind::UpdateDatabases)
                .collect();
            prop_assert_eq!(db.len(), 1);
            prop_assert_eq!(&db[0].step.command, &database_command(&server.role));
            // Scheduled only if it fits.
            if sp.window.is_some() {
                prop_assert_eq!(sp.outage.verdict, Verdict::Fits);
                prop_assert!(sp.outage.predicted < p.policy.budget);
            } else {
                prop_assert!(sp.not_scheduled.is_some());
            }
            // Mirror partners never down together; the mirror side goes first.
            if let Role::BackEnd {
                mirror: Some(m), ..
            } = &server.role
                && let (Some(a), Some(b)) = (
                    sp.window,
                    by_fqdn.get(m.partner.as_str()).and_then(|x| x.window),
                )
            {
                prop_assert!(
                    !overlap((a.start, a.end), (b.start, b.end)),
                    "mirror partners overlap"
                );
                if m.role == MirrorRole::Principal {
                    prop_assert!(
                        b.end <= a.start,
                        "principal {} before its mirror",
                        server.fqdn
                    );
                }
            }
            if let Role::BackEnd {
                mirror: Some(m), ..
            } = &server.role
                && m.role == MirrorRole::Principal
                && sp.window.is_some()
                && let Some(mirror) = by_fqdn.get(m.partner.as_str())
            {
                prop_assert!(
                    mirror.window.is_some(),
                    "principal scheduled, mirror side in scope not"
                );
            }
        }
        let Some(pp) = pools.get(pool.fqdn.as_str()) else {
            continue;
        };
        let Some(w) = pp.window else { continue };
        // Paired pools never in progress together.
        if let Some(b) = &pool.backup_pool
            && let Some(bw) = pools.get(b.as_str()).and_then(|x| x.window)
        {
            prop_assert!(
                !overlap((w.start, w.end), (bw.start, bw.end)),
                "paired pools {} and {} overlap",
                pool.fqdn,
                b
            );
        }
        // `after:` pools in scope are complete and done before it starts.
        for a in &pool.after {
            let Some(ap) = pools.get(a.as_str()) else {
                continue;
            };
            if ap.status == PoolPlanStatus::OutOfScope {
                continue;
            }
            prop_assert_eq!(
                ap.status,
                PoolPlanStatus::Complete,
                "{} started before {} was complete",
                pool.fqdn,
                a
            );
            let aw = ap.window.map(|x| x.end).unwrap_or(Duration::MAX);
            prop_assert!(aw <= w.start, "{} starts before {} is done", pool.fqdn, a);
        }
    }
    // At most N pools in progress at any time.
    let mut events: Vec<(Duration, i32)> = Vec::new();
    for pp in &p.pools {
        if let Some(w) = pp.window {
            events.push((w.start, 1));
            events.push((w.end, -1));
        }
    }
    events.sort();
    let mut live = 0;
    for (_, d) in events {
        live += d;
        prop_assert!(live <= n as i32, "more than {n} pools at once");
    }
    // Counts add up.
    prop_assert_eq!(
        p.totals.servers_in_scope + p.totals.servers_out_of_scope,
        inv.servers().count()
    );
    prop_assert_eq!(
        p.totals.servers_scheduled + p.totals.servers_not_scheduled,
        p.totals.servers_in_scope
    );
    Ok(())
}

fn draw() -> impl Strategy<Value = Draw> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<bool>(),
        0u8..4,
        0u8..3,
        any::<u16>(),
        any::<u8>(),
        any::<u16>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn schedules_honour_every_safety_rule(
        draws in prop::collection::vec(draw(), 1..14),
        sites in 1usize..4,
        pools_at_once in 1u32..5,
        estimates in prop::collection::vec(any::<u8>(), 1..20),
        scope in prop::option::of(any::<u16>()),
    ) {
        let mut specs = specs(&draws, false);
        pair_up(&mut specs);
        let inv = build(sites, &specs);
        let p = plan_for(&inv, 25, pools_at_once, &estimates, scope);
        check_invariants(&inv, &p)?;
        // Deterministic: the same inputs give the same bytes, and JSON reads back.
        let again = plan_for(&inv.clone(), 25, pools_at_once, &estimates, scope);
        prop_assert_eq!(p.to_json(), again.to_json());
        prop_assert_eq!(p.to_text(), again.to_text());
        prop_assert_eq!(&Plan::from_json(&p.to_json()).unwrap(), &p);
    }

    /// Shapes the loader refuses (cycles in `after:`, one-sided pairings) still give a plan
    /// that honours the rules, and never a panic.
    #[test]
    fn odd_estates_never_panic_and_stay_safe(
        draws in prop::collection::vec(draw(), 1..10),
        pools_at_once in 1u32..4,
        estimates in prop::collection::vec(any::<u8>(), 1..10),
    ) {
        let specs = specs(&draws, true);
        let inv = build(2, &specs);
        let p = plan_for(&inv, 25, pools_at_once, &estimates, None);
        check_invariants(&inv, &p)?;
        prop_assert!(p.to_text().is_ascii());
        let _ = p.to_markdown();
    }
}

#[test]
fn principal_never_before_its_mirror_even_when_written_first() {
    let specs = vec![PoolSpec {
        standard: false,
        back_ends: 4,
        mirrored_pairs: 2,
        principal_first: true,
        collocated: false,
        site: 0,
        product: 1,
        after: vec![],
        backup: None,
    }];
    let inv = build(1, &specs);
    let p = plan_for(&inv, 25, 1, &[0], None);
    let order: Vec<&str> = p.scheduled().map(|s| s.fqdn.as_str()).collect();
    assert_eq!(
        order,
        [
            server_name(0, 1),
            server_name(0, 0),
            server_name(0, 3),
            server_name(0, 2)
        ]
    );
}

/// Zones for random calendars: with and without daylight saving, north and south.
const ZONES: [&str; 4] = [
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
];

/// Per site: a zone (index into [`ZONES`]) and weekly windows `(day, hour, minutes long)`.
type SiteDraw = (usize, Vec<(i8, u8, u64)>);

proptest! {
    #![proptest_config(ProptestConfig { cases: 60, ..ProptestConfig::default() })]

    /// Random weekly windows per site in several zones, a blackout, stages by site and a
    /// start anywhere in a week: every scheduled slot lies inside one opening of its own
    /// calendar and outside every blackout, stages run in order after their bake, the
    /// safety rules still hold, and the plan is deterministic.
    #[test]
    fn windows_blackouts_and_stages_are_honoured(
        draws in prop::collection::vec(draw(), 1..10),
        site_draws in prop::collection::vec(
            (0usize..4, prop::collection::vec((0i8..7, 0u8..24, 30u64..600), 0..3)),
            3,
        ),
        pools_at_once in 1u32..4,
        estimates in prop::collection::vec(any::<u8>(), 1..10),
        blackout in prop::option::of((0i64..40, 0i64..10)),
        staged in any::<bool>(),
        start_minute in 0i64..(7 * 24 * 60),
    ) {
        use jiff::{SignedDuration, Timestamp, ToSpan};
        use poolpatch_inventory::WeeklyWindow;
        use poolpatch_plans::windows::{Calendar, DateRange};

        let mut specs = specs(&draws, false);
        pair_up(&mut specs);
        let mut inv = build(3, &specs);
        let site_draws: Vec<SiteDraw> = site_draws;
        for (site, (zone, windows)) in inv.sites.iter_mut().zip(&site_draws) {
            site.time_zone = ZONES[*zone].to_string();
            site.windows = windows
                .iter()
                .map(|&(d, h, m)| WeeklyWindow {
                    day: jiff::civil::Weekday::from_monday_zero_offset(d).unwrap(),
                    hour: h,
                    minute: 0,
                    length: Duration::from_secs(m * 60),
                })
                .collect();
        }
        let mut est = Vec::new();
        for (i, server) in inv.servers().enumerate() {
            let e = estimates.get(i % estimates.len()).copied().unwrap_or(0);
            est.push((server.fqdn.to_string(), 8 + u64::from(e % 9)));
        }
        let mut text = change_text(25, pools_at_once, &est, None);
        let first_day = jiff::civil::date(2026, 11, 1);
        let blackout = blackout.map(|(from, len)| {
            let from = first_day.checked_add(from.days()).unwrap();
            DateRange { from, to: from.checked_add(len.days()).unwrap() }
        });
        if let Some(b) = blackout {
            text.push_str(&format!("blackouts: [{{ from: {}, to: {} }}]\n", b.from, b.to));
        }
        if staged {
            text.push_str("stages:\n  - { name: first, scope: { sites: [site0] }, bake: 3h }\n  - { name: rest }\n");
        }
        let change = change_from_str("generated.yaml", &text).unwrap_or_else(|d| panic!("{d}\n{text}"));
        let now = Timestamp::from_second(
            Timestamp::from(first_day.to_zoned(jiff::tz::TimeZone::UTC).unwrap()).as_second()
                + start_minute * 60,
        )
        .unwrap();
        let input = poolpatch_plans::PlanInput::new(&inv, &change).starting_at(now);
        let p = poolpatch_plans::plan_with(&input);
        check_invariants(&inv, &p)?;
        let at = |d: Duration| now + SignedDuration::try_from(d).unwrap();
        let horizon = poolpatch_plans::windows::PLANNING_HORIZON;
        for sp in p.scheduled() {
            let w = sp.window.unwrap();
            let server = inv.server(&poolpatch_inventory::Fqdn::parse(&sp.fqdn).unwrap()).unwrap();
            let pool = inv.pool(&server.pool).unwrap();
            let site = inv.site(&pool.site).unwrap();
            let blackouts: Vec<DateRange> = blackout.into_iter().collect();
            let cal = Calendar::new(
                jiff::tz::TimeZone::get(&site.time_zone).unwrap(),
                inv.windows_of(pool),
                &blackouts,
            );
            let (start, end) = (at(w.start), at(w.end));
            if cal.is_any_time() {
                prop_assert!(sp.maintenance_window.is_none());
                continue;
            }
            // Inside one opening of its own calendar, as the calendar itself says.
            let open = cal.window_at(start);
            prop_assert!(
                open.is_some_and(|o| o.contains(start) && end <= o.end),
                "{} runs {start}..{end} outside its windows ({:?})", sp.fqdn, open
            );
            let mw = sp.maintenance_window.as_ref().unwrap();
            prop_assert!(mw.opens <= w.start && w.end <= mw.closes);
            prop_assert!(w.end <= horizon);
            for b in cal.blackout_intervals(start, end) {
                prop_assert!(b.end <= start || end <= b.start, "{} in a blackout", sp.fqdn);
            }
        }
        // Stages in order, each after the previous one's bake.
        for pair in p.stages.windows(2) {
            if let (Some(a), Some(b)) = (pair[0].timeline, pair[1].timeline) {
                prop_assert_eq!(Some(b.opens), a.end);
                for s in pair[1].servers.iter().filter_map(|f| p.servers.iter().find(|x| &x.fqdn == f)) {
                    if let Some(w) = s.window {
                        prop_assert!(w.start >= b.opens);
                    }
                }
            } else {
                prop_assert!(pair[1].timeline.is_none() || pair[0].timeline.is_some());
            }
        }
        let again = poolpatch_plans::plan_with(&input);
        prop_assert_eq!(p.to_json(), again.to_json());
        prop_assert_eq!(&Plan::from_json(&p.to_json()).unwrap(), &p);
        prop_assert!(p.to_text().is_ascii());
        let _ = p.to_markdown();
    }
}
