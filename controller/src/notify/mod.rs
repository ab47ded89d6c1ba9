//! Notifications: webhooks (`notify.webhooks` of the change file) told about a run's
//! important events, as JSON POSTs (docs/usage/notifications.md).
//!
//! The notifier is one more observer of the recorder's broadcast, beside the progress
//! display: it hears of a record only once the journal holds it. It turns the records a
//! webhook asked for into [`Notification`]s and hands them to that webhook's own task, which
//! delivers them in journal order, retrying with backoff (`deliver`). Nothing here ever
//! waits for the rollout or makes it wait: a webhook that fails, hangs or refuses costs the
//! rollout nothing, and its final failure is journaled (`notification-failed`).
//!
//! The run's end is the one place that waits: after `run-finished`, each webhook gets at most
//! one delivery's worth of time (every attempt's timeout and the backoff between them) to
//! finish what it has, then whatever is left is journaled as not sent. [`attach`] returns a
//! handle that ends when that is done, so that `carry_out` returns only after it.

mod deliver;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use jiff::Timestamp;
use poolpatch_plans::Plan;
use poolpatch_plans::change::{Notify, NotifyEvent, Webhook};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::exec::{Recorder, RunContext};
use crate::journal::{self, Event, Record};

pub use deliver::{Failure, agent, backoff, post, worst_case};

/// The `schema` of every notification's body; a new version gets a new name.
pub const SCHEMA: &str = "poolpatch.notification/v1";

/// The body of a notification (`Content-Type: application/json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// What happened: a name of [`NotifyEvent`] (`server-failed`).
    pub event: String,
    /// The run it happened in.
    pub run: RunRef,
    /// When it happened, by the run's clock (the journal record's `at`).
    pub at: Timestamp,
    /// The server it is about, when it is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The pool of that server (or of the breach).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// The canary stage it is about (a stage event, or the stage of the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// One line for people, as the plain progress shows it (without the time), after
    /// `rehearsal: ` in a rehearsal.
    pub text: String,
    /// The journal record itself (docs/usage/runbook.md: the journal), as written.
    pub record: Record,
}

/// Which run a notification comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRef {
    /// The change's name.
    pub change: String,
    /// The run directory, as the controller named it (`poolpatch status --run` takes it).
    pub dir: String,
    /// Whether the servers are simulated (`poolpatch demo`, tests): nothing real happened.
    pub rehearsal: bool,
}

/// What a webhook is told about a journal event, if it can be told about it at all.
pub fn about(event: &Event) -> Option<NotifyEvent> {
    Some(match event {
        Event::RunStarted { .. } | Event::RunResumed { .. } => NotifyEvent::RunStarted,
        Event::StagePassed { .. } => NotifyEvent::StagePassed,
        Event::ServerFailed { .. } | Event::ServerBudgetExhausted { .. } => {
            NotifyEvent::ServerFailed
        }
        Event::Watchdog { .. } => NotifyEvent::Watchdog,
        Event::Breach { .. } => NotifyEvent::Breach,
        Event::RunHalted { .. } | Event::StageFailed { .. } => NotifyEvent::RunHalted,
        Event::RunFinished { .. } => NotifyEvent::RunFinished,
        _ => return None,
    })
}

/// Where the servers of a plan belong: pool and stage by server FQDN.
#[derive(Debug, Clone, Default)]
pub struct Places {
    pool: BTreeMap<String, String>,
    stage: BTreeMap<String, String>,
}

impl Places {
    /// The pool and stage of every server of `plan`.
    pub fn of(plan: &Plan) -> Places {
        let mut places = Places::default();
        for s in &plan.servers {
            places.pool.insert(s.fqdn.clone(), s.pool.clone());
            if let Some(stage) = &s.stage {
                places.stage.insert(s.fqdn.clone(), stage.clone());
            }
        }
        places
    }
}

/// The notification of `record`, if it is one a webhook can be told about.
pub fn notification(record: &Record, run: &RunRef, places: &Places) -> Option<Notification> {
    let event = about(&record.event)?;
    let server = record.event.server().map(str::to_string);
    let pool = match &record.event {
        Event::Breach { pool, .. } => Some(pool.clone()),
        _ => server.as_ref().and_then(|s| places.pool.get(s).cloned()),
    };
    let stage = match &record.event {
        Event::StagePassed { stage } | Event::StageFailed { stage, .. } => Some(stage.clone()),
        _ => server.as_ref().and_then(|s| places.stage.get(s).cloned()),
    };
    let line = crate::progress::describe(record);
    // `describe` starts with the time (`22:41:07 `); the body has `at` for that.
    let what = line.split_once(' ').map_or(line.as_str(), |(_, rest)| rest);
    let text = if run.rehearsal {
        format!("rehearsal: {what}")
    } else {
        what.to_string()
    };
    Some(Notification {
        schema: SCHEMA.to_string(),
        event: event.name().to_string(),
        run: run.clone(),
        at: record.at,
        server,
        pool,
        stage,
        text,
        record: record.clone(),
    })
}

/// What a notification's final failure is journaled as being about: the event, and the
/// server or stage when there is one (`server-failed be02.ams.contoso.com`).
fn about_text(n: &Notification) -> String {
    match (&n.server, &n.record.event) {
        (Some(server), _) => format!("{} {server}", n.event),
        (None, Event::StagePassed { stage } | Event::StageFailed { stage, .. }) => {
            format!("{} {stage}", n.event)
        }
        _ => n.event.clone(),
    }
}

/// Starts the webhooks of `notify` for the run whose records `recorder` broadcasts, beside
/// `display` (the progress display's task). Call it before the run's first record.
///
/// Returns a handle that ends once the display has ended **and** the notifier is done: after
/// `run-finished`, every notification delivered or given up (bounded by the webhooks'
/// timeouts and retries) and every final failure journaled. Without webhooks it is `display`
/// itself. The notifier holds a clone of `recorder` until then, so the display, which ends
/// when the broadcast closes, ends after it.
pub fn attach(
    notify: &Notify,
    plan: &Plan,
    recorder: &Recorder,
    ctx: &RunContext,
    display: JoinHandle<()>,
) -> JoinHandle<()> {
    if notify.webhooks.is_empty() {
        return display;
    }
    let rx = recorder.subscribe();
    let run_dir = &ctx.run_dir;
    let run = RunRef {
        change: plan.change.name.clone(),
        dir: run_dir.display().to_string(),
        rehearsal: ctx.rehearsal,
    };
    let notifier = Notifier {
        webhooks: notify.webhooks.clone(),
        run,
        places: Places::of(plan),
        recorder: recorder.clone(),
        run_dir: run_dir.to_path_buf(),
    };
    tokio::spawn(async move {
        notifier.run(rx).await;
        let _ = display.await;
    })
}

/// One notification on its way to one webhook.
struct Job {
    /// The event's name (`X-Poolpatch-Event`).
    event: String,
    /// What a final failure says it was about.
    about: String,
    /// The JSON body.
    body: Arc<[u8]>,
}

struct Notifier {
    webhooks: Vec<Webhook>,
    run: RunRef,
    places: Places,
    recorder: Recorder,
    run_dir: std::path::PathBuf,
}

impl Notifier {
    async fn run(self, mut rx: broadcast::Receiver<Record>) {
        // When the run finished: from then on, each webhook has its worst case to finish.
        let finished: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
        let mut queues = Vec::with_capacity(self.webhooks.len());
        let mut tasks = Vec::with_capacity(self.webhooks.len());
        for hook in &self.webhooks {
            let (tx, jobs) = mpsc::unbounded_channel();
            queues.push(tx);
            tasks.push(tokio::spawn(webhook_task(
                hook.clone(),
                jobs,
                self.recorder.clone(),
                finished.clone(),
            )));
        }
        let mut last_seq: Option<u64> = None;
        'run: loop {
            let batch = match rx.recv().await {
                Ok(r) => vec![r],
                // Too slow for the broadcast (it never should be: it only queues): the
                // journal has every record, read what was missed from it.
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "notifier lagged; reading the journal");
                    missed_since(&self.run_dir, last_seq)
                }
                Err(RecvError::Closed) => break,
            };
            for record in batch {
                // Records the journal could not hold carry no sequence number (u64::MAX).
                if record.seq != u64::MAX {
                    if last_seq.is_some_and(|l| record.seq <= l) {
                        continue;
                    }
                    last_seq = Some(record.seq);
                }
                self.dispatch(&record, &queues);
                if matches!(record.event, Event::RunFinished { .. }) {
                    break 'run;
                }
            }
        }
        let _ = finished.set(Instant::now());
        drop(queues);
        for task in tasks {
            let _ = task.await;
        }
    }

    fn dispatch(&self, record: &Record, queues: &[mpsc::UnboundedSender<Job>]) {
        let Some(n) = notification(record, &self.run, &self.places) else {
            return;
        };
        let event = about(&record.event);
        let wanted: Vec<usize> = self
            .webhooks
            .iter()
            .enumerate()
            .filter(|(_, w)| event.is_some_and(|e| w.events.contains(&e)))
            .map(|(i, _)| i)
            .collect();
        if wanted.is_empty() {
            return;
        }
        let body: Arc<[u8]> = match serde_json::to_vec(&n) {
            Ok(b) => b.into(),
            Err(e) => {
                tracing::error!(error = %e, "cannot write a notification");
                return;
            }
        };
        let about = about_text(&n);
        for i in wanted {
            let _ = queues[i].send(Job {
                event: n.event.clone(),
                about: about.clone(),
                body: body.clone(),
            });
        }
    }
}

/// The records of the journal in `run_dir` after `last` (all of them without one).
fn missed_since(run_dir: &Path, last: Option<u64>) -> Vec<Record> {
    match journal::read(run_dir) {
        Ok(j) => j
            .records
            .into_iter()
            .filter(|r| last.is_none_or(|l| r.seq > l))
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "notifier: cannot read the journal");
            Vec::new()
        }
    }
}

/// Delivers one webhook's notifications in order, until its queue closes.
///
/// A notification gets `1 + retries` attempts. Once one has finally failed, the following
/// ones get a single attempt each until one gets through, so that an endpoint that is down
/// costs each notification at most one timeout. After the run finished, no attempt starts
/// later than the webhook's [`worst_case`] from then; what is left is journaled as not sent.
async fn webhook_task(
    hook: Webhook,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    recorder: Recorder,
    finished: Arc<OnceLock<Instant>>,
) {
    let agent = deliver::agent(&hook);
    let limit = worst_case(&hook);
    let deadline = || finished.get().map(|t| *t + limit);
    let mut failing = false;
    while let Some(job) = jobs.recv().await {
        let attempts = if failing { 1 } else { 1 + hook.retries };
        let result =
            deliver::with_retries(&agent, &hook, &job.event, &job.body, attempts, &deadline).await;
        failing = result.is_err();
        if let Err(error) = result {
            tracing::warn!(url = %hook.url, about = %job.about, %error, "notification failed");
            let _ = recorder
                .record(Event::NotificationFailed {
                    url: hook.url.shown(),
                    about: job.about,
                    error,
                })
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{JournalWriter, WatchdogAction};

    fn record(seq: u64, event: Event) -> Record {
        Record {
            v: journal::RECORD_VERSION,
            seq,
            at: "2026-11-28T21:41:07Z".parse().unwrap(),
            elapsed_ms: 1000 * seq,
            event,
        }
    }

    fn run() -> RunRef {
        RunRef {
            change: "Contoso CU".into(),
            dir: "/var/lib/poolpatch/runs/x".into(),
            rehearsal: false,
        }
    }

    #[test]
    fn only_the_events_a_webhook_can_ask_for_are_notifications() {
        let places = Places {
            pool: [(
                "be02.ams.contoso.com".into(),
                "pool01.ams.contoso.com".into(),
            )]
            .into(),
            stage: [("be02.ams.contoso.com".into(), "canary".into())].into(),
        };
        let failed = record(
            7,
            Event::ServerBudgetExhausted {
                server: "be02.ams.contoso.com".into(),
                remaining: vec![],
            },
        );
        let n = notification(&failed, &run(), &places).unwrap();
        assert_eq!(n.schema, SCHEMA);
        assert_eq!(n.event, "server-failed");
        assert_eq!(n.server.as_deref(), Some("be02.ams.contoso.com"));
        assert_eq!(n.pool.as_deref(), Some("pool01.ams.contoso.com"));
        assert_eq!(n.stage.as_deref(), Some("canary"));
        assert_eq!(
            n.text,
            "be02.ams.contoso.com: BUDGET EXHAUSTED, services restored; left to do: "
        );
        assert_eq!(about_text(&n), "server-failed be02.ams.contoso.com");

        let json = serde_json::to_value(&n).unwrap();
        assert_eq!(json["record"]["event"], "server-budget-exhausted");
        assert_eq!(json["record"]["seq"], 7);
        assert_eq!(json["at"], "2026-11-28T21:41:07Z");
        assert_eq!(json["run"]["dir"], "/var/lib/poolpatch/runs/x");
        let back: Notification = serde_json::from_value(json).unwrap();
        assert_eq!(back, n);

        let stage = record(
            3,
            Event::StageFailed {
                stage: "canary".into(),
                reason: "health".into(),
            },
        );
        let n = notification(&stage, &run(), &places).unwrap();
        assert_eq!((n.event.as_str(), n.server.clone()), ("run-halted", None));
        assert_eq!(n.stage.as_deref(), Some("canary"));
        let json = serde_json::to_value(&n).unwrap();
        assert!(json.get("server").is_none() && json.get("pool").is_none());
        assert_eq!(about_text(&n), "run-halted canary");

        let dog = Event::Watchdog {
            server: "be09.nyc.contoso.com".into(),
            action: WatchdogAction::Restore,
            remaining: vec![],
            down_ms: 0,
        };
        let rehearsal = RunRef {
            rehearsal: true,
            ..run()
        };
        let n = notification(&record(1, dog), &rehearsal, &Places::default()).unwrap();
        assert!(n.pool.is_none() && n.stage.is_none());
        assert!(
            n.text
                .starts_with("rehearsal: be09.nyc.contoso.com: WATCHDOG"),
            "{}",
            n.text
        );
        assert_eq!(serde_json::to_value(&n).unwrap()["run"]["rehearsal"], true);

        for quiet in [
            Event::PreflightPassed {
                server: "be02.ams.contoso.com".into(),
                checks: vec![],
            },
            Event::NotificationFailed {
                url: "u".into(),
                about: "a".into(),
                error: "e".into(),
            },
            Event::PoolHalted {
                pool: "p".into(),
                reason: "r".into(),
            },
        ] {
            assert_eq!(notification(&record(1, quiet), &run(), &places), None);
        }
    }

    #[test]
    fn every_notify_event_comes_from_some_journal_event() {
        let events = [
            Event::RunResumed {
                operator: "o".into(),
                torn_line_dropped: None,
            },
            Event::StagePassed { stage: "s".into() },
            Event::ServerFailed {
                server: "s".into(),
                step: None,
                reason: "r".into(),
                restored: true,
            },
            Event::Watchdog {
                server: "s".into(),
                action: WatchdogAction::Finish,
                remaining: vec![],
                down_ms: 0,
            },
            Event::Breach {
                server: "s".into(),
                pool: "p".into(),
                down_ms: 0,
            },
            Event::RunHalted { reason: "r".into() },
            Event::RunFinished {
                done: 0,
                failed: 0,
                skipped: 0,
                breaches: 0,
            },
        ];
        let got: Vec<NotifyEvent> = events.iter().filter_map(about).collect();
        assert_eq!(got, NotifyEvent::ALL);
    }

    #[test]
    fn what_the_broadcast_missed_is_read_from_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = JournalWriter::create(dir.path()).unwrap();
        for i in 0..4 {
            w.append(
                Timestamp::UNIX_EPOCH,
                i,
                Event::RunHalted {
                    reason: format!("{i}"),
                },
            )
            .unwrap();
        }
        let seqs = |v: Vec<Record>| v.iter().map(|r| r.seq).collect::<Vec<_>>();
        assert_eq!(seqs(missed_since(dir.path(), Some(1))), [2, 3]);
        assert_eq!(seqs(missed_since(dir.path(), None)), [0, 1, 2, 3]);
        assert_eq!(
            seqs(missed_since(&dir.path().join("none"), None)),
            Vec::<u64>::new()
        );
    }
}
