//! The scheduler on small estates, with exact timelines.

use std::time::Duration;

use poolpatch_inventory::{Fqdn, Inventory};

use super::*;
use crate::safety::Limits;
use crate::testing::{ee, inventory, se};

const MIN: Duration = Duration::from_secs(60);

fn estate(inv: &Inventory, max_pools: usize) -> Estate {
    Estate::new(
        inv,
        |_, _| true,
        Limits {
            max_pools,
            budget: 25 * MIN,
            threshold: 30 * MIN,
        },
    )
}

/// Every server of every pool, 1m preflight and `outage` minutes of outage, in
/// [`server_order`].
fn jobs(e: &Estate, outage: impl Fn(&str) -> u64) -> Vec<Vec<Job>> {
    e.pools()
        .iter()
        .map(|p| {
            server_order(e, &p.servers)
                .into_iter()
                .map(|s| Job {
                    server: s,
                    preflight: MIN,
                    outage: Duration::from_secs(60 * outage(e.server(s).unwrap().fqdn.as_str())),
                })
                .collect()
        })
        .collect()
}

/// The timeline as `server start-end` in minutes.
fn timeline(e: &Estate, s: &Schedule) -> Vec<String> {
    s.slots
        .iter()
        .map(|slot| {
            format!(
                "{} {}-{}",
                e.server(slot.server).unwrap().fqdn,
                slot.start.as_secs() / 60,
                slot.end.as_secs() / 60
            )
        })
        .collect()
}

#[test]
fn servers_of_a_pool_one_after_another_mirror_first() {
    let inv = inventory(&ee(
        "pool.a.com",
        "ams",
        &[
            "be1.a.com:principal:be2.a.com",
            "be2.a.com:mirror:be1.a.com",
            "be3.a.com",
        ],
        "",
    ));
    let e = estate(&inv, 1);
    let s = simulate(&e, &pool_priority(&e), &jobs(&e, |_| 20));
    assert_eq!(
        timeline(&e, &s),
        ["be2.a.com 0-21", "be1.a.com 21-42", "be3.a.com 42-63"]
    );
    assert_eq!(s.slots[0].outage_start, MIN);
    assert!(s.unscheduled.is_empty());
}

#[test]
fn concurrency_after_and_pairing_shape_the_timeline() {
    let pools = ee(
        "pool.a.com",
        "ams",
        &["be1.a.com", "be2.a.com"],
        "    backup_pool: pool.n.com\n",
    ) + &ee("pool.n.com", "nyc", &["be1.n.com"], "")
        + &se("se1.a.com", "ams", "    after: [se2.a.com]\n")
        + &se("se2.a.com", "ams", "");
    let inv = inventory(&pools);
    let e = estate(&inv, 2);
    let order: Vec<&str> = pool_priority(&e)
        .iter()
        .map(|p| e.pool(*p).unwrap().fqdn.as_str())
        .collect();
    assert_eq!(
        order,
        ["pool.a.com", "pool.n.com", "se2.a.com", "se1.a.com"]
    );
    assert_eq!(
        order,
        poolpatch_inventory::pool_order(&inv)
            .iter()
            .map(Fqdn::as_str)
            .collect::<Vec<_>>()
    );
    let s = simulate(&e, &pool_priority(&e), &jobs(&e, |_| 10));
    assert_eq!(
        timeline(&e, &s),
        [
            "be1.a.com 0-11",
            "se2.a.com 0-11",
            "be2.a.com 11-22",
            "se1.a.com 11-22",
            "be1.n.com 22-33",
        ]
    );
}

#[test]
fn unschedulable_servers_are_explained_and_hold_back_dependants() {
    let pools = se("se1.a.com", "ams", "") + &se("se2.a.com", "ams", "    after: [se1.a.com]\n");
    let inv = inventory(&pools);
    let e = estate(&inv, 2);
    let s = simulate(
        &e,
        &pool_priority(&e),
        &jobs(&e, |n| if n == "se1.a.com" { 30 } else { 10 }),
    );
    assert!(s.slots.is_empty());
    let reasons: Vec<String> = s
        .unscheduled
        .iter()
        .map(|(id, u)| match u {
            Unscheduled::Refused { refusal, .. } => {
                format!("{}: {refusal}", e.server(*id).unwrap().fqdn)
            }
            Unscheduled::WaitsForPool { after } => {
                format!(
                    "{}: waits for {}",
                    e.server(*id).unwrap().fqdn,
                    e.pool(*after).unwrap().fqdn
                )
            }
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        reasons,
        [
            "se1.a.com: the predicted outage of se1.a.com (30m) is not below the 25m budget",
            "se2.a.com: waits for se1.a.com",
        ]
    );
}

#[test]
fn a_pool_that_cannot_finish_releases_its_place_but_not_its_dependants() {
    let pools = ee("pool.a.com", "ams", &["be1.a.com", "be2.a.com"], "")
        + &se("se1.a.com", "ams", "")
        + &se("se2.a.com", "ams", "    after: [pool.a.com]\n");
    let inv = inventory(&pools);
    let e = estate(&inv, 1);
    // Only be1 is given to the scheduler (be2 was left out, as the plan does for a server
    // over budget): pool.a.com stops after be1 and se1 may start; se2 must wait forever.
    let mut seqs = jobs(&e, |_| 10);
    seqs[0].truncate(1);
    let s = simulate(&e, &pool_priority(&e), &seqs);
    assert_eq!(timeline(&e, &s), ["be1.a.com 0-11", "se1.a.com 11-22"]);
    assert_eq!(s.unscheduled.len(), 1);
    assert!(matches!(
        s.unscheduled[0].1,
        Unscheduled::WaitsForPool { .. }
    ));
}

/// Openings of `(opens, closes)` minutes.
fn openings(list: &[(u32, u32)]) -> crate::windows::Openings {
    crate::windows::Openings {
        intervals: list.iter().map(|&(o, c)| (o * MIN, c * MIN)).collect(),
    }
}

/// Every server on calendar 0.
fn one_calendar(e: &Estate, list: &[(u32, u32)]) -> Timing {
    Timing {
        calendars: vec![openings(list)],
        calendar_of: vec![Some(0); e.servers().len()],
        ..Timing::default()
    }
}

#[test]
fn servers_wait_for_an_opening_that_holds_their_whole_slot() {
    let pools =
        se("se1.a.com", "ams", "") + &se("se2.a.com", "ams", "") + &se("se3.a.com", "ams", "");
    let inv = inventory(&pools);
    let e = estate(&inv, 1);
    let t = one_calendar(&e, &[(60, 120), (300, 400)]);
    let s = simulate_with(
        &e,
        &pool_priority(&e),
        &jobs(&e, |n| if n == "se3.a.com" { 24 } else { 20 }),
        &t,
    );
    // se3's 25 minutes do not fit the 18 left at 102: it waits for the next opening.
    assert_eq!(
        timeline(&e, &s),
        ["se1.a.com 60-81", "se2.a.com 81-102", "se3.a.com 300-325"]
    );
    assert!(s.unscheduled.is_empty() && s.stages.is_empty());
}

#[test]
fn a_slot_no_opening_holds_is_not_scheduled_and_says_from_when() {
    let pools = se("se1.a.com", "ams", "") + &se("se2.a.com", "ams", "");
    let inv = inventory(&pools);
    let e = estate(&inv, 1);
    let t = one_calendar(&e, &[(0, 30), (100, 130)]);
    let s = simulate_with(&e, &pool_priority(&e), &jobs(&e, |_| 20), &t);
    assert_eq!(timeline(&e, &s), ["se1.a.com 0-21", "se2.a.com 100-121"]);
    // With openings of 20 minutes, nothing fits a 21-minute slot.
    let t = one_calendar(&e, &[(0, 20), (100, 120)]);
    let s = simulate_with(&e, &pool_priority(&e), &jobs(&e, |_| 20), &t);
    assert!(s.slots.is_empty());
    assert!(
        s.unscheduled.iter().all(
            |(_, u)| matches!(u, Unscheduled::NoWindow { from, .. } if *from == Duration::ZERO)
        ),
        "{:?}",
        s.unscheduled
    );
}

#[test]
fn a_pool_in_progress_keeps_its_place_while_it_waits_for_a_window() {
    let pools =
        ee("pool.a.com", "ams", &["be1.a.com", "be2.a.com"], "") + &se("se1.a.com", "ams", "");
    let inv = inventory(&pools);
    let e = estate(&inv, 1);
    // pool.a.com has windows, se1 may run at any time.
    let mut t = one_calendar(&e, &[(0, 30), (100, 200)]);
    t.calendar_of[2] = None;
    let s = simulate_with(&e, &pool_priority(&e), &jobs(&e, |_| 20), &t);
    assert_eq!(
        timeline(&e, &s),
        ["be1.a.com 0-21", "be2.a.com 100-121", "se1.a.com 121-142"]
    );
}

#[test]
fn a_pool_waiting_for_its_first_window_does_not_hold_back_others() {
    let pools = se("se1.a.com", "ams", "") + &se("se2.a.com", "ams", "");
    let inv = inventory(&pools);
    let e = estate(&inv, 1);
    let mut t = one_calendar(&e, &[(100, 200)]);
    t.calendar_of[1] = None;
    let s = simulate_with(&e, &pool_priority(&e), &jobs(&e, |_| 20), &t);
    assert_eq!(timeline(&e, &s), ["se2.a.com 0-21", "se1.a.com 100-121"]);
}

#[test]
fn a_stage_starts_after_the_previous_one_is_done_and_baked() {
    let pools =
        se("se1.a.com", "ams", "") + &se("se2.a.com", "ams", "") + &se("se3.a.com", "ams", "");
    let inv = inventory(&pools);
    let e = estate(&inv, 3);
    let t = Timing {
        stage_of: vec![0, 1, 1],
        stages: vec![
            StageSpec {
                bake: 60 * MIN,
                servers: 1,
            },
            StageSpec {
                bake: 30 * MIN,
                servers: 2,
            },
        ],
        ..Timing::default()
    };
    let s = simulate_with(&e, &pool_priority(&e), &jobs(&e, |_| 20), &t);
    assert_eq!(
        timeline(&e, &s),
        ["se1.a.com 0-21", "se2.a.com 81-102", "se3.a.com 81-102"]
    );
    let spans: Vec<(u64, u64, u64)> = s
        .stages
        .iter()
        .map(|sp| {
            (
                sp.opens.unwrap().as_secs() / 60,
                sp.servers_end.unwrap().as_secs() / 60,
                sp.end.unwrap().as_secs() / 60,
            )
        })
        .collect();
    assert_eq!(spans, [(0, 21, 81), (81, 102, 132)]);

    // A stage with a server left out (over budget, say) never completes: later stages wait.
    let mut seqs = jobs(&e, |_| 20);
    seqs[0].clear();
    let t = Timing {
        stage_of: vec![0, 0, 1],
        stages: vec![
            StageSpec {
                bake: Duration::ZERO,
                servers: 2,
            },
            StageSpec {
                bake: Duration::ZERO,
                servers: 1,
            },
        ],
        ..Timing::default()
    };
    let s = simulate_with(&e, &pool_priority(&e), &seqs, &t);
    assert_eq!(timeline(&e, &s), ["se2.a.com 0-21"]);
    assert_eq!(
        s.unscheduled,
        [(
            e.server_at(2).unwrap(),
            Unscheduled::WaitsForStage { stage: 0 }
        )]
    );
    assert_eq!(s.stages[0].end, None);
    assert_eq!(s.stages[1].opens, None);
}

#[test]
fn stages_and_windows_together() {
    // Stage 0 ends at 21 and bakes 10 minutes; stage 1's window opens at 60.
    let pools = se("se1.a.com", "ams", "") + &se("se2.a.com", "ams", "");
    let inv = inventory(&pools);
    let e = estate(&inv, 2);
    let t = Timing {
        calendars: vec![openings(&[(0, 25), (60, 90)])],
        calendar_of: vec![Some(0), Some(0)],
        stage_of: vec![0, 1],
        stages: vec![
            StageSpec {
                bake: 10 * MIN,
                servers: 1,
            },
            StageSpec {
                bake: Duration::ZERO,
                servers: 1,
            },
        ],
    };
    let s = simulate_with(&e, &pool_priority(&e), &jobs(&e, |_| 20), &t);
    assert_eq!(timeline(&e, &s), ["se1.a.com 0-21", "se2.a.com 60-81"]);
    assert_eq!(s.stages[1].opens, Some(31 * MIN));
    assert_eq!(s.stages[1].start, Some(60 * MIN));
}
