//! The `notify` part of the change file: webhooks told about a run's important events (run
//! started, stage passed, server failed, watchdog, breach, run halted, run finished).
//!
//! Only the file's side is here: which URLs, which events, how long to wait and how often to
//! try. The controller sends them (`poolpatch::notify`), and a webhook that fails never stops
//! or slows the rollout.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv6Addr;
use std::time::Duration;

use poolpatch_inventory::Pos;
use poolpatch_inventory::decode::{Ctx, Fields};
use poolpatch_inventory::diag::did_you_mean;
use poolpatch_inventory::yaml::Node;

use super::values::positive_duration;
use crate::units::format_duration;

/// How long one attempt to deliver a notification may take when the file sets no `timeout`.
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest `timeout` accepted: the run waits for its last notifications before it ends.
pub const MAX_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(120);

/// Further attempts after a failed one, when the file sets no `retries`.
pub const DEFAULT_WEBHOOK_RETRIES: u32 = 3;

/// The most `retries` accepted.
pub const MAX_WEBHOOK_RETRIES: u32 = 10;

/// The longest URL accepted.
const MAX_URL_CHARS: usize = 2000;

/// Webhooks, from `notify:`; none when the file has no `notify`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Notify {
    /// The webhooks, in the file's order.
    pub webhooks: Vec<Webhook>,
}

/// One webhook: where notifications are POSTed, about what, and how patiently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Where to POST.
    pub url: WebhookUrl,
    /// What it is told about (every event when the file lists none).
    pub events: BTreeSet<NotifyEvent>,
    /// How long one attempt may take (connecting, sending, the answer).
    pub timeout: Duration,
    /// Further attempts after a failed one.
    pub retries: u32,
    /// Where the webhook is written.
    pub pos: Pos,
    /// Its field path (`notify.webhooks[0]`).
    pub field: String,
}

/// What a webhook can be told about. Each is one or two kinds of journal event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NotifyEvent {
    /// The run began (`run-started`) or went on after its controller stopped (`run-resumed`).
    RunStarted,
    /// A canary stage passed (`stage-passed`).
    StagePassed,
    /// A server failed (`server-failed`), or was restored unfinished when its outage budget
    /// ran out (`server-budget-exhausted`).
    ServerFailed,
    /// The watchdog acted at a server's outage budget (`watchdog`).
    Watchdog,
    /// A back end was down for the whole threshold: users were in resiliency mode (`breach`).
    Breach,
    /// The rollout stopped before its scope was done (`run-halted`), or a stage failed
    /// (`stage-failed`).
    RunHalted,
    /// The run ended (`run-finished`).
    RunFinished,
}

impl NotifyEvent {
    /// Every event, in the order of a run.
    pub const ALL: [NotifyEvent; 7] = [
        NotifyEvent::RunStarted,
        NotifyEvent::StagePassed,
        NotifyEvent::ServerFailed,
        NotifyEvent::Watchdog,
        NotifyEvent::Breach,
        NotifyEvent::RunHalted,
        NotifyEvent::RunFinished,
    ];

    /// The spellings used in the change file (and in the notification's `event`).
    pub const NAMES: [&'static str; 7] = [
        "run-started",
        "stage-passed",
        "server-failed",
        "watchdog",
        "breach",
        "run-halted",
        "run-finished",
    ];

    /// The spelling used in the change file and the notification.
    pub fn name(self) -> &'static str {
        match self {
            NotifyEvent::RunStarted => "run-started",
            NotifyEvent::StagePassed => "stage-passed",
            NotifyEvent::ServerFailed => "server-failed",
            NotifyEvent::Watchdog => "watchdog",
            NotifyEvent::Breach => "breach",
            NotifyEvent::RunHalted => "run-halted",
            NotifyEvent::RunFinished => "run-finished",
        }
    }

    /// The event spelled `name`.
    pub fn from_name(name: &str) -> Option<NotifyEvent> {
        NotifyEvent::ALL.into_iter().find(|e| e.name() == name)
    }
}

impl fmt::Display for NotifyEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A webhook's URL, checked: `http` or `https`, a host, an optional port, a path and query
/// of URL characters; no credentials (`user:password@`) and no fragment (`#…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WebhookUrl {
    text: String,
    https: bool,
    host: String,
    port: Option<u16>,
}

impl WebhookUrl {
    /// Checks `s` (surrounding spaces are ignored); the error is a sentence.
    pub fn parse(s: &str) -> Result<WebhookUrl, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("the URL is empty".into());
        }
        if t.chars().count() > MAX_URL_CHARS {
            return Err(format!("the URL is longer than {MAX_URL_CHARS} characters"));
        }
        if let Some(c) = t.chars().find(|c| !c.is_ascii() || c.is_ascii_control()) {
            return Err(if c.is_ascii_control() {
                "the URL contains a line break or control character".into()
            } else {
                format!(
                    "`{c}` is not allowed in a URL (ASCII only: percent-encode it, and write an international host name in its `xn--` form)"
                )
            });
        }
        let Some((scheme, rest)) = t.split_once("://") else {
            return Err(format!(
                "`{t}` has no scheme: a webhook URL starts with `https://` or `http://`"
            ));
        };
        let https = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => {
                return Err(format!(
                    "`{scheme}` is not a webhook scheme: poolpatch POSTs over `https` or `http`"
                ));
            }
        };
        if rest.contains('#') {
            return Err("a fragment (`#…`) is never sent to the server".into());
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.contains('@') {
            return Err(
                "credentials in the URL (`user:password@`) are not sent, and would be written into the journal".into(),
            );
        }
        let (host, port) = host_and_port(authority)?;
        if let Some(c) = path.chars().find(|c| !url_char(*c)) {
            return Err(format!(
                "`{}` is not allowed in a URL's path or query: percent-encode it (`{}`)",
                c.escape_default(),
                percent_encoded(c)
            ));
        }
        let bytes = path.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'%'
                && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return Err("`%` in a URL starts a percent-encoded byte: two hexadecimal digits follow it (`%25` for `%` itself)".into());
            }
        }
        Ok(WebhookUrl {
            text: format!(
                "{}://{authority}{path}",
                if https { "https" } else { "http" }
            ),
            https,
            host,
            port,
        })
    }

    /// The URL, with its scheme in lower case.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether it is `https`.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// The host (an IPv6 address in brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, if written.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The URL as written into the journal and logs: without its query, which often carries
    /// the hook's token (`?…` instead).
    pub fn shown(&self) -> String {
        match self.text.split_once('?') {
            Some((before, _)) => format!("{before}?…"),
            None => self.text.clone(),
        }
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown())
    }
}

/// The host and port of an authority (`hooks.example.com:8443`, `[::1]:80`).
fn host_and_port(authority: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return Err("an IPv6 address in a URL is closed by `]`".into());
        };
        if addr.parse::<Ipv6Addr>().is_err() {
            return Err(format!("`{addr}` is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| {
                format!("`{after}` after the IPv6 address: write `:` and a port, or nothing")
            })?),
        };
        (format!("[{addr}]"), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err("the URL has no host".into());
        }
        host_name(host)?;
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None => None,
        Some(p) => Some(
            Some(p)
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("`{p}` is not a port: expected a number from 1 to 65535"))?,
        ),
    };
    Ok((host, port))
}

/// A DNS name or IPv4 address: labels of letters, digits, `-` and `_`, separated by dots.
fn host_name(host: &str) -> Result<(), String> {
    if let Some(c) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(format!(
            "`{}` is not allowed in a host name",
            c.escape_default()
        ));
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.len() > 253 {
        return Err("the host name is longer than 253 characters".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!(
                "`{host}` has an empty label (`..`, or a leading dot)"
            ));
        }
        if label.len() > 63 {
            return Err(format!(
                "`{label}` is longer than 63 characters, the most for a label of a host name"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "`{label}`: a label of a host name neither starts nor ends with `-`"
            ));
        }
    }
    Ok(())
}

/// Characters allowed as they are in a URL's path and query (RFC 3986's unreserved and
/// reserved characters, and `%` of a percent-encoded byte).
fn url_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?[]@!$&'()*+,;=%".contains(c)
}

fn percent_encoded(c: char) -> String {
    let mut buf = [0; 4];
    c.encode_utf8(&mut buf)
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect()
}

/// Reads `notify` of the top-level mapping `f`.
pub(super) fn decode(ctx: &mut Ctx, f: &mut Fields<'_>) -> Option<Notify> {
    let Some(node) = f.optional("notify") else {
        return Some(Notify::default());
    };
    let mut f = ctx.fields(node, "notify")?;
    let webhooks = match f.optional("webhooks") {
        Some(n) => webhooks(ctx, n),
        None => Some(Vec::new()),
    };
    f.finish(ctx);
    Some(Notify {
        webhooks: webhooks?,
    })
}

fn webhooks(ctx: &mut Ctx, node: &Node) -> Option<Vec<Webhook>> {
    let items = ctx.list(node, "notify.webhooks")?;
    let mut ok = true;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match webhook(ctx, item, &format!("notify.webhooks[{i}]")) {
            Some(w) => out.push(w),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn webhook(ctx: &mut Ctx, node: &Node, path: &str) -> Option<Webhook> {
    let mut f = ctx.fields(node, path)?;
    let url = f
        .required(
            ctx,
            "url",
            "where to POST the notifications, such as `https://hooks.example.com/poolpatch`",
        )
        .and_then(|n| ctx.text(n, &f.path_of("url")))
        .and_then(|t| match WebhookUrl::parse(&t.value) {
            Ok(u) => Some(u),
            Err(why) => {
                ctx.error_help(
                    t.pos,
                    &t.field,
                    why,
                    "write an http or https URL with a host, such as `https://hooks.example.com/poolpatch` or `http://127.0.0.1:8080/hook`",
                );
                None
            }
        });
    let events = match f.optional("events") {
        Some(n) => events(ctx, n, &f.path_of("events")),
        None => Some(NotifyEvent::ALL.into_iter().collect()),
    };
    let timeout = match f.optional("timeout") {
        Some(n) => positive_duration(ctx, n, &f.path_of("timeout")).and_then(|d| {
            if d > MAX_WEBHOOK_TIMEOUT {
                ctx.error_help(
                    n.pos,
                    &f.path_of("timeout"),
                    format!(
                        "{} is longer than {}, the longest a notification may take",
                        format_duration(d),
                        format_duration(MAX_WEBHOOK_TIMEOUT)
                    ),
                    "a run waits for its last notifications before it ends: write a few seconds, such as `10s`",
                );
                None
            } else {
                Some(d)
            }
        }),
        None => Some(DEFAULT_WEBHOOK_TIMEOUT),
    };
    let retries = match f.optional("retries") {
        Some(n) => ctx
            .integer(n, &f.path_of("retries"), 0, i128::from(MAX_WEBHOOK_RETRIES))
            .and_then(|r| u32::try_from(r).ok()),
        None => Some(DEFAULT_WEBHOOK_RETRIES),
    };
    f.finish(ctx);
    Some(Webhook {
        url: url?,
        events: events?,
        timeout: timeout?,
        retries: retries?,
        pos: node.pos,
        field: path.to_string(),
    })
}

fn events(ctx: &mut Ctx, node: &Node, path: &str) -> Option<BTreeSet<NotifyEvent>> {
    let items = ctx.list(node, path)?;
    if items.is_empty() {
        ctx.error_help(
            node.pos,
            path,
            "the list of events is empty: this webhook would never be called",
            format!(
                "list some of: {}; or remove `events:` to be told about all of them",
                NotifyEvent::NAMES.join(", ")
            ),
        );
        return None;
    }
    let mut ok = true;
    let mut out = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("{path}[{i}]");
        let Some(t) = ctx.text(item, &field) else {
            ok = false;
            continue;
        };
        match NotifyEvent::from_name(&t.value) {
            Some(e) => {
                if !out.insert(e) {
                    ctx.error(t.pos, &field, format!("`{}` is listed twice", t.value));
                    ok = false;
                }
            }
            None => {
                let mut help = format!("events: {}", NotifyEvent::NAMES.join(", "));
                if let Some(s) = did_you_mean(&t.value, NotifyEvent::NAMES) {
                    help = format!("did you mean `{s}`? ({help})");
                }
                ctx.error_help(
                    t.pos,
                    &field,
                    format!("`{}` is not an event poolpatch notifies about", t.value),
                    help,
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::change_from_str;

    const SMALL: &str = r#"version: 1
name: "SfB 2015 CU 2024-07"
update:
  remote_dir: 'C:\ProgramData\poolpatch\updates'
  installers:
    sfb2015:
      file: ./SkypeServerUpdateInstaller.exe
      sha256: "0000000000000000000000000000000000000000000000000000000000000000"
      version: "6.0.9319.690"
"#;

    /// The problems of `SMALL` followed by `extra`, one line each: `line:column: field:
    /// message (help)`.
    fn problems(extra: &str) -> Vec<String> {
        let d = change_from_str("change.yaml", &format!("{SMALL}{extra}"))
            .expect_err("the file has problems");
        d.items
            .iter()
            .map(|d| {
                format!(
                    "{}:{}: {}: {} ({})",
                    d.pos.line,
                    d.pos.column,
                    d.field,
                    d.message,
                    d.help.clone().unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn a_change_without_notify_has_no_webhooks() {
        let c = change_from_str("change.yaml", SMALL).unwrap();
        assert_eq!(c.notify, Notify::default());
    }

    #[test]
    fn webhooks_decode_with_their_defaults() {
        let c = change_from_str(
            "change.yaml",
            &format!(
                "{SMALL}notify:\n  webhooks:\n    - url: https://hooks.example.com/poolpatch\n    - url: HTTP://127.0.0.1:8080/hook?token=s3cret\n      events: [breach, server-failed]\n      timeout: 3s\n      retries: 0\n"
            ),
        )
        .unwrap_or_else(|d| panic!("{d:?}"));
        let [all, two] = &c.notify.webhooks[..] else {
            panic!("{:?}", c.notify)
        };
        assert_eq!(all.url.as_str(), "https://hooks.example.com/poolpatch");
        assert!(all.url.is_https());
        assert_eq!(all.events.len(), 7);
        assert_eq!(all.timeout, DEFAULT_WEBHOOK_TIMEOUT);
        assert_eq!(all.retries, DEFAULT_WEBHOOK_RETRIES);
        assert_eq!(all.field, "notify.webhooks[0]");
        assert_eq!((all.pos.line, all.pos.column), (12, 7));
        assert_eq!(two.url.as_str(), "http://127.0.0.1:8080/hook?token=s3cret");
        assert_eq!(two.url.shown(), "http://127.0.0.1:8080/hook?…");
        assert_eq!((two.url.host(), two.url.port()), ("127.0.0.1", Some(8080)));
        assert_eq!(
            two.events.iter().copied().collect::<Vec<_>>(),
            [NotifyEvent::ServerFailed, NotifyEvent::Breach]
        );
        assert_eq!(two.timeout, Duration::from_secs(3));
        assert_eq!(two.retries, 0);
    }

    #[test]
    fn every_problem_of_notify_is_reported_with_its_position() {
        let got = problems(
            "notify:\n  webhooks:\n    - url: ftp://hooks.example.com/x\n      events: [run-started, breech, run-started]\n      timeout: 5m\n      retries: 11\n    - url: https:///poolpatch\n      event: [breach]\n    - { events: [] }\n  webhook: []\n",
        );
        assert_eq!(
            got,
            [
                "12:12: notify.webhooks[0].url: `ftp` is not a webhook scheme: poolpatch POSTs over `https` or `http` (write an http or https URL with a host, such as `https://hooks.example.com/poolpatch` or `http://127.0.0.1:8080/hook`)",
                "13:29: notify.webhooks[0].events[1]: `breech` is not an event poolpatch notifies about (did you mean `breach`? (events: run-started, stage-passed, server-failed, watchdog, breach, run-halted, run-finished))",
                "13:37: notify.webhooks[0].events[2]: `run-started` is listed twice ()",
                "14:16: notify.webhooks[0].timeout: 5m is longer than 2m, the longest a notification may take (a run waits for its last notifications before it ends: write a few seconds, such as `10s`)",
                "15:16: notify.webhooks[0].retries: 11 is out of range: expected a whole number from 0 to 10 ()",
                "16:12: notify.webhooks[1].url: the URL has no host (write an http or https URL with a host, such as `https://hooks.example.com/poolpatch` or `http://127.0.0.1:8080/hook`)",
                "17:7: notify.webhooks[1].event: unknown field `event` (did you mean `events`?)",
                "18:7: notify.webhooks[2].url: missing field `url` (add `url:` with where to POST the notifications, such as `https://hooks.example.com/poolpatch`)",
                "18:17: notify.webhooks[2].events: the list of events is empty: this webhook would never be called (list some of: run-started, stage-passed, server-failed, watchdog, breach, run-halted, run-finished; or remove `events:` to be told about all of them)",
                "19:3: notify.webhook: unknown field `webhook` (did you mean `webhooks`?)",
            ]
        );
    }

    #[test]
    fn urls_need_a_scheme_and_a_host_and_url_characters() {
        let ok = [
            (
                "https://hooks.example.com/poolpatch",
                "https://hooks.example.com/poolpatch",
            ),
            ("  http://127.0.0.1:8080  ", "http://127.0.0.1:8080"),
            ("HTTPS://Hooks.Example.com", "https://Hooks.Example.com"),
            (
                "http://[::1]:9000/a?b=c&d=%2F",
                "http://[::1]:9000/a?b=c&d=%2F",
            ),
            (
                "https://lync-alerts.corp_net.local./x",
                "https://lync-alerts.corp_net.local./x",
            ),
        ];
        for (s, want) in ok {
            let u = WebhookUrl::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(u.as_str(), want);
        }
        assert_eq!(
            WebhookUrl::parse("http://[::1]:9000/").unwrap().host(),
            "[::1]"
        );
        let bad = [
            ("", "the URL is empty"),
            ("hooks.example.com/x", "has no scheme"),
            ("file:///etc/passwd", "`file` is not a webhook scheme"),
            ("https://", "the URL has no host"),
            ("https://:8080/x", "the URL has no host"),
            (
                "https://user:pw@hooks.example.com/",
                "credentials in the URL",
            ),
            ("https://hooks.example.com/a#b", "a fragment"),
            ("https://hooks.example.com:0/", "`0` is not a port"),
            ("https://hooks.example.com:99999/", "`99999` is not a port"),
            ("https://hooks.example.com:/", "`` is not a port"),
            ("https://hooks..example.com/", "has an empty label"),
            (
                "https://-hooks.example.com/",
                "neither starts nor ends with `-`",
            ),
            (
                "https://hooks example.com/",
                "` ` is not allowed in a host name",
            ),
            ("https://hooks.example.com:+80/", "`+80` is not a port"),
            (
                "https://hooks.example.com/a b",
                "` ` is not allowed in a URL",
            ),
            (
                "https://hooks.example.com/a\"b",
                "percent-encode it (`%22`)",
            ),
            ("https://hooks.example.com/a{b}", "`{` is not allowed"),
            (
                "https://hooks.example.com/100%",
                "`%` in a URL starts a percent-encoded byte",
            ),
            ("https://hooks.example.com/\u{e9}", "ASCII only"),
            ("https://hooks.example.com/\nx", "control character"),
            ("https://[::g]/", "`::g` is not an IPv6 address"),
            ("https://[::1/", "closed by `]`"),
            ("https://[::1]x/", "write `:` and a port"),
        ];
        for (s, want) in bad {
            let e = WebhookUrl::parse(s).expect_err(s);
            assert!(e.contains(want), "{s:?}: {e}");
        }
    }

    #[test]
    fn names_round_trip() {
        for (e, n) in NotifyEvent::ALL.into_iter().zip(NotifyEvent::NAMES) {
            assert_eq!(e.name(), n);
            assert_eq!(NotifyEvent::from_name(n), Some(e));
        }
    }
}
