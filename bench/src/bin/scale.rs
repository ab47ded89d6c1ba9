//! `scale`: how fast poolpatch loads, validates, plans and renders a large estate, and how
//! much memory it takes.
//!
//! Generates (seeded, deterministic) 10,000 patched servers in 2,000 pools across 50 sites as
//! inventory YAML text in memory, a change file with real installer files, then times each
//! stage of `poolpatch plan` and prints a table, the peak memory (`VmHWM` of the process, and
//! the peak of live heap bytes from a counting allocator) and whether the targets are met:
//! load + validate + plan under 1 s and under 200 MB, on one core.
//!
//! ```sh
//! cargo run --release -p poolpatch-bench --bin scale [-- --runs 5 --pools 2000 --servers 10000 --sites 50 --seed N --realistic --all-cores]
//! ```
//!
//! `--realistic` gives every Enterprise pool 1–2 back ends instead of spreading exactly
//! `--servers` patched servers over the pools (so fewer servers).

use std::time::{Duration, Instant};

use poolpatch_bench::{
    ChangeShape, CountingAlloc, Rng, Shape, Summary, change_yaml, generate, heap_now, heap_peak,
    heap_peak_ever, mib, ms, proc_status_bytes, reset_heap_peak, write_installers,
};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const TARGET_TIME: Duration = Duration::from_secs(1);
const TARGET_BYTES: u64 = 200 * 1024 * 1024;

struct Args {
    runs: usize,
    shape: Shape,
    one_core: bool,
}

fn args() -> Args {
    let mut a = Args {
        runs: 3,
        shape: Shape::scale(),
        one_core: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut num = |name: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match flag.as_str() {
            "--runs" => a.runs = num("--runs").max(1),
            "--pools" => a.shape.pools = num("--pools"),
            "--servers" => a.shape.patched = Some(num("--servers")),
            "--sites" => a.shape.sites = num("--sites"),
            "--seed" => a.shape.seed = num("--seed") as u64,
            "--realistic" => a.shape.patched = None,
            "--all-cores" => a.one_core = false,
            other => panic!(
                "unknown argument `{other}` (--runs N, --pools N, --servers N, --sites N, --seed N, --realistic, --all-cores)"
            ),
        }
    }
    a
}

/// Pins the process to one CPU, so that nothing (an allocator thread, the kernel) gets a
/// second core for free.
fn pin_to_one_core() -> bool {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET and sched_setaffinity get valid pointers.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return false;
        }
        let Some(cpu) = (0..libc::CPU_SETSIZE as usize).find(|&c| libc::CPU_ISSET(c, &set)) else {
            return false;
        };
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut one);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) == 0
    }
}

const STAGES: [&str; 10] = [
    "parse + validate inventory (from_str)",
    "load change (change_from_str)",
    "check change against inventory",
    "plan",
    "render text",
    "render markdown",
    "render json",
    "total",
    "  of which load + validate + plan",
    "  (YAML parse alone, yaml::parse; extra)",
];

/// Wall-clock and on-CPU time of a stage.
#[derive(Debug, Clone, Copy, Default)]
struct Timing {
    wall: Duration,
    cpu: Duration,
}

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`): unlike wall time, it does not
/// grow when other processes take the CPU.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime with a valid clock id and a pointer to a local timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A point to measure a [`Timing`] from.
#[derive(Clone, Copy)]
struct Mark(Instant, Duration);

impl Mark {
    fn now() -> Mark {
        Mark(Instant::now(), thread_cpu())
    }
    fn elapsed(self) -> Timing {
        Timing {
            wall: self.0.elapsed(),
            cpu: thread_cpu().saturating_sub(self.1),
        }
    }
}

struct Run {
    times: [Timing; 10],
    heap: [usize; 10],
    scheduled: usize,
    not_scheduled: usize,
    out_of_scope: usize,
    plan_duration: Duration,
    rendered: [usize; 3],
    verify: Timing,
    /// VmHWM right after the plan (before any rendering).
    hwm_lvp: u64,
    /// Live-heap peak of the process right after the plan.
    heap_lvp: usize,
}

/// Runs `f`, returning its value, its time and the growth of the heap peak above the live
/// bytes at its start.
fn stage<T>(f: impl FnOnce() -> T) -> (T, Timing, usize) {
    let base = heap_now();
    reset_heap_peak();
    let t = Mark::now();
    let v = f();
    let d = t.elapsed();
    (v, d, heap_peak().saturating_sub(base))
}

fn run_once(inventory_yaml: &str, change_text: &str) -> Run {
    let start = heap_now();
    let t0 = Mark::now();
    let (inv, t_inv, h_inv) =
        stage(|| poolpatch_inventory::from_str("estate.yaml", inventory_yaml));
    let inv = inv.unwrap_or_else(|d| panic!("the generated inventory is refused:\n{d}"));
    let (change, t_ch, h_ch) =
        stage(|| poolpatch_plans::change_from_str("change.yaml", change_text));
    let change = change.unwrap_or_else(|d| panic!("the generated change is refused:\n{d}"));
    let (checked, t_chk, h_chk) = stage(|| change.check_against(&inv));
    checked.unwrap_or_else(|d| panic!("the change does not fit the inventory:\n{d}"));
    let (plan, t_plan, h_plan) = stage(|| poolpatch_plans::plan(&inv, &change));
    let t_lvp = t0.elapsed();
    let h_lvp = heap_peak_since(start);
    let hwm_lvp = proc_status_bytes("VmHWM").unwrap_or(0);
    let heap_lvp = heap_peak_ever();
    // Each output is dropped once measured, as `poolpatch plan --format F` prints one.
    let (text, t_text, h_text) = stage(|| plan.to_text().len());
    let (md, t_md, h_md) = stage(|| plan.to_markdown().len());
    let (json, t_json, h_json) = stage(|| plan.to_json().len());
    let total = t0.elapsed();
    let (verified, verify, _) = stage(|| change.verify_installers());
    let scheduled = plan.totals.servers_scheduled;
    let not_scheduled = plan.not_scheduled().count();
    let out_of_scope = plan.totals.servers_out_of_scope;
    let plan_duration = plan.totals.duration;
    drop((plan, change, inv));
    // The first stage of from_str on its own, to tell YAML parsing from reading values.
    let (tree, t_yaml, h_yaml) =
        stage(|| poolpatch_inventory::yaml::parse("estate.yaml", inventory_yaml).is_ok());
    assert!(tree);
    verified.unwrap_or_else(|d| panic!("installer files:\n{d}"));
    let h_total = h_inv
        .max(h_ch)
        .max(h_chk)
        .max(h_plan)
        .max(h_text)
        .max(h_md)
        .max(h_json);
    Run {
        times: [
            t_inv, t_ch, t_chk, t_plan, t_text, t_md, t_json, total, t_lvp, t_yaml,
        ],
        heap: [
            h_inv, h_ch, h_chk, h_plan, h_text, h_md, h_json, h_total, h_lvp, h_yaml,
        ],
        scheduled,
        not_scheduled,
        out_of_scope,
        plan_duration,
        rendered: [text, md, json],
        hwm_lvp,
        heap_lvp,
        verify,
    }
}

/// Live bytes held now above `start` (what the stages keep: inventory, change, plan).
fn heap_peak_since(start: usize) -> usize {
    heap_now().saturating_sub(start)
}

fn main() {
    let a = args();
    let pinned = a.one_core && pin_to_one_core();

    // The estate and the change (not timed).
    let t = Instant::now();
    let g = generate(&a.shape);
    let t_gen = t.elapsed();
    let dir = tempfile::tempdir().expect("temp dir");
    let installers = write_installers(dir.path(), 4096).expect("installer files");
    let mut rng = Rng::new(a.shape.seed ^ 0xC4A9);
    let mut pool_estimates: Vec<(String, u64)> = Vec::new();
    for p in &g.pool_names {
        if rng.chance(0.05) {
            pool_estimates.push((p.clone(), 13 + rng.below(3) as u64));
        }
    }
    // Most overrides are measured times that fit; a few are too slow for the budget, so the
    // plan also has servers that are not scheduled (and principals held back by them).
    let mut server_estimates: Vec<(String, u64)> = Vec::new();
    for s in &g.server_names {
        if rng.chance(0.01) {
            server_estimates.push((s.clone(), if rng.chance(0.2) { 21 } else { 14 }));
        }
    }
    let change_text = change_yaml(
        &installers,
        &ChangeShape {
            pools_at_once: 50,
            remote_dir: r"C:\ProgramData\poolpatch\updates",
            pool_estimates,
            server_estimates,
        },
    );

    println!(
        "poolpatch scale benchmark (release build: {})",
        !cfg!(debug_assertions)
    );
    println!(
        "estate: seed {:#x}, {} sites, {} pools ({} Enterprise, {} Standard Edition), {} patched servers ({} Back End, {} Standard Edition), {} Front Ends, {} mirrored pairs, {} back ends with collocated databases, {} paired pools, {} `after:` entries",
        a.shape.seed,
        a.shape.sites,
        g.pool_names.len(),
        g.enterprise_pools,
        g.standard_pools,
        g.server_names.len(),
        g.back_ends,
        g.standard_pools,
        g.front_ends,
        g.mirror_pairs,
        g.collocated,
        g.backup_pairs,
        g.after_edges
    );
    println!(
        "inventory YAML: {:.1} MiB, {} lines (generated in {} ms); change file: {} lines, concurrency 50 pools",
        mib(g.yaml.len() as u64),
        g.yaml.lines().count(),
        ms(t_gen),
        change_text.lines().count()
    );
    println!(
        "runs: {}; {}",
        a.runs,
        if pinned {
            "pinned to one CPU (sched_setaffinity)"
        } else {
            "not pinned"
        }
    );
    println!();

    let runs: Vec<Run> = (0..a.runs)
        .map(|_| run_once(&g.yaml, &change_text))
        .collect();
    let first = &runs[0];

    println!(
        "{:<40} {:>11} {:>11} {:>11} {:>11} {:>14}",
        "stage (milliseconds)",
        "wall first",
        "wall median",
        "wall min",
        "CPU median",
        "heap peak MiB"
    );
    println!("{}", "-".repeat(104));
    for (i, name) in STAGES.iter().enumerate() {
        let sample: Vec<Duration> = runs.iter().map(|r| r.times[i].wall).collect();
        let s = Summary::of(&sample);
        let cpu: Vec<Duration> = runs.iter().map(|r| r.times[i].cpu).collect();
        let cpu = Summary::of(&cpu);
        let heap = runs.iter().map(|r| r.heap[i]).max().unwrap_or(0);
        let heap = if i == 8 {
            format!("{:.1} held", mib(heap as u64))
        } else {
            format!("{:.1}", mib(heap as u64))
        };
        println!(
            "{:<40} {:>11} {:>11} {:>11} {:>11} {:>14}",
            name,
            ms(first.times[i].wall),
            ms(s.median),
            ms(s.min),
            ms(cpu.median),
            heap
        );
    }
    println!(
        "{:<40} {:>11}   (read and hash the installer files; not in the total)",
        "verify installers",
        ms(first.verify.wall)
    );
    println!();
    println!(
        "plan: {} servers scheduled, {} not scheduled, {} out of scope; predicted duration {}",
        first.scheduled,
        first.not_scheduled,
        first.out_of_scope,
        humanize(first.plan_duration)
    );
    println!(
        "rendered: text {:.1} MiB, markdown {:.1} MiB, json {:.1} MiB",
        mib(first.rendered[0] as u64),
        mib(first.rendered[1] as u64),
        mib(first.rendered[2] as u64)
    );

    let hwm = proc_status_bytes("VmHWM").unwrap_or(0);
    let rss = proc_status_bytes("VmRSS").unwrap_or(0);
    println!();
    println!(
        "memory (whole process, including the generated YAML text of {:.1} MiB):",
        mib(g.yaml.len() as u64)
    );
    println!(
        "  after load + validate + plan (first run, before rendering): peak RSS (VmHWM) {:.1} MiB, peak live heap {:.1} MiB",
        mib(first.hwm_lvp),
        mib(first.heap_lvp as u64)
    );
    println!(
        "  at the end (all runs, rendering included):                  peak RSS (VmHWM) {:.1} MiB, peak live heap {:.1} MiB; RSS now {:.1} MiB",
        mib(hwm),
        mib(heap_peak_ever() as u64),
        mib(rss)
    );

    let lvp = Summary::of(&runs.iter().map(|r| r.times[8].wall).collect::<Vec<_>>()).median;
    let lvp_cpu = Summary::of(&runs.iter().map(|r| r.times[8].cpu).collect::<Vec<_>>()).median;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!();
    println!(
        "load average now: {} (wall time counts time other processes held the CPU; CPU time does not)",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("targets:");
    println!(
        "  load + validate + plan < 1 s on one core (median of {} runs): wall {} ms -> {}; CPU {} ms -> {}",
        a.runs,
        ms(lvp),
        verdict(lvp < TARGET_TIME),
        ms(lvp_cpu),
        verdict(lvp_cpu < TARGET_TIME)
    );
    println!(
        "  load + validate + plan in < 200 MB (VmHWM after the plan): {:.1} MB -> {}",
        first.hwm_lvp as f64 / 1e6,
        verdict(first.hwm_lvp < TARGET_BYTES)
    );
    println!(
        "  (whole run incl. rendering one format at a time < 200 MB (VmHWM at the end): {:.1} MB -> {})",
        hwm as f64 / 1e6,
        verdict(hwm < TARGET_BYTES)
    );
}

fn verdict(ok: bool) -> &'static str {
    if ok { "MET" } else { "NOT MET" }
}

fn humanize(d: Duration) -> String {
    let m = d.as_secs() / 60;
    format!("{}h {:02}m", m / 60, m % 60)
}
