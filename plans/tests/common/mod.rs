//! Estates built in Rust, for property and scale tests: no YAML, any shape (including
//! shapes the inventory loader would refuse, such as `after:` cycles).

#![allow(dead_code)]

use poolpatch_inventory::{
    Edition, Fqdn, FrontEnd, Inventory, Mirror, MirrorRole, Pool, Pos, Product, RemoteShell, Role,
    Server, Site, SshAuth, SshEndpoint,
};

/// How one pool is built.
#[derive(Debug, Clone)]
pub struct PoolSpec {
    /// Standard Edition (one server) or Enterprise.
    pub standard: bool,
    /// Back ends of an Enterprise pool (1..).
    pub back_ends: usize,
    /// Mirrored pairs among its back ends: 0, 1 (be0/be1) or 2 (be0/be1, be2/be3).
    pub mirrored_pairs: usize,
    /// Whether the first pair has the principal on be0 (else on be1).
    pub principal_first: bool,
    /// Collocated databases on its back ends.
    pub collocated: bool,
    /// Site index.
    pub site: usize,
    /// Product index (0 Lync 2013, 1 SfB 2015, 2 SfB 2019).
    pub product: usize,
    /// Pools (by index) it comes after.
    pub after: Vec<usize>,
    /// The pool (by index) it is paired with, written on this side only.
    pub backup: Option<usize>,
}

pub fn fqdn(s: &str) -> Fqdn {
    Fqdn::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

pub fn pool_name(i: usize) -> String {
    format!("p{i}.example.com")
}

pub fn server_name(pool: usize, k: usize) -> String {
    format!("be{k}.p{pool}.example.com")
}

fn ssh(i: usize) -> SshEndpoint {
    SshEndpoint {
        address: format!("10.0.{}.{}", i / 250, i % 250 + 1),
        port: 22,
        user: "svc-poolpatch".into(),
        auth: SshAuth::Agent,
        known_hosts: "/etc/poolpatch/known_hosts".into(),
        shell: RemoteShell::Powershell,
    }
}

/// Builds an inventory with `sites` sites and the pools in `specs`.
pub fn build(sites: usize, specs: &[PoolSpec]) -> Inventory {
    let sites: Vec<Site> = (0..sites.max(1))
        .map(|i| Site {
            name: format!("site{i}"),
            time_zone: "UTC".into(),
            windows: Vec::new(),
            pos: Pos::START,
        })
        .collect();
    let mut pools = Vec::with_capacity(specs.len());
    let mut n = 0;
    for (i, spec) in specs.iter().enumerate() {
        let pool_fqdn = fqdn(&pool_name(i));
        let product = [Product::Lync2013, Product::Sfb2015, Product::Sfb2019][spec.product % 3];
        let mut servers = Vec::new();
        let mut front_ends = Vec::new();
        if spec.standard {
            servers.push(Server {
                fqdn: pool_fqdn.clone(),
                pool: pool_fqdn.clone(),
                role: Role::StandardEdition,
                ssh: ssh(n),
                pos: Pos::START,
            });
            n += 1;
        } else {
            for k in 0..2 {
                front_ends.push(FrontEnd {
                    fqdn: fqdn(&format!("fe{k}.p{i}.example.com")),
                    upgrade_domain: None,
                });
            }
            let count = spec.back_ends.max(1);
            for k in 0..count {
                let pair = k / 2;
                let mirror = (pair < spec.mirrored_pairs && (k ^ 1) < count).then(|| {
                    let principal = (k % 2 == 0) == (spec.principal_first || pair > 0);
                    Mirror {
                        role: if principal {
                            MirrorRole::Principal
                        } else {
                            MirrorRole::Mirror
                        },
                        partner: fqdn(&server_name(i, k ^ 1)),
                    }
                });
                servers.push(Server {
                    fqdn: fqdn(&server_name(i, k)),
                    pool: pool_fqdn.clone(),
                    role: Role::BackEnd {
                        sql_server: fqdn(&format!("sql{k}.p{i}.example.com")),
                        mirror,
                        collocated_databases: if spec.collocated {
                            vec![poolpatch_inventory::CollocatedDatabase::Monitoring]
                        } else {
                            Vec::new()
                        },
                    },
                    ssh: ssh(n),
                    pos: Pos::START,
                });
                n += 1;
            }
        }
        pools.push(Pool {
            fqdn: pool_fqdn,
            site: sites[spec.site % sites.len()].name.clone(),
            edition: if spec.standard {
                Edition::Standard
            } else {
                Edition::Enterprise
            },
            product,
            backup_pool: spec
                .backup
                .filter(|&b| b != i && b < specs.len())
                .map(|b| fqdn(&pool_name(b))),
            after: spec
                .after
                .iter()
                .filter(|&&a| a != i && a < specs.len())
                .map(|&a| fqdn(&pool_name(a)))
                .collect(),
            front_ends,
            servers,
            windows: None,
            pos: Pos::START,
        });
    }
    Inventory { sites, pools }
}

/// A change file with installers for every product, the given budget and concurrency,
/// `install-update` estimates per server, and an optional list of pools as scope.
pub fn change_text(
    budget_mins: u64,
    pools_at_once: u32,
    install_mins: &[(String, u64)],
    scope: Option<&[String]>,
) -> String {
    let digest = "ab".repeat(32);
    let mut s = format!(
        "version: 1\nname: generated\nupdate:\n  remote_dir: 'C:\\ProgramData\\poolpatch'\n  installers:\n    lync2013: {{ file: l.exe, sha256: {digest}, version: \"5.0.8308.1182\" }}\n    sfb2015: {{ file: s.exe, sha256: {digest}, version: \"6.0.9319.690\" }}\n    sfb2019: {{ file: t.exe, sha256: {digest}, version: \"7.0.2046.530\" }}\noutage: {{ budget: {budget_mins}m }}\nconcurrency: {{ pools: {pools_at_once} }}\n"
    );
    if let Some(pools) = scope.filter(|p| !p.is_empty()) {
        s.push_str(&format!("scope: {{ pools: [{}] }}\n", pools.join(", ")));
    }
    if !install_mins.is_empty() {
        s.push_str("estimates:\n  servers:\n");
        for (server, m) in install_mins {
            s.push_str(&format!("    {server}: {{ install-update: {m}m }}\n"));
        }
    }
    s
}
