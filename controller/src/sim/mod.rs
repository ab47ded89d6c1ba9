//! Simulated Lync Server 2013 / Skype for Business Server back ends that speak real SSH.
//!
//! Anyone can rehearse a rollout against them: each [`SimHost`] is a russh server with its
//! own Ed25519 host key, public-key logon for one account, exec requests interpreted as the
//! scripts of `plans::procedure`, and an `sftp` subsystem over an in-memory file store. A
//! [`SimEstate`] starts one per server of an inventory, each on its own loopback address,
//! and writes a known_hosts file for them.
//!
//! What a host emulates: Lync services (Running / Stopped), w3svc, the installed version,
//! whether the databases were updated, restarts (connections drop, the host is unreachable
//! for a while, then comes back with services and w3svc started), the staged installer
//! (`Get-FileHash` reports the real SHA-256 of what was uploaded), free disk space and the
//! account's CSAdministrator membership.
//!
//! It enforces the preconditions a real server has, so a controller that gets the order or
//! the database variant wrong fails here as it would in production:
//! - the installer refuses (exit 1603) while Lync services or w3svc run, or when the staged
//!   file is missing or not the expected package, or is the other product's installer;
//! - `Install-CsDatabase` refuses (exit 1) before the update is installed, while a restart
//!   is pending, and with the wrong variant for the role: `-LocalDatabases` on an
//!   Enterprise back end, `-ConfiguredDatabases` on a Standard Edition server, a missing
//!   `-ExcludeCollocatedStores` where databases are collocated, another `-SqlServerFqdn`;
//! - `Import-Module` of the other product's module fails; an unknown line exits 127.
//!
//! Commands take configurable time on tokio's clock ([`SimDurations`]), and [`Fault`]s
//! make a step fail, hang, drop the connection midway, need a restart (3010) or boot
//! slowly. Everything the host sees and does is recorded ([`SimHost::record`],
//! [`SimHost::commands`], [`SimHost::outages`]) independently of poolpatch's journal.
//! Output lines end with CRLF, as on Windows.
//!
//! Hosts are reached over TCP ([`SimHost::listen`], [`SimEstate`]) or in memory
//! ([`InMemoryConnector`], for tests under tokio's paused clock).
//!
//! ```no_run
//! # async fn demo(server: poolpatch_inventory::Server, client_key: russh::keys::PublicKey) -> std::io::Result<()> {
//! use poolpatch::sim::{SimDurations, SimHost, SimHostConfig};
//! use poolpatch_inventory::Product;
//!
//! let host = SimHost::new(
//!     SimHostConfig::for_server(&server, Product::Sfb2015)
//!         .authorize(client_key)
//!         .with_durations(SimDurations::scaled(0.001)),
//! );
//! let listener = host.listen("127.0.0.11:0".parse().unwrap()).await?;
//! // connect with poolpatch::remote::SshConnector to listener.local_addr(), run steps, then:
//! assert!(host.outages().iter().all(|o| o.end.is_some()));
//! # Ok(()) }
//! ```

mod actions;
mod config;
mod estate;
mod host;
mod memory;
mod record;
mod script;
mod server;
mod sftp;

use std::io::Write;
use std::path::Path;

pub use config::{
    ActionKind, Fault, FaultEffect, LYNC_SERVICES, SimDurations, SimHostConfig, random_ed25519_key,
    sha256_hex,
};
pub use estate::{Customize, EstateOptions, Listen, SimError, SimEstate};
pub use host::{ServiceStatus, SimFile, SimHost, SimState};
pub use memory::InMemoryConnector;
pub use record::{Outage, SimCommand, SimEvent, SimEventKind, commands, outages};
pub use script::{DatabaseUpdate, SimAction, path_key};
pub use server::SimListener;

/// Writes a fresh Ed25519 private key in OpenSSH format to `path` (mode 0600 on Unix) and
/// returns its public key: the client identity for tests and rehearsals.
pub fn write_identity_file(path: &Path) -> std::io::Result<russh::keys::PublicKey> {
    let key = random_ed25519_key();
    let text = key
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .map_err(std::io::Error::other)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(key.public_key().clone())
}
