//! The SSH side of a simulated host: a russh server per connection, over TCP or any byte
//! stream, with exec requests run by the host's interpreter and the `sftp` subsystem served
//! from its in-memory file store.
//!
//! Every connection runs through a small relay task between the client's stream and the
//! russh session, so the host can drop connections abruptly (a restart, an injected fault)
//! the way a vanishing server does: the client sees its stream end, not a polite
//! disconnect message.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;

use russh::server::{
    self, Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::host::{ExecEnd, SimHost};
use super::record::SimEventKind;
use super::sftp::SimSftp;

/// Buffer of the in-memory pipes (relay and [`SimHost::connect_in_memory`]).
const PIPE_BYTES: usize = 256 * 1024;

impl SimHost {
    /// Serves one SSH connection over `stream` in the background (TCP, or one end of
    /// `tokio::io::duplex`). While the host restarts, the stream is dropped at once.
    pub fn serve_stream<S>(&self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let host = self.clone();
        tokio::spawn(async move { host.serve_connection(stream).await });
    }

    /// An in-memory connection to this host: give the returned stream to
    /// `SshConnector::connect_stream`. Works under tokio's paused clock.
    pub fn connect_in_memory(&self) -> DuplexStream {
        let (client, server) = tokio::io::duplex(PIPE_BYTES);
        self.serve_stream(server);
        client
    }

    async fn serve_connection<S>(&self, mut outer: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        if !self.is_up() {
            self.push(SimEventKind::ConnectionRefused);
            return;
        }
        self.push(SimEventKind::Connected);
        let mut cut = self.shared.cut.subscribe();
        let (mut near, far) = tokio::io::duplex(PIPE_BYTES);
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut outer, &mut near) => {}
                _ = cut.recv() => {}
            }
            // Dropping both ends ends the client's stream and the russh session.
        });
        let handler = SimSession {
            host: self.clone(),
            channels: HashMap::new(),
        };
        match server::run_stream(self.shared.server_config.clone(), far, handler).await {
            Ok(session) => {
                if let Err(e) = session.await {
                    tracing::debug!(host = %self.config().fqdn, error = %e, "simulated session ended");
                }
            }
            Err(e) => {
                tracing::debug!(host = %self.config().fqdn, error = %e, "simulated handshake failed");
            }
        }
    }

    /// Accepts connections on `listener` until `shutdown` resolves or the host is shut
    /// down, then shuts the host down (mini-redis style: shutdown is passed in).
    pub async fn run(&self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.stopped() => break,
                accepted = listener.accept() => match accepted {
                    Ok((tcp, _peer)) => {
                        let _ = tcp.set_nodelay(true);
                        self.serve_stream(tcp);
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(host = %self.config().fqdn, error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
            }
        }
        self.shutdown();
    }

    /// Binds `addr` (port 0 for any free port) and serves in the background; dropping the
    /// returned [`SimListener`] shuts the host down.
    pub async fn listen(&self, addr: SocketAddr) -> io::Result<SimListener> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let host = self.clone();
        let task = tokio::spawn(async move {
            host.run(listener, async {
                // A dropped sender resolves this too.
                let _ = stopped.await;
            })
            .await;
        });
        Ok(SimListener {
            local_addr,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

/// A host serving on a TCP address. Dropping it stops the host.
#[derive(Debug)]
pub struct SimListener {
    local_addr: SocketAddr,
    /// Dropped or fired to stop the accept loop.
    stop: Option<oneshot::Sender<()>>,
    /// The accept loop, awaited by [`SimListener::stop`].
    task: Option<JoinHandle<()>>,
}

impl SimListener {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, shuts the host down, and waits for the accept loop to end.
    pub async fn stop(mut self) {
        self.stop.take();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimListener {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The russh handler of one connection.
struct SimSession {
    host: SimHost,
    /// Opened session channels not yet turned into an exec or sftp.
    channels: HashMap<ChannelId, Channel<Msg>>,
}

impl SimSession {
    fn accepts(&self, user: &str, key: &russh::keys::PublicKey) -> bool {
        let cfg = self.host.config();
        user.eq_ignore_ascii_case(&cfg.user)
            && cfg
                .authorized_keys
                .iter()
                .any(|k| k.key_data() == key.key_data())
    }
}

impl server::Handler for SimSession {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        if self.accepts(user, offer.public_key) {
            Ok(Auth::Accept)
        } else {
            self.host.push(SimEventKind::LogonRefused {
                user: user.to_string(),
            });
            Ok(Auth::reject())
        }
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if self.accepts(user, key.public_key) {
            self.host.push(SimEventKind::LoggedOn {
                user: user.to_string(),
            });
            Ok(Auth::Accept)
        } else {
            self.host.push(SimEventKind::LogonRefused {
                user: user.to_string(),
            });
            Ok(Auth::reject())
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        id: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(channel) = self.channels.remove(&id) else {
            session.channel_failure(id)?;
            return Ok(());
        };
        session.channel_success(id)?;
        let command_line = String::from_utf8_lossy(data).into_owned();
        let host = self.host.clone();
        tokio::spawn(async move {
            let (mut read, write) = channel.split();
            // Keep reading so the session never waits on this channel's queue.
            let drain = tokio::spawn(async move { while read.wait().await.is_some() {} });
            let result = host.execute(&command_line).await;
            if let ExecEnd::Exit(code) = result.end {
                // Send failures mean the connection is gone: the record already says so.
                if !result.stdout.is_empty() {
                    let _ = write.data_bytes(result.stdout.into_bytes()).await;
                }
                if !result.stderr.is_empty() {
                    let _ = write
                        .extended_data_bytes(1, result.stderr.into_bytes())
                        .await;
                }
                let _ = write
                    .exit_status(u32::from_ne_bytes(code.to_ne_bytes()))
                    .await;
                let _ = write.eof().await;
                let _ = write.close().await;
            }
            drain.abort();
        });
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match (name, self.channels.remove(&id)) {
            ("sftp", Some(channel)) => {
                session.channel_success(id)?;
                russh_sftp::server::run(channel.into_stream(), SimSftp::new(self.host.clone()))
                    .await;
            }
            _ => session.channel_failure(id)?,
        }
        Ok(())
    }
}
