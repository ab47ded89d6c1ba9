//! Helpers for unit tests: small inventories written as YAML.

use poolpatch_inventory::{Inventory, LoadOptions, from_str_with};

/// An inventory with sites `ams` and `nyc` and the pools in `pools` (YAML list items).
pub(crate) fn inventory(pools: &str) -> Inventory {
    let text = format!(
        "version: 1\ndefaults:\n  ssh: {{ user: svc, identity_file: /k/id, known_hosts: /k/known_hosts }}\nsites:\n  - {{ name: ams, time_zone: Europe/Amsterdam }}\n  - {{ name: nyc, time_zone: America/New_York }}\npools:\n{pools}"
    );
    match from_str_with("test.yaml", &text, &LoadOptions::default()) {
        Ok(i) => i,
        Err(d) => panic!("test inventory is invalid:\n{d}\n{text}"),
    }
}

/// A Standard Edition pool at `site`, with `extra` YAML lines (indented by 4).
pub(crate) fn se(fqdn: &str, site: &str, extra: &str) -> String {
    format!(
        "  - fqdn: {fqdn}\n    site: {site}\n    edition: standard\n    product: sfb2015\n{extra}    server: {{}}\n"
    )
}

/// An Enterprise pool with back ends `bes` (each `name` or `name:principal:partner`).
pub(crate) fn ee(fqdn: &str, site: &str, bes: &[&str], extra: &str) -> String {
    let mut s = format!(
        "  - fqdn: {fqdn}\n    site: {site}\n    edition: enterprise\n    product: sfb2015\n{extra}    front_ends:\n      - {{ fqdn: fe1.{fqdn} }}\n      - {{ fqdn: fe2.{fqdn} }}\n    back_ends:\n"
    );
    for be in bes {
        let parts: Vec<&str> = be.split(':').collect();
        s.push_str(&format!(
            "      - fqdn: {}\n        sql_server: {}\n",
            parts[0], parts[0]
        ));
        if parts.len() == 3 {
            s.push_str(&format!(
                "        mirror: {{ role: {}, partner: {} }}\n",
                parts[1], parts[2]
            ));
        }
    }
    s
}
