//! One simulated host: its state, and how it carries out the commands of a script while
//! enforcing the preconditions a real Lync / Skype for Business server has.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use poolpatch_plans::quote::script_of_command_line;
use russh::keys::PublicKey;
use tokio::sync::{broadcast, watch};

use super::config::{ActionKind, FaultEffect, SimHostConfig, sha256_hex};
use super::record::{self, Outage, Record, SimCommand, SimEvent, SimEventKind};
use super::script::{ExitArg, Line, SimAction, classify, path_key};

/// A Windows service's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceStatus {
    /// Running.
    Running,
    /// Stopped.
    Stopped,
}

/// A file in the host's store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimFile {
    /// The path as first named.
    pub path: String,
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Size.
    pub bytes: u64,
}

/// A snapshot of a host's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimState {
    /// Reachable (not restarting).
    pub up: bool,
    /// Each Lync service and its state.
    pub services: Vec<(String, ServiceStatus)>,
    /// Whether w3svc runs.
    pub w3svc_running: bool,
    /// The installed version.
    pub version: String,
    /// Whether the update is installed.
    pub update_installed: bool,
    /// Whether the databases were updated to the installed version.
    pub databases_updated: bool,
    /// Whether the installer asked for a restart that has not happened.
    pub reboot_pending: bool,
    /// Stored files.
    pub files: Vec<SimFile>,
    /// Free bytes on the system drive.
    pub free_bytes: u64,
}

impl SimState {
    /// Whether every Lync service runs.
    pub fn services_running(&self) -> bool {
        self.services
            .iter()
            .all(|(_, s)| *s == ServiceStatus::Running)
    }
}

#[derive(Debug)]
pub(crate) struct StoredFile {
    pub(crate) path: String,
    pub(crate) data: Vec<u8>,
}

#[derive(Debug)]
pub(crate) struct HostState {
    pub(super) up: bool,
    pub(super) services: Vec<(String, bool)>,
    pub(super) w3svc: bool,
    pub(super) version: String,
    pub(super) databases_version: String,
    pub(super) reboot_pending: bool,
    /// Whether the update installer is running now (it goes on when the client is gone).
    pub(super) installing: bool,
    pub(crate) files: BTreeMap<String, StoredFile>,
    pub(super) invocations: BTreeMap<ActionKind, u32>,
}

impl HostState {
    fn all_services_running(&self) -> bool {
        self.services.iter().all(|(_, r)| *r)
    }

    pub(crate) fn stored_bytes(&self) -> u64 {
        self.files.values().map(|f| f.data.len() as u64).sum()
    }
}

pub(crate) struct Shared {
    pub(crate) config: SimHostConfig,
    pub(crate) state: Mutex<HostState>,
    pub(crate) record: Record,
    next_command: AtomicU64,
    /// Tells every connection of the host to drop (restart, injected fault, shutdown).
    pub(crate) cut: broadcast::Sender<()>,
    /// `true` once the simulator stops: ends hung commands, timers and accept loops.
    pub(crate) shutdown: watch::Sender<bool>,
    /// Incremented at each restart: commands of an earlier boot die with it.
    generation: watch::Sender<u64>,
    pub(crate) server_config: Arc<russh::server::Config>,
}

/// A simulated Lync / Skype for Business server. Cheap to clone (a shared handle); the
/// state, the file store and the record are shared by all clones and all connections.
#[derive(Clone)]
pub struct SimHost {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for SimHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHost")
            .field("fqdn", &self.shared.config.fqdn)
            .field("product", &self.shared.config.product)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// How an executed command ended.
pub(crate) enum ExecEnd {
    /// Send this exit code.
    Exit(i32),
    /// Nothing to send: the command hung until the simulator stopped, or the host restarted.
    Abandoned,
}

/// Output and end of an executed command.
pub(crate) struct ExecResult {
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) end: ExecEnd,
}

enum Outcome {
    Done {
        code: i32,
        stdout: String,
        stderr: String,
    },
    Abandoned,
}

fn done(code: i32, stdout: impl Into<String>, stderr: impl Into<String>) -> Outcome {
    Outcome::Done {
        code,
        stdout: stdout.into(),
        stderr: stderr.into(),
    }
}

impl SimHost {
    /// A host in the state its configuration describes (not yet serving connections).
    pub fn new(config: SimHostConfig) -> SimHost {
        let files = config
            .files
            .iter()
            .map(|(p, data)| {
                (
                    path_key(p),
                    StoredFile {
                        path: p.clone(),
                        data: data.clone(),
                    },
                )
            })
            .collect();
        let state = HostState {
            up: true,
            services: config
                .services
                .iter()
                .map(|s| (s.clone(), config.services_running))
                .collect(),
            w3svc: config.w3svc_running,
            version: config.version_before.clone(),
            databases_version: config.version_before.clone(),
            reboot_pending: false,
            installing: false,
            files,
            invocations: BTreeMap::new(),
        };
        let server_config = Arc::new(russh::server::Config {
            keys: vec![config.host_key.clone()],
            auth_rejection_time: Duration::from_millis(5),
            auth_rejection_time_initial: Some(Duration::ZERO),
            // Like Windows OpenSSH's defaults: the server never times a client out.
            inactivity_timeout: None,
            ..Default::default()
        });
        SimHost {
            shared: Arc::new(Shared {
                config,
                state: Mutex::new(state),
                record: Record::default(),
                next_command: AtomicU64::new(0),
                cut: broadcast::channel(4).0,
                shutdown: watch::channel(false).0,
                generation: watch::channel(0).0,
                server_config,
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SimHostConfig {
        &self.shared.config
    }

    /// The host's public key.
    pub fn public_key(&self) -> PublicKey {
        self.shared.config.host_key.public_key().clone()
    }

    /// The known_hosts line for this host reached at `host`:`port`.
    pub fn known_hosts_line(&self, host: &str, port: u16) -> String {
        crate::remote::known_hosts::known_hosts_line(host, port, &self.public_key())
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, HostState> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn push(&self, kind: SimEventKind) {
        self.shared.record.push(kind);
    }

    /// Everything recorded so far, in order.
    pub fn record(&self) -> Vec<SimEvent> {
        self.shared.record.events()
    }

    /// The commands received so far.
    pub fn commands(&self) -> Vec<SimCommand> {
        record::commands(&self.record())
    }

    /// The intervals during which Lync services were not all running.
    pub fn outages(&self) -> Vec<Outage> {
        record::outages(&self.record())
    }

    /// A snapshot of the state.
    pub fn state(&self) -> SimState {
        let st = self.lock();
        let after = &self.shared.config.version_after;
        SimState {
            up: st.up,
            services: st
                .services
                .iter()
                .map(|(n, r)| {
                    let s = if *r {
                        ServiceStatus::Running
                    } else {
                        ServiceStatus::Stopped
                    };
                    (n.clone(), s)
                })
                .collect(),
            w3svc_running: st.w3svc,
            version: st.version.clone(),
            update_installed: &st.version == after,
            databases_updated: &st.databases_version == after,
            reboot_pending: st.reboot_pending,
            files: st
                .files
                .values()
                .map(|f| SimFile {
                    path: f.path.clone(),
                    sha256: sha256_hex(&f.data),
                    bytes: f.data.len() as u64,
                })
                .collect(),
            free_bytes: self
                .shared
                .config
                .free_bytes
                .saturating_sub(st.stored_bytes()),
        }
    }

    /// The content of a stored file.
    pub fn file(&self, path: &str) -> Option<Vec<u8>> {
        self.lock()
            .files
            .get(&path_key(path))
            .map(|f| f.data.clone())
    }

    /// Whether the host is reachable (not restarting, not stopped).
    pub fn is_up(&self) -> bool {
        self.lock().up && !*self.shared.shutdown.borrow()
    }

    /// Drops every connection of the host now.
    pub fn drop_connections(&self, reason: &str) {
        let _ = self.shared.cut.send(());
        self.push(SimEventKind::ConnectionsDropped {
            reason: reason.to_string(),
        });
    }

    /// Stops the host: drops connections, ends hung commands and pending restarts, and
    /// refuses new connections.
    pub fn shutdown(&self) {
        if !self.shared.shutdown.send_replace(true) {
            self.drop_connections("the simulator stopped");
        }
    }

    /// Resolves once [`SimHost::shutdown`] was called.
    pub(crate) async fn stopped(&self) {
        let mut rx = self.shared.shutdown.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Sleeps `d` on tokio's clock; false if the simulator stopped or the host restarted
    /// (boot `generation` ended) meanwhile, or had already.
    async fn sleep(&self, d: Duration, generation: u64) -> bool {
        if d.is_zero() {
            // Instant commands (`SimDurations::instant()`): a zero sleep would still wait
            // for the timer's next 1 ms tick. Same answer, without the wait.
            return !*self.shared.shutdown.borrow()
                && *self.shared.generation.borrow() == generation;
        }
        let mut gen_rx = self.shared.generation.subscribe();
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.stopped() => false,
            _ = gen_rx.wait_for(|g| *g != generation) => false,
        }
    }

    /// Runs one command line: decodes `-EncodedCommand` if present, then the script line
    /// by line.
    pub(crate) async fn execute(&self, command_line: &str) -> ExecResult {
        let id = self.shared.next_command.fetch_add(1, Ordering::Relaxed);
        let script =
            script_of_command_line(command_line).unwrap_or_else(|| command_line.to_string());
        self.push(SimEventKind::CommandReceived {
            command: id,
            command_line: command_line.to_string(),
            script: script.clone(),
        });
        let (mut stdout, mut stderr) = (String::new(), String::new());
        let mut last = 0;
        let mut end = None;
        for line in script.lines() {
            match classify(line) {
                Line::Ignore => {}
                Line::ImportModule(name) => {
                    if !name.eq_ignore_ascii_case(self.shared.config.module()) {
                        stderr.push_str(&format!(
                            "Import-Module : The specified module '{name}' was not loaded because no valid module file was found in any module directory.\r\n"
                        ));
                        end = Some(1);
                        break;
                    }
                }
                Line::Exit(ExitArg::Code(c)) => {
                    end = Some(c);
                    break;
                }
                Line::Exit(ExitArg::Last) => {
                    end = Some(last);
                    break;
                }
                Line::Unknown => {
                    stderr.push_str(&format!(
                        "simulator: {} does not know this command: {}\r\n",
                        self.shared.config.fqdn,
                        line.trim()
                    ));
                    end = Some(127);
                    break;
                }
                Line::Action { action, then_exit } => match self.perform(id, &action).await {
                    Outcome::Abandoned => {
                        return ExecResult {
                            stdout,
                            stderr,
                            end: ExecEnd::Abandoned,
                        };
                    }
                    Outcome::Done {
                        code,
                        stdout: out,
                        stderr: err,
                    } => {
                        stdout.push_str(&out);
                        stderr.push_str(&err);
                        last = code;
                        if code != 0 || then_exit {
                            end = Some(code);
                            break;
                        }
                    }
                },
            }
        }
        let code = end.unwrap_or(last);
        self.push(SimEventKind::CommandFinished {
            command: id,
            exit_code: code,
        });
        ExecResult {
            stdout,
            stderr,
            end: ExecEnd::Exit(code),
        }
    }

    /// The fault configured for this invocation of `kind`, counting it.
    fn take_fault(&self, kind: ActionKind) -> Option<FaultEffect> {
        let n = {
            let mut st = self.lock();
            let n = st.invocations.entry(kind).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        self.shared
            .config
            .faults
            .iter()
            .find(|f| f.action == kind && f.occurrence.is_none_or(|o| o == n))
            .map(|f| f.effect.clone())
    }

    async fn perform(&self, id: u64, action: &SimAction) -> Outcome {
        let kind = action.kind();
        let fault = self.take_fault(kind);
        let generation = *self.shared.generation.borrow();
        if let Some((exit_code, reason)) = self.refusal(action) {
            self.push(SimEventKind::ActionRefused {
                command: id,
                action: action.clone(),
                exit_code,
                reason: reason.clone(),
            });
            return done(exit_code, "", format!("{reason}\r\n"));
        }
        self.push(SimEventKind::ActionStarted {
            command: id,
            action: action.clone(),
        });
        if kind == ActionKind::StopServices {
            // The outage starts when services start stopping, not when they are all down.
            self.stop_services();
        }
        if let Some(effect) = &fault {
            self.push(SimEventKind::FaultInjected {
                command: id,
                action: kind,
                effect: format!("{effect:?}"),
            });
        }
        let d = self.shared.config.durations.of(kind);
        if kind == ActionKind::Install {
            self.lock().installing = true;
        }
        let completed = match fault {
            Some(FaultEffect::Hang) => {
                // No timer: a paused clock must not auto-advance to the end of a hang.
                let mut gen_rx = self.shared.generation.subscribe();
                tokio::select! {
                    _ = self.stopped() => {}
                    _ = gen_rx.wait_for(|g| *g != generation) => {}
                }
                false
            }
            Some(FaultEffect::DropConnection) => {
                self.sleep(d / 2, generation).await && {
                    self.drop_connections(&format!("fault injected during {}", kind.name()));
                    self.sleep(d - d / 2, generation).await
                }
            }
            _ => self.sleep(d, generation).await,
        };
        if kind == ActionKind::Install {
            self.lock().installing = false;
        }
        if !completed {
            self.push(SimEventKind::CommandKilled { command: id });
            return Outcome::Abandoned;
        }
        let (code, stdout, stderr) = match fault {
            Some(FaultEffect::Fail { exit_code, stderr }) => (exit_code, String::new(), stderr),
            effect => self.apply(action, effect),
        };
        self.push(SimEventKind::ActionFinished {
            command: id,
            action: action.clone(),
            exit_code: code,
        });
        done(code, stdout, stderr)
    }

    fn stop_services(&self) {
        let mut st = self.lock();
        let was_all_running = st.all_services_running();
        for s in &mut st.services {
            s.1 = false;
        }
        if was_all_running && !st.services.is_empty() {
            self.push(SimEventKind::ServicesStopped);
        }
    }

    pub(super) fn start_services(&self, st: &mut HostState) {
        let was_all_running = st.all_services_running();
        for s in &mut st.services {
            s.1 = true;
        }
        if !was_all_running {
            self.push(SimEventKind::ServicesRunning);
        }
    }

    /// Goes down after the restart delay, stays unreachable, comes back with services and
    /// w3svc started (they are Automatic), the pending restart done.
    pub(super) async fn restart(&self, extra: Duration) {
        let durations = &self.shared.config.durations;
        let generation = *self.shared.generation.borrow();
        if !self
            .sleep(durations.scale(durations.restart), generation)
            .await
        {
            return;
        }
        {
            let mut st = self.lock();
            st.up = false;
            let w3svc = std::mem::replace(&mut st.w3svc, false);
            drop(st);
            self.stop_services();
            if w3svc {
                self.push(SimEventKind::W3svcStopped);
            }
        }
        self.shared
            .generation
            .send_modify(|g| *g = g.wrapping_add(1));
        self.push(SimEventKind::RebootStarted);
        self.drop_connections("the host is restarting");
        let down = durations.scale(durations.reboot_downtime.saturating_add(extra));
        if !self.sleep(down, generation.wrapping_add(1)).await {
            return;
        }
        let mut st = self.lock();
        st.up = true;
        st.reboot_pending = false;
        self.push(SimEventKind::HostUp);
        if !st.w3svc {
            st.w3svc = true;
            self.push(SimEventKind::W3svcRunning);
        }
        self.start_services(&mut st);
    }
}
