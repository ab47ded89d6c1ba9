//! Steering a running controller from outside: pause, resume, abort.
//!
//! `poolpatch ctl pause|resume|abort --run DIR` writes the run directory's `control` file
//! (to a temporary name, then renamed into place, so the controller never reads half of
//! it); the running controller watches that file and acts on each new command. The file
//! holds a sequence number, the command and who sent it, so the same command sent twice
//! (pause, resume, pause) is seen each time. Signals go the same way: SIGUSR1 pauses,
//! SIGUSR2 resumes, SIGINT and SIGTERM abort.
//!
//! - **pause**: no new server starts; servers in flight go on to their end.
//! - **resume**: servers start again.
//! - **abort**: no new server starts; servers in flight finish or are restored; the run ends.

use std::path::Path;
use std::time::Duration;

use tokio::sync::watch;

use super::recorder::Recorder;
use crate::journal::Event;

/// The control file's name inside a run directory.
pub const CONTROL_FILE: &str = "control";

/// What an operator can tell a running controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Start no new server.
    Pause,
    /// Start servers again.
    Resume,
    /// Start no new server and end the run once servers in flight are done.
    Abort,
}

impl Command {
    /// The word used in the file and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::Abort => "abort",
        }
    }

    fn from_name(s: &str) -> Option<Command> {
        [Command::Pause, Command::Resume, Command::Abort]
            .into_iter()
            .find(|c| c.name() == s)
    }
}

/// One command as read from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Increases with every command.
    pub seq: u64,
    /// The command.
    pub command: Command,
    /// Who sent it.
    pub by: String,
}

/// Reads the control file of `run_dir`, if it holds a command.
pub fn read(run_dir: &Path) -> Option<Sent> {
    let text = std::fs::read_to_string(run_dir.join(CONTROL_FILE)).ok()?;
    let mut lines = text.lines();
    let seq = lines.next()?.trim().parse().ok()?;
    let command = Command::from_name(lines.next()?.trim())?;
    let by = lines.next().unwrap_or("").trim().to_string();
    Some(Sent { seq, command, by })
}

/// Sends `command` to the controller of `run_dir` (atomically replacing the file).
pub fn send(run_dir: &Path, command: Command, by: &str) -> std::io::Result<Sent> {
    let seq = read(run_dir).map_or(1, |s| s.seq + 1);
    let by: String = by.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    let tmp = run_dir.join(format!("{CONTROL_FILE}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, format!("{seq}\n{}\n{by}\n", command.name()))?;
    std::fs::rename(&tmp, run_dir.join(CONTROL_FILE))?;
    Ok(Sent { seq, command, by })
}

/// Watches the control file of `run_dir` until `done` turns true: a pause or resume sets
/// `pause`, an abort sets `abort`; each is journaled. Commands written before the run
/// started (an older sequence number) are not acted on again.
pub async fn watch_file(
    run_dir: std::path::PathBuf,
    recorder: Recorder,
    pause: watch::Sender<bool>,
    abort: std::sync::Arc<watch::Sender<bool>>,
    mut done: watch::Receiver<bool>,
) {
    let mut seen = read(&run_dir).map_or(0, |s| s.seq);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = done.changed() => {
                if changed.is_err() || *done.borrow() {
                    return;
                }
            }
        }
        let Some(sent) = read(&run_dir) else { continue };
        if sent.seq <= seen {
            continue;
        }
        seen = sent.seq;
        let by = if sent.by.is_empty() {
            "an operator".to_string()
        } else {
            sent.by.clone()
        };
        match sent.command {
            Command::Pause => {
                if !*pause.borrow() {
                    let _ = recorder.record(Event::Paused { by }).await;
                    let _ = pause.send(true);
                }
            }
            Command::Resume => {
                if *pause.borrow() {
                    let _ = recorder.record(Event::Unpaused { by }).await;
                    let _ = pause.send(false);
                }
            }
            Command::Abort => {
                let _ = recorder.record(Event::AbortRequested { by }).await;
                let _ = abort.send(true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_replace_each_other_with_increasing_numbers() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()), None);
        let a = send(dir.path(), Command::Pause, "alice").unwrap();
        let b = send(dir.path(), Command::Resume, "bob\nsneaky").unwrap();
        assert_eq!((a.seq, b.seq), (1, 2));
        assert_eq!(
            read(dir.path()),
            Some(Sent {
                seq: 2,
                command: Command::Resume,
                by: "bobsneaky".into()
            })
        );
    }
}
