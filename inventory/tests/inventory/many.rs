//! One file with many problems: every one is reported, in one pass, in file order.

use crate::helpers::problems;

#[test]
fn every_problem_of_a_file_is_reported_at_once() {
    let all = problems(
        "
        version: 1
        defaults:
          ssh: { user: svc-poolpatch, identity_file: ~/.ssh/id, agent: true, shel: posix }
        sites:
          - { name: amsterdam, time_zone: Europe/Amsterdm }
          - { name: amsterdam, time_zone: Europe/Amsterdam }
        pools:
          - fqdn: pool01.ams.contoso.com
            site: amsterdm
            edition: enterprize
            product: sfb2015
            backup_pool: pool01.ams.contoso.com
            after: [pool02.ams.contoso.com]
            back_ends:
              - fqdn: be01.ams.contoso.com
                sql_server: be01
                mirror: { role: principal, partner: be02.ams.contoso.com }
              - fqdn: be02.ams.contoso.com
                sql_server: be02.ams.contoso.com
                ssh: { address: 'be02 ams', port: 0 }
          - fqdn: pool02.ams.contoso.com
            site: amsterdam
            edition: standard
            product: lync2013
            after: [pool01.ams.contoso.com]
            front_ends: [{ fqdn: be01.ams.contoso.com }]
        ",
    );
    let summary: Vec<String> = all
        .iter()
        .map(|d| format!("{}:{} {}", d.pos.line, d.pos.column, d.field))
        .collect();
    assert_eq!(
        summary,
        [
            "3:64 defaults.ssh.agent",
            "3:70 defaults.ssh.shel",
            "5:35 sites[0].time_zone",
            "6:13 sites[1].name",
            "9:11 pools[0].site",
            "10:14 pools[0].edition",
            "12:18 pools[0].backup_pool",
            "13:13 pools[0].after[0]",
            "16:21 pools[0].back_ends[0].sql_server",
            "17:45 pools[0].back_ends[0].mirror.partner",
            "20:25 pools[0].back_ends[1].ssh.address",
            "20:43 pools[0].back_ends[1].ssh.port",
            "21:5 pools[1].server",
            "26:5 pools[1].front_ends",
            "26:26 pools[1].front_ends[0].fqdn",
        ],
        "{}",
        poolpatch_inventory::Diagnostics { items: all.clone() }
    );
    // Each says what would be right, in the help or (for a number) in the message itself.
    assert!(
        all.iter()
            .all(|d| d.help.is_some() || d.message.contains("expected")),
        "{all:#?}"
    );
}
