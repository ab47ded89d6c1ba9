//! Reaching simulated hosts without sockets: a [`Connector`] that runs the real SSH client
//! over in-memory streams, so an executor can be tested end to end under tokio's paused
//! clock (where real TCP would give false timeouts).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use poolpatch_inventory::Server;

use super::SimHost;
use crate::remote::{BoxFuture, Connector, RemoteError, RemoteHost, SshConnector, SshOptions};

/// Connects servers to their simulated hosts in memory, by FQDN, through the same
/// [`SshConnector`] as production (host keys checked, logon, exec, SFTP).
pub struct InMemoryConnector {
    ssh: SshConnector,
    /// Hosts by lower-case FQDN.
    hosts: Mutex<BTreeMap<String, SimHost>>,
}

impl std::fmt::Debug for InMemoryConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hosts: Vec<String> = self
            .hosts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        f.debug_struct("InMemoryConnector")
            .field("options", self.ssh.options())
            .field("hosts", &hosts)
            .finish()
    }
}

impl InMemoryConnector {
    /// A connector with these SSH options and no hosts yet.
    pub fn new(options: SshOptions) -> InMemoryConnector {
        InMemoryConnector {
            ssh: SshConnector::new(options),
            hosts: Mutex::new(BTreeMap::new()),
        }
    }

    /// Adds `host`, reached for the server with its configured FQDN.
    pub fn add(&self, host: SimHost) {
        let fqdn = host.config().fqdn.to_ascii_lowercase();
        self.hosts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(fqdn, host);
    }

    /// The host for `fqdn`, if added.
    pub fn host(&self, fqdn: &str) -> Option<SimHost> {
        self.hosts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&fqdn.to_ascii_lowercase())
            .cloned()
    }

    /// Appends the key of `server`'s host to `server.ssh.known_hosts`, for its address and
    /// port, as an operator would after checking the fingerprint.
    pub fn trust(&self, server: &Server) -> std::io::Result<()> {
        let host = self.host(server.fqdn.as_str()).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no simulated host for {}", server.fqdn),
            )
        })?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&server.ssh.known_hosts)?;
        writeln!(
            file,
            "{}",
            host.known_hosts_line(&server.ssh.address, server.ssh.port)
        )
    }
}

impl Connector for InMemoryConnector {
    fn connect<'a>(
        &'a self,
        server: &'a Server,
    ) -> BoxFuture<'a, Result<Arc<dyn RemoteHost>, RemoteError>> {
        Box::pin(async move {
            let host = self
                .host(server.fqdn.as_str())
                .ok_or_else(|| RemoteError::Connect {
                    host: server.ssh.address.clone(),
                    port: server.ssh.port,
                    reason: format!("no simulated host for {}", server.fqdn),
                })?;
            let connected = self
                .ssh
                .connect_stream(server, host.connect_in_memory())
                .await?;
            Ok(Arc::new(connected) as Arc<dyn RemoteHost>)
        })
    }
}
