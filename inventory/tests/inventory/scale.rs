//! A large estate loads, validates and draws quickly (the benchmark's shape: 10,000
//! servers in 2,000 pools across 50 sites).

use std::fmt::Write;
use std::time::{Duration, Instant};

use poolpatch_inventory::{DependencyGraph, pool_order};

use crate::helpers::load;

/// 50 sites; per site 20 Enterprise pools (2 Front Ends, 9 Back Ends of which 8 in mirrored
/// pairs; paired with the next site's pool; each waits for the previous pool of its site)
/// and 20 Standard Edition pools: 2,000 pools, 10,000 patched servers, 2,000 Front Ends.
fn large_estate() -> String {
    let mut t = String::from(
        "version: 1\ndefaults:\n  ssh: { user: svc-poolpatch, agent: true, known_hosts: /etc/kh }\nsites:\n",
    );
    for s in 0..50 {
        let _ = writeln!(t, "  - {{ name: site{s}, time_zone: Europe/Amsterdam }}");
    }
    t.push_str("pools:\n");
    for s in 0..50 {
        for p in 0..20 {
            let pool = format!("pool{p}.s{s}.contoso.com");
            let _ = writeln!(
                t,
                "  - fqdn: {pool}\n    site: site{s}\n    edition: enterprise\n    product: sfb2015"
            );
            if s % 2 == 0 {
                let _ = writeln!(t, "    backup_pool: pool{p}.s{}.contoso.com", s + 1);
            }
            if p > 0 {
                let _ = writeln!(t, "    after: [pool{}.s{s}.contoso.com]", p - 1);
            }
            let _ = writeln!(t, "    front_ends:");
            for f in 0..2 {
                let _ = writeln!(
                    t,
                    "      - {{ fqdn: fe{f}.p{p}.s{s}.contoso.com, upgrade_domain: UD{f} }}"
                );
            }
            let _ = writeln!(t, "    back_ends:");
            for b in 0..8 {
                let be = format!("be{b}.p{p}.s{s}.contoso.com");
                let partner = format!("be{}.p{p}.s{s}.contoso.com", b ^ 1);
                let role = if b % 2 == 0 { "principal" } else { "mirror" };
                let _ = writeln!(
                    t,
                    "      - {{ fqdn: {be}, sql_server: {be}, mirror: {{ role: {role}, partner: {partner} }}, ssh: {{ address: 10.{s}.{p}.{b} }} }}"
                );
            }
            let _ = writeln!(
                t,
                "      - {{ fqdn: be8.p{p}.s{s}.contoso.com, sql_server: be8.p{p}.s{s}.contoso.com, collocated_databases: [archiving, monitoring] }}"
            );
            let _ = writeln!(
                t,
                "  - {{ fqdn: se{p}.s{s}.contoso.com, site: site{s}, edition: standard, product: lync2013, server: {{ ssh: {{ address: 10.{s}.{p}.9 }} }} }}"
            );
        }
    }
    t
}

#[test]
fn ten_thousand_servers_load_and_draw_quickly() {
    let text = large_estate();
    let t = Instant::now();
    let inv = load(&text).unwrap_or_else(|d| panic!("{}", d.items[0]));
    let loaded = t.elapsed();
    let graph = DependencyGraph::build(&inv);
    let dot = graph.to_dot();
    let mermaid = graph.to_mermaid();
    let order = pool_order(&inv);
    let total = t.elapsed();
    eprintln!("load {loaded:?}, with graph, drawings and order {total:?}");
    assert_eq!(inv.pools.len(), 2000);
    assert_eq!(inv.servers().count(), 10_000);
    assert_eq!(
        inv.pools.iter().map(|p| p.front_ends.len()).sum::<usize>(),
        2000
    );
    assert_eq!(order.len(), 2000);
    assert!(dot.len() > 1_000_000 && mermaid.len() > 500_000);
    // The benchmark's bound is for a release build; unoptimised tests get more room.
    let bound = if cfg!(debug_assertions) {
        Duration::from_secs(20)
    } else {
        Duration::from_secs(1)
    };
    assert!(total < bound, "took {total:?}");
}
