//! The boundary between the executor and a remote host: run one step, upload one file.
//!
//! The executor only sees [`Connector`] and [`RemoteHost`], two small dyn-compatible traits
//! with boxed futures, so it can be driven by the SSH client in [`ssh`] against real servers
//! or against the simulator in [`crate::sim`], and by in-process fakes in unit tests.
//!
//! The contract every implementation keeps:
//! - one [`RemoteHost`] is one connection; every [`RemoteHost::run`] is a fresh process on
//!   the host (a fresh exec channel for SSH), which honours the documented "close all
//!   management shells" step;
//! - an outcome that is not known is never success: a lost connection, a timeout or a
//!   missing exit status is [`ExitOutcome::Unknown`], and the remote process may still be
//!   running (an installer must not be re-run blindly; poll the host's state instead);
//! - errors say which host, which key, which file and what to do next.
//!
//! ```
//! use poolpatch::remote::command_line;
//! use poolpatch_inventory::RemoteShell;
//!
//! let line = command_line(RemoteShell::Powershell, "exit 0\n");
//! assert!(line.starts_with("powershell.exe -NoLogo -NoProfile -NonInteractive -EncodedCommand "));
//! assert_eq!(command_line(RemoteShell::Posix, "exit 0\n"), "exit 0\n");
//! ```

pub mod known_hosts;
pub mod ssh;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use poolpatch_inventory::{RemoteShell, Server};
use poolpatch_plans::quote::powershell_command_line;

pub use ssh::{SshConnector, SshHost, SshOptions};

/// A boxed future borrowed for `'a`, as the traits of this module return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitOutcome {
    /// The process reported this exit code.
    Code(i32),
    /// The process was killed by this signal (name as the server reported it, plus its
    /// message if any).
    Signal(String),
    /// Nobody knows how it ended: the connection was lost, the step timed out, or the
    /// server closed the channel without an exit status. Never success; the remote process
    /// may still be running.
    Unknown(String),
}

impl ExitOutcome {
    /// The exit code, if the process reported one.
    pub fn code(&self) -> Option<i32> {
        match self {
            ExitOutcome::Code(c) => Some(*c),
            ExitOutcome::Signal(_) | ExitOutcome::Unknown(_) => None,
        }
    }

    /// Whether the process reported one of `ok_codes`. Unknown and signals are never success.
    pub fn is_success(&self, ok_codes: &[i32]) -> bool {
        self.code().is_some_and(|c| ok_codes.contains(&c))
    }
}

impl std::fmt::Display for ExitOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitOutcome::Code(c) => write!(f, "exit code {c}"),
            ExitOutcome::Signal(s) => write!(f, "killed by signal {s}"),
            ExitOutcome::Unknown(why) => write!(f, "outcome unknown: {why}"),
        }
    }
}

/// Everything a remote command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Standard output, complete (or as much as arrived before the outcome became unknown).
    pub stdout: Vec<u8>,
    /// Standard error, likewise.
    pub stderr: Vec<u8>,
    /// How it ended.
    pub exit: ExitOutcome,
    /// From sending the request to the end (tokio time, so paused clocks apply).
    pub duration: Duration,
}

impl ExecOutput {
    /// Standard output as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as text (invalid UTF-8 replaced).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// One connected host.
pub trait RemoteHost: Send + Sync {
    /// Runs one command line in a fresh process (a fresh exec channel). After `timeout` the
    /// result is [`ExitOutcome::Unknown`] ("timed out after …"): the remote process may still
    /// be running.
    fn run<'a>(&'a self, command_line: &'a str, timeout: Duration) -> BoxFuture<'a, ExecOutput>;

    /// Uploads the local file to the remote path (over SFTP for SSH), writing a temporary
    /// name first and renaming it into place, so the path never holds a partial file.
    fn upload<'a>(
        &'a self,
        local: &'a Path,
        remote: &'a str,
    ) -> BoxFuture<'a, Result<(), RemoteError>>;

    /// Whether the connection is gone (every further `run` would be `Unknown`).
    fn is_closed(&self) -> bool;
}

/// Opens connections to servers of the inventory.
pub trait Connector: Send + Sync {
    /// Connects to `server` and authenticates, checking its host key.
    fn connect<'a>(
        &'a self,
        server: &'a Server,
    ) -> BoxFuture<'a, Result<Arc<dyn RemoteHost>, RemoteError>>;
}

/// The command line that runs `script` on a host with this shell: for PowerShell, a fresh
/// non-interactive `powershell.exe -EncodedCommand …` (no quoting needed anywhere on the
/// way); for a POSIX shell, the script as-is.
pub fn command_line(shell: RemoteShell, script: &str) -> String {
    match shell {
        RemoteShell::Powershell => powershell_command_line(script),
        RemoteShell::Posix => script.to_string(),
    }
}

/// Why a connection or a transfer failed. Every message names the host and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// The TCP connection or the SSH handshake failed.
    #[error(
        "cannot connect to {host} port {port}: {reason} (is the host up and is its SSH server listening there?)"
    )]
    Connect {
        /// Address as given in the inventory.
        host: String,
        /// TCP port.
        port: u16,
        /// What went wrong.
        reason: String,
    },
    /// Connecting and logging on took longer than allowed.
    #[error(
        "connecting to {host} port {port} took longer than {}: the host may be down, restarting, or unreachable from here",
        humantime::format_duration(*after)
    )]
    Timeout {
        /// Address as given in the inventory.
        host: String,
        /// TCP port.
        port: u16,
        /// The connect timeout that ran out.
        after: Duration,
    },
    /// The host's key is not in the known_hosts file: refused, as `ssh` with
    /// `StrictHostKeyChecking yes` would.
    #[error(
        "the host key of {host} port {port} is not known: {fingerprint} is not in {}. Check this fingerprint with the server's administrator (on the server: ssh-keygen -lf C:\\ProgramData\\ssh\\ssh_host_ed25519_key.pub), then add this line to {}:\n    {known_hosts_line}\n{}",
        file.display(), file.display(), unknown_key_hint(*other_keys)
    )]
    HostKeyUnknown {
        /// Address as given in the inventory.
        host: String,
        /// TCP port.
        port: u16,
        /// The known_hosts file that was searched.
        file: PathBuf,
        /// Algorithm and SHA-256 fingerprint of the offered key (`ssh-ed25519 SHA256:…`).
        fingerprint: String,
        /// The line that would record it, in known_hosts format.
        known_hosts_line: String,
        /// How many keys of other algorithms the file records for this host (then
        /// `--accept-new-host-keys` does not apply).
        other_keys: usize,
    },
    /// The host offered a key different from the recorded one: refused and never learned.
    #[error(
        "REFUSED: the host key of {host} port {port} has CHANGED. It offered {fingerprint}, which differs from the key recorded at {}:{line}. Someone may be intercepting the connection, or the server was reinstalled. poolpatch never replaces a recorded key: confirm the new key with the server's administrator, then delete line {line} of {} and record the new key",
        file.display(), file.display()
    )]
    HostKeyChanged {
        /// Address as given in the inventory.
        host: String,
        /// TCP port.
        port: u16,
        /// The known_hosts file holding the recorded key.
        file: PathBuf,
        /// The line (1-based, counting every line of the file) of the recorded key.
        line: usize,
        /// Algorithm and SHA-256 fingerprint of the offered key.
        fingerprint: String,
    },
    /// The known_hosts file could not be read or written.
    #[error(
        "cannot use the known_hosts file {} for {host} port {port}: {reason}",
        file.display()
    )]
    KnownHosts {
        /// Address as given in the inventory.
        host: String,
        /// TCP port.
        port: u16,
        /// The file.
        file: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Logging on failed (key not accepted, key file unreadable, agent unavailable).
    #[error("cannot log on to {host} port {port} as {user}: {reason}")]
    Auth {
        /// Address as given in the inventory.
        host: String,
        /// TCP port.
        port: u16,
        /// The account.
        user: String,
        /// What went wrong and what to do.
        reason: String,
    },
    /// A channel could not be opened or used (the connection may be gone).
    #[error("SSH channel to {host} failed: {reason}")]
    Channel {
        /// Address as given in the inventory.
        host: String,
        /// What went wrong.
        reason: String,
    },
    /// An SFTP operation failed.
    #[error("SFTP to {host} failed for {path}: {reason}")]
    Sftp {
        /// Address as given in the inventory.
        host: String,
        /// The remote path concerned.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The local file to upload could not be read.
    #[error("cannot read {}: {reason}", path.display())]
    LocalFile {
        /// The local path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

fn unknown_key_hint(other_keys: usize) -> String {
    if other_keys == 0 {
        "or run again with --accept-new-host-keys to record the keys of hosts that have none"
            .to_string()
    } else {
        format!(
            "(the file records {other_keys} key(s) of other algorithms for this host, so --accept-new-host-keys will not add this one)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poolpatch_plans::quote::script_of_command_line;

    #[test]
    fn command_line_by_shell() {
        let script = "$ProgressPreference = 'SilentlyContinue'\nexit 0\n";
        let ps = command_line(RemoteShell::Powershell, script);
        assert_eq!(script_of_command_line(&ps).as_deref(), Some(script));
        assert_eq!(command_line(RemoteShell::Posix, script), script);
    }

    #[test]
    fn unknown_and_signals_are_never_success() {
        assert!(ExitOutcome::Code(0).is_success(&[0]));
        assert!(ExitOutcome::Code(3010).is_success(&[0, 3010]));
        assert!(!ExitOutcome::Code(1).is_success(&[0]));
        assert!(!ExitOutcome::Unknown("timed out".into()).is_success(&[0]));
        assert!(!ExitOutcome::Signal("KILL".into()).is_success(&[0]));
        assert_eq!(
            ExitOutcome::Unknown("connection lost".into()).to_string(),
            "outcome unknown: connection lost"
        );
    }
}
