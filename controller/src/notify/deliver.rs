//! Sending one notification to one webhook: an HTTP POST (ureq, blocking, on tokio's
//! blocking pool), its answer read as success, a failure worth retrying, or a refusal, and
//! the retries with backoff.

use std::sync::Arc;
use std::time::Duration;

use poolpatch_plans::change::Webhook;
use tokio::time::Instant;
use ureq::Agent;
use ureq::tls::{RootCerts, TlsConfig};

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How much of an answer's body a failure quotes.
const QUOTED_BODY: usize = 200;

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong, in words.
    pub message: String,
    /// Whether another attempt may go better (a timeout, a 5xx; not a 404).
    pub retry: bool,
}

/// The wait after the `n`th failed attempt (0-based): 1s, 2s, 4s, … at most 30s.
pub fn backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.min(5)).min(MAX_BACKOFF)
}

/// The longest one notification to `hook` can take: every attempt's timeout and the waits
/// between them.
pub fn worst_case(hook: &Webhook) -> Duration {
    let attempts = hook.timeout.saturating_mul(hook.retries.saturating_add(1));
    (0..hook.retries)
        .map(backoff)
        .fold(attempts, Duration::saturating_add)
}

/// The HTTP client of one webhook: its timeout for a whole attempt, no redirects, answers of
/// every status returned (not errors), certificates checked against the system's roots. A
/// proxy from the environment (`HTTPS_PROXY`, `NO_PROXY`, …) is used, except for a webhook
/// on a loopback address.
pub fn agent(hook: &Webhook) -> Agent {
    let mut config = Agent::config_builder()
        .timeout_global(Some(hook.timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("poolpatch/", env!("CARGO_PKG_VERSION")))
        .tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::PlatformVerifier)
                .build(),
        );
    if is_loopback(hook.url.host()) {
        config = config.proxy(None);
    }
    config.build().new_agent()
}

fn is_loopback(host: &str) -> bool {
    let h = host.trim_end_matches('.');
    h.eq_ignore_ascii_case("localhost")
        || h.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// POSTs `body` (JSON) to `url` once, on the blocking pool: `Ok` for a 2xx answer.
pub async fn post(
    agent: &Agent,
    url: &str,
    event: &str,
    body: Arc<[u8]>,
    timeout: Duration,
) -> Result<(), Failure> {
    let (agent, url, event) = (agent.clone(), url.to_string(), event.to_string());
    tokio::task::spawn_blocking(move || post_blocking(&agent, &url, &event, &body, timeout))
        .await
        .unwrap_or_else(|e| {
            Err(Failure {
                message: format!("the delivery failed: {e}"),
                retry: false,
            })
        })
}

fn post_blocking(
    agent: &Agent,
    url: &str,
    event: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<(), Failure> {
    let answer = agent
        .post(url)
        .header("Content-Type", "application/json")
        .header("X-Poolpatch-Event", event)
        .send(body);
    let mut answer = match answer {
        Ok(a) => a,
        Err(e) => return Err(transport_failure(&e, timeout)),
    };
    let status = answer.status();
    if status.is_success() {
        return Ok(());
    }
    let said = answer
        .body_mut()
        .with_config()
        .limit(4096)
        .read_to_string()
        .unwrap_or_default();
    let said: String = said
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(QUOTED_BODY)
        .collect();
    let code = status.as_u16();
    let answered = format!(
        "answered {code}{}{}",
        status
            .canonical_reason()
            .map(|r| format!(" {r}"))
            .unwrap_or_default(),
        if said.is_empty() {
            String::new()
        } else {
            format!(": {said}")
        }
    );
    Err(if status.is_redirection() {
        Failure {
            message: format!(
                "{answered} (redirects are not followed: write the URL it redirects to)"
            ),
            retry: false,
        }
    } else if status.is_server_error() || code == 408 || code == 429 {
        Failure {
            message: answered,
            retry: true,
        }
    } else {
        Failure {
            message: format!("{answered} (not retried: the endpoint refused the notification)"),
            retry: false,
        }
    })
}

fn transport_failure(e: &ureq::Error, timeout: Duration) -> Failure {
    let (message, retry) = match e {
        ureq::Error::Timeout(_) => (
            format!("no answer within {}", humantime::format_duration(timeout)),
            true,
        ),
        ureq::Error::ConnectionFailed => ("cannot connect".to_string(), true),
        ureq::Error::HostNotFound => ("host not found".to_string(), true),
        ureq::Error::Io(io) => (io.to_string(), true),
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => (e.to_string(), false),
        other => (other.to_string(), true),
    };
    Failure { message, retry }
}

/// Delivers one notification with up to `attempts` attempts, waiting [`backoff`] between
/// them. `deadline` says, once the run has finished, by when the last attempt must start;
/// an attempt that could not start in time is not made. The error is the last attempt's,
/// with how many were made.
pub(super) async fn with_retries(
    agent: &Agent,
    hook: &Webhook,
    event: &str,
    body: &Arc<[u8]>,
    attempts: u32,
    deadline: &impl Fn() -> Option<Instant>,
) -> Result<(), String> {
    let past = |at: Instant| deadline().is_some_and(|d| at > d);
    if past(Instant::now()) {
        return Err(
            "not sent: the run had ended, and this webhook's earlier notifications had used up its time"
                .into(),
        );
    }
    let mut last = String::new();
    for n in 0..attempts {
        if n > 0 {
            let wait = backoff(n - 1);
            if past(Instant::now() + wait) {
                return Err(format!(
                    "{last} (gave up after {n} of {attempts} attempts: the run had ended)"
                ));
            }
            tokio::time::sleep(wait).await;
        }
        match post(agent, hook.url.as_str(), event, body.clone(), hook.timeout).await {
            Ok(()) => return Ok(()),
            Err(f) if !f.retry => return Err(f.message),
            Err(f) => last = f.message,
        }
    }
    Err(if attempts > 1 {
        format!("{last} ({attempts} attempts)")
    } else {
        last
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use poolpatch_plans::change::{NotifyEvent, WebhookUrl};

    fn hook(timeout: u64, retries: u32) -> Webhook {
        Webhook {
            url: WebhookUrl::parse("http://127.0.0.1:9/x").unwrap(),
            events: NotifyEvent::ALL.into_iter().collect(),
            timeout: Duration::from_secs(timeout),
            retries,
            pos: poolpatch_inventory::Pos::START,
            field: "notify.webhooks[0]".into(),
        }
    }

    #[test]
    fn backoff_doubles_up_to_half_a_minute() {
        let waits: Vec<u64> = (0..8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn the_worst_case_is_every_timeout_and_every_wait() {
        assert_eq!(
            worst_case(&hook(10, 3)),
            Duration::from_secs(40 + 1 + 2 + 4)
        );
        assert_eq!(worst_case(&hook(10, 0)), Duration::from_secs(10));
        assert_eq!(worst_case(&hook(120, 10)), Duration::from_secs(1320 + 181));
    }

    #[test]
    fn loopback_hosts_bypass_proxies() {
        for h in [
            "127.0.0.1",
            "127.8.9.10",
            "[::1]",
            "localhost",
            "LOCALHOST.",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["10.0.0.1", "hooks.example.com", "[2001:db8::1]"] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
