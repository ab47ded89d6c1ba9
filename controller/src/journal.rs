//! The journal: every event of a run, appended durably as versioned JSON lines.
//!
//! The journal is the run's single source of truth: `poolpatch status`, resume and reports
//! are all derived from it. Each event is one line. Lines are appended in batches (group
//! commit, see [`JournalWriter::append_batch`]): one `write` of every line of the batch,
//! then `sync_data`, and only then is any of them reported as written; so after a crash the
//! file holds every event that was reported as written. A torn last line (the crash hit
//! mid-write) is dropped on reading and reported.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use poolpatch_plans::procedure::StepKind;
use serde::{Deserialize, Serialize};

/// The journal file's name inside a run directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";

/// Version of the record format; readers refuse records of a newer version.
pub const RECORD_VERSION: u32 = 1;

/// How a step's command ended, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ExitRecord {
    /// The remote process exited with this code.
    Code {
        /// The exit code.
        code: i32,
    },
    /// The remote process was killed by a signal.
    Signal {
        /// The signal's name.
        signal: String,
    },
    /// No exit status arrived: the connection was lost or the step timed out. Never success.
    Unknown {
        /// Why the outcome is unknown.
        reason: String,
    },
}

/// What the watchdog did when a server reached its outage budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WatchdogAction {
    /// Stop advancing the procedure and restore services now.
    Restore,
    /// Complete the procedure and record the overrun.
    Finish,
}

/// One thing that happened in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// The run began.
    RunStarted {
        /// The change's name.
        change: String,
        /// The inventory file.
        inventory: String,
        /// The change file.
        change_file: String,
        /// Servers the plan schedules.
        servers: usize,
        /// Who runs it: `user@host pid N`.
        operator: String,
        /// A rehearsal against simulated hosts (its durations never feed estimates).
        #[serde(default)]
        rehearsal: bool,
    },
    /// A run was resumed after its controller stopped (killed, machine restarted).
    RunResumed {
        /// Who resumes it: `user@host pid N`.
        operator: String,
        /// The torn last line dropped from the journal before appending, if any.
        torn_line_dropped: Option<usize>,
    },
    /// A server that was in flight when the controller stopped: what the host really is,
    /// and where its procedure goes on.
    ServerResumed {
        /// The server.
        server: String,
        /// What the probe found, in words.
        found: String,
        /// The step the procedure goes on with (`None`: nothing left but ending the outage).
        continue_with: Option<StepKind>,
        /// Anything the host contradicted in the journal.
        note: String,
    },
    /// Preflight of a server passed: its outage may start.
    PreflightPassed {
        /// The server.
        server: String,
        /// What was checked, in words.
        checks: Vec<String>,
    },
    /// Preflight of a server failed: it is skipped, its outage never starts.
    PreflightFailed {
        /// The server.
        server: String,
        /// Why.
        reason: String,
    },
    /// The installer was uploaded to a server.
    Uploaded {
        /// The server.
        server: String,
        /// Where it was written.
        path: String,
        /// Its size in bytes.
        bytes: u64,
    },
    /// A step was sent.
    StepStarted {
        /// The server.
        server: String,
        /// The step.
        step: StepKind,
        /// Whether this is part of the recovery path.
        recovery: bool,
        /// The command an operator reads.
        command: String,
    },
    /// A step ended.
    StepFinished {
        /// The server.
        server: String,
        /// The step.
        step: StepKind,
        /// Whether this is part of the recovery path.
        recovery: bool,
        /// How it ended.
        exit: ExitRecord,
        /// Whether the exit counts as success for this step.
        ok: bool,
        /// How long it took, in milliseconds.
        duration_ms: u64,
        /// The last lines of its standard output.
        stdout_tail: String,
        /// The last lines of its standard error.
        stderr_tail: String,
    },
    /// Lync services are going down (Stop-CsWindowsService sent).
    OutageStarted {
        /// The server.
        server: String,
        /// The pool that lost its back end.
        pool: String,
    },
    /// Services are verified running again.
    OutageEnded {
        /// The server.
        server: String,
        /// How long it was down, in milliseconds.
        outage_ms: u64,
    },
    /// The watchdog reached the budget while the server was still down.
    Watchdog {
        /// The server.
        server: String,
        /// What it did.
        action: WatchdogAction,
        /// Steps of the procedure that were not done when it acted.
        remaining: Vec<StepKind>,
        /// How long the server had been down, in milliseconds.
        down_ms: u64,
    },
    /// A server was still down at the threshold: users are in resiliency mode.
    Breach {
        /// The server.
        server: String,
        /// The pool.
        pool: String,
        /// How long it had been down, in milliseconds.
        down_ms: u64,
    },
    /// The installer asked for a reboot; the server is restarted and the procedure goes on.
    RebootRequested {
        /// The server.
        server: String,
    },
    /// The procedure completed.
    ServerDone {
        /// The server.
        server: String,
        /// Its outage, in milliseconds.
        outage_ms: u64,
    },
    /// The server was restored after the budget ran out; the update is not complete.
    ServerBudgetExhausted {
        /// The server.
        server: String,
        /// What is left to do on it.
        remaining: Vec<StepKind>,
    },
    /// The procedure failed.
    ServerFailed {
        /// The server.
        server: String,
        /// The step that failed, if any.
        step: Option<StepKind>,
        /// Why, with the step's output tail.
        reason: String,
        /// Whether services were verified running again after the failure.
        restored: bool,
    },
    /// A server was not started.
    ServerSkipped {
        /// The server.
        server: String,
        /// Why.
        reason: String,
    },
    /// No further server of a pool starts.
    PoolHalted {
        /// The pool.
        pool: String,
        /// Why.
        reason: String,
    },
    /// A server waits for its maintenance window.
    WaitingForWindow {
        /// The server.
        server: String,
        /// Its calendar (`site amsterdam`).
        calendar: String,
        /// When the window it fits in opens.
        until: Timestamp,
    },
    /// A stage's last server is done: its bake begins (health checks repeat meanwhile).
    StageBaking {
        /// The stage.
        stage: String,
        /// When the bake ends.
        until: Timestamp,
    },
    /// A health check of a stage's servers during its bake.
    HealthChecked {
        /// The stage.
        stage: String,
        /// Whether every check passed.
        ok: bool,
        /// What failed, if anything.
        detail: String,
    },
    /// A stage passed: every server succeeded and health held for the whole bake.
    StagePassed {
        /// The stage.
        stage: String,
    },
    /// A stage failed: a server of it failed, or health failed during the bake. The rollout
    /// halts; no server of a later stage starts.
    StageFailed {
        /// The stage.
        stage: String,
        /// Why.
        reason: String,
    },
    /// The operator paused the run (`poolpatch ctl pause`, SIGUSR1): no new server starts.
    Paused {
        /// Who or what asked.
        by: String,
    },
    /// The operator let a paused run go on.
    Unpaused {
        /// Who or what asked.
        by: String,
    },
    /// The operator aborted the run: no new server starts; servers in flight finish or are
    /// restored.
    AbortRequested {
        /// Who or what asked.
        by: String,
    },
    /// A notification could not be delivered (after its retries). The run goes on.
    NotificationFailed {
        /// Where it was sent.
        url: String,
        /// The event it was about.
        about: String,
        /// Why it failed.
        error: String,
    },
    /// The run stopped before the scope was done.
    RunHalted {
        /// Why.
        reason: String,
    },
    /// The run ended.
    RunFinished {
        /// Servers patched.
        done: usize,
        /// Servers that failed or were restored unfinished.
        failed: usize,
        /// Servers not started.
        skipped: usize,
        /// Threshold breaches.
        breaches: usize,
    },
}

impl Event {
    /// The server the event is about, if any.
    pub fn server(&self) -> Option<&str> {
        match self {
            Event::PreflightPassed { server, .. }
            | Event::PreflightFailed { server, .. }
            | Event::Uploaded { server, .. }
            | Event::StepStarted { server, .. }
            | Event::StepFinished { server, .. }
            | Event::OutageStarted { server, .. }
            | Event::OutageEnded { server, .. }
            | Event::Watchdog { server, .. }
            | Event::Breach { server, .. }
            | Event::RebootRequested { server }
            | Event::ServerDone { server, .. }
            | Event::ServerBudgetExhausted { server, .. }
            | Event::ServerFailed { server, .. }
            | Event::ServerSkipped { server, .. }
            | Event::ServerResumed { server, .. }
            | Event::WaitingForWindow { server, .. } => Some(server),
            Event::RunStarted { .. }
            | Event::RunResumed { .. }
            | Event::StageBaking { .. }
            | Event::HealthChecked { .. }
            | Event::StagePassed { .. }
            | Event::StageFailed { .. }
            | Event::Paused { .. }
            | Event::Unpaused { .. }
            | Event::AbortRequested { .. }
            | Event::NotificationFailed { .. }
            | Event::PoolHalted { .. }
            | Event::RunHalted { .. }
            | Event::RunFinished { .. } => None,
        }
    }
}

/// One journal line: an event with its sequence number and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Record format version ([`RECORD_VERSION`]).
    pub v: u32,
    /// 0-based position in the journal.
    pub seq: u64,
    /// When it happened (from the run's clock).
    pub at: Timestamp,
    /// Milliseconds since the run started (monotonic; what durations are computed from).
    pub elapsed_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// Appends records to a run's journal, durably.
#[derive(Debug)]
pub struct JournalWriter {
    file: File,
    path: PathBuf,
    next_seq: u64,
    /// The file's length after the last batch that was written and synced: a batch that
    /// fails is cut back to it, so no partial line is left in the middle of the journal.
    len: u64,
    /// Batches written and synced (one `sync_data` each).
    syncs: u64,
}

impl JournalWriter {
    /// Creates the journal in `run_dir` (which must not have one yet), and syncs the
    /// directory so the new file survives a crash.
    pub fn create(run_dir: &Path) -> io::Result<JournalWriter> {
        std::fs::create_dir_all(run_dir)?;
        let path = run_dir.join(JOURNAL_FILE);
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)?;
        File::open(run_dir)?.sync_all()?;
        Ok(JournalWriter {
            file,
            path,
            next_seq: 0,
            len: 0,
            syncs: 0,
        })
    }

    /// Opens an existing journal to go on appending after `existing` records (for resume).
    pub fn append_to(run_dir: &Path, existing: u64) -> io::Result<JournalWriter> {
        let path = run_dir.join(JOURNAL_FILE);
        let file = OpenOptions::new().append(true).open(&path)?;
        let len = file.metadata()?.len();
        Ok(JournalWriter {
            file,
            path,
            next_seq: existing,
            len,
            syncs: 0,
        })
    }

    /// Reopens the journal of `run_dir` to go on appending (resume): reads it, cuts a torn
    /// last line off the file (so the next record starts on a line of its own), syncs, and
    /// returns what was read with a writer positioned after the last record.
    pub fn reopen(run_dir: &Path) -> Result<(Journal, JournalWriter), ReadError> {
        let journal = read(run_dir)?;
        let path = run_dir.join(JOURNAL_FILE);
        let io = |source| ReadError::Io {
            path: path.display().to_string(),
            source,
        };
        if journal.torn_last_line.is_some() {
            let bytes = std::fs::read(&path).map_err(io)?;
            let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let f = OpenOptions::new().write(true).open(&path).map_err(io)?;
            f.set_len(keep as u64).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        let next_seq = journal.records.last().map_or(0, |r| r.seq + 1);
        let writer = JournalWriter::append_to(run_dir, next_seq).map_err(io)?;
        Ok((journal, writer))
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sequence number the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// How many batches were written and synced (one `sync_data` each) by this writer.
    pub fn syncs(&self) -> u64 {
        self.syncs
    }

    /// Appends one event with one write, then `sync_data` (a batch of one).
    pub fn append(&mut self, at: Timestamp, elapsed_ms: u64, event: Event) -> io::Result<Record> {
        let mut records = self.append_batch([(at, elapsed_ms, event)])?;
        records
            .pop()
            .ok_or_else(|| io::Error::other("an empty batch"))
    }

    /// Appends events, in order, with consecutive sequence numbers: every line in one
    /// `write`, then one `sync_data` (group commit). Returns the records once they are
    /// durable. On an error none of them counts as written: the file is cut back to where
    /// the batch began (so the journal never holds a partial line before later records),
    /// and their sequence numbers go to the next batch, so the journal's stay contiguous.
    ///
    /// Times are the caller's: give them in non-decreasing order (the recorder reads the
    /// clock when an event takes its place in the queue).
    pub fn append_batch(
        &mut self,
        events: impl IntoIterator<Item = (Timestamp, u64, Event)>,
    ) -> io::Result<Vec<Record>> {
        let mut records = Vec::new();
        let mut lines = Vec::new();
        for (at, elapsed_ms, event) in events {
            let record = Record {
                v: RECORD_VERSION,
                seq: self.next_seq + records.len() as u64,
                at,
                elapsed_ms,
                event,
            };
            serde_json::to_writer(&mut lines, &record).map_err(io::Error::other)?;
            lines.push(b'\n');
            records.push(record);
        }
        if records.is_empty() {
            return Ok(records);
        }
        let written = self
            .file
            .write_all(&lines)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Best effort: if even this fails, the reader reports the damage.
            let _ = self
                .file
                .set_len(self.len)
                .and_then(|()| self.file.sync_data());
            return Err(e);
        }
        self.len += lines.len() as u64;
        self.next_seq += records.len() as u64;
        self.syncs += 1;
        Ok(records)
    }
}

/// A journal as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Journal {
    /// Records in order.
    pub records: Vec<Record>,
    /// Set when the last line was torn (a crash mid-write) and dropped: its 1-based line.
    pub torn_last_line: Option<usize>,
}

/// Why a journal could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The journal path.
        path: String,
        /// The cause.
        source: io::Error,
    },
    /// A line other than the last is not a valid record.
    #[error(
        "{path}:{line}: not a valid journal record ({reason}); the journal is damaged, not torn"
    )]
    Corrupt {
        /// The journal path.
        path: String,
        /// 1-based line.
        line: usize,
        /// The parser's words.
        reason: String,
    },
    /// A record of a newer format.
    #[error(
        "{path}:{line}: record version {version} is newer than this poolpatch understands ({RECORD_VERSION}); use a newer poolpatch"
    )]
    TooNew {
        /// The journal path.
        path: String,
        /// 1-based line.
        line: usize,
        /// Its version.
        version: u32,
    },
}

/// Reads the journal of `run_dir`, dropping a torn last line.
pub fn read(run_dir: &Path) -> Result<Journal, ReadError> {
    let path = run_dir.join(JOURNAL_FILE);
    let shown = path.display().to_string();
    let bytes = std::fs::read(&path).map_err(|source| ReadError::Io {
        path: shown.clone(),
        source,
    })?;
    parse(&shown, &bytes)
}

/// Parses journal bytes (see [`read`]).
pub fn parse(path: &str, bytes: &[u8]) -> Result<Journal, ReadError> {
    let mut records = Vec::new();
    let mut torn_last_line = None;
    let ends_clean = bytes.is_empty() || bytes.ends_with(b"\n");
    let lines: Vec<&[u8]> = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    for (i, line) in lines.iter().enumerate() {
        // A last line without its newline was not completely written even if it happens
        // to parse: its sync never returned, so nobody relied on it.
        let torn = i + 1 == lines.len() && !ends_clean;
        match serde_json::from_slice::<Record>(line) {
            Ok(r) if r.v > RECORD_VERSION => {
                return Err(ReadError::TooNew {
                    path: path.to_string(),
                    line: i + 1,
                    version: r.v,
                });
            }
            _ if torn => torn_last_line = Some(i + 1),
            Ok(r) => records.push(r),
            Err(e) => {
                return Err(ReadError::Corrupt {
                    path: path.to_string(),
                    line: i + 1,
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(Journal {
        records,
        torn_last_line,
    })
}

/// The last `lines` lines of `text`, at most `max_bytes` bytes (for output tails).
pub fn tail(text: &[u8], lines: usize, max_bytes: usize) -> String {
    let s = String::from_utf8_lossy(text);
    let all: Vec<&str> = s.lines().collect();
    let start = all.len().saturating_sub(lines);
    let mut out = all[start..].join("\n");
    if out.len() > max_bytes {
        let mut cut = out.len() - max_bytes;
        while !out.is_char_boundary(cut) {
            cut += 1;
        }
        out = format!("…{}", &out[cut..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(n: usize) -> Event {
        Event::ServerSkipped {
            server: format!("be{n:02}.contoso.com"),
            reason: "test".into(),
        }
    }

    #[test]
    fn appends_and_reads_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = JournalWriter::create(dir.path()).unwrap();
        for i in 0..5 {
            w.append(Timestamp::UNIX_EPOCH, i * 10, ev(i as usize))
                .unwrap();
        }
        let j = read(dir.path()).unwrap();
        assert_eq!(j.records.len(), 5);
        assert_eq!(j.torn_last_line, None);
        assert_eq!(j.records[3].seq, 3);
        assert_eq!(j.records[3].event, ev(3));
        assert!(
            JournalWriter::create(dir.path()).is_err(),
            "a journal is never overwritten"
        );
    }

    #[test]
    fn torn_last_line_is_dropped_and_reported_but_damage_elsewhere_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = JournalWriter::create(dir.path()).unwrap();
        w.append(Timestamp::UNIX_EPOCH, 0, ev(1)).unwrap();
        w.append(Timestamp::UNIX_EPOCH, 0, ev(2)).unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let full = bytes.clone();
        bytes.truncate(bytes.len() - 7);
        let j = parse("j", &bytes).unwrap();
        assert_eq!(j.records.len(), 1);
        assert_eq!(j.torn_last_line, Some(2));

        let mut damaged = b"{not json}\n".to_vec();
        damaged.extend_from_slice(&full);
        let err = parse("j", &damaged).unwrap_err().to_string();
        assert!(err.starts_with("j:1: not a valid journal record"), "{err}");
    }

    #[test]
    fn appending_after_resume_continues_the_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = JournalWriter::create(dir.path()).unwrap();
        w.append(Timestamp::UNIX_EPOCH, 0, ev(1)).unwrap();
        drop(w);
        let n = read(dir.path()).unwrap().records.len() as u64;
        let mut w = JournalWriter::append_to(dir.path(), n).unwrap();
        assert_eq!(w.append(Timestamp::UNIX_EPOCH, 0, ev(2)).unwrap().seq, 1);
    }

    #[test]
    fn reopening_cuts_a_torn_line_so_new_records_stay_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = JournalWriter::create(dir.path()).unwrap();
        w.append(Timestamp::UNIX_EPOCH, 0, ev(1)).unwrap();
        drop(w);
        let path = dir.path().join(JOURNAL_FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"v\":1,\"seq\":1,\"at\":\"19").unwrap();
        drop(f);
        let (j, mut w) = JournalWriter::reopen(dir.path()).unwrap();
        assert_eq!(j.torn_last_line, Some(2));
        assert_eq!(w.append(Timestamp::UNIX_EPOCH, 5, ev(2)).unwrap().seq, 1);
        let again = read(dir.path()).unwrap();
        assert_eq!(again.torn_last_line, None);
        assert_eq!(again.records.len(), 2);
        assert_eq!(again.records[1].event, ev(2));
    }

    #[test]
    fn a_batch_is_one_sync_with_contiguous_sequence_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = JournalWriter::create(dir.path()).unwrap();
        let batch = (0..5).map(|i| (Timestamp::UNIX_EPOCH, i * 10, ev(i as usize)));
        let written = w.append_batch(batch).unwrap();
        assert_eq!(
            written.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        assert_eq!(w.syncs(), 1);
        assert!(w.append_batch([]).unwrap().is_empty());
        assert_eq!(w.syncs(), 1, "an empty batch is neither written nor synced");
        let next = w
            .append_batch((5..8).map(|i| (Timestamp::UNIX_EPOCH, 50, ev(i))))
            .unwrap();
        assert_eq!(next[0].seq, 5);
        assert_eq!((w.syncs(), w.next_seq()), (2, 8));
        let j = read(dir.path()).unwrap();
        assert_eq!(j.records, [written, next].concat());
    }

    #[test]
    fn a_failed_batch_takes_no_sequence_numbers() {
        // A journal on a full disk: /dev/full refuses every write with ENOSPC.
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/full", dir.path().join(JOURNAL_FILE)).unwrap();
        let mut w = JournalWriter::append_to(dir.path(), 7).unwrap();
        let err = w
            .append_batch((0..3).map(|i| (Timestamp::UNIX_EPOCH, 0, ev(i))))
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(28), "{err}"); // ENOSPC
        assert_eq!((w.next_seq(), w.syncs()), (7, 0));
        assert!(w.append(Timestamp::UNIX_EPOCH, 0, ev(4)).is_err());
    }

    #[test]
    fn tails_keep_the_end() {
        assert_eq!(tail(b"a\nb\nc\nd\n", 2, 100), "c\nd");
        assert_eq!(tail(b"abcdef", 5, 3), "…def");
    }
}
