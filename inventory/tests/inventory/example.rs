//! The example estate loads cleanly and means what its comments say.

use std::collections::HashSet;
use std::path::PathBuf;

use poolpatch_inventory::{
    CollocatedDatabase, Edition, Fqdn, MirrorRole, Product, Role, SshAuth, load_with,
};

use crate::helpers::{HOME, example_path, opts};

fn fqdn(s: &str) -> Fqdn {
    Fqdn::parse(s).expect("test FQDNs are valid")
}

fn example() -> poolpatch_inventory::Inventory {
    load_with(&example_path(), &opts()).unwrap_or_else(|d| panic!("{d}"))
}

#[test]
fn the_example_estate_loads_cleanly() {
    let inv = example();
    let zones: Vec<&str> = inv.sites.iter().map(|s| s.time_zone.as_str()).collect();
    assert_eq!(
        zones,
        ["Europe/Amsterdam", "America/New_York", "Asia/Tokyo"]
    );
    let enterprise: Vec<_> = inv
        .pools
        .iter()
        .filter(|p| p.edition == Edition::Enterprise)
        .collect();
    assert_eq!(enterprise.len(), 4);
    assert!(enterprise.iter().all(|p| !p.front_ends.is_empty()));
    assert!(
        enterprise
            .iter()
            .flat_map(|p| &p.front_ends)
            .all(|fe| fe.upgrade_domain.is_some())
    );
    let standard = inv
        .servers()
        .filter(|s| s.role == Role::StandardEdition)
        .count();
    assert_eq!(standard, 5);
    let products: HashSet<Product> = inv.pools.iter().map(|p| p.product).collect();
    assert_eq!(products.len(), 3);
}

#[test]
fn the_example_has_a_mirrored_pair_collocated_stores_a_pairing_and_an_ordering() {
    let inv = example();
    let be01 = inv
        .server(&fqdn("be01.ams.contoso.com"))
        .expect("be01 exists");
    let Role::BackEnd {
        mirror: Some(m), ..
    } = &be01.role
    else {
        panic!("be01 is mirrored: {:?}", be01.role)
    };
    assert_eq!(
        (m.role, &m.partner),
        (MirrorRole::Principal, &fqdn("be02.ams.contoso.com"))
    );
    let nyc = inv
        .server(&fqdn("be01.nyc.contoso.com"))
        .expect("be01.nyc exists");
    let Role::BackEnd {
        collocated_databases,
        ..
    } = &nyc.role
    else {
        panic!("be01.nyc is a back end")
    };
    assert_eq!(
        collocated_databases,
        &[
            CollocatedDatabase::Archiving,
            CollocatedDatabase::Monitoring
        ]
    );
    let ams = inv
        .pool(&fqdn("pool01.ams.contoso.com"))
        .expect("pool01.ams exists");
    assert_eq!(ams.backup_pool, Some(fqdn("pool01.nyc.contoso.com")));
    let nyc = inv
        .pool(&fqdn("pool01.nyc.contoso.com"))
        .expect("pool01.nyc exists");
    assert_eq!(nyc.backup_pool, Some(fqdn("pool01.ams.contoso.com")));
    let ams2 = inv
        .pool(&fqdn("pool02.ams.contoso.com"))
        .expect("pool02.ams exists");
    assert_eq!(ams2.after, [fqdn("pool01.ams.contoso.com")]);
}

#[test]
fn every_example_server_has_its_own_loopback_address_and_the_defaults() {
    let inv = example();
    let mut seen = HashSet::new();
    for s in inv.servers() {
        assert!(s.ssh.address.starts_with("127.0.0."), "{}", s.ssh.address);
        assert!(
            seen.insert(s.ssh.address.clone()),
            "{} twice",
            s.ssh.address
        );
        assert_eq!(s.ssh.port, 22);
        assert_eq!(s.ssh.user, "svc-poolpatch");
        assert_eq!(
            s.ssh.auth,
            SshAuth::IdentityFile(PathBuf::from(HOME).join(".ssh/poolpatch_ed25519"))
        );
        assert_eq!(
            s.ssh.known_hosts,
            PathBuf::from(HOME).join(".ssh/poolpatch_known_hosts")
        );
    }
    assert_eq!(seen.len(), 10);
}

#[test]
fn the_windows_example_is_the_example_with_windows() {
    let path = example_path().with_file_name("estate-windows.yaml");
    let windowed = load_with(&path, &opts()).unwrap_or_else(|d| panic!("{d}"));
    let mut plain = example();
    // The same estate once windows are taken away.
    let mut stripped = windowed.clone();
    for s in &mut stripped.sites {
        s.windows.clear();
    }
    for p in &mut stripped.pools {
        p.windows = None;
    }
    for p in plain.pools.iter_mut().chain(stripped.pools.iter_mut()) {
        p.pos = Default::default();
        for s in &mut p.servers {
            s.pos = Default::default();
        }
    }
    for s in plain.sites.iter_mut().chain(stripped.sites.iter_mut()) {
        s.pos = Default::default();
    }
    assert_eq!(stripped, plain);
    // Night windows in Amsterdam and New York, none in Tokyo, and the branch's own.
    let rules = |site: &str| -> Vec<String> {
        windowed
            .site(site)
            .unwrap()
            .windows
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(rules("amsterdam"), ["Sat 22:00 for 6h", "Sun 01:00 for 4h"]);
    assert_eq!(rules("newyork"), ["Sat 22:00 for 6h"]);
    assert!(rules("tokyo").is_empty());
    let se01 = windowed.pool(&fqdn("se01.ams.contoso.com")).unwrap();
    assert_eq!(
        windowed
            .windows_of(se01)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["Sat 20:00 for 4h"]
    );
}
