//! # poolpatch-bench
//!
//! Shared pieces of poolpatch's benchmark binaries (`scale`, `executor`): a seeded estate
//! generator that writes inventory YAML text, change files with real installer files, a
//! counting global allocator, `/proc/self/status` readers and percentile statistics.
//!
//! The binaries print figures; nothing here asserts a timing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

// ---------------------------------------------------------------------------------------
// Memory

static HEAP_NOW: AtomicUsize = AtomicUsize::new(0);
static HEAP_PEAK: AtomicUsize = AtomicUsize::new(0);
static HEAP_PEAK_EVER: AtomicUsize = AtomicUsize::new(0);

/// A global allocator that counts live heap bytes and their peak. Declare it in a binary
/// with `#[global_allocator] static ALLOC: CountingAlloc = CountingAlloc;`.
pub struct CountingAlloc;

impl CountingAlloc {
    fn grew(by: usize) {
        let now = HEAP_NOW.fetch_add(by, Ordering::Relaxed) + by;
        // Read first: the read-modify-writes happen only when a peak is passed.
        if now > HEAP_PEAK.load(Ordering::Relaxed) {
            HEAP_PEAK.fetch_max(now, Ordering::Relaxed);
        }
        if now > HEAP_PEAK_EVER.load(Ordering::Relaxed) {
            HEAP_PEAK_EVER.fetch_max(now, Ordering::Relaxed);
        }
    }
    fn shrank(by: usize) {
        HEAP_NOW.fetch_sub(by, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are
// updated besides.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) };
        Self::shrank(layout.size());
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                Self::grew(new_size - layout.size());
            } else {
                Self::shrank(layout.size() - new_size);
            }
        }
        p
    }
}

/// Live heap bytes now (0 unless [`CountingAlloc`] is the global allocator).
pub fn heap_now() -> usize {
    HEAP_NOW.load(Ordering::Relaxed)
}

/// Peak of live heap bytes since the start or the last [`reset_heap_peak`].
pub fn heap_peak() -> usize {
    HEAP_PEAK.load(Ordering::Relaxed)
}

/// Peak of live heap bytes since the process started (never reset).
pub fn heap_peak_ever() -> usize {
    HEAP_PEAK_EVER.load(Ordering::Relaxed)
}

/// Starts a new peak measurement from the current live bytes.
pub fn reset_heap_peak() {
    HEAP_PEAK.store(heap_now(), Ordering::Relaxed);
}

/// A field of `/proc/self/status` in bytes (`VmHWM`, `VmRSS`), if readable.
pub fn proc_status_bytes(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kb * 1024)
    })
}

/// `n` bytes in MiB.
pub fn mib(n: u64) -> f64 {
    n as f64 / (1024.0 * 1024.0)
}

/// Raises the soft open-file limit to the hard limit; returns (soft before, soft after,
/// hard).
// `rlim_t` is u64 on Linux but not everywhere.
#[allow(clippy::unnecessary_cast)]
pub fn raise_nofile_limit() -> std::io::Result<(u64, u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let before = lim.rlim_cur as u64;
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok((before, lim.rlim_cur as u64, lim.rlim_max as u64))
    }
}

// ---------------------------------------------------------------------------------------
// Statistics

/// Percentiles of a sample of durations.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    /// Sample size.
    pub n: usize,
    /// Smallest.
    pub min: Duration,
    /// Median.
    pub median: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest.
    pub max: Duration,
    /// Mean.
    pub mean: Duration,
}

impl Summary {
    /// The summary of `sample` (nearest-rank percentiles).
    pub fn of(sample: &[Duration]) -> Summary {
        if sample.is_empty() {
            return Summary::default();
        }
        let mut v = sample.to_vec();
        v.sort_unstable();
        let rank = |p: f64| {
            let i = ((p / 100.0) * v.len() as f64).ceil() as usize;
            v[i.clamp(1, v.len()) - 1]
        };
        let total: Duration = v.iter().sum();
        Summary {
            n: v.len(),
            min: v[0],
            median: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: v[v.len() - 1],
            mean: total / v.len() as u32,
        }
    }
}

/// A duration in milliseconds with three decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

// ---------------------------------------------------------------------------------------
// A seeded generator

/// SplitMix64: small, fast, and the same sequence on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// The shape of a generated estate.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Seed of the generator.
    pub seed: u64,
    /// Sites (at least 1).
    pub sites: usize,
    /// Pools (at least 1).
    pub pools: usize,
    /// Exactly this many patched servers (Back End + Standard Edition); `None`: 1–2 back
    /// ends per Enterprise pool.
    pub patched: Option<usize>,
    /// At most this many back ends in an Enterprise pool (when `patched` is set).
    pub max_back_ends: usize,
    /// Share of Standard Edition pools.
    pub standard_share: f64,
    /// Share of Enterprise pools (with 2+ back ends) whose back ends are mirrored in pairs.
    pub mirror_share: f64,
    /// Share of back ends with collocated databases.
    pub collocated_share: f64,
    /// Share of pools that look for a backup partner (of the same edition and product, in
    /// another site).
    pub paired_share: f64,
    /// Share of pools with an `after:` list (1–2 earlier pools: acyclic by construction).
    pub after_share: f64,
    /// `shell:` of `defaults.ssh`.
    pub shell: &'static str,
}

impl Shape {
    /// The scale estate: 10,000 patched servers in 2,000 pools across 50 sites.
    pub fn scale() -> Shape {
        Shape {
            seed: 0x5EED_2013,
            sites: 50,
            pools: 2000,
            patched: Some(10_000),
            max_back_ends: 10,
            standard_share: 0.15,
            mirror_share: 0.4,
            collocated_share: 0.15,
            paired_share: 0.3,
            after_share: 0.2,
            shell: "powershell",
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, Default)]
pub struct Generated {
    /// The inventory file's text.
    pub yaml: String,
    /// Pool FQDNs in file order.
    pub pool_names: Vec<String>,
    /// Patched server FQDNs in file order.
    pub server_names: Vec<String>,
    /// Counts.
    pub enterprise_pools: usize,
    /// Standard Edition pools (= servers).
    pub standard_pools: usize,
    /// Front End servers.
    pub front_ends: usize,
    /// Back End servers.
    pub back_ends: usize,
    /// Mirrored back-end pairs.
    pub mirror_pairs: usize,
    /// Back ends with collocated databases.
    pub collocated: usize,
    /// Paired pools (pairs).
    pub backup_pairs: usize,
    /// `after:` entries.
    pub after_edges: usize,
}

const ZONES: [&str; 25] = [
    "Europe/Amsterdam",
    "Europe/Berlin",
    "Europe/London",
    "Europe/Paris",
    "Europe/Madrid",
    "Europe/Stockholm",
    "Europe/Warsaw",
    "Europe/Istanbul",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Toronto",
    "America/Sao_Paulo",
    "America/Mexico_City",
    "Asia/Tokyo",
    "Asia/Singapore",
    "Asia/Kolkata",
    "Asia/Dubai",
    "Asia/Shanghai",
    "Asia/Seoul",
    "Australia/Sydney",
    "Africa/Johannesburg",
    "Pacific/Auckland",
    "UTC",
];

const PRODUCTS: [&str; 3] = ["lync2013", "sfb2015", "sfb2019"];
const DATABASES: [&str; 4] = [
    "archiving",
    "monitoring",
    "persistent_chat",
    "persistent_chat_compliance",
];

struct GenPool {
    standard: bool,
    product: usize,
    site: usize,
    back_ends: usize,
    front_ends: usize,
    mirrored: bool,
    backup: Option<usize>,
    after: Vec<usize>,
}

/// The address of the `n`th patched server: its own loopback address in 127.0.0.0/8,
/// never ending in .0 or .255.
pub fn loopback_address(n: usize) -> String {
    let host = n % 250 + 1;
    let mid = (n / 250) % 250;
    let top = n / (250 * 250) + 1;
    format!("127.{top}.{mid}.{host}")
}

fn site_name(i: usize) -> String {
    format!("site{i:02}")
}

fn pool_fqdn(p: &GenPool, i: usize) -> String {
    let kind = if p.standard { "se" } else { "pool" };
    format!("{kind}{i:04}.{}.contoso.com", site_name(p.site))
}

/// Generates an estate of `shape` as inventory YAML text. The same shape gives the same
/// bytes.
pub fn generate(shape: &Shape) -> Generated {
    let mut rng = Rng::new(shape.seed);
    let sites = shape.sites.max(1);
    let mut pools: Vec<GenPool> = (0..shape.pools.max(1))
        .map(|_| {
            let standard = rng.chance(shape.standard_share);
            let product = match rng.below(10) {
                0..=2 => 0,
                3..=7 => 1,
                _ => 2,
            };
            GenPool {
                standard,
                product,
                site: rng.below(sites),
                back_ends: if standard { 0 } else { 1 },
                front_ends: if standard { 0 } else { rng.range(2, 4) },
                mirrored: false,
                backup: None,
                after: Vec::new(),
            }
        })
        .collect();
    // Back ends.
    let ee: Vec<usize> = (0..pools.len()).filter(|&i| !pools[i].standard).collect();
    match shape.patched {
        None => {
            for &i in &ee {
                pools[i].back_ends = rng.range(1, 2);
            }
        }
        Some(target) => {
            let have = pools.len();
            let cap = ee.len() * shape.max_back_ends.max(1) + (have - ee.len());
            assert!(
                target >= have && target <= cap && !ee.is_empty(),
                "{target} patched servers do not fit {have} pools ({} Enterprise, at most {} back ends each)",
                ee.len(),
                shape.max_back_ends
            );
            let mut left = target - have;
            while left > 0 {
                let i = ee[rng.below(ee.len())];
                if pools[i].back_ends < shape.max_back_ends {
                    pools[i].back_ends += 1;
                    left -= 1;
                }
            }
        }
    }
    for &i in &ee {
        pools[i].mirrored = pools[i].back_ends >= 2 && rng.chance(shape.mirror_share);
    }
    // Paired pools: like with like, in another site, one to one.
    let mut pending: [[Option<usize>; 3]; 2] = [[None; 3]; 2];
    for i in 0..pools.len() {
        if !rng.chance(shape.paired_share) {
            continue;
        }
        let slot = &mut pending[usize::from(pools[i].standard)][pools[i].product];
        match *slot {
            Some(j) if pools[j].site != pools[i].site => {
                pools[i].backup = Some(j);
                pools[j].backup = Some(i);
                *slot = None;
            }
            Some(_) => {}
            None => *slot = Some(i),
        }
    }
    // `after:` only names earlier pools (acyclic), never the pool's own partner.
    for (i, pool) in pools.iter_mut().enumerate().skip(1) {
        if !rng.chance(shape.after_share) {
            continue;
        }
        let lo = i.saturating_sub(60);
        for _ in 0..rng.range(1, 2) {
            let j = rng.range(lo, i - 1);
            if pool.backup != Some(j) && !pool.after.contains(&j) {
                pool.after.push(j);
            }
        }
    }

    let mut g = Generated::default();
    let mut y = String::with_capacity(pools.len() * 900);
    let _ = write!(
        y,
        "# Generated by poolpatch-bench (seed {:#x}): {} pools across {} sites.\nversion: 1\ndefaults:\n  ssh:\n    user: svc-poolpatch\n    identity_file: /etc/poolpatch/id_ed25519\n    known_hosts: /etc/poolpatch/known_hosts\n    shell: {}\nsites:\n",
        shape.seed,
        pools.len(),
        sites,
        shape.shell
    );
    for s in 0..sites {
        let _ = writeln!(
            y,
            "  - name: {}\n    time_zone: {}",
            site_name(s),
            ZONES[s % ZONES.len()]
        );
    }
    y.push_str("pools:\n");
    let names: Vec<String> = pools
        .iter()
        .enumerate()
        .map(|(i, p)| pool_fqdn(p, i))
        .collect();
    let mut n = 0usize;
    for (i, p) in pools.iter().enumerate() {
        let name = &names[i];
        let site = site_name(p.site);
        let edition = if p.standard { "standard" } else { "enterprise" };
        let _ = write!(
            y,
            "  - fqdn: {name}\n    site: {site}\n    edition: {edition}\n    product: {}\n",
            PRODUCTS[p.product]
        );
        // A pairing is written on the first pool's side, and on both sides for some.
        if let Some(b) = p.backup
            && (b > i || i % 3 == 0)
        {
            let _ = writeln!(y, "    backup_pool: {}", names[b]);
        }
        if b_first(p, i) {
            g.backup_pairs += 1;
        }
        if !p.after.is_empty() {
            let list: Vec<&str> = p.after.iter().map(|&j| names[j].as_str()).collect();
            let _ = writeln!(y, "    after: [{}]", list.join(", "));
            g.after_edges += list.len();
        }
        if p.standard {
            g.standard_pools += 1;
            let _ = writeln!(
                y,
                "    server:\n      ssh: {{ address: {} }}",
                loopback_address(n)
            );
            g.server_names.push(name.clone());
            n += 1;
        } else {
            g.enterprise_pools += 1;
            y.push_str("    front_ends:\n");
            for k in 0..p.front_ends {
                let _ = writeln!(
                    y,
                    "      - {{ fqdn: fe{:02}.{name}, upgrade_domain: UD{} }}",
                    k + 1,
                    k + 1
                );
            }
            g.front_ends += p.front_ends;
            y.push_str("    back_ends:\n");
            let be = |k: usize| format!("be{:02}.{name}", k + 1);
            for k in 0..p.back_ends {
                let fqdn = be(k);
                let _ = write!(y, "      - fqdn: {fqdn}\n        sql_server: {fqdn}\n");
                if p.mirrored && (k ^ 1) < p.back_ends {
                    // Principal on the even side in most pools, on the odd side in some.
                    let principal = (k % 2 == 0) == (i % 4 != 1);
                    let role = if principal { "principal" } else { "mirror" };
                    let _ = writeln!(
                        y,
                        "        mirror: {{ role: {role}, partner: {} }}",
                        be(k ^ 1)
                    );
                    if k % 2 == 0 {
                        g.mirror_pairs += 1;
                    }
                }
                if rng.chance(shape.collocated_share) {
                    let bits = rng.range(1, 15);
                    let dbs: Vec<&str> = (0..4)
                        .filter(|b| bits & (1 << b) != 0)
                        .map(|b| DATABASES[b])
                        .collect();
                    let _ = writeln!(y, "        collocated_databases: [{}]", dbs.join(", "));
                    g.collocated += 1;
                }
                let _ = writeln!(y, "        ssh: {{ address: {} }}", loopback_address(n));
                g.server_names.push(fqdn);
                n += 1;
            }
            g.back_ends += p.back_ends;
        }
    }
    g.pool_names = names;
    g.yaml = y;
    g
}

fn b_first(p: &GenPool, i: usize) -> bool {
    p.backup.is_some_and(|b| b > i)
}

// ---------------------------------------------------------------------------------------
// Change files

/// An installer file written for a change.
#[derive(Debug, Clone)]
pub struct InstallerFile {
    /// Product name as in change files.
    pub product: &'static str,
    /// The file.
    pub path: PathBuf,
    /// Its SHA-256.
    pub sha256: String,
    /// The version it installs.
    pub version: &'static str,
}

/// Writes a small installer file per product into `dir` (`bytes` each) and returns them.
pub fn write_installers(dir: &Path, bytes: usize) -> std::io::Result<Vec<InstallerFile>> {
    let versions = ["5.0.8308.1182", "6.0.9319.690", "7.0.2046.530"];
    let mut out = Vec::new();
    for (i, product) in PRODUCTS.iter().enumerate() {
        let d = dir.join(product);
        std::fs::create_dir_all(&d)?;
        let name = if i == 0 {
            "LyncServerUpdateInstaller.exe"
        } else {
            "SkypeServerUpdateInstaller.exe"
        };
        let path = d.join(name);
        let mut rng = Rng::new(0x1A57 + i as u64);
        let data: Vec<u8> = (0..bytes).map(|_| rng.next_u64() as u8).collect();
        std::fs::write(&path, &data)?;
        out.push(InstallerFile {
            product,
            path,
            sha256: poolpatch::sim::sha256_hex(&data),
            version: versions[i],
        });
    }
    Ok(out)
}

/// What a generated change file says beyond its installers.
#[derive(Debug, Clone)]
pub struct ChangeShape {
    /// `concurrency.pools`.
    pub pools_at_once: u32,
    /// `remote_dir`.
    pub remote_dir: &'static str,
    /// `estimates.pools`: (pool, install-update minutes).
    pub pool_estimates: Vec<(String, u64)>,
    /// `estimates.servers`: (server, install-update minutes).
    pub server_estimates: Vec<(String, u64)>,
}

/// A change file text with absolute installer paths.
pub fn change_yaml(installers: &[InstallerFile], shape: &ChangeShape) -> String {
    let mut s = format!(
        "version: 1\nname: \"Benchmark CU\"\nupdate:\n  remote_dir: '{}'\n  min_free_space: 4GiB\n  installers:\n",
        shape.remote_dir
    );
    for i in installers {
        let _ = write!(
            s,
            "    {}:\n      file: '{}'\n      sha256: {}\n      version: \"{}\"\n",
            i.product,
            i.path.display(),
            i.sha256,
            i.version
        );
    }
    let _ = write!(
        s,
        "outage:\n  threshold: 30m\n  budget: 25m\n  on_budget_exhausted: restore\non_failure: halt-pool\nconcurrency: {{ pools: {} }}\nfinal_step: start-services\n",
        shape.pools_at_once
    );
    if !shape.pool_estimates.is_empty() || !shape.server_estimates.is_empty() {
        s.push_str("estimates:\n  defaults:\n    install-update: 12m\n");
        if !shape.pool_estimates.is_empty() {
            s.push_str("  pools:\n");
            for (p, m) in &shape.pool_estimates {
                let _ = writeln!(s, "    {p}: {{ install-update: {m}m }}");
            }
        }
        if !shape.server_estimates.is_empty() {
            s.push_str("  servers:\n");
            for (p, m) in &shape.server_estimates {
                let _ = writeln!(
                    s,
                    "    {p}: {{ install-update: {m}m, update-databases: 4m }}"
                );
            }
        }
    }
    s.push_str("timeouts:\n  connect: 15s\n  steps:\n    install-update: 45m\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_deterministic_and_counts_add_up() {
        let shape = Shape {
            pools: 200,
            patched: Some(1000),
            ..Shape::scale()
        };
        let a = generate(&shape);
        let b = generate(&shape);
        assert_eq!(a.yaml, b.yaml);
        assert_eq!(a.server_names.len(), 1000);
        assert_eq!(a.back_ends + a.standard_pools, 1000);
    }

    #[test]
    fn addresses_are_loopback_and_distinct() {
        let all: std::collections::BTreeSet<String> = (0..20_000).map(loopback_address).collect();
        assert_eq!(all.len(), 20_000);
        assert!(all.iter().all(|a| a.starts_with("127.")));
    }

    #[test]
    fn percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = Summary::of(&v);
        assert_eq!(s.median, Duration::from_millis(50));
        assert_eq!(s.p99, Duration::from_millis(99));
        assert_eq!(s.max, Duration::from_millis(100));
    }
}
