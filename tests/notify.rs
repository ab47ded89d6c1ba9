//! Webhooks (`notify:` in the change file) end to end: the real executor carries out a plan
//! against simulated hosts under tokio's paused clock, and the notifications are POSTed over
//! real HTTP to small servers these tests start on 127.0.0.1, which record every request
//! and answer as told (204, 500, or closing the connection without an answer).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poolpatch::exec::ServerOutcome;
use poolpatch::journal::{self, Event, Record};
use poolpatch::notify::{self, Failure, Notification};
use poolpatch::sim::{Customize, SimDurations};
use poolpatch_inventory::Inventory;
use poolpatch_plans::Change;
use poolpatch_plans::change::NotifyEvent;
use poolpatch_tests::{DOCUMENTED, Simulated, Simulation, example, outage_actions, root};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// The mirror side of pool01.ams: the first server of its pool to be patched.
const BE: &str = "be02.ams.contoso.com";
const POOL: &str = "pool01.ams.contoso.com";

// ---------------------------------------------------------------------------------------
// A webhook endpoint: a tiny HTTP/1.1 server on 127.0.0.1.

/// How an endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// `204 No Content`.
    Ok,
    /// This status, with the body `boom`.
    Status(u16),
    /// Reads the request, then closes the connection without a word.
    Close,
    /// Reads the request and never answers (until the client gives up).
    Never,
}

/// One request as the endpoint read it.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    /// Header names in lower case.
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Received {
    fn notification(&self) -> Notification {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not a notification ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// An endpoint listening on 127.0.0.1, answering every request the same way.
struct Endpoint {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Endpoint {
    async fn start(answer: Answer) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move { serve_one(stream, answer, log).await });
            }
        });
        Endpoint {
            addr,
            received,
            server,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The `event` of every notification received, in order.
    fn events(&self) -> Vec<String> {
        self.received()
            .iter()
            .map(|r| r.notification().event)
            .collect()
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Reads one request (head, then `Content-Length` bytes of body), records it, answers.
async fn serve_one(mut stream: TcpStream, answer: Answer, log: Arc<Mutex<Vec<Received>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        assert!(buf.len() < 1 << 20, "request head too long");
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_string();
    let path = request_line.next().unwrap_or_default().to_string();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    log.lock().unwrap().push(Received {
        method,
        path,
        headers,
        body,
    });
    let reply = match answer {
        Answer::Ok => "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".to_string(),
        Answer::Status(code) => format!(
            "HTTP/1.1 {code} Whatever\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nConnection: close\r\n\r\nboom"
        ),
        Answer::Close => return,
        Answer::Never => {
            // Hold the connection open until the client hangs up.
            let _ = stream.read(&mut chunk).await;
            return;
        }
    };
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Runs.

/// The example change with `extra` appended (YAML at the top level), read as the file
/// `plans/examples/change.yaml` so that its installer paths resolve, and checked against the
/// example estate.
fn change_with(inventory: &Inventory, extra: &str) -> Change {
    let path = root().join("plans/examples/change.yaml");
    let text = std::fs::read_to_string(&path).expect("example change");
    let change =
        poolpatch_plans::change_from_str(&path.display().to_string(), &format!("{text}\n{extra}"))
            .unwrap_or_else(|d| panic!("{d:?}"));
    change
        .check_against(inventory)
        .unwrap_or_else(|d| panic!("{d:?}"));
    change
}

/// `scope:` of these pools, as YAML.
fn scope(pools: &[&str]) -> String {
    format!("scope: {{ pools: [{}] }}\n", pools.join(", "))
}

/// `notify:` with these webhooks: (url, events, retries).
fn webhooks(hooks: &[(String, &str, u32)]) -> String {
    let mut s = "notify:\n  webhooks:\n".to_string();
    for (url, events, retries) in hooks {
        s.push_str(&format!(
            "    - url: {url}\n      retries: {retries}\n      timeout: 10s\n"
        ));
        if !events.is_empty() {
            s.push_str(&format!("      events: [{events}]\n"));
        }
    }
    s
}

/// Carries out the plan of `change` against simulated hosts, under the paused clock.
async fn run(inventory: &Inventory, change: &Change, customize: Option<Customize>) -> Simulated {
    Simulation::new(inventory, change, SimDurations::default(), customize)
        .run(change)
        .await
}

/// The run's journal, read back whole (no torn line).
fn journal_of(r: &Simulated) -> Vec<Record> {
    let j = journal::read(&r.run_dir()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(j.torn_last_line, None);
    j.records
}

/// The journal's records a webhook asking for `events` is told about, in order.
fn notified(records: &[Record], events: &[NotifyEvent]) -> Vec<Record> {
    records
        .iter()
        .filter(|r| notify::about(&r.event).is_some_and(|e| events.contains(&e)))
        .cloned()
        .collect()
}

/// The journal ends with `run-finished`, or with notification failures after it (a failed
/// `run-finished` notification can only be journaled after it).
fn assert_ends_with_run_finished(records: &[Record]) {
    let i = records
        .iter()
        .rposition(|r| matches!(r.event, Event::RunFinished { .. }))
        .expect("run-finished journaled");
    for r in &records[i + 1..] {
        assert!(
            matches!(r.event, Event::NotificationFailed { .. }),
            "after run-finished: {r:?}"
        );
    }
}

/// Changes the host of `fqdn` only.
fn on(
    fqdn: &'static str,
    f: impl Fn(poolpatch::sim::SimHostConfig) -> poolpatch::sim::SimHostConfig + Send + Sync + 'static,
) -> Option<Customize> {
    Some(Arc::new(move |server, config| {
        if server.fqdn.as_str() == fqdn {
            f(config)
        } else {
            config
        }
    }))
}

// ---------------------------------------------------------------------------------------
// Tests.

#[tokio::test(start_paused = true)]
async fn every_important_event_is_posted_in_journal_order_with_its_record() {
    let (inventory, _) = example();
    let all = Endpoint::start(Answer::Ok).await;
    let breaches = Endpoint::start(Answer::Ok).await;
    let change = change_with(
        &inventory,
        &format!(
            "{}{}",
            scope(&[POOL]),
            webhooks(&[
                (all.url("/hooks/poolpatch"), "", 3),
                (breaches.url("/breach?token=s3cret"), "breach", 3),
            ])
        ),
    );
    // A 31-minute installer: the watchdog acts at the budget (25m), the threshold (30m)
    // passes while it still runs (a breach), the server is restored unfinished and its pool
    // halts: the principal never starts.
    let slow = on(BE, |mut c| {
        c.durations.stop_services = Duration::from_secs(30);
        c.durations.start_services = Duration::from_secs(60);
        c.durations.install = Duration::from_secs(31 * 60);
        c
    });
    let r = run(&inventory, &change, slow).await;
    let records = journal_of(&r);
    assert_ends_with_run_finished(&records);
    assert!(
        !records
            .iter()
            .any(|r| matches!(r.event, Event::NotificationFailed { .. })),
        "every notification was delivered"
    );

    assert_eq!(
        all.events(),
        [
            "run-started",
            "watchdog",
            "breach",
            "server-failed",
            "run-halted",
            "run-finished"
        ]
    );
    let expected = notified(&records, &NotifyEvent::ALL);
    let received = all.received();
    assert_eq!(received.len(), expected.len());
    let run_dir = r.run_dir().display().to_string();
    for (got, record) in received.iter().zip(&expected) {
        assert_eq!(got.method, "POST");
        assert_eq!(got.path, "/hooks/poolpatch");
        assert_eq!(got.headers["content-type"], "application/json");
        assert!(
            got.headers["user-agent"].starts_with("poolpatch/"),
            "{:?}",
            got.headers
        );
        let n = got.notification();
        assert_eq!(got.headers["x-poolpatch-event"], n.event);
        assert_eq!(n.schema, "poolpatch.notification/v1");
        assert_eq!(n.run.change, r.plan.change.name);
        assert_eq!(n.run.dir, run_dir);
        assert!(n.run.rehearsal, "simulated hosts: a rehearsal");
        assert_eq!(n.at, record.at);
        assert_eq!(&n.record, record, "the journal record, as journaled");
        assert!(!n.text.is_empty() && !n.text.contains('\n'), "{}", n.text);
        assert_eq!(
            n.event,
            notify::about(&record.event).unwrap().name(),
            "{record:?}"
        );
    }
    // The body as JSON: fields about a server where there is one, absent otherwise.
    let by_event = |e: &str| {
        received
            .iter()
            .find(|r| r.notification().event == e)
            .unwrap_or_else(|| panic!("no {e}"))
            .json()
    };
    let dog = by_event("watchdog");
    assert_eq!(dog["server"], BE);
    assert_eq!(dog["pool"], POOL);
    assert!(dog.get("stage").is_none(), "no stages: {dog}");
    assert_eq!(dog["record"]["event"], "watchdog");
    assert_eq!(dog["record"]["down_ms"], 25 * 60 * 1000);
    assert!(
        dog["text"]
            .as_str()
            .unwrap()
            .starts_with(&format!("rehearsal: {BE}: WATCHDOG")),
        "{dog}"
    );
    let breach = by_event("breach");
    assert_eq!(
        (breach["server"].as_str(), breach["pool"].as_str()),
        (Some(BE), Some(POOL))
    );
    let failed = by_event("server-failed");
    assert_eq!(failed["record"]["event"], "server-budget-exhausted");
    let finished = by_event("run-finished");
    assert!(finished.get("server").is_none() && finished.get("pool").is_none());
    assert_eq!(finished["record"]["breaches"], 1);
    assert_eq!(by_event("run-started")["record"]["event"], "run-started");

    // The second webhook asked for breaches only, and got its query string.
    let got = breaches.received();
    assert_eq!(breaches.events(), ["breach"]);
    assert_eq!(got[0].path, "/breach?token=s3cret");
    assert_eq!(got[0].notification(), all.received()[2].notification());
}

#[tokio::test(start_paused = true)]
async fn failing_webhooks_are_retried_then_journaled_and_the_rollout_is_untouched() {
    let (inventory, _) = example();
    let pools = [POOL, "se01.ams.contoso.com"];
    // The same rollout without webhooks, for comparison.
    let quiet = run(&inventory, &change_with(&inventory, &scope(&pools)), None).await;

    let good = Endpoint::start(Answer::Ok).await;
    let errors = Endpoint::start(Answer::Status(500)).await;
    let hangs_up = Endpoint::start(Answer::Close).await;
    let refuses = Endpoint::start(Answer::Status(404)).await;
    let change = change_with(
        &inventory,
        &format!(
            "{}{}",
            scope(&pools),
            webhooks(&[
                (errors.url("/errors"), "", 2),
                (hangs_up.url("/hangs-up"), "run-started", 1),
                (refuses.url("/refuses"), "run-started", 3),
                (good.url("/good"), "", 3),
            ])
        ),
    );
    let r = run(&inventory, &change, None).await;

    // Every server was patched, as documented, whatever the webhooks did.
    for (fqdn, outcome) in &r.report.summary.outcomes {
        assert!(
            matches!(outcome, ServerOutcome::Done { overrun: false, .. }),
            "{fqdn}: {outcome:?}"
        );
        assert_eq!(outage_actions(&r.host(fqdn.as_str())), DOCUMENTED, "{fqdn}");
    }
    assert_eq!(r.report.summary.outcomes.len(), 3);
    // And at the same moments of the run as without webhooks: a webhook never makes the
    // rollout wait.
    // (Events of two pools at the same moment may be journaled in either order.)
    let times = |records: &[Record]| -> BTreeMap<String, u64> {
        records
            .iter()
            .filter_map(|r| match &r.event {
                Event::OutageStarted { server, .. } => {
                    Some((format!("{server} down"), r.elapsed_ms))
                }
                Event::ServerDone { server, outage_ms } => {
                    Some((format!("{server} done after {outage_ms}"), r.elapsed_ms))
                }
                Event::RunFinished { .. } => Some(("finished".into(), r.elapsed_ms)),
                _ => None,
            })
            .collect()
    };
    let records = journal_of(&r);
    assert_eq!(times(&records), times(&journal_of(&quiet)));

    // 500s: three attempts for run-started; after that final failure, run-finished gets one.
    assert_eq!(
        errors.events(),
        ["run-started", "run-started", "run-started", "run-finished"]
    );
    // The connection closed without an answer: two attempts.
    assert_eq!(hangs_up.events(), ["run-started", "run-started"]);
    // A 404 is not retried.
    assert_eq!(refuses.events(), ["run-started"]);
    assert_eq!(good.events(), ["run-started", "run-finished"]);
    // Retries carry the same notification.
    let bodies: Vec<Vec<u8>> = errors.received().iter().map(|r| r.body.clone()).collect();
    assert!(bodies[0] == bodies[1] && bodies[1] == bodies[2]);

    // Each final failure is journaled once, with what it was about and why.
    assert_ends_with_run_finished(&records);
    let failures: Vec<(String, String, String)> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::NotificationFailed { url, about, error } => {
                Some((url.clone(), about.clone(), error.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(failures.len(), 4, "{failures:#?}");
    let of = |url: String, about: &str| {
        failures
            .iter()
            .find(|(u, a, _)| *u == url && a == about)
            .unwrap_or_else(|| panic!("no failure of {about} to {url}: {failures:#?}"))
            .2
            .clone()
    };
    assert_eq!(
        of(errors.url("/errors"), "run-started"),
        "answered 500 Internal Server Error: boom (3 attempts)"
    );
    assert_eq!(
        of(errors.url("/errors"), "run-finished"),
        "answered 500 Internal Server Error: boom"
    );
    let closed = of(hangs_up.url("/hangs-up"), "run-started");
    assert!(closed.ends_with("(2 attempts)"), "{closed}");
    assert_eq!(
        of(refuses.url("/refuses"), "run-started"),
        "answered 404 Not Found: boom (not retried: the endpoint refused the notification)"
    );
    // The run-finished failure could only be journaled after run-finished itself.
    let finished = records
        .iter()
        .position(|r| matches!(r.event, Event::RunFinished { .. }))
        .unwrap();
    assert!(matches!(
        &records[finished + 1].event,
        Event::NotificationFailed { about, .. } if about == "run-finished"
    ));
}

#[tokio::test(start_paused = true)]
async fn a_stage_that_passes_is_posted_with_its_name() {
    let (inventory, _) = example();
    let hook = Endpoint::start(Answer::Ok).await;
    let change = change_with(
        &inventory,
        &format!(
            "{}stages:\n  - {{ name: canary, scope: {{ pools: [se01.ams.contoso.com] }}, bake: 30m }}\n  - {{ name: rest }}\n{}",
            scope(&[POOL, "se01.ams.contoso.com"]),
            webhooks(&[(
                hook.url("/stages"),
                "stage-passed, server-failed, run-finished",
                3
            )])
        ),
    );
    let r = run(&inventory, &change, None).await;
    for (fqdn, outcome) in &r.report.summary.outcomes {
        assert!(
            matches!(outcome, ServerOutcome::Done { .. }),
            "{fqdn}: {outcome:?}"
        );
    }
    let records = journal_of(&r);
    let expected = notified(
        &records,
        &[
            NotifyEvent::StagePassed,
            NotifyEvent::ServerFailed,
            NotifyEvent::RunFinished,
        ],
    );
    let got: Vec<Notification> = hook.received().iter().map(Received::notification).collect();
    assert_eq!(
        got.iter().map(|n| n.record.clone()).collect::<Vec<_>>(),
        expected
    );
    let canary = got
        .iter()
        .find(|n| n.event == "stage-passed")
        .expect("the canary stage passed");
    assert_eq!(canary.stage.as_deref(), Some("canary"));
    assert_eq!(canary.server, None);
    assert_eq!(canary.text, "rehearsal: stage canary PASSED");
    assert_eq!(got.last().unwrap().event, "run-finished");
}

#[tokio::test]
async fn one_post_is_a_success_a_failure_worth_retrying_or_a_refusal() {
    let timeout = Duration::from_secs(1);
    let post = |agent_url: String| async move {
        let hook = poolpatch_plans::change::Webhook {
            url: poolpatch_plans::change::WebhookUrl::parse(&agent_url).unwrap(),
            events: NotifyEvent::ALL.into_iter().collect(),
            timeout,
            retries: 0,
            pos: poolpatch_inventory::Pos::START,
            field: "notify.webhooks[0]".into(),
        };
        notify::post(
            &notify::agent(&hook),
            hook.url.as_str(),
            "run-started",
            Arc::from(&b"{}"[..]),
            timeout,
        )
        .await
    };
    let ok = Endpoint::start(Answer::Ok).await;
    assert_eq!(post(ok.url("/")).await, Ok(()));
    assert_eq!(ok.received()[0].body, b"{}");

    let unavailable = Endpoint::start(Answer::Status(503)).await;
    assert_eq!(
        post(unavailable.url("/")).await,
        Err(Failure {
            message: "answered 503 Service Unavailable: boom".into(),
            retry: true
        })
    );
    let moved = Endpoint::start(Answer::Status(301)).await;
    let Err(f) = post(moved.url("/")).await else {
        panic!("a redirect is not a delivery")
    };
    assert!(
        !f.retry && f.message.contains("redirects are not followed"),
        "{f:?}"
    );
    let never = Endpoint::start(Answer::Never).await;
    assert_eq!(
        post(never.url("/")).await,
        Err(Failure {
            message: "no answer within 1s".into(),
            retry: true
        })
    );
    // Nobody listens on a port that was just closed.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let Err(f) = post(format!("http://{closed}/")).await else {
        panic!("nobody listens")
    };
    assert!(f.retry, "{f:?}");
}

/// The blocks of `doc` in ````lang` fences that follow the line holding `after`.
fn block(doc: &str, after: &str, lang: &str) -> String {
    let start = doc
        .find(after)
        .unwrap_or_else(|| panic!("no `{after}` in the doc"));
    let rest = &doc[start..];
    let open = format!("```{lang}\n");
    let from = rest.find(&open).expect("a block") + open.len();
    let to = rest[from..].find("```").expect("a closed block") + from;
    rest[from..to].to_string()
}

#[test]
fn the_examples_of_notifications_md_hold() {
    let doc = std::fs::read_to_string(root().join("docs/usage/notifications.md")).unwrap();
    let change_md = std::fs::read_to_string(root().join("docs/usage/change.md")).unwrap();
    let small = block(&change_md, "## A small example", "yaml");
    let notify = block(&doc, "## In the change file", "yaml");
    let change = poolpatch_plans::change_from_str("change.yaml", &format!("{small}{notify}"))
        .unwrap_or_else(|d| panic!("{d:?}"));
    assert_eq!(change.notify.webhooks.len(), 2);
    // So is the one in change.md.
    let in_change_md = block(&change_md, "### `notify`", "yaml");
    let change = poolpatch_plans::change_from_str("change.yaml", &format!("{small}{in_change_md}"))
        .unwrap_or_else(|d| panic!("{d:?}"));
    assert_eq!(change.notify.webhooks[0].events.len(), 4);
    // The body shown is one poolpatch writes and reads.
    let body = block(&doc, "## The body", "json");
    let n: Notification = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    assert_eq!(n.schema, notify::SCHEMA);
    assert_eq!(
        serde_json::to_value(&n).unwrap(),
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        "every field of the example is one of the schema's"
    );
    // Every event is in the table.
    for name in NotifyEvent::NAMES {
        assert!(
            doc.contains(&format!("| `{name}` |")),
            "{name} is not documented"
        );
    }
}
