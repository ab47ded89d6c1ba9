//! The SSH implementation of [`Connector`] and [`RemoteHost`], on russh.
//!
//! - One connection per server ([`SshHost`]); every step is a fresh exec channel opened on
//!   the shared handle (OpenSSH allows 10 at once per connection by default).
//! - Logon with a private key file (RSA signs with rsa-sha2 when the server supports it, as
//!   OpenSSH 9 requires) or with the keys of the running ssh-agent.
//! - Host keys are checked strictly against the endpoint's known_hosts file: an unknown key
//!   is refused with the line to add, a changed key is refused naming the file and line and
//!   is never learned. [`SshOptions::accept_new_host_keys`] records the keys of hosts that
//!   have none recorded at all.
//! - Timeouts: connecting (TCP + handshake + logon) is bounded by
//!   [`SshOptions::connect_timeout`]; keepalives run well below the inactivity timeout, so a
//!   silent installer does not kill the session; every step has its own timeout, after
//!   which its outcome is unknown (the remote process may still run).
//! - [`SshConnector::connect_stream`] runs the same client over any byte stream, such as
//!   `tokio::io::duplex`, which tests use under tokio's paused clock.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poolpatch_inventory::{Server, SshAuth};
use russh::client::{self, AuthResult};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect};
use russh_sftp::client::SftpSession;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout, timeout_at};

use super::known_hosts::{check_host_key, fingerprint};
use super::{BoxFuture, Connector, ExecOutput, ExitOutcome, RemoteError, RemoteHost};

/// Connection settings. The defaults suit Windows back ends on a LAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshOptions {
    /// Limit on TCP connect, SSH handshake and logon together.
    pub connect_timeout: Duration,
    /// How often to send a keepalive when the server has been silent: well below the
    /// inactivity timeout, so that a long silent step (an installer) keeps the session.
    pub keepalive_interval: Duration,
    /// Unanswered keepalives after which the connection counts as lost.
    pub keepalive_max: usize,
    /// Close the session after this long without any traffic (keepalive replies count).
    pub inactivity_timeout: Option<Duration>,
    /// Record the key of a host that has no key at all in its known_hosts file, instead of
    /// refusing it. A changed key is refused whatever this says.
    pub accept_new_host_keys: bool,
    /// The ssh-agent socket for servers with `auth: agent`; `None` reads `SSH_AUTH_SOCK`.
    pub agent_socket: Option<PathBuf>,
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            connect_timeout: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(15),
            keepalive_max: 4,
            inactivity_timeout: Some(Duration::from_secs(300)),
            accept_new_host_keys: false,
            agent_socket: None,
        }
    }
}

/// Opens SSH connections to inventory servers.
#[derive(Debug, Clone, Default)]
pub struct SshConnector {
    options: SshOptions,
}

/// One SSH connection to one server.
pub struct SshHost {
    /// The russh session; `&self` methods open channels on it concurrently.
    handle: client::Handle<ClientHandler>,
    /// Address as given in the inventory (for messages).
    host: String,
}

/// The client-side russh handler: checks the host key and keeps its reason for refusing,
/// since russh's own error only says "Unknown server key".
struct ClientHandler {
    host: String,
    port: u16,
    known_hosts: PathBuf,
    accept_new: bool,
    refusal: Arc<Mutex<Option<RemoteError>>>,
}

impl client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let verdict = match offered {
            PublicKeyOrCertificate::PublicKey { key, .. } => check_host_key(
                &self.host,
                self.port,
                key,
                &self.known_hosts,
                self.accept_new,
            ),
            PublicKeyOrCertificate::Certificate(_) => Err(RemoteError::KnownHosts {
                host: self.host.clone(),
                port: self.port,
                file: self.known_hosts.clone(),
                reason: "the server offered a host certificate; poolpatch checks plain host keys against known_hosts only".into(),
            }),
        };
        match verdict {
            Ok(()) => Ok(true),
            Err(e) => {
                if let Ok(mut slot) = self.refusal.lock() {
                    *slot = Some(e);
                }
                Ok(false)
            }
        }
    }
}

impl SshConnector {
    /// A connector with these options.
    pub fn new(options: SshOptions) -> SshConnector {
        SshConnector { options }
    }

    /// The options in use.
    pub fn options(&self) -> &SshOptions {
        &self.options
    }

    fn config(&self) -> Arc<client::Config> {
        Arc::new(client::Config {
            keepalive_interval: Some(self.options.keepalive_interval),
            keepalive_max: self.options.keepalive_max,
            inactivity_timeout: self.options.inactivity_timeout,
            nodelay: true,
            ..Default::default()
        })
    }

    /// Connects to `server` over TCP at its `ssh.address` and `ssh.port`.
    pub async fn connect_tcp(&self, server: &Server) -> Result<SshHost, RemoteError> {
        let (host, port) = (server.ssh.address.as_str(), server.ssh.port);
        let attempt = async {
            let tcp = tokio::net::TcpStream::connect((host, port))
                .await
                .map_err(|e| RemoteError::Connect {
                    host: host.to_string(),
                    port,
                    reason: e.to_string(),
                })?;
            // Small packets (exit statuses, keepalives) should not wait for Nagle.
            let _ = tcp.set_nodelay(true);
            self.handshake(server, tcp).await
        };
        self.bounded(server, attempt).await
    }

    /// Runs the same client over `stream` (for instance one end of `tokio::io::duplex`),
    /// checking the host key and logging on exactly as over TCP.
    pub async fn connect_stream<S>(
        &self,
        server: &Server,
        stream: S,
    ) -> Result<SshHost, RemoteError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.bounded(server, self.handshake(server, stream)).await
    }

    async fn bounded(
        &self,
        server: &Server,
        attempt: impl Future<Output = Result<SshHost, RemoteError>>,
    ) -> Result<SshHost, RemoteError> {
        match timeout(self.options.connect_timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(RemoteError::Timeout {
                host: server.ssh.address.clone(),
                port: server.ssh.port,
                after: self.options.connect_timeout,
            }),
        }
    }

    async fn handshake<S>(&self, server: &Server, stream: S) -> Result<SshHost, RemoteError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (host, port) = (server.ssh.address.clone(), server.ssh.port);
        let refusal = Arc::new(Mutex::new(None));
        let handler = ClientHandler {
            host: host.clone(),
            port,
            known_hosts: server.ssh.known_hosts.clone(),
            accept_new: self.options.accept_new_host_keys,
            refusal: refusal.clone(),
        };
        let mut handle = match client::connect_stream(self.config(), stream, handler).await {
            Ok(h) => h,
            Err(e) => {
                let ours = refusal.lock().ok().and_then(|mut slot| slot.take());
                return Err(ours.unwrap_or(RemoteError::Connect {
                    host,
                    port,
                    reason: format!("SSH handshake failed: {e}"),
                }));
            }
        };
        authenticate(&mut handle, server, self.options.agent_socket.as_deref()).await?;
        Ok(SshHost { handle, host })
    }
}

async fn authenticate(
    handle: &mut client::Handle<ClientHandler>,
    server: &Server,
    agent_socket: Option<&Path>,
) -> Result<(), RemoteError> {
    let ssh = &server.ssh;
    let refused = |reason: String| RemoteError::Auth {
        host: ssh.address.clone(),
        port: ssh.port,
        user: ssh.user.clone(),
        reason,
    };
    match &ssh.auth {
        SshAuth::IdentityFile(path) => {
            let key = russh::keys::load_secret_key(path, None).map_err(|e| {
                refused(format!(
                    "cannot load the private key {}: {e} (poolpatch reads unencrypted OpenSSH key files; for a passphrase-protected key use `auth: agent` with ssh-agent)",
                    path.display()
                ))
            })?;
            let hash = rsa_hash(handle, key.algorithm().is_rsa()).await;
            let print = fingerprint(key.public_key());
            let result = handle
                .authenticate_publickey(
                    ssh.user.clone(),
                    PrivateKeyWithHashAlg::new(Arc::new(key), hash),
                )
                .await
                .map_err(|e| refused(format!("the logon exchange failed: {e}")))?;
            if result.success() {
                return Ok(());
            }
            Err(refused(format!(
                "the server refused the key {print} from {}: is its public key in the account's authorized_keys (C:\\ProgramData\\ssh\\administrators_authorized_keys for administrators on Windows)?",
                path.display()
            )))
        }
        SshAuth::Agent => authenticate_with_agent(handle, server, agent_socket).await,
    }
}

#[cfg(not(unix))]
async fn authenticate_with_agent(
    _handle: &mut client::Handle<ClientHandler>,
    server: &Server,
    _agent_socket: Option<&Path>,
) -> Result<(), RemoteError> {
    Err(RemoteError::Auth {
        host: server.ssh.address.clone(),
        port: server.ssh.port,
        user: server.ssh.user.clone(),
        reason: "ssh-agent logon is supported on Unix only: use `auth: identity_file`".into(),
    })
}

#[cfg(unix)]
async fn authenticate_with_agent(
    handle: &mut client::Handle<ClientHandler>,
    server: &Server,
    agent_socket: Option<&Path>,
) -> Result<(), RemoteError> {
    use russh::keys::agent::AgentIdentity;
    use russh::keys::agent::client::AgentClient;

    let ssh = &server.ssh;
    let refused = |reason: String| RemoteError::Auth {
        host: ssh.address.clone(),
        port: ssh.port,
        user: ssh.user.clone(),
        reason,
    };
    let agent = match agent_socket {
        Some(path) => AgentClient::connect_uds(path).await,
        None => AgentClient::connect_env().await,
    };
    let mut agent = agent.map_err(|e| {
        let which = agent_socket.map_or("named by SSH_AUTH_SOCK".to_string(), |p| {
            format!("at {}", p.display())
        });
        refused(format!(
            "cannot reach the ssh-agent {which}: {e} (start ssh-agent and ssh-add the key, or use `auth: identity_file`)"
        ))
    })?;
    let identities = agent
        .request_identities()
        .await
        .map_err(|e| refused(format!("the ssh-agent did not list its keys: {e}")))?;
    let mut tried = Vec::new();
    for identity in identities {
        let AgentIdentity::PublicKey { key, .. } = identity else {
            continue;
        };
        let hash = rsa_hash(handle, key.algorithm().is_rsa()).await;
        tried.push(fingerprint(&key));
        match handle
            .authenticate_publickey_with(ssh.user.clone(), key, hash, &mut agent)
            .await
        {
            Ok(AuthResult::Success) => return Ok(()),
            Ok(AuthResult::Failure { .. }) => {}
            Err(e) => tracing::debug!(error = %e, "the ssh-agent could not sign"),
        }
    }
    if tried.is_empty() {
        return Err(refused(
            "the ssh-agent holds no keys: ssh-add the account's key".into(),
        ));
    }
    Err(refused(format!(
        "the server accepted none of the ssh-agent's keys ({}): is one of them in the account's authorized_keys?",
        tried.join(", ")
    )))
}

/// The RSA signature hash the server supports best (rsa-sha2-512/256); `None` for other
/// key types or a server that does not say.
async fn rsa_hash(handle: &client::Handle<ClientHandler>, is_rsa: bool) -> Option<HashAlg> {
    if !is_rsa {
        return None;
    }
    handle
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .flatten()
}

impl std::fmt::Debug for SshHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshHost")
            .field("host", &self.host)
            .field("closed", &self.handle.is_closed())
            .finish()
    }
}

impl SshHost {
    /// The address this host was reached at.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Ends the connection politely.
    pub async fn disconnect(&self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "poolpatch is done", "en")
            .await;
    }

    async fn exec(&self, command_line: &str, limit: Duration) -> ExecOutput {
        let started = Instant::now();
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let exit = self
            .exec_into(
                command_line,
                started + limit,
                limit,
                &mut stdout,
                &mut stderr,
            )
            .await;
        ExecOutput {
            stdout,
            stderr,
            exit,
            duration: started.elapsed(),
        }
    }

    async fn exec_into(
        &self,
        command_line: &str,
        deadline: Instant,
        limit: Duration,
        stdout: &mut Vec<u8>,
        stderr: &mut Vec<u8>,
    ) -> ExitOutcome {
        let timed_out = || {
            ExitOutcome::Unknown(format!(
                "timed out after {}; the remote command may still be running",
                humantime::format_duration(limit)
            ))
        };
        let mut channel = match timeout_at(deadline, self.handle.channel_open_session()).await {
            Err(_) => return timed_out(),
            Ok(Err(e)) => {
                return ExitOutcome::Unknown(format!("could not open an exec channel: {e}"));
            }
            Ok(Ok(c)) => c,
        };
        match timeout_at(deadline, channel.exec(true, command_line)).await {
            Err(_) => return timed_out(),
            Ok(Err(e)) => {
                return ExitOutcome::Unknown(format!("could not send the command: {e}"));
            }
            Ok(Ok(())) => {}
        }
        let mut status = None;
        let mut signal = None;
        let mut refused = false;
        // Read until the channel is gone: OpenSSH may send EOF before the exit status.
        loop {
            match timeout_at(deadline, channel.wait()).await {
                Err(_) => {
                    // Free the session slot; the remote process is not stopped by this.
                    let _ = timeout(Duration::from_secs(1), channel.close()).await;
                    // A server that reported the exit status but never closed the channel
                    // did finish the command.
                    return match status {
                        Some(code) => ExitOutcome::Code(code),
                        None => timed_out(),
                    };
                }
                Ok(None) => break,
                Ok(Some(msg)) => match msg {
                    ChannelMsg::Data { data } => stdout.extend_from_slice(&data),
                    ChannelMsg::ExtendedData { data, .. } => stderr.extend_from_slice(&data),
                    ChannelMsg::ExitStatus { exit_status } => {
                        status = Some(i32::from_ne_bytes(exit_status.to_ne_bytes()));
                    }
                    ChannelMsg::ExitSignal {
                        signal_name,
                        error_message,
                        ..
                    } => {
                        signal = Some(if error_message.is_empty() {
                            format!("{signal_name:?}")
                        } else {
                            format!("{signal_name:?} ({error_message})")
                        });
                    }
                    ChannelMsg::Failure => refused = true,
                    _ => {}
                },
            }
        }
        match (status, signal) {
            (Some(code), _) => ExitOutcome::Code(code),
            (None, Some(signal)) => ExitOutcome::Signal(signal),
            (None, None) if refused => {
                ExitOutcome::Unknown("the server refused to run the command".into())
            }
            (None, None) if self.handle.is_closed() => ExitOutcome::Unknown(
                "the connection was lost before the command reported an exit status; it may still be running".into(),
            ),
            (None, None) => {
                ExitOutcome::Unknown("the channel closed without an exit status".into())
            }
        }
    }

    async fn upload_file(&self, local: &Path, remote: &str) -> Result<(), RemoteError> {
        let sftp_error = |reason: String| RemoteError::Sftp {
            host: self.host.clone(),
            path: remote.to_string(),
            reason,
        };
        let mut source =
            tokio::fs::File::open(local)
                .await
                .map_err(|e| RemoteError::LocalFile {
                    path: local.to_path_buf(),
                    reason: e.to_string(),
                })?;
        let mut channel =
            self.handle
                .channel_open_session()
                .await
                .map_err(|e| RemoteError::Channel {
                    host: self.host.clone(),
                    reason: e.to_string(),
                })?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|e| sftp_error(format!("cannot request the sftp subsystem: {e}")))?;
        loop {
            match channel.wait().await {
                Some(ChannelMsg::Success) => break,
                Some(ChannelMsg::Failure) => {
                    return Err(sftp_error(
                        "the server has no sftp subsystem (OpenSSH: `Subsystem sftp sftp-server.exe` in sshd_config)".into(),
                    ));
                }
                Some(_) => {}
                None => return Err(sftp_error("the channel closed before sftp started".into())),
            }
        }
        let sftp = SftpSession::new(channel.into_stream())
            .await
            .map_err(|e| sftp_error(format!("sftp did not start: {e}")))?;
        let partial = format!("{remote}.poolpatch-partial");
        let result = async {
            let mut target = sftp
                .create(partial.as_str())
                .await
                .map_err(|e| sftp_error(format!("cannot create {partial}: {e}")))?;
            tokio::io::copy(&mut source, &mut target)
                .await
                .map_err(|e| sftp_error(format!("writing {partial} failed: {e}")))?;
            target
                .shutdown()
                .await
                .map_err(|e| sftp_error(format!("closing {partial} failed: {e}")))?;
            // SFTP v3 rename refuses an existing target: remove the old file first.
            if sftp.try_exists(remote).await.unwrap_or(false) {
                sftp.remove_file(remote)
                    .await
                    .map_err(|e| sftp_error(format!("cannot replace the existing file: {e}")))?;
            }
            sftp.rename(partial.as_str(), remote)
                .await
                .map_err(|e| sftp_error(format!("cannot rename {partial} into place: {e}")))
        }
        .await;
        if result.is_err() {
            let _ = sftp.remove_file(partial.as_str()).await;
        }
        let _ = sftp.close().await;
        result
    }
}

impl RemoteHost for SshHost {
    fn run<'a>(&'a self, command_line: &'a str, timeout: Duration) -> BoxFuture<'a, ExecOutput> {
        Box::pin(self.exec(command_line, timeout))
    }

    fn upload<'a>(
        &'a self,
        local: &'a Path,
        remote: &'a str,
    ) -> BoxFuture<'a, Result<(), RemoteError>> {
        Box::pin(self.upload_file(local, remote))
    }

    fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }
}

impl Connector for SshConnector {
    fn connect<'a>(
        &'a self,
        server: &'a Server,
    ) -> BoxFuture<'a, Result<Arc<dyn RemoteHost>, RemoteError>> {
        Box::pin(async move {
            let host = self.connect_tcp(server).await?;
            Ok(Arc::new(host) as Arc<dyn RemoteHost>)
        })
    }
}
