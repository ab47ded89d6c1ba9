//! `executor`: poolpatch's own cost per step when the steps themselves cost nothing.
//!
//! Simulated hosts (real SSH on loopback, `SimDurations::instant()`: every command takes no
//! time on the host) are patched through the real controller (`carry_out`, `SshConnector`,
//! the journal, the safety rules), and the time that is *not* the host's is measured:
//!
//! 1. one host, raw SSH: the same zero-length step sent N times over one connection, from
//!    `RemoteHost::run` being called to it returning (SSH cost alone, no executor);
//! 2. one host through `carry_out` (executor + SSH, unloaded);
//! 3. 500 hosts in 250 pools through `carry_out`, every pool at once.
//!
//! Definitions (printed with the figures). For every step a server runs, in order:
//! - *host time*: the simulated host's `CommandReceived` → `CommandFinished` (its record);
//! - *SSH round trip*: the controller's `RemoteHost::run` call (timed by a wrapping
//!   connector) minus the host time: channel open, exec request, exit status, EOF, close;
//! - *executor gap*: from the end of the previous step's `run` on the same server, in the
//!   same phase (preflight, outage), to the start of this step's `run`, minus any upload or
//!   connection in between: journal writes (`StepFinished`, `StepStarted`, each awaited
//!   until its batch is synced),
//!   output tails, command-line encoding, task scheduling;
//! - *overhead per step* = executor gap + SSH round trip: the step's wall time as the
//!   controller lives it, minus what the host spent in the command.
//!
//! ```sh
//! cargo run --release -p poolpatch-bench --bin executor [-- --hosts 500 --pools 250 --rtt-steps 300 --run-dir DIR --addresses]
//! ```
//! `--run-dir` puts the run directories (journals) there instead of a temporary directory
//! (for instance on /dev/shm, to see what journal syncs cost); `--addresses` listens on
//! each server's own 127.x.y.z address instead of ports of 127.0.0.1.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poolpatch::exec::{RunContext, RunReport, carry_out, run_spec};
use poolpatch::journal::{self, Event};
use poolpatch::progress::ProgressMode;
use poolpatch::rehearsal::{Rehearsal, RehearsalOptions};
use poolpatch::remote::{
    BoxFuture, Connector, ExecOutput, RemoteError, RemoteHost, SshConnector, SshOptions,
    command_line,
};
use poolpatch::sim::{Listen, SimDurations};
use poolpatch_bench::{
    ChangeShape, CountingAlloc, Shape, Summary, change_yaml, generate, heap_now, heap_peak_ever,
    mib, ms, proc_status_bytes, raise_nofile_limit, write_installers,
};
use poolpatch_inventory::{Inventory, Server};
use poolpatch_plans::Change;
use poolpatch_plans::procedure::StepKind;
use tokio::runtime::Handle;
use tokio::time::Instant;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const TARGET_OVERHEAD: Duration = Duration::from_millis(5);
const TARGET_BYTES: u64 = 200 * 1024 * 1024;

// ---------------------------------------------------------------------------------------
// A connector that times what the executor asks of the transport.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpanKind {
    Connect,
    Run,
    Upload,
}

#[derive(Debug, Clone, Copy)]
struct Span {
    kind: SpanKind,
    start: Instant,
    end: Instant,
}

#[derive(Default)]
struct Log {
    spans: Mutex<HashMap<String, Vec<Span>>>,
}

impl Log {
    fn push(&self, server: &str, kind: SpanKind, start: Instant) {
        let span = Span {
            kind,
            start,
            end: Instant::now(),
        };
        let mut m = self.spans.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(server.to_string()).or_default().push(span);
    }
    fn take(&self) -> HashMap<String, Vec<Span>> {
        std::mem::take(&mut *self.spans.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

struct TimingConnector {
    inner: SshConnector,
    log: Arc<Log>,
}

struct TimedHost {
    inner: Arc<dyn RemoteHost>,
    server: String,
    log: Arc<Log>,
}

impl Connector for TimingConnector {
    fn connect<'a>(
        &'a self,
        server: &'a Server,
    ) -> BoxFuture<'a, Result<Arc<dyn RemoteHost>, RemoteError>> {
        Box::pin(async move {
            let start = Instant::now();
            let host = self.inner.connect(server).await;
            let name = server.fqdn.to_string();
            self.log.push(&name, SpanKind::Connect, start);
            host.map(|inner| {
                Arc::new(TimedHost {
                    inner,
                    server: name,
                    log: self.log.clone(),
                }) as Arc<dyn RemoteHost>
            })
        })
    }
}

impl RemoteHost for TimedHost {
    fn run<'a>(&'a self, line: &'a str, timeout: Duration) -> BoxFuture<'a, ExecOutput> {
        Box::pin(async move {
            let start = Instant::now();
            let out = self.inner.run(line, timeout).await;
            self.log.push(&self.server, SpanKind::Run, start);
            out
        })
    }

    fn upload<'a>(
        &'a self,
        local: &'a Path,
        remote: &'a str,
    ) -> BoxFuture<'a, Result<(), RemoteError>> {
        Box::pin(async move {
            let start = Instant::now();
            let r = self.inner.upload(local, remote).await;
            self.log.push(&self.server, SpanKind::Upload, start);
            r
        })
    }

    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}

// ---------------------------------------------------------------------------------------
// Estates

struct Setup {
    rehearsal: Rehearsal,
    change: Change,
    _dir: tempfile::TempDir,
    started_in: Duration,
}

fn estate_shape(hosts: usize, pools: usize) -> Shape {
    Shape {
        seed: 0xE7EC,
        sites: 5.min(pools).max(1),
        pools,
        patched: Some(hosts),
        max_back_ends: hosts.div_ceil(pools).max(1),
        standard_share: 0.0,
        mirror_share: 0.5,
        collocated_share: 0.15,
        paired_share: 0.0,
        after_share: 0.0,
        shell: "powershell",
    }
}

async fn setup(sim: &Handle, hosts: usize, pools: usize, listen: Listen) -> Setup {
    let g = generate(&estate_shape(hosts, pools));
    let inventory = poolpatch_inventory::from_str("estate.yaml", &g.yaml)
        .unwrap_or_else(|d| panic!("generated inventory refused:\n{d}"));
    let dir = tempfile::tempdir().expect("temp dir");
    let installers = write_installers(dir.path(), 4096).expect("installer files");
    let text = change_yaml(
        &installers,
        &ChangeShape {
            pools_at_once: u32::try_from(pools.clamp(1, 1000)).unwrap_or(1000),
            remote_dir: r"C:\ProgramData\poolpatch\updates",
            pool_estimates: Vec::new(),
            server_estimates: Vec::new(),
        },
    );
    let change = poolpatch_plans::change_from_str("change.yaml", &text)
        .unwrap_or_else(|d| panic!("generated change refused:\n{d}"));
    change
        .check_against(&inventory)
        .unwrap_or_else(|d| panic!("change against inventory:\n{d}"));
    let t = Instant::now();
    // The hosts run on their own runtime (threads named `sim-worker`), so that the CPU time
    // of the controller and of the simulated hosts can be told apart.
    let options = RehearsalOptions {
        dir: dir.path().join("sim"),
        listen,
        durations: SimDurations::instant(),
        customize: None,
    };
    let (inv, ch) = (inventory.clone(), change.clone());
    let rehearsal = sim
        .spawn(async move { Rehearsal::start(&inv, &ch, options).await })
        .await
        .expect("the simulator task")
        .expect("the simulated hosts start");
    Setup {
        rehearsal,
        change,
        _dir: dir,
        started_in: t.elapsed(),
    }
}

fn connector(log: &Arc<Log>) -> Arc<TimingConnector> {
    Arc::new(TimingConnector {
        inner: SshConnector::new(SshOptions {
            connect_timeout: Duration::from_secs(60),
            ..SshOptions::default()
        }),
        log: log.clone(),
    })
}

// ---------------------------------------------------------------------------------------
// Measurements

/// Phase 1: the same zero-length step, `n` times over one connection, nothing else.
async fn raw_round_trips(sim: &Handle, n: usize) -> (Summary, Summary, Summary, Summary) {
    let s = setup(sim, 1, 1, Listen::Loopback).await;
    let inventory = &s.rehearsal.inventory;
    let plan = poolpatch_plans::plan(inventory, &s.change);
    let spec = run_spec(&plan, inventory, &s.change).expect("run spec");
    let job = &spec.jobs[0].job;
    let step = &job.procedure.preflight[0];
    let line = command_line(job.server.ssh.shell, &step.script);
    let log = Arc::new(Log::default());
    let c = connector(&log);
    let mut connects = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let h = c.connect(&job.server).await.expect("connects");
        connects.push(t.elapsed());
        drop(h);
    }
    let host = c.connect(&job.server).await.expect("connects");
    for _ in 0..20 {
        host.run(&line, Duration::from_secs(10)).await; // warm-up
    }
    log.take();
    let (_, sim) = s.rehearsal.estate.hosts().next().expect("one host");
    let skip = sim.commands().len();
    for _ in 0..n {
        let out = host.run(&line, Duration::from_secs(10)).await;
        assert!(out.exit.is_success(&step.ok_exit_codes), "{:?}", out.exit);
    }
    let runs: Vec<Span> = log.take().into_values().flatten().collect();
    let cmds = sim.commands();
    let cmds = &cmds[skip..];
    assert_eq!(runs.len(), cmds.len());
    let mut whole = Vec::new();
    let mut host_t = Vec::new();
    let mut transport = Vec::new();
    for (r, c) in runs.iter().zip(cmds) {
        let fin = c.finished.expect("finished");
        let h = fin.saturating_duration_since(c.received);
        whole.push(r.end - r.start);
        host_t.push(h);
        transport.push((r.end - r.start).saturating_sub(h));
    }
    (
        Summary::of(&whole),
        Summary::of(&host_t),
        Summary::of(&transport),
        Summary::of(&connects),
    )
}

/// CPU time spent during a run.
struct Cpu {
    controller: Duration,
    sim: Duration,
}

impl Cpu {
    fn print(&self, wall: Duration, steps: usize) {
        let per = |d: Duration| d / u32::try_from(steps.max(1)).unwrap_or(u32::MAX);
        println!(
            "  CPU time: controller {} ms ({} ms per step), simulated hosts {} ms ({} ms per step); {:.2} of the CPUs busy on average over the wall time",
            ms(self.controller),
            ms(per(self.controller)),
            ms(self.sim),
            ms(per(self.sim)),
            (self.controller + self.sim).as_secs_f64() / wall.as_secs_f64()
        );
    }
}

#[derive(Default)]
struct Analysis {
    steps: usize,
    servers: usize,
    host: Vec<Duration>,
    rtt: Vec<Duration>,
    request: Vec<Duration>,
    response: Vec<Duration>,
    gap: Vec<Duration>,
    overhead: Vec<Duration>,
    connects: Vec<Duration>,
    uploads: Vec<Duration>,
    mismatched: Vec<String>,
    journal_records: usize,
    /// Per server: (first run start, last run end) of its preflight and of its outage.
    preflights: Vec<(Instant, Instant)>,
    outages: Vec<(Instant, Instant)>,
}

/// Most intervals open at once, and their mean number over `[t0, t1]`.
fn concurrency(iv: &[(Instant, Instant)], t0: Instant, t1: Instant) -> (usize, f64) {
    let mut ev: Vec<(Instant, i32)> = iv.iter().flat_map(|&(a, b)| [(a, 1), (b, -1)]).collect();
    ev.sort_by(|x, y| x.0.cmp(&y.0).then(x.1.cmp(&y.1)));
    let (mut now, mut max) = (0i32, 0i32);
    for (_, d) in ev {
        now += d;
        max = max.max(now);
    }
    let busy: f64 = iv.iter().map(|&(a, b)| (b - a).as_secs_f64()).sum();
    let span = (t1 - t0).as_secs_f64().max(1e-9);
    (usize::try_from(max).unwrap_or(0), busy / span)
}

/// Matches, server by server, the controller's `run` calls with the host's commands and the
/// journal's `StepStarted` records (same count, same order).
fn analyze(run_dir: &Path, s: &Setup, log: HashMap<String, Vec<Span>>) -> Analysis {
    let j = journal::read(run_dir).expect("journal");
    let mut a = Analysis {
        journal_records: j.records.len(),
        ..Analysis::default()
    };
    let mut kinds: HashMap<&str, Vec<StepKind>> = HashMap::new();
    for r in &j.records {
        if let Event::StepStarted { server, step, .. } = &r.event {
            kinds.entry(server.as_str()).or_default().push(*step);
        }
    }
    for (server, host) in s.rehearsal.estate.hosts() {
        let name = server.fqdn.to_string();
        let spans = log.get(&name).cloned().unwrap_or_default();
        let runs: Vec<&Span> = spans.iter().filter(|x| x.kind == SpanKind::Run).collect();
        let cmds = host.commands();
        let ks = kinds.get(name.as_str()).cloned().unwrap_or_default();
        if runs.len() != cmds.len() || runs.len() != ks.len() {
            a.mismatched.push(format!(
                "{name}: {} runs, {} host commands, {} StepStarted",
                runs.len(),
                cmds.len(),
                ks.len()
            ));
            continue;
        }
        a.servers += 1;
        let phase = |outage: bool| {
            let idx: Vec<usize> = (0..runs.len())
                .filter(|&i| ks[i].in_outage() == outage)
                .collect();
            idx.first()
                .zip(idx.last())
                .map(|(&f, &l)| (runs[f].start, runs[l].end))
        };
        a.preflights.extend(phase(false));
        a.outages.extend(phase(true));
        for x in &spans {
            match x.kind {
                SpanKind::Connect => a.connects.push(x.end - x.start),
                SpanKind::Upload => a.uploads.push(x.end - x.start),
                SpanKind::Run => {}
            }
        }
        for i in 0..runs.len() {
            let (r, c) = (runs[i], &cmds[i]);
            let fin = c.finished.unwrap_or(r.end);
            let host_t = fin.saturating_duration_since(c.received);
            let rtt = (r.end - r.start).saturating_sub(host_t);
            a.steps += 1;
            a.host.push(host_t);
            a.rtt.push(rtt);
            a.request
                .push(c.received.saturating_duration_since(r.start));
            a.response.push(r.end.saturating_duration_since(fin));
            if i > 0 && ks[i].in_outage() == ks[i - 1].in_outage() {
                // Anything else the transport did in between (an upload) is not the gap.
                let prev_end = spans
                    .iter()
                    .filter(|x| x.kind != SpanKind::Run)
                    .filter(|x| x.start >= runs[i - 1].end && x.end <= r.start)
                    .map(|x| x.end)
                    .fold(runs[i - 1].end, Instant::max);
                let gap = r.start.saturating_duration_since(prev_end);
                a.gap.push(gap);
                a.overhead.push(gap + rtt);
            }
        }
    }
    a
}

/// Carries out the plan of `s` and analyzes it.
async fn execute(s: &Setup, run_dir: PathBuf) -> (RunReport, Analysis, Duration, Duration, Cpu) {
    let inventory: &Inventory = &s.rehearsal.inventory;
    let t = Instant::now();
    let plan = poolpatch_plans::plan(inventory, &s.change);
    let planned_in = t.elapsed();
    assert_eq!(
        plan.totals.servers_scheduled,
        inventory.servers().count(),
        "every server is scheduled"
    );
    let log = Arc::new(Log::default());
    let ctx = RunContext {
        rehearsal: true,
        clock_speed: 1.0,
        run_dir: run_dir.clone(),
        inventory_file: "estate.yaml".into(),
        change_file: "change.yaml".into(),
        now: jiff::Timestamp::now(),
        operator: "bench".into(),
        progress: ProgressMode::Quiet,
    };
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let cpu0 = thread_cpu();
    let t = Instant::now();
    let report = carry_out(&plan, inventory, &s.change, connector(&log), &ctx, rx)
        .await
        .expect("the run starts");
    let wall = t.elapsed();
    let cpu1 = thread_cpu();
    let cpu = Cpu {
        controller: cpu1.0.saturating_sub(cpu0.0),
        sim: cpu1.1.saturating_sub(cpu0.1),
    };
    let a = analyze(&run_dir, s, log.take());
    (report, a, wall, planned_in, cpu)
}

/// CPU time consumed so far by the threads of this process, split into the simulated
/// hosts' runtime (`sim-worker` threads) and everything else (the controller), from
/// `/proc/self/task/*/schedstat` (nanoseconds on CPU). Threads that have exited are not
/// counted, so take both readings while the runtimes are alive.
fn thread_cpu() -> (Duration, Duration) {
    let (mut ctrl, mut sim) = (Duration::ZERO, Duration::ZERO);
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return (ctrl, sim);
    };
    for task in dir.flatten() {
        let p = task.path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        let ns: u64 = std::fs::read_to_string(p.join("schedstat"))
            .ok()
            .and_then(|t| t.split_whitespace().next().and_then(|v| v.parse().ok()))
            .unwrap_or(0);
        let d = Duration::from_nanos(ns);
        if comm.trim() == SIM_THREADS {
            sim += d;
        } else {
            ctrl += d;
        }
    }
    (ctrl, sim)
}

const SIM_THREADS: &str = "sim-worker";

/// Median time of `write` + `sync_data` of a journal-sized line in `dir`.
fn fsync_cost(dir: &Path, n: usize) -> Summary {
    use std::io::Write as _;
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path).expect("probe file");
    let line = [b'x'; 400];
    let mut v = Vec::new();
    for _ in 0..n {
        let t = std::time::Instant::now();
        f.write_all(&line).expect("write");
        f.sync_data().expect("sync");
        v.push(t.elapsed());
    }
    let _ = std::fs::remove_file(&path);
    Summary::of(&v)
}

fn row(name: &str, s: &Summary) {
    println!(
        "  {:<44} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}",
        name,
        s.n,
        ms(s.median),
        ms(s.p90),
        ms(s.p99),
        ms(s.max),
        ms(s.mean)
    );
}

fn header() {
    println!(
        "  {:<44} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "(milliseconds)", "n", "median", "p90", "p99", "max", "mean"
    );
}

fn print_analysis(a: &Analysis) {
    header();
    row(
        "host time (CommandReceived -> Finished)",
        &Summary::of(&a.host),
    );
    row("SSH round trip (run() - host time)", &Summary::of(&a.rtt));
    row(
        "  request: run() called -> host received",
        &Summary::of(&a.request),
    );
    row(
        "  response: host finished -> run() returns",
        &Summary::of(&a.response),
    );
    row("executor gap between steps", &Summary::of(&a.gap));
    row(
        "OVERHEAD PER STEP (gap + round trip)",
        &Summary::of(&a.overhead),
    );
    row("SSH connect + logon", &Summary::of(&a.connects));
    row("installer upload (SFTP, 4 KiB)", &Summary::of(&a.uploads));
    if !a.mismatched.is_empty() {
        println!(
            "  ({} servers not analyzed: counts differ, e.g. {})",
            a.mismatched.len(),
            a.mismatched[0]
        );
    }
}

struct Args {
    hosts: usize,
    pools: usize,
    rtt_steps: usize,
    run_dir: Option<PathBuf>,
    listen: Listen,
}

fn args() -> Args {
    let mut a = Args {
        hosts: 500,
        pools: 250,
        rtt_steps: 300,
        run_dir: None,
        listen: Listen::Loopback,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = |name: &str| it.next().unwrap_or_else(|| panic!("{name} needs a value"));
        let num = |v: String| -> usize { v.parse().expect("a number") };
        match flag.as_str() {
            "--hosts" => a.hosts = num(val("--hosts")),
            "--pools" => a.pools = num(val("--pools")),
            "--rtt-steps" => a.rtt_steps = num(val("--rtt-steps")).max(1),
            "--run-dir" => a.run_dir = Some(PathBuf::from(val("--run-dir"))),
            "--addresses" => a.listen = Listen::InventoryAddressesAnyPort,
            other => panic!(
                "unknown argument `{other}` (--hosts N, --pools N, --rtt-steps N, --run-dir DIR, --addresses)"
            ),
        }
    }
    a
}

fn verdict(ok: bool) -> &'static str {
    if ok { "MET" } else { "NOT MET" }
}

fn main() {
    let sim = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(SIM_THREADS)
        .enable_all()
        .build()
        .expect("simulator runtime");
    let controller = tokio::runtime::Builder::new_multi_thread()
        .thread_name("controller")
        .enable_all()
        .build()
        .expect("controller runtime");
    controller.block_on(bench(sim.handle().clone()));
    drop(controller);
    drop(sim);
}

/// The system's load averages (1, 5, 15 minutes), from /proc/loadavg.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

async fn bench(sim: Handle) {
    let a = args();
    println!(
        "poolpatch executor benchmark (release build: {}, tokio multi-thread runtime, {} CPUs; load average {})",
        !cfg!(debug_assertions),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average()
    );
    match raise_nofile_limit() {
        Ok((before, after, hard)) => println!(
            "open files: soft limit {before} -> {after} (hard {hard}); {} hosts need about {} descriptors (listener + both ends of a connection each)",
            a.hosts,
            a.hosts * 3 + 64
        ),
        Err(e) => println!("open files: cannot raise the limit: {e}"),
    }
    let base = match &a.run_dir {
        Some(d) => {
            std::fs::create_dir_all(d).expect("run dir");
            tempfile::tempdir_in(d).expect("run dir")
        }
        None => tempfile::tempdir().expect("run dir"),
    };
    let fs = fsync_cost(base.path(), 200);
    println!(
        "journal directory {}: write + sync_data of a 400-byte line: median {} ms, p99 {} ms",
        base.path().display(),
        ms(fs.median),
        ms(fs.p99)
    );

    // 1. Raw SSH round trips on one host.
    println!();
    println!(
        "1. one host, raw SSH: a zero-length step (check-groups, PowerShell -EncodedCommand) sent {} times over one connection, each on a fresh exec channel",
        a.rtt_steps
    );
    let (whole, host_t, transport, connects) = raw_round_trips(&sim, a.rtt_steps).await;
    header();
    row("run() round trip", &whole);
    row("  host time", &host_t);
    row("  SSH transport (round trip - host time)", &transport);
    row("SSH connect + logon (fresh connection)", &connects);

    // 2. One host through the executor.
    println!();
    println!("2. one host through carry_out (executor + SSH, nothing else running)");
    let one = setup(&sim, 1, 1, Listen::Loopback).await;
    let (report1, a1, wall1, _, cpu1) = execute(&one, base.path().join("run-1")).await;
    drop(one);
    println!(
        "  wall time {} ms, {} steps, {} journal records in {} syncs, servers done {}",
        ms(wall1),
        a1.steps,
        a1.journal_records,
        report1.journal_syncs,
        report1.summary.done()
    );
    print_analysis(&a1);
    cpu1.print(wall1, a1.steps);

    // 3. Many hosts.
    println!();
    println!(
        "3. {} hosts in {} pools (Enterprise, {} back ends each, half of the pools mirrored), concurrency.pools = {}, through carry_out",
        a.hosts,
        a.pools,
        a.hosts.div_ceil(a.pools),
        a.pools
    );
    let heap_before = heap_now();
    let s = setup(&sim, a.hosts, a.pools, a.listen).await;
    let heap_sim = heap_now().saturating_sub(heap_before);
    let hwm_sim = proc_status_bytes("VmHWM").unwrap_or(0);
    println!(
        "  simulated hosts started in {} ms (listening: {}); heap held by them idle: {:.1} MiB; VmHWM so far {:.1} MiB",
        ms(s.started_in),
        match a.listen {
            Listen::Loopback => "own port of 127.0.0.1 each",
            _ => "own 127.x.y.z address each",
        },
        mib(heap_sim as u64),
        mib(hwm_sim)
    );
    let (report, an, wall, planned_in, cpu) = execute(&s, base.path().join("run-n")).await;
    let steps = an.steps;
    println!(
        "  plan: {} ms; carry_out wall time: {} ms; servers done {}, failed {}, skipped {}; {} steps executed ({:.0} steps/s); {} journal records",
        ms(planned_in),
        ms(wall),
        report.summary.done(),
        report.summary.failed(),
        report.summary.skipped(),
        steps,
        steps as f64 / wall.as_secs_f64(),
        an.journal_records
    );
    print_analysis(&an);
    cpu.print(wall, steps);
    if let (Some(t0), Some(t1)) = (
        an.preflights.iter().map(|x| x.0).min(),
        an.outages.iter().map(|x| x.1).max(),
    ) {
        let (pmax, pmean) = concurrency(&an.preflights, t0, t1);
        let (omax, omean) = concurrency(&an.outages, t0, t1);
        let last_pre = an.preflights.iter().map(|x| x.1).max().unwrap_or(t0);
        println!(
            "  concurrency: preflights at once max {pmax} (mean {pmean:.1}; the executor runs at most 8), outages at once max {omax} (mean {omean:.1}); last preflight ended at {} ms, last outage at {} ms after the first step",
            ms(last_pre - t0),
            ms(t1 - t0)
        );
    }
    let hwm = proc_status_bytes("VmHWM").unwrap_or(0);
    let heap_peak = heap_peak_ever();
    println!(
        "  memory (whole process: controller AND the {} simulated SSH servers): peak RSS (VmHWM) {:.1} MiB; peak live heap {:.1} MiB",
        a.hosts,
        mib(hwm),
        mib(heap_peak as u64)
    );
    println!(
        "  journal: {} records in {} syncs ({:.1} records per sync; group commit off the runtime's workers); {} syncs x median sync {} ms = {:.2} s of syncs",
        an.journal_records,
        report.journal_syncs,
        an.journal_records as f64 / report.journal_syncs.max(1) as f64,
        report.journal_syncs,
        ms(fs.median),
        report.journal_syncs as f64 * fs.median.as_secs_f64()
    );
    drop(s);

    let overhead = Summary::of(&an.overhead);
    println!();
    println!(
        "load average at the end: {} (the machine may be shared: compare with the start)",
        load_average()
    );
    println!("targets:");
    println!(
        "  overhead per step <= 5 ms on loopback at {} hosts: median {} ms, p99 {} ms -> median {}, p99 {}",
        a.hosts,
        ms(overhead.median),
        ms(overhead.p99),
        verdict(overhead.median <= TARGET_OVERHEAD),
        verdict(overhead.p99 <= TARGET_OVERHEAD)
    );
    println!(
        "  memory <= 200 MB at {} hosts (VmHWM, controller + simulated hosts): {:.1} MB -> {}",
        a.hosts,
        hwm as f64 / 1e6,
        verdict(hwm <= TARGET_BYTES)
    );
}
