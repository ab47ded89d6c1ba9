//! One test per rule about single values: kinds, required and unknown fields, versions,
//! choices, and the grammar of FQDNs, time zones, names, addresses, users and paths.

use crate::helpers::{expect_among, expect_one, problems};

#[test]
fn yaml_syntax_errors_name_the_position() {
    expect_one(
        "
        version: 1
        sites: [ { name: amsterdam
        ",
        (2, 10),
        "",
        "not valid YAML: unclosed bracket '{'",
        "fix the YAML syntax",
    );
}

#[test]
fn the_document_must_be_a_mapping() {
    expect_one(
        "
        - version: 1
        ",
        (1, 1),
        "",
        "expected a mapping (`key: value` lines), found a list",
        "",
    );
}

#[test]
fn version_is_required() {
    expect_one(
        "
        defaults:
          ssh: { user: svc-poolpatch, agent: true }
        sites:
          - { name: amsterdam, time_zone: Europe/Amsterdam }
        pools:
          - { fqdn: se01.ams.contoso.com, site: amsterdam, edition: standard, product: sfb2019, server: {} }
        ",
        (1, 1),
        "version",
        "missing field `version`",
        "add `version:` with the format version, 1",
    );
}

#[test]
fn another_version_is_refused_and_nothing_else_is_reported() {
    // Read as version 1, this file would have several problems; they would be noise.
    expect_one(
        "
        sites: nothing
        version: 2
        pools: {}
        ",
        (2, 10),
        "version",
        "unsupported inventory version 2",
        "this poolpatch reads version 1",
    );
}

#[test]
fn version_must_be_a_number() {
    expect_among(
        "
        version: one
        ",
        (1, 10),
        "version",
        "expected the version number, found text",
        "write `version: 1`",
    );
}

#[test]
fn unknown_fields_suggest_the_closest_known_one() {
    expect_one(
        "
        version: 1
        defaults:
          ssh: { user: svc-poolpatch, agent: true, known_hosts: /etc/kh }
        sites:
          - { name: amsterdam, time_zone: Europe/Amsterdam }
        pools:
          - fqdn: se01.ams.contoso.com
            site: amsterdam
            edition: standard
            product: sfb2019
            backup_pol: se02.ams.contoso.com
            server: {}
        ",
        (11, 5),
        "pools[0].backup_pol",
        "unknown field `backup_pol`",
        "did you mean `backup_pool`?",
    );
}

#[test]
fn unknown_fields_without_a_close_match_list_the_known_ones() {
    expect_one(
        "
        version: 1
        defaults:
          ssh: { user: svc-poolpatch, agent: true, known_hosts: /etc/kh }
        sites:
          - { name: amsterdam, time_zone: Europe/Amsterdam, region: emea }
        pools:
          - { fqdn: se01.ams.contoso.com, site: amsterdam, edition: standard, product: sfb2019, server: {} }
        ",
        (5, 53),
        "sites[0].region",
        "unknown field `region`",
        "known fields here: name, time_zone, windows",
    );
}

#[test]
fn missing_fields_are_reported_at_their_mapping() {
    expect_one(
        "
        version: 1
        defaults:
          ssh: { user: svc-poolpatch, agent: true, known_hosts: /etc/kh }
        sites:
          - { name: amsterdam, time_zone: Europe/Amsterdam }
        pools:
          - fqdn: se01.ams.contoso.com
            site: amsterdam
            edition: standard
            server: {}
        ",
        (7, 5),
        "pools[0].product",
        "missing field `product`",
        "add `product:` with `lync2013`, `sfb2015` or `sfb2019`",
    );
}

#[test]
fn an_empty_required_field_is_called_empty() {
    expect_among(
        "
        version: 1
        sites:
          - name: amsterdam
            time_zone:
        pools: []
        ",
        (3, 5),
        "sites[0].time_zone",
        "`time_zone` is empty",
        "add `time_zone:` with the site's IANA time zone",
    );
}

#[test]
fn wrong_kinds_say_what_was_expected_and_found() {
    let all = problems(
        "
        version: 1
        defaults:
          ssh: { user: svc-poolpatch, agent: true, known_hosts: /etc/kh }
        sites:
          - { name: amsterdam, time_zone: 5 }
        pools:
          - fqdn: pool01.ams.contoso.com
            site: amsterdam
            edition: enterprise
            product: sfb2015
            front_ends: fe01.ams.contoso.com
            back_ends:
              - { fqdn: be01.ams.contoso.com, sql_server: be01.ams.contoso.com, ssh: 22 }
        ",
    );
    let summary: Vec<String> = all.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        summary,
        [
            "inv.yaml:5:35: sites[0].time_zone: expected text, found a number",
            "inv.yaml:11:17: pools[0].front_ends: expected a list, found text",
            "inv.yaml:13:78: pools[0].back_ends[0].ssh: expected a mapping (`key: value` lines), found a number",
        ]
    );
    assert_eq!(
        all[0].help.as_deref(),
        Some("put the value in quotes if it is meant as text")
    );
    assert!(
        all[1]
            .help
            .as_deref()
            .unwrap_or("")
            .contains("starting with `- `")
    );
}

#[test]
fn choices_suggest_the_closest_value() {
    expect_one(
        "
        version: 1
        defaults:
          ssh: { user: svc-poolpatch, agent: true, known_hosts: /etc/kh }
        sites:
          - { name: amsterdam, time_zone: Europe/Amsterdam }
        pools:
          - { fqdn: se01.ams.contoso.com, site: amsterdam, edition: standard, product: sfb2016, server: {} }
        ",
        (7, 80),
        "pools[0].product",
        "`sfb2016` is not a valid value",
        "did you mean `sfb2015`? (one of: lync2013, sfb2015, sfb2019)",
    );
}

#[test]
fn fqdns_must_be_fully_qualified() {
    expect_one(
        "
        version: 1
        defaults:
          ssh: { user: svc-poolpatch, agent: true, known_hosts: /etc/kh }
        sites:
          - { name: amsterdam, time_zone: Europe/Amsterdam }
        pools:
          - { fqdn: se01, site: amsterdam, edition: standard, product: sfb2019, server: {} }
        ",
        (7, 13),
        "pools[0].fqdn",
        "`se01` is not a valid FQDN: `se01` is a single label",
        "write the fully qualified DNS name of the pool",
    );
}

#[test]
fn values_that_are_unsafe_in_a_powershell_command_are_refused() {
    let all = problems(
        r#"
        version: 1
        defaults:
          ssh: { user: "svc$(calc)", agent: true, known_hosts: /etc/kh }
        sites:
          - { name: amsterdam, time_zone: Europe/Amsterdam }
        pools:
          - fqdn: pool01.ams.contoso.com
            site: amsterdam
            edition: enterprise
            product: sfb2015
            front_ends:
              - { fqdn: fe01.ams.contoso.com, upgrade_domain: "UD1'; Stop-Computer" }
            back_ends:
              - { fqdn: be01.ams.contoso.com, sql_server: "be01.ams.contoso.com;calc" }
        "#,
    );
    let summary: Vec<String> = all.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        summary,
        [
            "inv.yaml:3:16: defaults.ssh.user: `$` is not allowed in a user name (letters, digits, `.`, `-`, `_`, `\\` and `@` only), so it could not be placed safely in a remote command",
            "inv.yaml:12:55: pools[0].front_ends[0].upgrade_domain: `'` is not allowed in an upgrade domain (letters, digits, `-`, `_` and `.` only)",
            "inv.yaml:14:51: pools[0].back_ends[0].sql_server: `be01.ams.contoso.com;calc` is not a valid FQDN: `;` is not allowed in an FQDN (letters, digits, `-` and `.` only)",
        ]
    );
    assert!(
        all[0]
            .help
            .as_deref()
            .unwrap_or("")
            .contains("CONTOSO\\svc-poolpatch")
    );
    assert!(
        all[1]
            .help
            .as_deref()
            .unwrap_or("")
            .contains("Get-CsPoolFabricState")
    );
    assert!(
        all[2]
            .help
            .as_deref()
            .unwrap_or("")
            .contains("the SQL Server")
    );
}

#[test]
fn time_zones_must_be_iana_names() {
    expect_one(
        "
        version: 1
        defaults:
          ssh: { user: svc-poolpatch, agent: true, known_hosts: /etc/kh }
        sites:
          - { name: amsterdam, time_zone: Europe/Amsterdm }
        pools:
          - { fqdn: se01.ams.contoso.com, site: amsterdam, edition: standard, product: sfb2019, server: {} }
        ",
        (5, 35),
        "sites[0].time_zone",
        "`Europe/Amsterdm` is not an IANA time zone",
        "did you mean `Europe/Amsterdam`?",
    );
    expect_one(
        "
        version: 1
        defaults:
          ssh: { user: svc-poolpatch, agent: true, known_hosts: /etc/kh }
        sites:
          - { name: amsterdam, time_zone: CET+1 }
        pools:
          - { fqdn: se01.ams.contoso.com, site: amsterdam, edition: standard, product: sfb2019, server: {} }
        ",
        (5, 35),
        "sites[0].time_zone",
        "`CET+1` is not an IANA time zone",
        "such as Europe/Amsterdam",
    );
}

#[test]
fn site_names_are_plain_identifiers() {
    expect_among(
        "
        version: 1
        sites:
          - { name: new york, time_zone: America/New_York }
        pools: []
        ",
        (3, 13),
        "sites[0].name",
        "the character U+0020 is not allowed in a site name",
        "name the site like `amsterdam`",
    );
}

#[test]
fn ssh_addresses_are_ip_literals_or_host_names() {
    expect_one(
        "
        version: 1
        defaults:
          ssh: { user: svc-poolpatch, agent: true, known_hosts: /etc/kh }
        sites:
          - { name: amsterdam, time_zone: Europe/Amsterdam }
        pools:
          - fqdn: se01.ams.contoso.com
            site: amsterdam
            edition: standard
            product: sfb2019
            server: { ssh: { address: 127.0.0.300 } }
        ",
        (11, 31),
        "pools[0].server.ssh.address",
        "`127.0.0.300` is not a valid IPv4 address",
        "write an IPv4 address (127.0.0.21), an IPv6 address (::1) or a host name",
    );
}

#[test]
fn ports_are_in_range() {
    expect_one(
        "
        version: 1
        defaults:
          ssh: { user: svc-poolpatch, agent: true, known_hosts: /etc/kh, port: 70000 }
        sites:
          - { name: amsterdam, time_zone: Europe/Amsterdam }
        pools:
          - { fqdn: se01.ams.contoso.com, site: amsterdam, edition: standard, product: sfb2019, server: {} }
        ",
        (3, 72),
        "defaults.ssh.port",
        "70000 is out of range: expected a whole number from 1 to 65535",
        "",
    );
}

#[test]
fn shells_are_powershell_or_posix() {
    expect_one(
        "
        version: 1
        defaults:
          ssh: { user: svc-poolpatch, agent: true, known_hosts: /etc/kh, shell: pwsh }
        sites:
          - { name: amsterdam, time_zone: Europe/Amsterdam }
        pools:
          - { fqdn: se01.ams.contoso.com, site: amsterdam, edition: standard, product: sfb2019, server: {} }
        ",
        (3, 73),
        "defaults.ssh.shell",
        "`pwsh` is not a valid value",
        "one of: powershell, posix",
    );
}

#[test]
fn only_the_own_home_is_expanded_in_paths() {
    expect_one(
        "
        version: 1
        defaults:
          ssh: { user: svc-poolpatch, identity_file: ~root/.ssh/id, known_hosts: /etc/kh }
        sites:
          - { name: amsterdam, time_zone: Europe/Amsterdam }
        pools:
          - { fqdn: se01.ams.contoso.com, site: amsterdam, edition: standard, product: sfb2019, server: {} }
        ",
        (3, 46),
        "defaults.ssh.identity_file",
        "`~root/.ssh/id`: only `~/` (your own home directory) is expanded, not `~user`",
        "write an absolute path, or one starting with `~/`",
    );
}

#[test]
fn identity_file_and_agent_exclude_each_other() {
    expect_one(
        "
        version: 1
        defaults:
          ssh: { user: svc-poolpatch, identity_file: ~/.ssh/id, agent: true }
        sites:
          - { name: amsterdam, time_zone: Europe/Amsterdam }
        pools:
          - { fqdn: se01.ams.contoso.com, site: amsterdam, edition: standard, product: sfb2019, server: {} }
        ",
        (3, 64),
        "defaults.ssh.agent",
        "both `identity_file` and `agent: true` are set",
        "set exactly one",
    );
}

#[test]
fn an_address_cannot_be_a_default() {
    expect_one(
        "
        version: 1
        defaults:
          ssh: { user: svc-poolpatch, agent: true, address: 127.0.0.1 }
        sites:
          - { name: amsterdam, time_zone: Europe/Amsterdam }
        pools:
          - { fqdn: se01.ams.contoso.com, site: amsterdam, edition: standard, product: sfb2019, server: {} }
        ",
        (3, 53),
        "defaults.ssh.address",
        "`address` cannot be a default: every server has its own",
        "without it, a server is reached at its FQDN",
    );
}

#[test]
fn collocated_databases_are_known_and_listed_once() {
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
            back_ends:
              - fqdn: be01.ams.contoso.com
                sql_server: be01.ams.contoso.com
                collocated_databases: [archiving, monitorin, archiving]
        ",
    );
    let summary: Vec<String> = all.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        summary,
        [
            "inv.yaml:14:43: pools[0].back_ends[0].collocated_databases[1]: `monitorin` is not a valid value",
            "inv.yaml:14:54: pools[0].back_ends[0].collocated_databases[2]: `archiving` is listed twice",
        ]
    );
    assert!(
        all[0]
            .help
            .as_deref()
            .unwrap_or("")
            .starts_with("did you mean `monitoring`?")
    );
    assert_eq!(
        all[1].help.as_deref(),
        Some("list each collocated database once")
    );
}

#[test]
fn a_mirror_needs_a_role_and_a_partner() {
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
                mirror: { role: primary, partner: be02.ams.contoso.com }
        ",
        (14, 25),
        "pools[0].back_ends[0].mirror.role",
        "`primary` is not a valid value",
        "one of: principal, mirror",
    );
}
