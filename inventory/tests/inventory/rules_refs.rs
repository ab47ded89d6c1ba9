//! One test per rule between values: unique names, references, the shape of each edition,
//! backup pools, `after:` and its cycles. (Back ends: `rules_back_ends`.)

use poolpatch_inventory::Fqdn;

use crate::helpers::{dedent, expect_among, expect_one, load, problems};

fn fqdn(s: &str) -> Fqdn {
    Fqdn::parse(s).expect("test FQDNs are valid")
}

#[test]
fn site_names_are_unique() {
    expect_one(
        "
        version: 1
        defaults:
          ssh: { user: svc-poolpatch, agent: true }
        sites:
          - { name: amsterdam, time_zone: Europe/Amsterdam }
          - { name: amsterdam, time_zone: Europe/Berlin }
        pools:
          - { fqdn: se01.ams.contoso.com, site: amsterdam, edition: standard, product: sfb2019, server: {} }
        ",
        (6, 13),
        "sites[1].name",
        "duplicate site name `amsterdam`: already defined at line 5, column 13 (sites[0].name)",
        "give each site a unique name",
    );
}

#[test]
fn fqdns_are_unique_across_pools_and_servers() {
    let all = problems(
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
            front_ends:
              - { fqdn: fe01.ams.contoso.com }
              - { fqdn: POOL01.ams.contoso.com }
            back_ends:
              - { fqdn: fe01.ams.contoso.com, sql_server: be01.ams.contoso.com }
          - { fqdn: fe01.ams.contoso.com, site: amsterdam, edition: standard, product: sfb2019, server: {} }
        ",
    );
    let summary: Vec<String> = all.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        summary,
        [
            "inv.yaml:13:17: pools[0].front_ends[1].fqdn: duplicate FQDN `pool01.ams.contoso.com`: already used by the pool at line 7, column 11 (pools[0].fqdn)",
            "inv.yaml:15:17: pools[0].back_ends[0].fqdn: duplicate FQDN `fe01.ams.contoso.com`: already used by the Front End server at line 12, column 17 (pools[0].front_ends[0].fqdn)",
            "inv.yaml:16:13: pools[1].fqdn: duplicate FQDN `fe01.ams.contoso.com`: already used by the Front End server at line 12, column 17 (pools[0].front_ends[0].fqdn)",
        ]
    );
    assert!(all.iter().all(|d| d.help.as_deref()
        == Some("every pool, Front End, Back End and Standard Edition server needs its own FQDN")));
}

#[test]
fn pools_name_a_defined_site() {
    expect_one(
        "
        version: 1
        defaults:
          ssh: { user: svc-poolpatch, agent: true }
        sites:
          - { name: amsterdam, time_zone: Europe/Amsterdam }
          - { name: newyork, time_zone: America/New_York }
        pools:
          - { fqdn: se01.ams.contoso.com, site: amsterdm, edition: standard, product: sfb2019, server: {} }
        ",
        (8, 41),
        "pools[0].site",
        "no site named `amsterdm`",
        "did you mean `amsterdam`?",
    );
    expect_one(
        "
        version: 1
        defaults:
          ssh: { user: svc-poolpatch, agent: true }
        sites:
          - { name: amsterdam, time_zone: Europe/Amsterdam }
          - { name: newyork, time_zone: America/New_York }
        pools:
          - { fqdn: se01.ams.contoso.com, site: tokyo, edition: standard, product: sfb2019, server: {} }
        ",
        (8, 41),
        "pools[0].site",
        "no site named `tokyo`",
        "known sites: amsterdam, newyork",
    );
}

#[test]
fn a_standard_pool_has_no_front_or_back_ends() {
    let all = problems(
        "
        version: 1
        defaults:
          ssh: { user: svc-poolpatch, agent: true }
        sites:
          - { name: berlin, time_zone: Europe/Berlin }
        pools:
          - fqdn: se01.ber.contoso.com
            site: berlin
            edition: standard
            product: lync2013
            front_ends: [{ fqdn: fe01.ber.contoso.com }]
            back_ends: [{ fqdn: be01.ber.contoso.com, sql_server: be01.ber.contoso.com }]
            server: {}
        ",
    );
    let summary: Vec<String> = all.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        summary,
        [
            "inv.yaml:11:5: pools[0].front_ends: a Standard Edition pool has no `front_ends`",
            "inv.yaml:12:5: pools[0].back_ends: a Standard Edition pool has no `back_ends`: its one server is given with `server:`",
        ]
    );
    assert!(
        all[0]
            .help
            .as_deref()
            .unwrap_or("")
            .contains("set `edition: enterprise`")
    );
    assert!(
        all[1]
            .help
            .as_deref()
            .unwrap_or("")
            .contains("replace `back_ends:` with `server:`")
    );
}

#[test]
fn a_standard_pool_has_exactly_one_server() {
    expect_one(
        "
        version: 1
        defaults:
          ssh: { user: svc-poolpatch, agent: true }
        sites:
          - { name: berlin, time_zone: Europe/Berlin }
        pools:
          - { fqdn: se01.ber.contoso.com, site: berlin, edition: standard, product: lync2013 }
        ",
        (7, 5),
        "pools[0].server",
        "missing field `server`: a Standard Edition pool has exactly one server",
        "add `server:` with the server's `ssh:` settings",
    );
}

#[test]
fn a_standard_server_has_its_pools_fqdn() {
    expect_one(
        "
        version: 1
        defaults:
          ssh: { user: svc-poolpatch, agent: true }
        sites:
          - { name: berlin, time_zone: Europe/Berlin }
        pools:
          - fqdn: se01.ber.contoso.com
            site: berlin
            edition: standard
            product: lync2013
            server: { fqdn: se02.ber.contoso.com }
        ",
        (11, 21),
        "pools[0].server.fqdn",
        "a Standard Edition server has its pool's FQDN, but this is `se02.ber.contoso.com` and the pool is `se01.ber.contoso.com`",
        "leave `server.fqdn` out",
    );
}

#[test]
fn an_enterprise_pool_has_back_ends() {
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
        ",
        (7, 5),
        "pools[0].back_ends",
        "missing field `back_ends`: an Enterprise Edition pool needs at least one Back End server",
        "add `back_ends:` with the pool's Back End (SQL Server) servers",
    );
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
            back_ends: []
        ",
        (11, 5),
        "pools[0].back_ends",
        "an Enterprise Edition pool needs at least one Back End server",
        "add the pool's Back End (SQL Server) servers to `back_ends:`",
    );
}

#[test]
fn an_enterprise_pool_has_no_single_server() {
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
            back_ends: [{ fqdn: be01.ams.contoso.com, sql_server: be01.ams.contoso.com }]
            server: { fqdn: pool01.ams.contoso.com }
        ",
        (12, 5),
        "pools[0].server",
        "an Enterprise Edition pool has no `server`",
        "or set `edition: standard`",
    );
}

/// Three pools in two sites with the given `backup_pool:` / `after:` lines (or "").
fn three_pools(a: &str, b: &str, c: &str) -> String {
    dedent(&format!(
        "
        version: 1
        defaults:
          ssh: {{ user: svc-poolpatch, agent: true }}
        sites:
          - {{ name: amsterdam, time_zone: Europe/Amsterdam }}
          - {{ name: newyork, time_zone: America/New_York }}
        pools:
          - fqdn: pool01.ams.contoso.com
            site: amsterdam
            edition: enterprise
            product: sfb2015
            back_ends: [{{ fqdn: be01.ams.contoso.com, sql_server: be01.ams.contoso.com }}]
            {a}
          - fqdn: pool01.nyc.contoso.com
            site: newyork
            edition: enterprise
            product: sfb2015
            back_ends: [{{ fqdn: be01.nyc.contoso.com, sql_server: be01.nyc.contoso.com }}]
            {b}
          - fqdn: pool02.nyc.contoso.com
            site: newyork
            edition: enterprise
            product: sfb2015
            back_ends: [{{ fqdn: be02.nyc.contoso.com, sql_server: be02.nyc.contoso.com }}]
            {c}
        "
    ))
}

#[test]
fn backup_pools_named_on_one_side_are_paired_on_both() {
    let inv = load(&three_pools("backup_pool: pool01.nyc.contoso.com", "", ""))
        .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        inv.pools[0].backup_pool,
        Some(fqdn("pool01.nyc.contoso.com"))
    );
    assert_eq!(
        inv.pools[1].backup_pool,
        Some(fqdn("pool01.ams.contoso.com"))
    );
    assert_eq!(inv.pools[2].backup_pool, None);
    let both = load(&three_pools(
        "backup_pool: pool01.nyc.contoso.com",
        "backup_pool: pool01.ams.contoso.com",
        "",
    ))
    .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(both, inv);
}

#[test]
fn a_pool_is_not_its_own_backup() {
    expect_one(
        &three_pools("backup_pool: pool01.ams.contoso.com", "", ""),
        (13, 18),
        "pools[0].backup_pool",
        "a pool cannot be its own backup pool",
        "name the paired pool",
    );
}

#[test]
fn a_backup_pool_exists() {
    expect_one(
        &three_pools("backup_pool: pool01.nyc.contoso.org", "", ""),
        (13, 18),
        "pools[0].backup_pool",
        "no pool named `pool01.nyc.contoso.org`",
        "did you mean `pool01.nyc.contoso.com`?",
    );
    expect_one(
        &three_pools("backup_pool: be01.nyc.contoso.com", "", ""),
        (13, 18),
        "pools[0].backup_pool",
        "no pool named `be01.nyc.contoso.com`",
        "`be01.nyc.contoso.com` is the Back End server at line 18, column 25 (pools[1].back_ends[0].fqdn), not a pool",
    );
}

#[test]
fn conflicting_backup_pairings_name_the_first_pairing() {
    // pool01.ams pairs with pool01.nyc, which names pool02.nyc.
    expect_one(
        &three_pools(
            "backup_pool: pool01.nyc.contoso.com",
            "backup_pool: pool02.nyc.contoso.com",
            "",
        ),
        (19, 18),
        "pools[1].backup_pool",
        "`pool01.nyc.contoso.com` is already paired with `pool01.ams.contoso.com` by line 13, column 18 (pools[0].backup_pool)",
        "a pool has at most one backup pool, and pairing is mutual",
    );
    // Two pools name the same backup pool.
    expect_one(
        &three_pools(
            "backup_pool: pool02.nyc.contoso.com",
            "backup_pool: pool02.nyc.contoso.com",
            "",
        ),
        (19, 18),
        "pools[1].backup_pool",
        "`pool02.nyc.contoso.com` is already paired with `pool01.ams.contoso.com` by line 13, column 18 (pools[0].backup_pool)",
        "a pool has at most one backup pool",
    );
}

#[test]
fn paired_pools_share_edition_and_product() {
    let all = problems(
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
            backup_pool: se01.ams.contoso.com
            back_ends: [{ fqdn: be01.ams.contoso.com, sql_server: be01.ams.contoso.com }]
          - { fqdn: se01.ams.contoso.com, site: amsterdam, edition: standard, product: lync2013, server: {} }
        ",
    );
    let summary: Vec<String> = all.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        summary,
        [
            "inv.yaml:11:18: pools[0].backup_pool: the backup pool `se01.ams.contoso.com` is Standard Edition, this pool is Enterprise Edition",
            "inv.yaml:11:18: pools[0].backup_pool: the backup pool `se01.ams.contoso.com` runs Lync Server 2013, this pool runs Skype for Business Server 2015",
        ]
    );
    assert!(
        all[0]
            .help
            .as_deref()
            .unwrap_or("")
            .contains("same edition and product version")
    );
}

#[test]
fn after_names_other_existing_pools_once() {
    let all = problems(&three_pools(
        "after: [pool01.ams.contoso.com, pool03.nyc.contoso.com, be01.nyc.contoso.com, pool01.nyc.contoso.com, pool01.nyc.contoso.com]",
        "",
        "",
    ));
    let summary: Vec<String> = all.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        summary,
        [
            "inv.yaml:13:13: pools[0].after[0]: a pool cannot come after itself",
            "inv.yaml:13:37: pools[0].after[1]: no pool named `pool03.nyc.contoso.com`",
            "inv.yaml:13:61: pools[0].after[2]: no pool named `be01.nyc.contoso.com`",
            "inv.yaml:13:107: pools[0].after[4]: `pool01.nyc.contoso.com` is listed twice in `after`",
        ]
    );
    let helps: Vec<&str> = all
        .iter()
        .map(|d| d.help.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(helps[0], "remove it from `after`");
    assert_eq!(helps[1], "did you mean `pool01.nyc.contoso.com`?");
    assert!(helps[2].contains("is the Back End server at line 18"));
    assert_eq!(helps[3], "list each pool once");
}

#[test]
fn a_cycle_in_after_is_named_whole() {
    expect_one(
        &three_pools(
            "after: [pool02.nyc.contoso.com]",
            "after: [pool01.ams.contoso.com]",
            "after: [pool01.nyc.contoso.com]",
        ),
        (13, 13),
        "pools[0].after[0]",
        "the `after` ordering has a cycle: pool01.ams.contoso.com → pool02.nyc.contoso.com → pool01.nyc.contoso.com → pool01.ams.contoso.com",
        "each pool in the cycle waits for the next one, so none can start",
    );
}

#[test]
fn an_inventory_has_pools() {
    expect_one(
        "
        version: 1
        sites:
          - { name: amsterdam, time_zone: Europe/Amsterdam }
        pools: []
        ",
        (4, 8),
        "pools",
        "the inventory has no pools",
        "list the pools to patch under `pools:`",
    );
    expect_among(
        "
        version: 1
        sites: []
        ",
        (1, 1),
        "pools",
        "missing field `pools`",
        "add `pools:` with a list of pools",
    );
}
