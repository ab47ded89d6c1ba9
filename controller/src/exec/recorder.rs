//! Where the executor's events go: the durable journal first, then live observers.
//!
//! Every event is appended (and synced) before observers hear of it, so nothing is shown
//! that the journal does not hold. Time comes from the injected [`RunClock`], never from
//! the system deep inside the logic, so tests under tokio's paused clock get exact times.

use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use tokio::sync::broadcast;
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

/// Shared by all tasks of a run: appends events and tells observers.
#[derive(Debug, Clone)]
pub struct Recorder {
    inner: Arc<Mutex<JournalWriter>>,
    clock: RunClock,
    tx: broadcast::Sender<Record>,
}

impl Recorder {
    /// Records into `journal`, timing events by `clock`.
    pub fn new(journal: JournalWriter, clock: RunClock) -> Recorder {
        let (tx, _) = broadcast::channel(4096);
        Recorder {
            inner: Arc::new(Mutex::new(journal)),
            clock,
            tx,
        }
    }

    /// The run's clock.
    pub fn clock(&self) -> RunClock {
        self.clock
    }

    /// Live records as they are appended (a slow observer may miss some: it gets `Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<Record> {
        self.tx.subscribe()
    }

    /// Appends `event` durably, then tells observers. A journal that cannot be written is
    /// reported loudly; the run goes on (stopping mid-outage would be worse), and the
    /// event still reaches observers and the log.
    pub fn record(&self, event: Event) {
        // A poisoned lock means another task panicked mid-append; the writer itself is
        // still usable (each append is one write), so take it anyway.
        let mut writer = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // Read the clock under the lock, so that times never go back along the journal.
        let elapsed_ms = u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        let at = self.clock.now();
        let record = match writer.append(at, elapsed_ms, event.clone()) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, journal = %writer.path().display(), "cannot write the journal");
                Record {
                    v: crate::journal::RECORD_VERSION,
                    seq: u64::MAX,
                    at,
                    elapsed_ms,
                    event,
                }
            }
        };
        drop(writer);
        let _ = self.tx.send(record);
    }
}
