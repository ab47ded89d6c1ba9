//! A whole simulated estate: one simulated host per server of an inventory, each on its own
//! loopback address, with a known_hosts file that lists them all.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use poolpatch_inventory::{Inventory, Server};
use russh::keys::PublicKey;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};

use super::{SimDurations, SimHost, SimHostConfig};

/// Where the hosts of an estate listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// At each server's `ssh.address` and `ssh.port`, as the inventory says (for a
    /// rehearsal with an unchanged inventory; addresses must be loopback IPs such as
    /// 127.0.0.11, which work on Linux without setup; port 22 needs root).
    AsInventory,
    /// At each server's `ssh.address`, on a free port (tests).
    InventoryAddressesAnyPort,
    /// Each on its own free port of 127.0.0.1, whatever the inventory says.
    Loopback,
}

/// Changes one host's configuration before it starts (faults, files, durations…).
pub type Customize = Arc<dyn Fn(&Server, SimHostConfig) -> SimHostConfig + Send + Sync>;

/// How to start an estate.
#[derive(Clone)]
pub struct EstateOptions {
    /// Where the hosts listen.
    pub listen: Listen,
    /// The client key every host accepts for its server's `ssh.user`.
    pub authorized_key: PublicKey,
    /// The known_hosts file to write (replaced) with every host's key.
    pub known_hosts: PathBuf,
    /// Command durations of every host.
    pub durations: SimDurations,
    /// Per-host changes, applied last.
    pub customize: Option<Customize>,
}

impl fmt::Debug for EstateOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EstateOptions")
            .field("listen", &self.listen)
            .field("known_hosts", &self.known_hosts)
            .field("durations", &self.durations)
            .field("customize", &self.customize.is_some())
            .finish_non_exhaustive()
    }
}

/// Why an estate could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The server's address is not a loopback IP address.
    #[error(
        "{server}: the simulator listens on loopback IP addresses only (127.0.0.0/8 or ::1), not `{address}`: set ssh.address to an address such as 127.0.0.11, or use Listen::Loopback"
    )]
    Address {
        /// The server.
        server: String,
        /// Its `ssh.address`.
        address: String,
    },
    /// Binding failed.
    #[error(
        "{server}: cannot listen on {addr}: {source} (port below 1024 needs root; is the port taken?)"
    )]
    Bind {
        /// The server.
        server: String,
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: io::Error,
    },
    /// Writing the known_hosts file failed.
    #[error("cannot write the known_hosts file {}: {source}", path.display())]
    KnownHosts {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// A running simulated estate. Dropping it stops every host.
pub struct SimEstate {
    /// Servers as the simulated hosts are reached (address, port, known_hosts rewritten),
    /// in inventory order, with their hosts.
    hosts: Vec<(Server, SimHost)>,
    known_hosts: PathBuf,
    /// Dropped (or fired) to stop every accept loop.
    stop: Option<broadcast::Sender<()>>,
    /// Each accept loop holds a sender; all gone = all stopped.
    done: mpsc::Receiver<()>,
}

impl fmt::Debug for SimEstate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts: Vec<String> = self
            .hosts
            .iter()
            .map(|(s, _)| format!("{} at {}:{}", s.fqdn, s.ssh.address, s.ssh.port))
            .collect();
        f.debug_struct("SimEstate")
            .field("hosts", &hosts)
            .field("known_hosts", &self.known_hosts)
            .finish()
    }
}

fn bind_addr(server: &Server, listen: Listen) -> Result<SocketAddr, SimError> {
    if listen == Listen::Loopback {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
    }
    let ip: IpAddr = server
        .ssh
        .address
        .parse()
        .ok()
        .filter(|ip: &IpAddr| ip.is_loopback())
        .ok_or_else(|| SimError::Address {
            server: server.fqdn.to_string(),
            address: server.ssh.address.clone(),
        })?;
    let port = match listen {
        Listen::AsInventory => server.ssh.port,
        Listen::InventoryAddressesAnyPort | Listen::Loopback => 0,
    };
    Ok(SocketAddr::new(ip, port))
}

impl SimEstate {
    /// Starts one host per patched server of `inventory` (product from its pool), writes
    /// the known_hosts file, and returns once every host listens.
    pub async fn start(
        inventory: &Inventory,
        options: EstateOptions,
    ) -> Result<SimEstate, SimError> {
        let (stop, _) = broadcast::channel::<()>(1);
        let (done_tx, done) = mpsc::channel::<()>(1);
        let mut hosts = Vec::new();
        let mut lines =
            vec!["# simulated hosts started by poolpatch (keys change at every start)".to_string()];
        let mut estate = SimEstate {
            hosts: Vec::new(),
            known_hosts: options.known_hosts.clone(),
            stop: Some(stop),
            done,
        };
        for pool in &inventory.pools {
            for server in &pool.servers {
                let addr = bind_addr(server, options.listen)?;
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|source| SimError::Bind {
                        server: server.fqdn.to_string(),
                        addr,
                        source,
                    })?;
                let local = listener.local_addr().map_err(|source| SimError::Bind {
                    server: server.fqdn.to_string(),
                    addr,
                    source,
                })?;
                let mut config = SimHostConfig::for_server(server, pool.product)
                    .authorize(options.authorized_key.clone())
                    .with_durations(options.durations.clone());
                if let Some(customize) = &options.customize {
                    config = customize(server, config);
                }
                let host = SimHost::new(config);
                let mut reached = server.clone();
                reached.ssh.address = local.ip().to_string();
                reached.ssh.port = local.port();
                reached.ssh.known_hosts = options.known_hosts.clone();
                lines.push(host.known_hosts_line(&reached.ssh.address, reached.ssh.port));
                let mut stop_rx = estate.stop.as_ref().map(|s| s.subscribe());
                let done_tx = done_tx.clone();
                let serving = host.clone();
                tokio::spawn(async move {
                    serving
                        .run(listener, async move {
                            if let Some(rx) = stop_rx.as_mut() {
                                // A message or a dropped sender: either way, stop.
                                let _ = rx.recv().await;
                            }
                        })
                        .await;
                    drop(done_tx);
                });
                hosts.push((reached, host));
            }
        }
        estate.hosts = hosts;
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(&options.known_hosts, text).map_err(|source| SimError::KnownHosts {
            path: options.known_hosts.clone(),
            source,
        })?;
        Ok(estate)
    }

    /// The simulated hosts with the servers as they are reached, in inventory order.
    pub fn hosts(&self) -> impl Iterator<Item = (&Server, &SimHost)> {
        self.hosts.iter().map(|(s, h)| (s, h))
    }

    /// The host simulating the server with this FQDN.
    pub fn host(&self, fqdn: &str) -> Option<&SimHost> {
        self.hosts
            .iter()
            .find(|(s, _)| s.fqdn.as_str().eq_ignore_ascii_case(fqdn))
            .map(|(_, h)| h)
    }

    /// The server with this FQDN as the simulator is reached: its real address and port and
    /// the written known_hosts file.
    pub fn server(&self, fqdn: &str) -> Option<&Server> {
        self.hosts
            .iter()
            .find(|(s, _)| s.fqdn.as_str().eq_ignore_ascii_case(fqdn))
            .map(|(s, _)| s)
    }

    /// Every server as reached, by FQDN.
    pub fn servers(&self) -> BTreeMap<String, Server> {
        self.hosts
            .iter()
            .map(|(s, _)| (s.fqdn.to_string(), s.clone()))
            .collect()
    }

    /// The known_hosts file written at start.
    pub fn known_hosts(&self) -> &Path {
        &self.known_hosts
    }

    /// Stops every host and waits until their accept loops have ended.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Returns None once every accept loop dropped its sender.
        let _ = self.done.recv().await;
    }
}

impl Drop for SimEstate {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        for (_, host) in &self.hosts {
            host.shutdown();
        }
    }
}
