//! One server's procedure: preflight, then the outage under the watchdog, then recovery if
//! anything goes wrong.
//!
//! The outage starts when `Stop-CsWindowsService` is sent and ends when every Lync service
//! is verified running. Two alarms run beside every step of the outage:
//! - the **watchdog** at the budget: with `restore`, the procedure stops advancing; a step
//!   that must not be interrupted (installer, `Install-CsDatabase`) is waited for, any other
//!   is abandoned, then services are restored at once. With `finish`, the procedure
//!   completes and the overrun is recorded;
//! - the **breach** alarm at the threshold: logged and journaled loudly, once.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use poolpatch_inventory::{Product, Server};
use poolpatch_plans::procedure::{EXIT_REBOOT_REQUIRED, Procedure, Step, StepKind};
use tokio::time::{Instant, sleep, sleep_until};

mod resume;

pub use resume::{HostFacts, InFlight};

use super::recorder::Recorder;
use crate::journal::{Event, ExitRecord, WatchdogAction, tail};
use crate::remote::{Connector, ExecOutput, ExitOutcome, RemoteHost, command_line};

/// The installer to stage on a server before its outage.
#[derive(Debug, Clone)]
pub struct InstallerSource {
    /// The local file to upload when the server does not have it.
    pub local: PathBuf,
    /// Where it must be on the server (as the scripts name it).
    pub remote: String,
    /// Its SHA-256, lower-case hex.
    pub sha256: String,
    /// Free space the server must have, in bytes.
    pub min_free_bytes: u64,
}

/// Everything needed to patch one server, taken from the plan.
#[derive(Debug, Clone)]
pub struct ServerJob {
    /// The server and how to reach it.
    pub server: Server,
    /// Its steps and scripts, exactly as the plan shows them.
    pub procedure: Procedure,
    /// The installer to stage.
    pub installer: InstallerSource,
    /// Per-step timeouts.
    pub step_timeouts: BTreeMap<StepKind, Duration>,
    /// Timeout for steps without their own.
    pub default_step_timeout: Duration,
    /// Its pool's product (for the probe when a run is resumed).
    pub product: Product,
    /// The version it reports once updated.
    pub target_version: String,
}

impl ServerJob {
    fn timeout(&self, kind: StepKind) -> Duration {
        self.step_timeouts
            .get(&kind)
            .copied()
            .unwrap_or(self.default_step_timeout)
    }

    fn name(&self) -> String {
        self.server.fqdn.to_string()
    }
}

/// The outage rules of the change.
#[derive(Debug, Clone, Copy)]
pub struct OutagePolicy {
    /// The per-server outage budget: where the watchdog sits.
    pub budget: Duration,
    /// The resiliency-mode threshold: a server still down then is a breach.
    pub threshold: Duration,
    /// What the watchdog does at the budget.
    pub on_budget: WatchdogAction,
    /// How long to keep trying to reach a server that dropped or rebooted.
    pub reconnect_within: Duration,
    /// Pause between reconnection attempts.
    pub reconnect_every: Duration,
    /// What servers in flight do when the run is stopped: finish, or restore at once.
    pub on_stop: WatchdogAction,
}

/// How a server's procedure ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOutcome {
    /// Patched; services verified running. `overrun` when the watchdog let it finish.
    Done {
        /// How long it was down.
        outage: Duration,
        /// Whether the outage went past the budget (`finish` policy).
        overrun: bool,
    },
    /// The watchdog restored services before the procedure was complete.
    BudgetExhausted {
        /// Steps not done.
        remaining: Vec<StepKind>,
        /// Whether services were verified running again.
        restored: bool,
    },
    /// A step failed (or its outcome is unknown).
    Failed {
        /// The step.
        step: Option<StepKind>,
        /// Why.
        reason: String,
        /// Whether services were verified running again.
        restored: bool,
    },
    /// Preflight failed: the outage never started.
    Skipped {
        /// Why.
        reason: String,
    },
}

impl ServerOutcome {
    /// Whether the server's services are known to be running (it is not left down).
    pub fn services_up(&self) -> bool {
        match self {
            ServerOutcome::Done { .. } | ServerOutcome::Skipped { .. } => true,
            ServerOutcome::BudgetExhausted { restored, .. }
            | ServerOutcome::Failed { restored, .. } => *restored,
        }
    }
}

fn exit_record(e: &ExitOutcome) -> ExitRecord {
    match e {
        ExitOutcome::Code(code) => ExitRecord::Code { code: *code },
        ExitOutcome::Signal(signal) => ExitRecord::Signal {
            signal: signal.clone(),
        },
        ExitOutcome::Unknown(reason) => ExitRecord::Unknown {
            reason: reason.clone(),
        },
    }
}

fn is_ok(step: &Step, out: &ExecOutput) -> bool {
    matches!(out.exit, ExitOutcome::Code(c) if step.ok_exit_codes.contains(&c))
}

fn describe_failure(step: &Step, out: &ExecOutput) -> String {
    let what = match &out.exit {
        ExitOutcome::Code(c) => format!("exited with {c}"),
        ExitOutcome::Signal(s) => format!("was killed by signal {s}"),
        ExitOutcome::Unknown(r) => format!("outcome unknown ({r})"),
    };
    let mut s = format!("step `{}` ({}) {what}", step.kind.name(), step.command);
    let err = tail(&out.stderr, 5, 600);
    let outp = tail(&out.stdout, 5, 600);
    if !err.is_empty() {
        s.push_str(&format!("; stderr: {err}"));
    } else if !outp.is_empty() {
        s.push_str(&format!("; stdout: {outp}"));
    }
    s
}

/// Runs one server's procedure; owns its connection.
pub struct ServerRun<'a> {
    job: &'a ServerJob,
    policy: OutagePolicy,
    recorder: &'a Recorder,
    connector: &'a dyn Connector,
    host: Option<Arc<dyn RemoteHost>>,
    /// Set when a stopped run restores servers in flight (`on_stop: restore`): turning true
    /// stops the procedure like the watchdog's `restore`.
    stop: Option<tokio::sync::watch::Receiver<bool>>,
}

/// The alarms of one outage.
struct OutageClock {
    start: Instant,
    budget_at: Instant,
    threshold_at: Instant,
    watchdog_fired: bool,
    breach_reported: bool,
    stop_seen: bool,
}

impl OutageClock {
    /// An outage that started at `start`.
    fn starting(start: Instant, policy: &OutagePolicy) -> OutageClock {
        OutageClock {
            start,
            budget_at: start + policy.budget,
            threshold_at: start + policy.threshold,
            watchdog_fired: false,
            breach_reported: false,
            stop_seen: false,
        }
    }
}

/// What happened while waiting for a step under the alarms.
enum Waited {
    Finished(ExecOutput),
    /// The watchdog fired during an interruptible step with `restore`: it was abandoned.
    Abandoned,
    /// The run was stopped with `on_stop: restore` during an interruptible step.
    Stopped,
}

/// Why a stopped run's server was restored before its procedure completed.
pub(crate) const STOPPED: &str =
    "the run was stopped (on_stop: restore): services restored before the procedure completed";

impl<'a> ServerRun<'a> {
    /// Prepares a run of `job`; `host` is an open connection if the caller has one.
    pub fn new(
        job: &'a ServerJob,
        policy: OutagePolicy,
        recorder: &'a Recorder,
        connector: &'a dyn Connector,
        host: Option<Arc<dyn RemoteHost>>,
    ) -> Self {
        ServerRun {
            job,
            policy,
            recorder,
            connector,
            host,
            stop: None,
        }
    }

    /// Restores services when `stop` turns true (a stopped run with `on_stop: restore`),
    /// instead of finishing the procedure.
    #[must_use]
    pub fn restoring_on(mut self, stop: tokio::sync::watch::Receiver<bool>) -> Self {
        self.stop = Some(stop);
        self
    }

    fn stop_requested(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| *s.borrow())
    }

    /// The open connection, if any (for reuse between preflight and outage).
    pub fn into_host(self) -> Option<Arc<dyn RemoteHost>> {
        self.host
    }

    async fn connection(&mut self) -> Result<Arc<dyn RemoteHost>, String> {
        if let Some(h) = &self.host
            && !h.is_closed()
        {
            return Ok(h.clone());
        }
        self.host = None;
        let h = self
            .connector
            .connect(&self.job.server)
            .await
            .map_err(|e| e.to_string())?;
        self.host = Some(h.clone());
        Ok(h)
    }

    /// Keeps trying to connect until `policy.reconnect_within` has passed.
    async fn reconnect(&mut self) -> Result<Arc<dyn RemoteHost>, String> {
        let give_up = Instant::now() + self.policy.reconnect_within;
        loop {
            match self.connection().await {
                Ok(h) => return Ok(h),
                Err(e) if Instant::now() >= give_up => {
                    return Err(format!(
                        "could not reach the server again within {}: {e}",
                        humantime::format_duration(self.policy.reconnect_within)
                    ));
                }
                Err(_) => sleep(self.policy.reconnect_every).await,
            }
        }
    }

    fn alarms(&self) -> Alarms<'a> {
        Alarms {
            recorder: self.recorder,
            job: self.job,
            policy: self.policy,
            stop: self.stop.clone(),
        }
    }

    /// Sends `step` and waits for it (preflight: no alarms).
    async fn send(&mut self, step: &Step) -> ExecOutput {
        let host = self.connection().await;
        let alarms = self.alarms();
        alarms.started(step, false).await;
        let out = alarms.run(host, step).await;
        alarms.finished(step, false, Some(&out));
        out
    }

    /// Checks the server before its outage may start: CsAdministrator membership, free
    /// disk, and the staged installer's SHA-256 (uploading it when missing or different).
    /// Costs no outage time. Returns what was checked, or why the server must be skipped.
    pub async fn preflight(&mut self) -> Result<Vec<String>, String> {
        let server = self.job.name();
        let result = self.preflight_checks().await;
        let recording = match &result {
            Ok(checks) => self.recorder.record(Event::PreflightPassed {
                server,
                checks: checks.clone(),
            }),
            Err(reason) => self.recorder.record(Event::PreflightFailed {
                server,
                reason: reason.clone(),
            }),
        };
        let _ = recording.await;
        result
    }

    async fn preflight_checks(&mut self) -> Result<Vec<String>, String> {
        self.connection()
            .await
            .map_err(|e| format!("unreachable: {e}"))?;
        let mut checks = Vec::new();
        let steps = self.job.procedure.preflight.clone();
        for step in &steps {
            let out = self.send(step).await;
            match step.kind {
                StepKind::CheckGroups => {
                    let text = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
                    if !is_ok(step, &out) || !text.contains("csadministrator") {
                        return Err(format!(
                            "the account `{}` is not a member of CsAdministrator (whoami /groups); add it to the group, then run again{}",
                            self.job.server.ssh.user,
                            if is_ok(step, &out) {
                                String::new()
                            } else {
                                format!(" ({})", describe_failure(step, &out))
                            }
                        ));
                    }
                    checks.push("account is a member of CsAdministrator".to_string());
                }
                StepKind::CheckDisk => {
                    let free = String::from_utf8_lossy(&out.stdout)
                        .trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|_| is_ok(step, &out));
                    let need = self.job.installer.min_free_bytes;
                    match free {
                        Some(f) if f >= need => {
                            checks.push(format!(
                                "{} free (at least {} needed)",
                                bytes(f),
                                bytes(need)
                            ));
                        }
                        Some(f) => {
                            return Err(format!(
                                "only {} free on the installer's drive, {} needed; free some space",
                                bytes(f),
                                bytes(need)
                            ));
                        }
                        None => {
                            return Err(format!(
                                "cannot tell free disk space: {}",
                                describe_failure(step, &out)
                            ));
                        }
                    }
                }
                StepKind::CheckInstaller => {
                    let mut out = out;
                    if !self.hash_matches(step, &out) {
                        self.upload().await?;
                        out = self.send(step).await;
                    }
                    if !self.hash_matches(step, &out) {
                        return Err(format!(
                            "the installer at {} does not have SHA-256 {} even after upload: {}",
                            self.job.installer.remote,
                            self.job.installer.sha256,
                            String::from_utf8_lossy(&out.stdout).trim()
                        ));
                    }
                    checks.push(format!(
                        "installer staged at {} with SHA-256 {}",
                        self.job.installer.remote, self.job.installer.sha256
                    ));
                }
                _ => {}
            }
        }
        Ok(checks)
    }

    fn hash_matches(&self, step: &Step, out: &ExecOutput) -> bool {
        is_ok(step, out)
            && String::from_utf8_lossy(&out.stdout)
                .trim()
                .eq_ignore_ascii_case(&self.job.installer.sha256)
    }

    async fn upload(&mut self) -> Result<(), String> {
        let host = self.connection().await?;
        let remote = sftp_path(&self.job.installer.remote);
        host.upload(&self.job.installer.local, &remote)
            .await
            .map_err(|e| format!("cannot upload the installer to {remote}: {e}"))?;
        let size = std::fs::metadata(&self.job.installer.local)
            .map(|m| m.len())
            .unwrap_or(0);
        let _ = self
            .recorder
            .record(Event::Uploaded {
                server: self.job.name(),
                path: self.job.installer.remote.clone(),
                bytes: size,
            })
            .await;
        Ok(())
    }

    /// Sends `step` under the alarms.
    async fn step_under_alarms(
        &mut self,
        clock: &mut OutageClock,
        step: &Step,
        remaining: &[StepKind],
        recovery: bool,
    ) -> Waited {
        let host = self.connection().await;
        let alarms = self.alarms();
        alarms.started(step, recovery).await;
        // A recovery step is what the watchdog wants done: it is never abandoned.
        let kind = (!recovery).then_some(step.kind);
        let waited = alarms
            .wait(clock, kind, remaining, alarms.run(host, step))
            .await;
        let out = match &waited {
            Waited::Finished(out) => Some(out),
            Waited::Abandoned | Waited::Stopped => None,
        };
        alarms.finished(step, recovery, out);
        waited
    }

    /// Reconnects under the alarms (after a drop or a reboot). A reconnection is never
    /// abandoned: the server must come back to be restored.
    async fn reconnect_under_alarms(&mut self, clock: &mut OutageClock) -> Result<(), String> {
        let alarms = self.alarms();
        let mut result = None;
        let fut = async {
            let r = self.reconnect().await;
            let exit = match &r {
                Ok(_) => ExitOutcome::Code(0),
                Err(e) => ExitOutcome::Unknown(e.clone()),
            };
            result = Some(r.map(|_| ()));
            ExecOutput {
                stdout: Vec::new(),
                stderr: Vec::new(),
                exit,
                duration: Duration::ZERO,
            }
        };
        let _ = alarms.wait(clock, None, &[], fut).await;
        result.unwrap_or_else(|| Err("reconnection did not finish".into()))
    }

    /// Runs the outage: steps 4–11 and the final step, under the watchdog.
    pub async fn outage(&mut self) -> ServerOutcome {
        let mut clock = OutageClock::starting(Instant::now(), &self.policy);
        let _ = self
            .recorder
            .record(Event::OutageStarted {
                server: self.job.name(),
                pool: self.job.server.pool.to_string(),
            })
            .await;
        let steps = self.job.procedure.outage.clone();
        self.outage_steps(&mut clock, steps).await
    }

    /// Runs `steps` (the rest of the outage) on `clock`, then ends the outage.
    async fn outage_steps(&mut self, clock: &mut OutageClock, steps: Vec<Step>) -> ServerOutcome {
        let server = self.job.name();
        let mut i = 0;
        while i < steps.len() {
            let remaining: Vec<StepKind> = steps[i..].iter().map(|s| s.kind).collect();
            if self.stop_requested() {
                return self
                    .restore(clock, remaining, None, Some(STOPPED.into()))
                    .await;
            }
            if clock.watchdog_fired && self.policy.on_budget == WatchdogAction::Restore {
                return self.restore(clock, remaining, None, None).await;
            }
            let step = &steps[i];
            let out = match self.step_under_alarms(clock, step, &remaining, false).await {
                Waited::Finished(out) => out,
                Waited::Abandoned => return self.restore(clock, remaining, None, None).await,
                Waited::Stopped => {
                    return self
                        .restore(clock, remaining, None, Some(STOPPED.into()))
                        .await;
                }
            };
            if step.kind == StepKind::Reboot {
                // The connection drops when the server goes down; any outcome but a
                // refusal means it is restarting. Wait for it to come back.
                if let ExitOutcome::Code(c) = out.exit
                    && !step.ok_exit_codes.contains(&c)
                {
                    let reason = describe_failure(step, &out);
                    return self
                        .restore(clock, remaining, Some(step.kind), Some(reason))
                        .await;
                }
                if let Err(e) = self.wait_for_reboot(clock).await {
                    return self.fail_unrestored(Some(step.kind), e).await;
                }
                i += 1;
                continue;
            }
            if !is_ok(step, &out) {
                let reason = describe_failure(step, &out);
                tracing::error!(server = %server, %reason, "step failed");
                return self
                    .restore(clock, remaining, Some(step.kind), Some(reason))
                    .await;
            }
            if step.kind == StepKind::InstallUpdate
                && out.exit == ExitOutcome::Code(EXIT_REBOOT_REQUIRED)
            {
                let _ = self
                    .recorder
                    .record(Event::RebootRequested {
                        server: server.clone(),
                    })
                    .await;
                let reboot = self.job.procedure.reboot.clone();
                let rest: Vec<StepKind> = steps[i + 1..].iter().map(|s| s.kind).collect();
                match self.step_under_alarms(clock, &reboot, &rest, false).await {
                    Waited::Finished(out) => {
                        if let ExitOutcome::Code(c) = out.exit
                            && !reboot.ok_exit_codes.contains(&c)
                        {
                            let reason = describe_failure(&reboot, &out);
                            return self
                                .restore(clock, rest, Some(reboot.kind), Some(reason))
                                .await;
                        }
                    }
                    Waited::Abandoned => return self.restore(clock, rest, None, None).await,
                    Waited::Stopped => {
                        return self.restore(clock, rest, None, Some(STOPPED.into())).await;
                    }
                }
                if let Err(e) = self.wait_for_reboot(clock).await {
                    return self.fail_unrestored(Some(StepKind::Reboot), e).await;
                }
            }
            i += 1;
        }
        let outage = clock.start.elapsed();
        let _ = self
            .recorder
            .record(Event::OutageEnded {
                server: server.clone(),
                outage_ms: ms(outage),
            })
            .await;
        let _ = self
            .recorder
            .record(Event::ServerDone {
                server,
                outage_ms: ms(outage),
            })
            .await;
        ServerOutcome::Done {
            outage,
            overrun: clock.watchdog_fired,
        }
    }

    async fn wait_for_reboot(&mut self, clock: &mut OutageClock) -> Result<(), String> {
        // Give the server time to go down so we do not reconnect to the old instance.
        if let Some(h) = &self.host {
            let until =
                Instant::now() + self.policy.reconnect_every.max(Duration::from_millis(50)) * 10;
            while !h.is_closed() && Instant::now() < until {
                sleep(Duration::from_millis(20)).await;
            }
        }
        self.host = None;
        self.reconnect_under_alarms(clock).await
    }

    async fn fail_unrestored(&mut self, step: Option<StepKind>, reason: String) -> ServerOutcome {
        let _ = self
            .recorder
            .record(Event::ServerFailed {
                server: self.job.name(),
                step,
                reason: reason.clone(),
                restored: false,
            })
            .await;
        ServerOutcome::Failed {
            step,
            reason,
            restored: false,
        }
    }

    /// The recovery path: bring the web service and Lync services back and verify, after a
    /// failed step (`failed` set) or a watchdog action.
    async fn restore(
        &mut self,
        clock: &mut OutageClock,
        remaining: Vec<StepKind>,
        failed_step: Option<StepKind>,
        failure: Option<String>,
    ) -> ServerOutcome {
        let server = self.job.name();
        let mut restored = true;
        let mut why_not = String::new();
        if self.connection().await.is_err()
            && let Err(e) = self.reconnect_under_alarms(clock).await
        {
            restored = false;
            why_not = e;
        }
        if restored && failed_step == Some(StepKind::InstallUpdate) {
            // The installer's outcome may be unknown (connection lost, timed out): it may
            // still run on the host. Services must not start under it.
            self.wait_for_installer(clock).await;
        }
        if restored {
            for step in self.job.procedure.recovery.clone() {
                // Recovery is never abandoned by the watchdog: it is what the watchdog wants.
                let out = match self.step_under_alarms(clock, &step, &[], true).await {
                    Waited::Finished(out) => out,
                    Waited::Abandoned | Waited::Stopped => continue,
                };
                if !is_ok(&step, &out) {
                    restored = false;
                    why_not = describe_failure(&step, &out);
                    break;
                }
            }
        }
        if restored {
            let _ = self
                .recorder
                .record(Event::OutageEnded {
                    server: server.clone(),
                    outage_ms: ms(clock.start.elapsed()),
                })
                .await;
        } else {
            tracing::error!(server = %server, reason = %why_not, "services could not be restored: the server is still down");
        }
        match failure {
            Some(reason) => {
                let reason = if restored {
                    reason
                } else {
                    format!("{reason}; services NOT restored: {why_not}")
                };
                let _ = self
                    .recorder
                    .record(Event::ServerFailed {
                        server,
                        step: failed_step,
                        reason: reason.clone(),
                        restored,
                    })
                    .await;
                ServerOutcome::Failed {
                    step: failed_step,
                    reason,
                    restored,
                }
            }
            None => {
                let _ = self
                    .recorder
                    .record(Event::ServerBudgetExhausted {
                        server: server.clone(),
                        remaining: remaining.clone(),
                    })
                    .await;
                if !restored {
                    let _ = self
                        .recorder
                        .record(Event::ServerFailed {
                            server,
                            step: None,
                            reason: format!("services NOT restored after the watchdog: {why_not}"),
                            restored,
                        })
                        .await;
                }
                ServerOutcome::BudgetExhausted {
                    remaining,
                    restored,
                }
            }
        }
    }
}

/// The watchdog and breach alarms, and step bookkeeping, for one server. Holds only
/// shared references, so it can run beside a step that borrows the [`ServerRun`].
#[derive(Clone)]
struct Alarms<'a> {
    recorder: &'a Recorder,
    job: &'a ServerJob,
    policy: OutagePolicy,
    stop: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Alarms<'_> {
    async fn started(&self, step: &Step, recovery: bool) {
        let _ = self
            .recorder
            .record(Event::StepStarted {
                server: self.job.name(),
                step: step.kind,
                recovery,
                command: step.command.clone(),
            })
            .await;
    }

    /// Journals the end of `step`; `None` when the watchdog abandoned it.
    fn finished(&self, step: &Step, recovery: bool, out: Option<&ExecOutput>) {
        let event = match out {
            Some(out) => Event::StepFinished {
                server: self.job.name(),
                step: step.kind,
                recovery,
                exit: exit_record(&out.exit),
                ok: is_ok(step, out),
                duration_ms: ms(out.duration),
                stdout_tail: tail(&out.stdout, 20, 4000),
                stderr_tail: tail(&out.stderr, 20, 4000),
            },
            None => Event::StepFinished {
                server: self.job.name(),
                step: step.kind,
                recovery,
                exit: ExitRecord::Unknown {
                    reason: "abandoned by the watchdog at the outage budget".into(),
                },
                ok: false,
                duration_ms: 0,
                stdout_tail: String::new(),
                stderr_tail: String::new(),
            },
        };
        // Not waited for: whatever follows a step and relies on the journal is itself
        // preceded by an awaited event (the next `StepStarted`, `OutageEnded`, the
        // server's outcome…), and events become durable in the order they were recorded.
        // So the end of a step and the start of the next share one sync, and the gap
        // between two steps waits for the disk once, not twice. A failure is logged.
        self.recorder.record_nowait(event);
    }

    /// Runs `step` on `host` (or reports why there is no connection).
    async fn run(&self, host: Result<Arc<dyn RemoteHost>, String>, step: &Step) -> ExecOutput {
        match host {
            Ok(h) => {
                let line = command_line(self.job.server.ssh.shell, &step.script);
                h.run(&line, self.job.timeout(step.kind)).await
            }
            Err(e) => ExecOutput {
                stdout: Vec::new(),
                stderr: Vec::new(),
                exit: ExitOutcome::Unknown(format!("not connected: {e}")),
                duration: Duration::ZERO,
            },
        }
    }

    /// Waits for `fut` while the alarms run.
    async fn wait(
        &self,
        clock: &mut OutageClock,
        kind: Option<StepKind>,
        remaining: &[StepKind],
        fut: impl std::future::Future<Output = ExecOutput>,
    ) -> Waited {
        tokio::pin!(fut);
        let mut stop = self.stop.clone();
        loop {
            tokio::select! {
                out = &mut fut => return Waited::Finished(out),
                () = async {
                    let stopped = match stop.as_mut() {
                        Some(s) => s.wait_for(|v| *v).await.is_ok(),
                        None => false,
                    };
                    if !stopped {
                        // No stop, or nobody left to send one: never.
                        std::future::pending::<()>().await;
                    }
                }, if !clock.stop_seen => {
                    clock.stop_seen = true;
                    let interruptible = kind.is_some_and(|k| !k.must_not_be_interrupted());
                    if interruptible {
                        return Waited::Stopped;
                    }
                }
                _ = sleep_until(clock.budget_at), if !clock.watchdog_fired => {
                    clock.watchdog_fired = true;
                    let _ = self.recorder.record(Event::Watchdog {
                        server: self.job.name(),
                        action: self.policy.on_budget,
                        remaining: remaining.to_vec(),
                        down_ms: ms(clock.start.elapsed()),
                    }).await;
                    tracing::warn!(server = %self.job.server.fqdn, action = ?self.policy.on_budget, "outage budget reached");
                    let interruptible = kind.is_some_and(|k| !k.must_not_be_interrupted());
                    if self.policy.on_budget == WatchdogAction::Restore && interruptible {
                        return Waited::Abandoned;
                    }
                }
                _ = sleep_until(clock.threshold_at), if !clock.breach_reported => {
                    clock.breach_reported = true;
                    let _ = self.recorder.record(Event::Breach {
                        server: self.job.name(),
                        pool: self.job.server.pool.to_string(),
                        down_ms: ms(clock.start.elapsed()),
                    }).await;
                    tracing::error!(server = %self.job.server.fqdn, pool = %self.job.server.pool, "BREACH: back end down for the whole resiliency threshold; users are in resiliency mode");
                }
            }
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn bytes(n: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    format!("{:.1} GiB", n as f64 / GIB)
}

/// The SFTP path of a Windows path: `C:\a\b.exe` → `/C:/a/b.exe` (Windows OpenSSH's form);
/// POSIX paths are unchanged.
pub fn sftp_path(remote: &str) -> String {
    let b = remote.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        format!("/{}", remote.replace('\\', "/"))
    } else {
        remote.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sftp_paths() {
        assert_eq!(
            sftp_path("C:\\ProgramData\\p\\x.exe"),
            "/C:/ProgramData/p/x.exe"
        );
        assert_eq!(sftp_path("/var/tmp/x.exe"), "/var/tmp/x.exe");
    }
}
