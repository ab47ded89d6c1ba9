//! `poolpatch simulate`: simulated servers for an operator's own inventory, served until
//! stopped, so that `poolpatch run` can be rehearsed unchanged in a second terminal.
//!
//! Unlike `poolpatch demo`, nothing is rewritten behind the operator's back: each host
//! listens exactly where the inventory says (`ssh.address`, which must be a loopback
//! address, and `ssh.port`), and `poolpatch run` reads the inventory as it is. The client
//! key and the known_hosts file are written into a directory of their own; the operator's
//! own key and known_hosts files are never touched.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use poolpatch_inventory::{Inventory, SshAuth};

use super::{Exit, load_inventory, print_diagnostics};
use crate::sim::{Customize, EstateOptions, Listen, SimDurations, SimError, SimEstate};

/// Arguments of `poolpatch simulate`.
#[derive(Debug, Args)]
#[command(after_help = SIMULATE_HELP)]
pub struct SimulateArgs {
    /// The inventory whose servers to simulate. Every Back End and Standard Edition server
    /// needs a loopback `ssh.address` (127.0.0.x) of its own, or its own `ssh.port`.
    #[arg(long, short)]
    pub inventory: PathBuf,
    /// Directory for the client key (`id_ed25519`, `id_ed25519.pub`) and the simulated
    /// hosts' `known_hosts`; created if missing. Use a directory of its own: files there
    /// are replaced at every start.
    #[arg(long)]
    pub dir: PathBuf,
    /// How much faster than real time the simulated commands run: 60 makes a 12-minute
    /// installer take 12 seconds. The plan's budget is not changed: the outage watchdog of
    /// `poolpatch run` keeps its real-time budget.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// A change file: each host then accepts only the installer of its product from it
    /// (same SHA-256), so `poolpatch run` really uploads it during preflight. Without it,
    /// any file staged under the installer's name is accepted.
    #[arg(long, short)]
    pub change: Option<PathBuf>,
}

const SIMULATE_HELP: &str = "\
Rehearse `poolpatch run` against your own inventory, in two terminals:
  1. poolpatch simulate --inventory estate.yaml --dir sim --change change.yaml --speed 60
     starts one simulated server per Back End / Standard Edition server (real SSH, at the
     inventory's address and port; addresses must be 127.0.0.x), writes sim/id_ed25519 and
     sim/known_hosts, prints the two lines to set in the inventory's defaults.ssh, then
     `ready`; it serves until Ctrl-C (SIGINT) or SIGTERM.
  2. in a copy of the inventory, set those two lines, then
     poolpatch run --inventory estate-copy.yaml --change change.yaml
Ports below 1024 (the default 22) need root: give each server `port:` in its ssh mapping.
Host keys are new at every start; known_hosts is rewritten each time.";

/// Marks a directory as written by `poolpatch simulate`, so that files found there on a
/// later start are known to be replaceable.
const MARKER: &str = ".poolpatch-simulate";

/// Quotes `s` as a single-quoted YAML scalar.
fn yaml_quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Servers whose address the simulator cannot listen on: (server, address).
fn non_loopback(inventory: &Inventory) -> Vec<(String, String)> {
    inventory
        .servers()
        .filter(|s| {
            !s.ssh
                .address
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
        })
        .map(|s| (s.fqdn.to_string(), s.ssh.address.clone()))
        .collect()
}

/// Refuses a directory holding key or known_hosts files that poolpatch did not write there
/// (`--dir ~/.ssh` must not replace the operator's own files).
fn check_dir(dir: &Path) -> Result<(), String> {
    if dir.join(MARKER).exists() {
        return Ok(());
    }
    let foreign: Vec<&str> = ["id_ed25519", "id_ed25519.pub", "known_hosts"]
        .into_iter()
        .filter(|f| dir.join(f).exists())
        .collect();
    if foreign.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} already holds {} not written by `poolpatch simulate`: give a new or empty directory (the simulator replaces these files)",
            dir.display(),
            foreign.join(", ")
        ))
    }
}

/// Writes the marker and a fresh client key pair into `dir`.
fn write_client_key(dir: &Path) -> std::io::Result<russh::keys::PublicKey> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join(MARKER),
        "written by `poolpatch simulate`: its files here are replaced at every start\n",
    )?;
    let public = crate::sim::write_identity_file(&dir.join("id_ed25519"))?;
    let text = public.to_openssh().map_err(std::io::Error::other)?;
    std::fs::write(
        dir.join("id_ed25519.pub"),
        format!("{text} poolpatch-simulate\n"),
    )?;
    Ok(public)
}

/// Each host expects the installer bytes of its product from the change.
fn installer_expectations(
    inventory: &Inventory,
    change: &poolpatch_plans::Change,
) -> Result<Customize, String> {
    let mut by_product = BTreeMap::new();
    for (product, installer) in &change.update.installers {
        let bytes = std::fs::read(&installer.file)
            .map_err(|e| format!("cannot read {}: {e}", installer.file.display()))?;
        by_product.insert(*product, bytes);
    }
    let products: BTreeMap<String, poolpatch_inventory::Product> = inventory
        .pools
        .iter()
        .flat_map(|p| {
            p.servers
                .iter()
                .map(move |s| (s.fqdn.to_string(), p.product))
        })
        .collect();
    Ok(Arc::new(move |server, config| {
        match products
            .get(server.fqdn.as_str())
            .and_then(|p| by_product.get(p))
        {
            Some(bytes) => config.expect_installer(bytes),
            None => config,
        }
    }))
}

/// Whether `configured` names the same file as `written` (both resolved when possible).
fn same_file(configured: &Path, written: &Path) -> bool {
    match (configured.canonicalize(), written.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => configured == written,
    }
}

/// Waits for SIGINT or SIGTERM.
async fn signalled() {
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Serves simulated hosts for the inventory until SIGINT or SIGTERM.
pub fn simulate(a: &SimulateArgs) -> Exit {
    if !(a.speed.is_finite() && (1.0..=100_000.0).contains(&a.speed)) {
        eprintln!("error: --speed must be a number from 1 to 100000");
        return Exit::Invalid;
    }
    let inventory = match load_inventory(&a.inventory) {
        Ok(i) => i,
        Err(e) => return e,
    };
    let customize = match &a.change {
        None => None,
        Some(path) => {
            let change = match super::plan::load_change(path, &inventory) {
                Ok(c) => c,
                Err(e) => return e,
            };
            if let Err(d) = change.verify_installers() {
                print_diagnostics(&d);
                return Exit::Invalid;
            }
            match installer_expectations(&inventory, &change) {
                Ok(c) => Some(c),
                Err(e) => {
                    eprintln!("error: {e}");
                    return Exit::Invalid;
                }
            }
        }
    };
    let outside = non_loopback(&inventory);
    if !outside.is_empty() {
        for (server, address) in &outside {
            eprintln!(
                "error: {server}: ssh.address `{address}` is not a loopback address; the simulator listens on loopback only"
            );
        }
        eprintln!(
            "  help: in a copy of {}, give each server its own 127.0.0.x address: `ssh: {{ address: 127.0.0.11 }}`, `127.0.0.12`, …",
            a.inventory.display()
        );
        return Exit::Invalid;
    }
    if let Err(e) = check_dir(&a.dir) {
        eprintln!("error: {e}");
        return Exit::CannotStart;
    }
    let public = match write_client_key(&a.dir) {
        Ok(k) => k,
        Err(e) => {
            eprintln!(
                "error: cannot write the client key into {}: {e}",
                a.dir.display()
            );
            return Exit::CannotStart;
        }
    };
    let dir = a.dir.canonicalize().unwrap_or_else(|_| a.dir.clone());
    let identity = dir.join("id_ed25519");
    let known_hosts = dir.join("known_hosts");
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Internal;
        }
    };
    rt.block_on(async {
        let options = EstateOptions {
            listen: Listen::AsInventory,
            authorized_key: public,
            known_hosts: known_hosts.clone(),
            durations: SimDurations::scaled(1.0 / a.speed),
            customize,
        };
        let estate = match SimEstate::start(&inventory, options).await {
            Ok(e) => e,
            Err(SimError::Bind { server, addr, source }) => {
                eprintln!(
                    "error: {server}: cannot listen on {addr}: {source}{}",
                    if addr.port() < 1024 {
                        " (ports below 1024 need root: give the server `port:` 2222 or above in a copy of the inventory)"
                    } else {
                        " (is the port taken, or is another simulator running?)"
                    }
                );
                return Exit::CannotStart;
            }
            Err(e) => {
                eprintln!("error: cannot start the simulated servers: {e}");
                return Exit::CannotStart;
            }
        };
        let servers = estate.hosts().count();
        println!(
            "poolpatch simulate: {servers} simulated servers from {} (real SSH on loopback; commands run {}x faster than real time)",
            a.inventory.display(),
            a.speed
        );
        for (server, host) in estate.hosts() {
            println!(
                "  {} → {}:{}  ({}, {})",
                server.fqdn,
                server.ssh.address,
                server.ssh.port,
                host.config().product.name(),
                match server.role {
                    poolpatch_inventory::Role::BackEnd { .. } => "back end",
                    poolpatch_inventory::Role::StandardEdition => "standard edition",
                }
            );
        }
        println!("client key:  {}", identity.display());
        println!("known_hosts: {} (new host keys at every start)", known_hosts.display());
        let uses_them = inventory.servers().all(|s| {
            matches!(&s.ssh.auth, SshAuth::IdentityFile(p) if same_file(p, &identity))
                && same_file(&s.ssh.known_hosts, &known_hosts)
        });
        if uses_them {
            println!("the inventory already uses these files");
        } else {
            println!(
                "set in the inventory's defaults.ssh (in a copy; also in any server's own ssh: that sets them):"
            );
            println!("  identity_file: {}", yaml_quoted(&identity.display().to_string()));
            println!("  known_hosts: {}", yaml_quoted(&known_hosts.display().to_string()));
        }
        println!(
            "then, in another terminal: poolpatch run --inventory <that inventory>{}",
            match &a.change {
                Some(c) => format!(" --change {}", c.display()),
                None => " --change <change file>".to_string(),
            }
        );
        println!("stop with Ctrl-C");
        println!("ready");
        signalled().await;
        estate.shutdown().await;
        println!("poolpatch simulate: stopped");
        Exit::Ok
    })
}
