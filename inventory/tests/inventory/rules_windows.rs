//! Maintenance windows on sites and pools: both forms, `any`, the site's windows inherited
//! or replaced by a pool's, and one test per rule with its position and help.

use std::time::Duration;

use poolpatch_inventory::Fqdn;

use crate::helpers::{dedent, expect_among, expect_one, load, problems};

/// An estate with `site` as the only site's extra fields and `pool` as the pool's.
fn estate(site: &str, pool: &str) -> String {
    format!(
        "
        version: 1
        defaults:
          ssh: {{ user: svc-poolpatch, agent: true, known_hosts: /etc/kh }}
        sites:
          - name: amsterdam
            time_zone: Europe/Amsterdam
{site}
        pools:
          - fqdn: se01.ams.contoso.com
            site: amsterdam
            edition: standard
            product: sfb2019
{pool}
            server: {{}}
          - fqdn: se02.ams.contoso.com
            site: amsterdam
            edition: standard
            product: sfb2019
            server: {{}}
        "
    )
}

fn windows_of(text: &str, pool: &str) -> Vec<String> {
    let inv = load(&dedent(text)).unwrap_or_else(|d| panic!("{d}"));
    let pool = inv
        .pool(&Fqdn::parse(pool).unwrap())
        .expect("the pool exists");
    inv.windows_of(pool).iter().map(|w| w.to_string()).collect()
}

#[test]
fn a_site_s_windows_apply_to_its_pools_and_a_pool_may_replace_them() {
    let text = estate(
        "            windows: [\"Sat 22:00 for 6h\", { day: sun, start: \"01:00\", length: 4h }]",
        "            windows: [\"Mon-Wed 23:30 for 1h 30m\"]",
    );
    assert_eq!(
        windows_of(&text, "se02.ams.contoso.com"),
        ["Sat 22:00 for 6h", "Sun 01:00 for 4h"]
    );
    assert_eq!(
        windows_of(&text, "se01.ams.contoso.com"),
        [
            "Mon 23:30 for 1h 30m",
            "Tue 23:30 for 1h 30m",
            "Wed 23:30 for 1h 30m"
        ]
    );
}

#[test]
fn no_windows_and_any_mean_any_time() {
    let text = estate("            windows: any", "");
    assert!(windows_of(&text, "se01.ams.contoso.com").is_empty());
    let text = estate("", "");
    assert!(windows_of(&text, "se01.ams.contoso.com").is_empty());
    // A pool's `any` overrides its site's windows.
    let text = estate(
        "            windows: [\"daily 02:00 for 2h\"]",
        "            windows: any",
    );
    assert!(windows_of(&text, "se01.ams.contoso.com").is_empty());
    assert_eq!(windows_of(&text, "se02.ams.contoso.com").len(), 7);
    let inv = load(&dedent(&text)).unwrap();
    assert_eq!(inv.pools[0].windows, Some(Vec::new()));
    assert_eq!(inv.pools[1].windows, None);
    assert_eq!(
        inv.sites[0].windows[0].length,
        Duration::from_secs(2 * 3600)
    );
}

#[test]
fn an_unknown_day_gets_a_suggestion_at_its_item() {
    expect_one(
        &estate(
            "            windows: [\"Sat 22:00 for 6h\", \"Satruday 22:00 for 6h\"]",
            "",
        ),
        (7, 35),
        "sites[0].windows[1]",
        "`Satruday` is not a day of the week (did you mean `Saturday`?)",
        "such as `Sat 22:00 for 6h`",
    );
}

#[test]
fn a_window_without_length_or_with_a_bad_time_is_refused() {
    expect_one(
        &estate("            windows: [\"Sat 22:00\"]", ""),
        (7, 15),
        "sites[0].windows[0]",
        "`Sat 22:00` has no length",
        "DAY HH:MM for LENGTH",
    );
    expect_one(
        &estate("", "            windows: [\"Sat 24:00 for 1h\"]"),
        (13, 15),
        "pools[0].windows[0]",
        "write 00:00 of the next day",
        "",
    );
    expect_one(
        &estate("            windows: [\"Sat 22:00 for 8d\"]", ""),
        (7, 15),
        "sites[0].windows[0]",
        "longer than a week",
        "",
    );
}

#[test]
fn the_mapping_form_checks_each_field() {
    let all = problems(&estate(
        "            windows: [{ day: frii, start: 22:00, lenght: 6h }]",
        "",
    ));
    let text: Vec<String> = all.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        text,
        [
            "inv.yaml:7:15: sites[0].windows[0].length: missing field `length`",
            "inv.yaml:7:22: sites[0].windows[0].day: `frii` is not a day of the week (did you mean `Fri`?)",
            "inv.yaml:7:42: sites[0].windows[0].lenght: unknown field `lenght`",
        ],
        "{text:#?}"
    );
    expect_among(
        &estate(
            "            windows: [{ day: sat, start: 1320, length: 6h }]",
            "",
        ),
        (7, 34),
        "sites[0].windows[0].start",
        "expected text, found a number",
        "put the value in quotes",
    );
}

#[test]
fn an_empty_list_a_lone_window_and_a_repeat_are_refused() {
    expect_one(
        &estate("            windows: []", ""),
        (7, 14),
        "sites[0].windows",
        "an empty list of windows would never open",
        "write `any` for any time",
    );
    expect_one(
        &estate("            windows: Sat 22:00 for 6h", ""),
        (7, 14),
        "sites[0].windows",
        "expected a list of windows or `any`",
        "put it in a list: `windows: [\"Sat 22:00 for 6h\"]`",
    );
    expect_one(
        &estate(
            "            windows: [\"daily 22:00 for 6h\", \"Sat 22:00 for 6h\"]",
            "",
        ),
        (7, 37),
        "sites[0].windows[1]",
        "`Sat 22:00 for 6h` is already given at line 7, column 15 (sites[0].windows[0])",
        "list each window once",
    );
    expect_one(
        &estate("            windows: [42]", ""),
        (7, 15),
        "sites[0].windows[0]",
        "expected a window, found a number",
        "",
    );
}
