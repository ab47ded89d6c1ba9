//! What a simulated host saw and did, recorded independently of poolpatch's own journal, so
//! tests can check the controller against the host's side of the story.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::ActionKind;
use super::script::SimAction;

/// One recorded event.
#[derive(Debug, Clone, PartialEq)]
pub struct SimEvent {
    /// Order of recording on this host (0, 1, 2, …).
    pub seq: u64,
    /// When, on tokio's clock (meaningful under a paused clock too).
    pub at: Instant,
    /// When, on the wall clock.
    pub wall: SystemTime,
    /// What happened.
    pub kind: SimEventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum SimEventKind {
    /// A client connected (the host was up).
    Connected,
    /// A connection arrived while the host was restarting, and was dropped.
    ConnectionRefused,
    /// The account logged on with an authorized key.
    LoggedOn {
        /// The account.
        user: String,
    },
    /// A logon was refused (wrong user or key).
    LogonRefused {
        /// The account asked for.
        user: String,
    },
    /// An exec request arrived.
    CommandReceived {
        /// The command's number on this host.
        command: u64,
        /// The command line as received.
        command_line: String,
        /// The script: decoded from `-EncodedCommand`, or the command line itself.
        script: String,
    },
    /// A recognised command started.
    ActionStarted {
        /// The command it belongs to.
        command: u64,
        /// What it does.
        action: SimAction,
    },
    /// A recognised command was refused because its preconditions do not hold.
    ActionRefused {
        /// The command it belongs to.
        command: u64,
        /// What it would have done.
        action: SimAction,
        /// Its exit code.
        exit_code: i32,
        /// The reason, as written to standard error.
        reason: String,
    },
    /// A recognised command finished.
    ActionFinished {
        /// The command it belongs to.
        command: u64,
        /// What it did.
        action: SimAction,
        /// Its exit code.
        exit_code: i32,
    },
    /// A configured fault took effect.
    FaultInjected {
        /// The command it hit.
        command: u64,
        /// The action it hit.
        action: ActionKind,
        /// The effect, in words.
        effect: String,
    },
    /// A command ended and its exit code was sent.
    CommandFinished {
        /// The command.
        command: u64,
        /// Its exit code.
        exit_code: i32,
    },
    /// A command died with the host (restart) before finishing.
    CommandKilled {
        /// The command.
        command: u64,
    },
    /// Lync services went from all Running to Stopped: an outage starts.
    ServicesStopped,
    /// Every Lync service is Running again: the outage ends.
    ServicesRunning,
    /// w3svc stopped.
    W3svcStopped,
    /// w3svc started.
    W3svcRunning,
    /// The update installed.
    UpdateInstalled {
        /// The version now installed.
        version: String,
    },
    /// The databases were updated.
    DatabasesUpdated {
        /// The flags used.
        update: super::script::DatabaseUpdate,
    },
    /// A file was written over SFTP (on close).
    FileStored {
        /// The path as the client named it.
        path: String,
        /// Lower-case hex SHA-256 of its content.
        sha256: String,
        /// Its size.
        bytes: u64,
    },
    /// A file was renamed over SFTP.
    FileRenamed {
        /// Old path.
        from: String,
        /// New path.
        to: String,
    },
    /// A file was removed over SFTP.
    FileRemoved {
        /// The path.
        path: String,
    },
    /// Every connection was dropped.
    ConnectionsDropped {
        /// Why.
        reason: String,
    },
    /// The host went down to restart.
    RebootStarted,
    /// The host is reachable again (services and w3svc started automatically).
    HostUp,
}

/// One command as the host saw it, gathered from the record.
#[derive(Debug, Clone, PartialEq)]
pub struct SimCommand {
    /// Its number on this host.
    pub id: u64,
    /// When it arrived (tokio clock).
    pub received: Instant,
    /// When it arrived (wall clock).
    pub received_wall: SystemTime,
    /// The command line.
    pub command_line: String,
    /// The decoded script.
    pub script: String,
    /// The recognised actions, in order (refused ones included).
    pub actions: Vec<SimAction>,
    /// The exit code sent, if the command finished.
    pub exit_code: Option<i32>,
    /// When it finished (tokio clock).
    pub finished: Option<Instant>,
}

impl SimCommand {
    /// The kinds of its actions.
    pub fn kinds(&self) -> Vec<ActionKind> {
        self.actions.iter().map(SimAction::kind).collect()
    }
}

/// An interval during which at least one Lync service was not Running.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outage {
    /// When the services started stopping (tokio clock).
    pub start: Instant,
    /// Same, wall clock.
    pub start_wall: SystemTime,
    /// When every service ran again, if it did.
    pub end: Option<Instant>,
    /// Same, wall clock.
    pub end_wall: Option<SystemTime>,
}

impl Outage {
    /// The outage's length so far (to `now` if it has not ended).
    pub fn duration(&self, now: Instant) -> Duration {
        self.end
            .unwrap_or(now)
            .saturating_duration_since(self.start)
    }
}

/// The shared, append-only record of a host.
#[derive(Debug, Clone, Default)]
pub(crate) struct Record {
    events: Arc<Mutex<Vec<SimEvent>>>,
}

impl Record {
    pub(crate) fn push(&self, kind: SimEventKind) {
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        let seq = events.len() as u64;
        events.push(SimEvent {
            seq,
            at: Instant::now(),
            wall: SystemTime::now(),
            kind,
        });
    }

    pub(crate) fn events(&self) -> Vec<SimEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The commands in a record, in arrival order.
pub fn commands(events: &[SimEvent]) -> Vec<SimCommand> {
    let mut out: Vec<SimCommand> = Vec::new();
    for e in events {
        match &e.kind {
            SimEventKind::CommandReceived {
                command,
                command_line,
                script,
            } => out.push(SimCommand {
                id: *command,
                received: e.at,
                received_wall: e.wall,
                command_line: command_line.clone(),
                script: script.clone(),
                actions: Vec::new(),
                exit_code: None,
                finished: None,
            }),
            SimEventKind::ActionStarted { command, action }
            | SimEventKind::ActionRefused {
                command, action, ..
            } => {
                if let Some(c) = out.iter_mut().find(|c| c.id == *command) {
                    c.actions.push(action.clone());
                }
            }
            SimEventKind::CommandFinished { command, exit_code } => {
                if let Some(c) = out.iter_mut().find(|c| c.id == *command) {
                    c.exit_code = Some(*exit_code);
                    c.finished = Some(e.at);
                }
            }
            _ => {}
        }
    }
    out
}

/// The outages in a record: from each [`SimEventKind::ServicesStopped`] to the next
/// [`SimEventKind::ServicesRunning`].
pub fn outages(events: &[SimEvent]) -> Vec<Outage> {
    let mut out: Vec<Outage> = Vec::new();
    for e in events {
        match e.kind {
            SimEventKind::ServicesStopped => out.push(Outage {
                start: e.at,
                start_wall: e.wall,
                end: None,
                end_wall: None,
            }),
            SimEventKind::ServicesRunning => {
                if let Some(last) = out.last_mut().filter(|o| o.end.is_none()) {
                    last.end = Some(e.at);
                    last.end_wall = Some(e.wall);
                }
            }
            _ => {}
        }
    }
    out
}
