//! One test per rule about back ends: what `sql_server` may name, and mirror pairs.

use poolpatch_inventory::{Fqdn, MirrorRole, Role};

use crate::helpers::{dedent, expect_one, load, problems};

fn fqdn(s: &str) -> Fqdn {
    Fqdn::parse(s).expect("test FQDNs are valid")
}

#[test]
fn a_sql_server_is_not_a_front_end_or_a_pool() {
    expect_one(
        "
        version: 1
        defaults:
          ssh: { user: svc-poolpatch, agent: true }
        sites:
          - { name: amsterdam, time_zone: Europe/Amsterdam }
        pools:
          - fqdn: pool01.ams.contoso.com
            site: amsterdam
            edition: enterprise
            product: sfb2015
            front_ends: [{ fqdn: fe01.ams.contoso.com }]
            back_ends: [{ fqdn: be01.ams.contoso.com, sql_server: fe01.ams.contoso.com }]
        ",
        (12, 59),
        "pools[0].back_ends[0].sql_server",
        "`fe01.ams.contoso.com` is the Front End server at line 11, column 26 (pools[0].front_ends[0].fqdn), not a SQL Server",
        "usually the back end's own FQDN",
    );
}

/// A pool with two back ends whose `mirror:` lines are `first` and `second`, and a second
/// pool with one back end.
fn mirrored(first: &str, second: &str) -> String {
    dedent(&format!(
        "
        version: 1
        defaults:
          ssh: {{ user: svc-poolpatch, agent: true }}
        sites:
          - {{ name: amsterdam, time_zone: Europe/Amsterdam }}
        pools:
          - fqdn: pool01.ams.contoso.com
            site: amsterdam
            edition: enterprise
            product: sfb2015
            front_ends: [{{ fqdn: fe01.ams.contoso.com }}]
            back_ends:
              - fqdn: be01.ams.contoso.com
                sql_server: be01.ams.contoso.com
                {first}
              - fqdn: be02.ams.contoso.com
                sql_server: be02.ams.contoso.com
                {second}
          - fqdn: pool02.ams.contoso.com
            site: amsterdam
            edition: enterprise
            product: sfb2015
            back_ends: [{{ fqdn: be03.ams.contoso.com, sql_server: be03.ams.contoso.com }}]
        "
    ))
}

#[test]
fn a_mutual_mirror_pair_loads() {
    let inv = load(&mirrored(
        "mirror: { role: principal, partner: be02.ams.contoso.com }",
        "mirror: { role: mirror, partner: BE01.ams.contoso.com }",
    ))
    .unwrap_or_else(|d| panic!("{d}"));
    let servers = &inv.pools[0].servers;
    let Role::BackEnd {
        mirror: Some(m), ..
    } = &servers[1].role
    else {
        panic!("be02 is a mirrored back end: {:?}", servers[1].role)
    };
    assert_eq!(m.role, MirrorRole::Mirror);
    assert_eq!(m.partner, fqdn("be01.ams.contoso.com"));
}

#[test]
fn a_mirror_partner_is_a_back_end_of_the_same_pool() {
    expect_one(
        &mirrored(
            "mirror: { role: principal, partner: be2.ams.contoso.com }",
            "",
        ),
        (15, 45),
        "pools[0].back_ends[0].mirror.partner",
        "no back end `be2.ams.contoso.com` in this pool",
        "did you mean `be02.ams.contoso.com`?",
    );
    expect_one(
        &mirrored(
            "mirror: { role: principal, partner: be03.ams.contoso.com }",
            "",
        ),
        (15, 45),
        "pools[0].back_ends[0].mirror.partner",
        "no back end `be03.ams.contoso.com` in this pool",
        "`be03.ams.contoso.com` is the Back End server at line 23, column 25 (pools[1].back_ends[0].fqdn); mirroring pairs two back ends of the same pool",
    );
    expect_one(
        &mirrored(
            "mirror: { role: principal, partner: fe01.ams.contoso.com }",
            "",
        ),
        (15, 45),
        "pools[0].back_ends[0].mirror.partner",
        "no back end `fe01.ams.contoso.com` in this pool",
        "is the Front End server at line 11, column 26",
    );
}

#[test]
fn a_mirror_partner_is_never_suggested_as_the_back_end_itself() {
    expect_one(
        "
        version: 1
        defaults:
          ssh: { user: svc-poolpatch, agent: true }
        sites:
          - { name: amsterdam, time_zone: Europe/Amsterdam }
        pools:
          - fqdn: pool01.ams.contoso.com
            site: amsterdam
            edition: enterprise
            product: sfb2015
            back_ends:
              - fqdn: be01.ams.contoso.com
                sql_server: be01.ams.contoso.com
                mirror: { role: principal, partner: be02.ams.contoso.com }
        ",
        (14, 45),
        "pools[0].back_ends[0].mirror.partner",
        "no back end `be02.ams.contoso.com` in this pool",
        "no other back ends of this pool are defined",
    );
}

#[test]
fn a_back_end_is_not_its_own_mirror() {
    expect_one(
        &mirrored(
            "mirror: { role: principal, partner: be01.ams.contoso.com }",
            "",
        ),
        (15, 45),
        "pools[0].back_ends[0].mirror.partner",
        "a back end cannot be its own mirror partner",
        "name the other back end of the mirrored pair",
    );
}

#[test]
fn a_mirror_partner_names_this_back_end_back() {
    expect_one(
        &mirrored(
            "mirror: { role: principal, partner: be02.ams.contoso.com }",
            "",
        ),
        (15, 45),
        "pools[0].back_ends[0].mirror.partner",
        "the mirror pairing is not mutual: `be02.ams.contoso.com` has no `mirror`",
        "add `mirror: { role: mirror, partner: be01.ams.contoso.com }` to the back end at line 16, column 15 (pools[0].back_ends[1].fqdn)",
    );
}

#[test]
fn a_mirror_partner_does_not_point_elsewhere() {
    let all = problems(&mirrored(
        "mirror: { role: principal, partner: be02.ams.contoso.com }",
        "mirror: { role: mirror, partner: be03.ams.contoso.com }",
    ));
    let summary: Vec<String> = all.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        summary,
        [
            "inv.yaml:15:45: pools[0].back_ends[0].mirror.partner: the mirror pairing is not mutual: `be02.ams.contoso.com` names `be03.ams.contoso.com` as its partner at line 18, column 42 (pools[0].back_ends[1].mirror.partner)",
            "inv.yaml:18:42: pools[0].back_ends[1].mirror.partner: no back end `be03.ams.contoso.com` in this pool",
        ]
    );
    assert_eq!(
        all[0].help.as_deref(),
        Some("mirroring pairs exactly two back ends that name each other")
    );
}

#[test]
fn mirror_partners_have_different_roles() {
    expect_one(
        &mirrored(
            "mirror: { role: principal, partner: be02.ams.contoso.com }",
            "mirror: { role: principal, partner: be01.ams.contoso.com }",
        ),
        (18, 25),
        "pools[0].back_ends[1].mirror.role",
        "both `be01.ams.contoso.com` and `be02.ams.contoso.com` have the role `principal`",
        "one side of a mirrored pair is `principal`, the other `mirror`",
    );
}
