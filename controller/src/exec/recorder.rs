//! Where the executor's events go: the durable journal first, then live observers.
//!
//! Every event is appended (and synced) before observers hear of it, so nothing is shown
//! that the journal does not hold. Time comes from the injected [`RunClock`], never from
//! the system deep inside the logic, so tests under tokio's paused clock get exact times.
//!
//! # Group commit, off the async workers
//!
//! [`Recorder::record`] does no I/O: it puts the event in a queue, where it takes its place
//! in the journal's order, and reads the clock under the same lock (so times never go back
//! along the journal). One batch writer at a time runs on tokio's blocking pool: it takes
//! everything queued, writes all the lines with one `write`, one `sync_data`
//! ([`JournalWriter::append_batch`]), acknowledges every caller of the batch, and only then
//! hands the records to observers, in file order; then it takes what was queued meanwhile,
//! and stops when the queue is empty (the next event starts another). With hundreds of
//! servers in flight, the events of a whole sync's duration share that sync, and no
//! worker thread of the runtime ever waits for the disk (before, each event was written
//! and synced under a mutex on the worker that recorded it, and every other task on that
//! worker waited too). Sequence numbers are given at write time, in queue order, so they
//! stay contiguous even when a batch fails.
//!
//! # Durability before action
//!
//! `record(event)` returns a [`Recording`], a future that resolves once the batch holding
//! the event is synced. **Await it** before doing anything that relies on the event being
//! journaled: the executor sends no remote command before the event announcing it is
//! durable (`StepStarted`; and the journaled `OutageStarted` is what resume computes the
//! outage from, so it is durable before `Stop-CsWindowsService` is sent), and a server's
//! task returns its outcome only once the outcome is journaled.
//!
//! Events become durable in the order they were recorded (a batch holds a stretch of the
//! queue, batches are written one after another), so awaiting an event also waits for
//! every event recorded before it. The event is queued when `record` is called, not when
//! the future is first polled, so dropping the future (or calling
//! [`Recorder::record_nowait`], for code that cannot wait) still journals it in its place.
//! Do that only where an awaited event follows before anything relies on it: the executor
//! journals the end of a step so (`StepFinished`), and the next step's `StepStarted`, the
//! outage's end or the outcome, awaited, cover it; one sync per gap between two steps.
//! [`Recorder::flush`] waits until every event queued so far is durable;
//! [`carry_out`](super::carry_out) and [`resume_run`](super::resume_run) flush before they
//! return.
//!
//! # Why the blocking pool and not a thread of our own
//!
//! Under `#[tokio::test(start_paused = true)]` the runtime advances its clock to the next
//! timer whenever it has nothing to do. A task waiting for a oneshot sent by a thread of its
//! own counts as nothing to do: measured with tokio 1.54, a task waiting 50 ms for such a
//! thread found the paused clock one hour later (the next timer was a one-hour watchdog),
//! so the alarms would fire during journal writes and the tests' exact outage times would
//! be wrong. A task of the blocking pool, however, inhibits auto-advance for as long as it
//! runs (documented under `tokio::time::pause`, "Preventing auto-advance"), and the batch
//! writer acknowledges its callers before it ends. So the same code runs in production and
//! under the paused clock, with exact times, no mode to choose and no `block_in_place`.
//! Outside a runtime (no handle), `record` writes the batch on the caller's thread.
//!
//! # Errors
//!
//! A batch that cannot be written is logged loudly (`tracing::error!`) and the run goes on
//! (stopping mid-outage would be worse): each caller gets a [`JournalError`], and
//! observers still get the records, with `seq` set to `u64::MAX`. The failed lines are cut
//! off the file again, so later records do not follow a partial line.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{broadcast, oneshot};
use tokio::time::Instant;

use crate::journal::{Event, JournalWriter, Record};

/// The run's clock: a wall-clock start plus tokio's monotonic time since then.
///
/// Under `#[tokio::test(start_paused = true)]` the monotonic part advances only as the test
/// advances it, so journaled times and durations are exact.
#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    start_wall: Timestamp,
    start: Instant,
    /// How much faster than real time the wall clock runs (1 for real runs; a compressed
    /// rehearsal runs it as fast as its durations are compressed, so that maintenance
    /// windows, which are wall-clock times, come as they would).
    speed: f64,
}

impl RunClock {
    /// A clock whose current time is `now`.
    pub fn starting_at(now: Timestamp) -> RunClock {
        RunClock {
            start_wall: now,
            start: Instant::now(),
            speed: 1.0,
        }
    }

    /// The same clock, its wall time running `speed` times faster than real time.
    #[must_use]
    pub fn with_speed(mut self, speed: f64) -> RunClock {
        if speed.is_finite() && speed >= 1.0 {
            self.speed = speed;
        }
        self
    }

    /// The monotonic instant at which this clock reads `t` (now, if `t` is past).
    pub fn instant_at(&self, t: Timestamp) -> Instant {
        let ahead = t.duration_since(self.now());
        match std::time::Duration::try_from(ahead) {
            Ok(d) if !d.is_zero() => {
                let real = std::time::Duration::from_secs_f64(d.as_secs_f64() / self.speed);
                Instant::now() + real.min(std::time::Duration::from_secs(400 * 24 * 3600))
            }
            _ => Instant::now(),
        }
    }

    /// A clock for a resumed run that started at `started` (journaled) and goes on `now`,
    /// running `speed` times faster than real time as the run did: times and `elapsed_ms`
    /// continue the journal's.
    pub fn continuing(started: Timestamp, now: Timestamp, speed: f64) -> RunClock {
        let speed = if speed.is_finite() && speed >= 1.0 {
            speed
        } else {
            1.0
        };
        let since = std::time::Duration::try_from(now.duration_since(started)).unwrap_or_default();
        match Instant::now().checked_sub(since.div_f64(speed)) {
            Some(start) => RunClock {
                start_wall: started,
                start,
                speed,
            },
            None => RunClock::starting_at(now).with_speed(speed),
        }
    }

    /// Monotonic time since the run started.
    pub fn elapsed(&self) -> std::time::Duration {
        Instant::now().saturating_duration_since(self.start)
    }

    /// The current wall time by this clock.
    pub fn now(&self) -> Timestamp {
        let elapsed = self.elapsed().mul_f64(self.speed);
        let d = SignedDuration::try_from(elapsed).unwrap_or(SignedDuration::MAX);
        self.start_wall.saturating_add(d).unwrap_or(self.start_wall)
    }
}

/// Why an event could not be journaled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot write the journal {}: {reason}", path.display())]
pub struct JournalError {
    /// The journal file.
    pub path: PathBuf,
    /// The system's words.
    pub reason: String,
}

/// Shared by all tasks of a run: journals events and tells observers (see the module
/// documentation).
#[derive(Debug, Clone)]
pub struct Recorder {
    shared: Arc<Shared>,
    clock: RunClock,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// Used by the one batch writer running (the queue's `writing` says which).
    journal: Mutex<JournalWriter>,
    path: Arc<Path>,
    tx: broadcast::Sender<Record>,
    syncs: AtomicU64,
}

#[derive(Debug, Default)]
struct Queue {
    entries: Vec<Entry>,
    /// A batch writer runs; it takes everything queued before it stops.
    writing: bool,
}

#[derive(Debug)]
enum Entry {
    Event {
        at: Timestamp,
        elapsed_ms: u64,
        event: Event,
        ack: Option<oneshot::Sender<Result<Record, JournalError>>>,
    },
    /// [`Recorder::flush`]: acknowledged once everything queued before it is written.
    Flush(oneshot::Sender<()>),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a panic while holding it; the queue and the writer stay usable
    // (the writer cuts a failed batch off the file).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Recorder {
    /// Records into `journal`, timing events by `clock`.
    pub fn new(journal: JournalWriter, clock: RunClock) -> Recorder {
        let (tx, _) = broadcast::channel(4096);
        Recorder {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue::default()),
                path: Arc::from(journal.path()),
                journal: Mutex::new(journal),
                tx,
                syncs: AtomicU64::new(0),
            }),
            clock,
        }
    }

    /// The run's clock.
    pub fn clock(&self) -> RunClock {
        self.clock
    }

    /// Live records as they are journaled, in journal order (a slow observer may miss
    /// some: it gets `Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<Record> {
        self.shared.tx.subscribe()
    }

    /// How many batches have been written and synced so far (one `sync_data` each).
    pub fn syncs(&self) -> u64 {
        self.shared.syncs.load(Ordering::Acquire)
    }

    /// Journals `event`: queued now, in order, with the clock's time now; the returned
    /// future resolves once it is durable (then observers hear of it). Await it before
    /// acting on the event; see the module documentation.
    pub fn record(&self, event: Event) -> Recording {
        let (tx, rx) = oneshot::channel();
        self.push(|at, elapsed_ms| Entry::Event {
            at,
            elapsed_ms,
            event,
            ack: Some(tx),
        });
        Recording {
            rx,
            path: self.shared.path.clone(),
        }
    }

    /// Journals `event` without waiting for it to be durable: it is queued now, in order,
    /// like [`record`](Recorder::record)'s. For places that cannot wait (not async) and
    /// where nothing that follows relies on the event being on disk yet; the executor
    /// awaits [`record`](Recorder::record) instead. A failure is only logged.
    pub fn record_nowait(&self, event: Event) {
        self.push(|at, elapsed_ms| Entry::Event {
            at,
            elapsed_ms,
            event,
            ack: None,
        });
    }

    /// Resolves once every event queued before the call is written (or failed).
    pub fn flush(&self) -> impl Future<Output = ()> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        self.push(|_, _| Entry::Flush(tx));
        async move {
            let _ = rx.await;
        }
    }

    fn push(&self, entry: impl FnOnce(Timestamp, u64) -> Entry) {
        let mut queue = lock(&self.shared.queue);
        // The clock is read under the queue's lock: queue order is journal order, so times
        // never go back along the journal.
        let elapsed_ms = u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        queue.entries.push(entry(self.clock.now(), elapsed_ms));
        let start = !std::mem::replace(&mut queue.writing, true);
        drop(queue);
        if start {
            let writer = BatchWriter(self.shared.clone());
            match tokio::runtime::Handle::try_current() {
                // If the runtime shuts down before running it, the closure is dropped, and
                // the writer's drop writes the batch all the same.
                Ok(rt) => drop(rt.spawn_blocking(move || drop(writer))),
                Err(_) => drop(writer),
            }
        }
    }
}

/// The batch writer: writes until the queue is empty, when it is dropped (run by the
/// blocking pool, or dropped unrun if the runtime is shutting down).
struct BatchWriter(Arc<Shared>);

impl Drop for BatchWriter {
    fn drop(&mut self) {
        loop {
            let batch = {
                let mut queue = lock(&self.0.queue);
                if queue.entries.is_empty() {
                    queue.writing = false;
                    return;
                }
                std::mem::take(&mut queue.entries)
            };
            self.0.write(batch);
        }
    }
}

impl Shared {
    /// Writes one batch with one write and one sync, acknowledges its callers, then tells
    /// observers.
    fn write(&self, batch: Vec<Entry>) {
        let mut events = Vec::with_capacity(batch.len());
        let mut acks = Vec::with_capacity(batch.len());
        let mut flushes = Vec::new();
        for entry in batch {
            match entry {
                Entry::Event {
                    at,
                    elapsed_ms,
                    event,
                    ack,
                } => {
                    events.push((at, elapsed_ms, event));
                    acks.push(ack);
                }
                Entry::Flush(ack) => flushes.push(ack),
            }
        }
        let written = if events.is_empty() {
            Ok(Vec::new())
        } else {
            let mut journal = lock(&self.journal);
            journal.append_batch(events.iter().cloned())
        };
        let records = match written {
            Ok(records) => {
                if !records.is_empty() {
                    self.syncs.fetch_add(1, Ordering::Release);
                }
                for (ack, record) in acks.into_iter().zip(&records) {
                    if let Some(ack) = ack.filter(|a| !a.is_closed()) {
                        let _ = ack.send(Ok(record.clone()));
                    }
                }
                records
            }
            Err(e) => {
                tracing::error!(error = %e, journal = %self.path.display(), events = events.len(), "cannot write the journal");
                let error = JournalError {
                    path: self.path.to_path_buf(),
                    reason: e.to_string(),
                };
                for ack in acks.into_iter().flatten() {
                    let _ = ack.send(Err(error.clone()));
                }
                events
                    .into_iter()
                    .map(|(at, elapsed_ms, event)| Record {
                        v: crate::journal::RECORD_VERSION,
                        seq: u64::MAX,
                        at,
                        elapsed_ms,
                        event,
                    })
                    .collect()
            }
        };
        for ack in flushes {
            let _ = ack.send(());
        }
        for record in records {
            let _ = self.tx.send(record);
        }
    }
}

/// An event on its way to the journal: resolves to its record once it is durable, or to
/// why it could not be written. The event is queued whether or not this is awaited.
#[must_use = "the event is journaled either way; await this to wait until it is durable"]
#[derive(Debug)]
pub struct Recording {
    rx: oneshot::Receiver<Result<Record, JournalError>>,
    path: Arc<Path>,
}

impl Future for Recording {
    type Output = Result<Record, JournalError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(|r| {
            r.unwrap_or_else(|_| {
                Err(JournalError {
                    path: self.path.to_path_buf(),
                    reason: "the journal writer stopped before writing the event".into(),
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::journal::{self, JOURNAL_FILE};

    fn ev(task: usize, n: usize) -> Event {
        Event::ServerSkipped {
            server: format!("be{task:02}.contoso.com"),
            reason: format!("{n}"),
        }
    }

    fn recorder(dir: &Path) -> Recorder {
        let w = JournalWriter::create(dir).unwrap();
        Recorder::new(w, RunClock::starting_at(Timestamp::UNIX_EPOCH))
    }

    /// Sequence numbers in file order, and the events.
    fn on_disk(dir: &Path) -> Vec<Record> {
        let j = journal::read(dir).unwrap();
        assert_eq!(j.torn_last_line, None);
        j.records
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_records_share_syncs_in_one_order() {
        const TASKS: usize = 16;
        const EACH: usize = 40;
        let dir = tempfile::tempdir().unwrap();
        let rec = recorder(dir.path());
        let mut observer = rec.subscribe();
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..TASKS {
            let rec = rec.clone();
            tasks.spawn(async move {
                let mut got = Vec::new();
                for n in 0..EACH {
                    let r = rec.record(ev(t, n)).await.expect("written");
                    // Acknowledged: it is in the file already.
                    let disk = journal::read(r_dir(&rec)).unwrap().records;
                    assert_eq!(disk.get(r.seq as usize), Some(&r));
                    got.push(r);
                }
                got
            });
        }
        let mut acked = Vec::new();
        while let Some(got) = tasks.join_next().await {
            acked.extend(got.unwrap());
        }
        let file = on_disk(dir.path());
        let n = TASKS * EACH;
        assert_eq!(file.len(), n);
        // Contiguous, times never going back, each task's events in its own order.
        for (i, r) in file.iter().enumerate() {
            assert_eq!(r.seq, i as u64);
        }
        assert!(file.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(file.windows(2).all(|w| w[0].elapsed_ms <= w[1].elapsed_ms));
        let mut per_task: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in &file {
            if let Event::ServerSkipped { server, reason } = &r.event {
                per_task
                    .entry(server.clone())
                    .or_default()
                    .push(reason.clone());
            }
        }
        let in_order: Vec<String> = (0..EACH).map(|n| n.to_string()).collect();
        assert!(per_task.values().all(|v| *v == in_order));
        // Every caller got the record the file holds.
        acked.sort_by_key(|r| r.seq);
        assert_eq!(acked, file);
        // Observers hear every record, in file order.
        let mut heard = Vec::new();
        while heard.len() < n {
            heard.push(observer.recv().await.unwrap());
        }
        assert_eq!(heard, file);
        let syncs = rec.syncs();
        assert!(syncs >= 1 && syncs <= n as u64);
        assert_eq!(syncs, lock(&rec.shared.journal).syncs());
    }

    fn r_dir(rec: &Recorder) -> &Path {
        rec.shared.path.parent().unwrap()
    }

    #[tokio::test]
    async fn events_queued_during_a_sync_share_the_next_one() {
        const N: usize = 200;
        let dir = tempfile::tempdir().unwrap();
        let rec = recorder(dir.path());
        // Hold the writer: the batch writer takes what is queued, then waits for it.
        let held = lock(&rec.shared.journal);
        let waiting: Vec<Recording> = (0..N).map(|n| rec.record(ev(0, n))).collect();
        drop(held);
        for (n, w) in waiting.into_iter().enumerate() {
            assert_eq!(w.await.unwrap().seq, n as u64);
        }
        // The batch taken before the writer was released, and everything queued since.
        assert!(rec.syncs() <= 2, "{} syncs for {N} records", rec.syncs());
        assert_eq!(on_disk(dir.path()).len(), N);
    }

    #[tokio::test]
    async fn observers_hear_only_what_the_journal_holds() {
        let dir = tempfile::tempdir().unwrap();
        let rec = recorder(dir.path());
        let mut observer = rec.subscribe();
        let path = dir.path().to_path_buf();
        let listener = tokio::spawn(async move {
            let mut n = 0;
            while let Ok(r) = observer.recv().await {
                let disk = journal::read(&path).unwrap().records;
                assert_eq!(disk.get(r.seq as usize), Some(&r), "heard before journaled");
                n += 1;
            }
            n
        });
        for n in 0..50 {
            rec.record_nowait(ev(1, n));
        }
        rec.flush().await;
        assert_eq!(on_disk(dir.path()).len(), 50, "flushed");
        // The last recorder gone, the writer finishes and lets go: observers see the end.
        drop(rec);
        assert_eq!(listener.await.unwrap(), 50);
    }

    #[tokio::test(start_paused = true)]
    async fn the_paused_clock_stands_still_while_the_journal_syncs() {
        // A journal on disk (slow syncs), and a timer an hour away, as a watchdog would be:
        // were the runtime to count the wait for the disk as idle, it would jump to it.
        let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
        let rec = recorder(dir.path());
        let watchdog = tokio::spawn(tokio::time::sleep(Duration::from_secs(3600)));
        let start = Instant::now();
        for n in 0..20 {
            let r = rec.record(ev(0, n)).await.unwrap();
            assert_eq!(r.elapsed_ms, 0);
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let r = rec.record(ev(0, 20)).await.unwrap();
        assert_eq!(r.elapsed_ms, 1500);
        assert_eq!(
            r.at,
            Timestamp::UNIX_EPOCH + SignedDuration::from_millis(1500)
        );
        assert!(!watchdog.is_finished());
    }

    #[tokio::test]
    async fn a_journal_that_cannot_be_written_is_reported_to_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/full", dir.path().join(JOURNAL_FILE)).unwrap();
        let w = JournalWriter::append_to(dir.path(), 0).unwrap();
        let rec = Recorder::new(w, RunClock::starting_at(Timestamp::UNIX_EPOCH));
        let mut observer = rec.subscribe();
        let err = rec.record(ev(0, 0)).await.unwrap_err();
        assert_eq!(err.path, dir.path().join(JOURNAL_FILE));
        assert!(
            err.to_string().starts_with("cannot write the journal"),
            "{err}"
        );
        // Observers still hear of it, without a place in the journal; the recorder goes on.
        let heard = observer.recv().await.unwrap();
        assert_eq!((heard.seq, heard.event), (u64::MAX, ev(0, 0)));
        assert!(rec.record(ev(0, 1)).await.is_err());
        assert_eq!(rec.syncs(), 0);
    }

    #[test]
    fn outside_a_runtime_the_caller_writes() {
        let dir = tempfile::tempdir().unwrap();
        let rec = recorder(dir.path());
        rec.record_nowait(ev(0, 0));
        drop(rec.record(ev(0, 1)));
        let file = on_disk(dir.path());
        assert_eq!(file.len(), 2);
        assert_eq!(file[1].event, ev(0, 1));
    }
}
