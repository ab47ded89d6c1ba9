//! One test per rule: a state where only that rule refuses, and the state where it no
//! longer does.

use std::time::Duration;

use poolpatch_inventory::{Fqdn, Inventory};

use super::*;
use crate::testing::{ee, inventory, se};

const MIN: Duration = Duration::from_secs(60);
const OK: Duration = Duration::from_secs(20 * 60);

fn limits(max_pools: usize) -> Limits {
    Limits {
        max_pools,
        budget: Duration::from_secs(25 * 60),
        threshold: Duration::from_secs(30 * 60),
    }
}

fn estate(inv: &Inventory, max_pools: usize) -> Estate {
    Estate::new(inv, |_, _| true, limits(max_pools))
}

fn id(e: &Estate, name: &str) -> ServerId {
    e.server_id(&Fqdn::parse(name).unwrap()).unwrap()
}

fn refusal(e: &Estate, st: &EstateState, s: &str) -> Option<String> {
    e.may_start(st, id(e, s), OK).err().map(|r| r.to_string())
}

#[test]
fn one_back_end_at_a_time_per_pool() {
    let inv = inventory(&ee("pool.a.com", "ams", &["be1.a.com", "be2.a.com"], ""));
    let e = estate(&inv, 1);
    let mut st = EstateState::new(&e);
    assert_eq!(refusal(&e, &st, "be1.a.com"), None);
    st.begin(&e, id(&e, "be1.a.com"));
    assert_eq!(
        refusal(&e, &st, "be2.a.com").as_deref(),
        Some("another back end of pool pool.a.com, be1.a.com, is down")
    );
    st.end(&e, id(&e, "be1.a.com"), true);
    assert_eq!(refusal(&e, &st, "be2.a.com"), None);
    assert_eq!(
        st.pool_status(e.pool_at(0).unwrap()),
        PoolStatus::InProgress
    );
    st.begin(&e, id(&e, "be2.a.com"));
    st.end(&e, id(&e, "be2.a.com"), true);
    assert_eq!(st.pool_status(e.pool_at(0).unwrap()), PoolStatus::Done);
    assert_eq!(st.pools_in_progress(), 0);
}

#[test]
fn mirror_partners_are_never_down_together() {
    let inv = inventory(&ee(
        "pool.a.com",
        "ams",
        &[
            "be1.a.com:principal:be2.a.com",
            "be2.a.com:mirror:be1.a.com",
        ],
        "",
    ));
    let e = estate(&inv, 1);
    let mut st = EstateState::new(&e);
    st.begin(&e, id(&e, "be2.a.com"));
    let all = e.refusals(&st, id(&e, "be1.a.com"), OK);
    assert!(
        all.contains(&Refusal::MirrorPartnerDown {
            server: "be1.a.com".into(),
            partner: "be2.a.com".into()
        }),
        "{all:?}"
    );
    assert!(
        all.iter()
            .any(|r| matches!(r, Refusal::BackEndOfPoolDown { .. })),
        "{all:?}"
    );
    // The partner rule is reported first: it is the more specific reason.
    st.end(&e, id(&e, "be2.a.com"), true);
    assert_eq!(refusal(&e, &st, "be1.a.com"), None);
}

#[test]
fn mirror_side_before_principal() {
    let inv = inventory(&ee(
        "pool.a.com",
        "ams",
        &[
            "be1.a.com:principal:be2.a.com",
            "be2.a.com:mirror:be1.a.com",
        ],
        "",
    ));
    let e = estate(&inv, 1);
    let mut st = EstateState::new(&e);
    assert_eq!(
        refusal(&e, &st, "be1.a.com").as_deref(),
        Some(
            "be1.a.com holds the principal: its mirror side be2.a.com must be updated first (SQL Server's rolling order)"
        )
    );
    assert_eq!(refusal(&e, &st, "be2.a.com"), None);
    st.begin(&e, id(&e, "be2.a.com"));
    st.end(&e, id(&e, "be2.a.com"), false); // restored, not updated: still first
    assert!(
        refusal(&e, &st, "be1.a.com")
            .unwrap()
            .contains("must be updated first")
    );
    // A mirror side out of scope does not hold the principal back.
    let only_principal = Estate::new(&inv, |_, s| s.fqdn.as_str() == "be1.a.com", limits(1));
    let st = EstateState::new(&only_principal);
    assert_eq!(refusal(&only_principal, &st, "be1.a.com"), None);
}

#[test]
fn paired_pools_are_never_in_progress_together() {
    let pools = ee(
        "pool.a.com",
        "ams",
        &["be1.a.com", "be2.a.com"],
        "    backup_pool: pool.n.com\n",
    ) + &ee("pool.n.com", "nyc", &["be1.n.com"], "");
    let inv = inventory(&pools);
    let e = estate(&inv, 2);
    let mut st = EstateState::new(&e);
    st.begin(&e, id(&e, "be1.a.com"));
    assert_eq!(
        refusal(&e, &st, "be1.n.com").as_deref(),
        Some("pool pool.n.com is paired with pool pool.a.com, whose server be1.a.com is down")
    );
    // Between its servers the pool is still in progress.
    st.end(&e, id(&e, "be1.a.com"), true);
    assert_eq!(
        refusal(&e, &st, "be1.n.com").as_deref(),
        Some("pool pool.n.com is paired with pool pool.a.com, which is in progress")
    );
    st.begin(&e, id(&e, "be2.a.com"));
    st.end(&e, id(&e, "be2.a.com"), true);
    assert_eq!(refusal(&e, &st, "be1.n.com"), None);
}

#[test]
fn after_pools_must_be_done() {
    let pools = se("se1.a.com", "ams", "") + &se("se2.a.com", "ams", "    after: [se1.a.com]\n");
    let inv = inventory(&pools);
    let e = estate(&inv, 2);
    let mut st = EstateState::new(&e);
    assert_eq!(
        refusal(&e, &st, "se2.a.com").as_deref(),
        Some("pool se2.a.com comes after pool se1.a.com, which is not done")
    );
    st.begin(&e, id(&e, "se1.a.com"));
    assert!(refusal(&e, &st, "se2.a.com").unwrap().contains("not done"));
    st.end(&e, id(&e, "se1.a.com"), false);
    st.halt_pool(e.pool_at(0).unwrap());
    assert_eq!(st.pool_status(e.pool_at(0).unwrap()), PoolStatus::Halted);
    assert!(
        refusal(&e, &st, "se2.a.com").unwrap().contains("not done"),
        "a halted pool is not done"
    );
    st.begin(&e, id(&e, "se1.a.com"));
    st.end(&e, id(&e, "se1.a.com"), true);
    assert_eq!(refusal(&e, &st, "se2.a.com"), None);
    // An `after:` pool outside the scope does not hold anything back.
    let e = Estate::new(&inv, |p, _| p.fqdn.as_str() == "se2.a.com", limits(1));
    assert_eq!(refusal(&e, &EstateState::new(&e), "se2.a.com"), None);
}

#[test]
fn at_most_n_pools_at_once() {
    let pools = se("se1.a.com", "ams", "")
        + &se("se2.a.com", "ams", "")
        + &ee("pool.n.com", "nyc", &["be1.n.com", "be2.n.com"], "");
    let inv = inventory(&pools);
    let e = estate(&inv, 2);
    let mut st = EstateState::new(&e);
    st.begin(&e, id(&e, "se1.a.com"));
    st.begin(&e, id(&e, "be1.n.com"));
    assert_eq!(
        refusal(&e, &st, "se2.a.com").as_deref(),
        Some("2 pools are already in progress, the most patched at once")
    );
    st.end(&e, id(&e, "be1.n.com"), true);
    // pool.n.com is still in progress (be2 to go): it keeps its place, and may go on.
    assert!(refusal(&e, &st, "se2.a.com").is_some());
    assert_eq!(refusal(&e, &st, "be2.n.com"), None);
    st.end(&e, id(&e, "se1.a.com"), true);
    assert_eq!(refusal(&e, &st, "se2.a.com"), None);
}

#[test]
fn predicted_outage_must_be_below_budget() {
    let inv = inventory(&se("se1.a.com", "ams", ""));
    let e = estate(&inv, 1);
    let st = EstateState::new(&e);
    let s = id(&e, "se1.a.com");
    assert_eq!(
        e.may_start(&st, s, 25 * MIN).unwrap_err().to_string(),
        "the predicted outage of se1.a.com (25m) is not below the 25m budget"
    );
    assert!(
        e.may_start(&st, s, 25 * MIN - Duration::from_secs(1))
            .is_ok()
    );
}

#[test]
fn budget_must_be_below_threshold() {
    let inv = inventory(&se("se1.a.com", "ams", ""));
    let e = Estate::new(
        &inv,
        |_, _| true,
        Limits {
            max_pools: 1,
            budget: 30 * MIN,
            threshold: 30 * MIN,
        },
    );
    let st = EstateState::new(&e);
    assert_eq!(
        e.may_start(&st, id(&e, "se1.a.com"), OK)
            .unwrap_err()
            .to_string(),
        "the outage budget (30m) is not below the 30m resiliency threshold"
    );
}

#[test]
fn servers_out_of_scope_already_down_or_done_are_refused() {
    let inv = inventory(&(se("se1.a.com", "ams", "") + &se("se2.a.com", "ams", "")));
    let e = Estate::new(&inv, |p, _| p.fqdn.as_str() == "se1.a.com", limits(1));
    let mut st = EstateState::new(&e);
    assert_eq!(
        st.pool_status(e.pool_at(1).unwrap()),
        PoolStatus::OutOfScope
    );
    assert!(
        refusal(&e, &st, "se2.a.com")
            .unwrap()
            .contains("not in the change's scope")
    );
    st.begin(&e, id(&e, "se1.a.com"));
    assert!(
        refusal(&e, &st, "se1.a.com")
            .unwrap()
            .contains("already being updated")
    );
    st.end(&e, id(&e, "se1.a.com"), true);
    assert!(
        refusal(&e, &st, "se1.a.com")
            .unwrap()
            .contains("already updated")
    );
}

#[test]
fn a_state_of_another_estate_is_refused_not_a_panic() {
    let small = inventory(&se("se1.a.com", "ams", ""));
    let big = inventory(&(se("se1.a.com", "ams", "") + &se("se2.a.com", "ams", "")));
    let (es, eb) = (estate(&small, 1), estate(&big, 1));
    let mut st = EstateState::new(&es);
    st.begin(&eb, id(&eb, "se2.a.com"));
    st.end(&eb, id(&eb, "se2.a.com"), true);
    assert!(
        refusal(&eb, &st, "se2.a.com")
            .unwrap()
            .contains("belongs to another estate")
    );
}
