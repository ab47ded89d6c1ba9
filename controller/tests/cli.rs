//! The `poolpatch` binary as a user meets it: exit codes (0 ok, 1 incomplete, 2 invalid
//! input, 3 cannot start, 4 breach) and the messages that go with them, and a whole
//! `poolpatch run` against `poolpatch simulate` started as a separate process.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use poolpatch::journal::{self, Event};
use poolpatch::lock::InventoryLock;

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

fn example_inventory() -> PathBuf {
    root().join("inventory/examples/estate.yaml")
}

fn example_change() -> PathBuf {
    root().join("plans/examples/change.yaml")
}

fn poolpatch() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_poolpatch"));
    c.env_remove("RUST_LOG").stdin(Stdio::null());
    c
}

/// What a run of the binary showed.
struct Shown {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Shown {
    fn from(out: Output) -> Shown {
        Shown {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    #[track_caller]
    fn expect(&self, code: i32) -> &Shown {
        assert_eq!(
            self.code,
            Some(code),
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

fn run<I, S>(args: I) -> Shown
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Shown::from(poolpatch().args(args).output().expect("poolpatch runs"))
}

/// The example change with its installer paths made absolute, so that it can be copied.
fn change_text() -> String {
    let updates = root().join("plans/examples/updates");
    std::fs::read_to_string(example_change())
        .expect("example change")
        .replace("file: updates/", &format!("file: {}/", updates.display()))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("writes");
    p
}

#[test]
fn help_lists_the_exit_codes_and_simulate() {
    let shown = run(["--help"]);
    shown.expect(0);
    for line in [
        "Exit codes:",
        "0   everything asked for was done",
        "1   done, but not everything",
        "2   invalid input",
        "3   cannot start",
        "4   a breach",
    ] {
        assert!(shown.stdout.contains(line), "{line}: {}", shown.stdout);
    }
    assert!(shown.stdout.contains("simulate"), "{}", shown.stdout);
    let sim = run(["simulate", "--help"]);
    sim.expect(0);
    assert!(
        sim.stdout
            .contains("Rehearse `poolpatch run` against your own inventory"),
        "{}",
        sim.stdout
    );
}

#[test]
fn check_accepts_the_examples() {
    let shown = run([
        "check".as_ref(),
        "--inventory".as_ref(),
        example_inventory().as_os_str(),
        "--change".as_ref(),
        example_change().as_os_str(),
    ]);
    shown.expect(0);
    assert!(
        shown.stdout.contains(&format!(
            "{}: valid: Contoso CU 2024-07 (Lync 2013, SfB 2015, SfB 2019), 3 installer(s) match their SHA-256",
            example_change().display()
        )),
        "{}",
        shown.stdout
    );
    assert!(
        shown.stdout.contains(&format!(
            "{}: valid: 3 sites, 9 pools, 10 servers to patch",
            example_inventory().display()
        )),
        "{}",
        shown.stdout
    );
    assert!(shown.stderr.is_empty(), "{}", shown.stderr);
}

#[test]
fn check_shows_where_an_inventory_is_wrong() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(example_inventory())
        .expect("example")
        .replacen("product: sfb2019", "product: sfb2016", 1);
    let (line_no, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("sfb2016"))
        .expect("the changed line");
    let col = line.find("sfb2016").expect("column") + 1;
    let bad = write(dir.path(), "bad.yaml", &text);
    let shown = run(["check".as_ref(), "--inventory".as_ref(), bad.as_os_str()]);
    shown.expect(2);
    let e = &shown.stderr;
    assert!(
        e.contains(&format!(
            "{}:{}:{col}: pools[1].product: `sfb2016` is not a valid value",
            bad.display(),
            line_no + 1
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!("{} | {line}", line_no + 1)),
        "the snippet: {e}"
    );
    assert!(e.contains("help: did you mean `sfb2015`?"), "{e}");
    assert!(e.contains("1 problem found"), "{e}");
    assert!(shown.stdout.is_empty(), "{}", shown.stdout);
}

#[test]
fn check_refuses_an_installer_with_another_sha256() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = "de3f7df6fe1cf5584e078a0bf8760ab755639ebbaf6c4494760a3df1de763777";
    let text = change_text();
    assert!(text.contains(good));
    let wrong = write(
        dir.path(),
        "change.yaml",
        &text.replace(good, &"ab".repeat(32)),
    );
    let shown = run([
        "check".as_ref(),
        "--inventory".as_ref(),
        example_inventory().as_os_str(),
        "--change".as_ref(),
        wrong.as_os_str(),
    ]);
    shown.expect(2);
    assert!(
        shown.stderr.contains("update.installers.sfb2015.sha256")
            && shown
                .stderr
                .contains(&format!("has SHA-256 {good}, not the")),
        "{}",
        shown.stderr
    );
    assert!(
        !shown.stdout.contains("valid"),
        "nothing is called valid: {}",
        shown.stdout
    );
}

#[test]
fn graph_prints_dot_and_mermaid() {
    let inv = example_inventory();
    let dot = run([
        "graph".as_ref(),
        "-i".as_ref(),
        inv.as_os_str(),
        "--format".as_ref(),
        "dot".as_ref(),
    ]);
    dot.expect(0);
    let first: Vec<&str> = dot
        .stdout
        .lines()
        .filter(|l| !l.starts_with("//"))
        .take(1)
        .collect();
    assert_eq!(first, ["digraph poolpatch {"], "{}", dot.stdout);
    assert!(dot.stdout.trim_end().ends_with('}'));
    assert!(dot.stdout.contains("be01.ams.contoso.com"));
    let mermaid = run([
        "graph".as_ref(),
        "-i".as_ref(),
        inv.as_os_str(),
        "--format".as_ref(),
        "mermaid".as_ref(),
    ]);
    mermaid.expect(0);
    let first: Vec<&str> = mermaid
        .stdout
        .lines()
        .filter(|l| !l.starts_with("%%"))
        .take(1)
        .collect();
    assert_eq!(first, ["flowchart LR"], "{}", mermaid.stdout);
    assert!(mermaid.stdout.contains("be01.ams.contoso.com"));
}

#[test]
fn plan_in_three_formats() {
    let args = |format: &str| {
        run([
            "plan".as_ref(),
            "-i".as_ref(),
            example_inventory().as_os_str(),
            "-c".as_ref(),
            example_change().as_os_str(),
            "--format".as_ref(),
            format.as_ref(),
        ])
    };
    let text = args("text");
    text.expect(0);
    assert!(
        text.stdout
            .starts_with("poolpatch plan: Contoso CU 2024-07 (Lync 2013, SfB 2015, SfB 2019)"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("Install-CsDatabase -Update -LocalDatabases")
    );
    let md = args("md");
    md.expect(0);
    assert!(
        md.stdout
            .starts_with("# Plan: Contoso CU 2024-07 (Lync 2013, SfB 2015, SfB 2019)"),
        "{}",
        md.stdout
    );
    let json = args("json");
    json.expect(0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("the plan is JSON");
    assert_eq!(v["schema"], "poolpatch.plan/v1");
    assert_eq!(
        v["change"]["name"],
        "Contoso CU 2024-07 (Lync 2013, SfB 2015, SfB 2019)"
    );
    for shown in [&text, &md, &json] {
        assert!(shown.stderr.is_empty(), "{}", shown.stderr);
    }
}

#[test]
fn plan_with_a_budget_too_small_for_some_servers_is_incomplete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = change_text();
    assert!(text.contains("budget: 25m "));
    // 24 minutes is enough for most servers, not for New York's back end (5-minute
    // database update) nor for Tokyo's Lync 2013 servers (14-minute installer).
    let change = write(
        dir.path(),
        "change.yaml",
        &text.replace("budget: 25m ", "budget: 24m "),
    );
    let shown = run([
        "plan".as_ref(),
        "-i".as_ref(),
        example_inventory().as_os_str(),
        "-c".as_ref(),
        change.as_os_str(),
    ]);
    shown.expect(1);
    assert!(
        shown.stderr.contains(
            "warning: 4 server(s) in scope are not scheduled; the plan says why and what would fix it"
        ),
        "{}",
        shown.stderr
    );
    assert!(
        shown.stdout.contains(
            "why      NOT SCHEDULED (over-budget): the predicted outage of be01.nyc.contoso.com"
        ),
        "{}",
        shown.stdout
    );
}

#[test]
fn plan_names_a_missing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-change.yaml");
    let shown = run([
        "plan".as_ref(),
        "-i".as_ref(),
        example_inventory().as_os_str(),
        "-c".as_ref(),
        missing.as_os_str(),
    ]);
    shown.expect(2);
    assert!(
        shown.stderr.contains(&format!(
            "{}:1:1: cannot read the file: no such file",
            missing.display()
        )),
        "{}",
        shown.stderr
    );
    let missing_inventory = dir.path().join("no-such-estate.yaml");
    let shown = run([
        "plan".as_ref(),
        "-i".as_ref(),
        missing_inventory.as_os_str(),
        "-c".as_ref(),
        example_change().as_os_str(),
    ]);
    shown.expect(2);
    assert!(
        shown
            .stderr
            .contains(&missing_inventory.display().to_string()),
        "{}",
        shown.stderr
    );
    assert!(shown.stdout.is_empty(), "{}", shown.stdout);
}

/// A copy of the example inventory in `dir` (the lock file is written beside it).
fn inventory_copy(dir: &Path) -> PathBuf {
    write(
        dir,
        "estate.yaml",
        &std::fs::read_to_string(example_inventory()).expect("example"),
    )
}

#[test]
fn run_refuses_to_start_while_another_controller_holds_the_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inventory = inventory_copy(dir.path());
    let holder = "ops@jumphost pid 4242, run runs/20260101T000000Z-cu";
    let lock = InventoryLock::acquire(&inventory, holder).expect("the lock");
    let run_dir = dir.path().join("run");
    let shown = run([
        "run".as_ref(),
        "-i".as_ref(),
        inventory.as_os_str(),
        "-c".as_ref(),
        example_change().as_os_str(),
        "--run-dir".as_ref(),
        run_dir.as_os_str(),
        "--plain".as_ref(),
    ]);
    shown.expect(3);
    assert!(
        shown.stderr.contains(&format!(
            "another poolpatch is working on this inventory ({holder})"
        )),
        "{}",
        shown.stderr
    );
    assert!(!run_dir.exists(), "nothing was written");
    drop(lock);
}

#[test]
fn run_refuses_a_run_directory_that_holds_a_journal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inventory = inventory_copy(dir.path());
    let run_dir = dir.path().join("run");
    std::fs::create_dir_all(&run_dir).expect("run dir");
    let old = b"{\"an\": \"earlier run\"}\n";
    std::fs::write(run_dir.join(journal::JOURNAL_FILE), old).expect("journal");
    let shown = run([
        "run".as_ref(),
        "-i".as_ref(),
        inventory.as_os_str(),
        "-c".as_ref(),
        example_change().as_os_str(),
        "--run-dir".as_ref(),
        run_dir.as_os_str(),
        "--plain".as_ref(),
    ]);
    shown.expect(3);
    assert!(
        shown.stderr.contains(&format!(
            "cannot use the run directory {}: it already holds a journal",
            run_dir.display()
        )),
        "{}",
        shown.stderr
    );
    assert_eq!(
        std::fs::read(run_dir.join(journal::JOURNAL_FILE)).expect("journal"),
        old,
        "the earlier journal is untouched"
    );
}

#[test]
fn status_of_a_missing_run_directory_is_invalid_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-run");
    let shown = run(["status".as_ref(), "--run".as_ref(), missing.as_os_str()]);
    shown.expect(2);
    assert!(
        shown.stderr.contains(&missing.display().to_string()),
        "{}",
        shown.stderr
    );
}

#[test]
fn simulate_refuses_addresses_that_are_not_loopback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(example_inventory())
        .expect("example")
        .replace(
            "ssh: { address: 127.0.0.21 }",
            "ssh: { address: 10.1.2.21 }",
        );
    let inventory = write(dir.path(), "estate.yaml", &text);
    let sim = dir.path().join("sim");
    let shown = run([
        "simulate".as_ref(),
        "-i".as_ref(),
        inventory.as_os_str(),
        "--dir".as_ref(),
        sim.as_os_str(),
    ]);
    shown.expect(2);
    assert!(
        shown
            .stderr
            .contains("be01.nyc.contoso.com: ssh.address `10.1.2.21` is not a loopback address"),
        "{}",
        shown.stderr
    );
    assert!(shown.stderr.contains("127.0.0.x"), "{}", shown.stderr);
    assert!(!sim.exists(), "nothing was written");
}

#[test]
fn simulate_does_not_replace_key_files_it_did_not_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ssh = dir.path().join("dot-ssh");
    std::fs::create_dir_all(&ssh).expect("dir");
    std::fs::write(ssh.join("id_ed25519"), "the operator's own key").expect("key");
    let shown = run([
        "simulate".as_ref(),
        "-i".as_ref(),
        example_inventory().as_os_str(),
        "--dir".as_ref(),
        ssh.as_os_str(),
    ]);
    shown.expect(3);
    assert!(
        shown
            .stderr
            .contains("already holds id_ed25519 not written by `poolpatch simulate`"),
        "{}",
        shown.stderr
    );
    assert_eq!(
        std::fs::read_to_string(ssh.join("id_ed25519")).expect("key"),
        "the operator's own key"
    );
}

/// `poolpatch simulate` as a child process, killed (by its pid) when dropped.
struct Simulator {
    child: Child,
    lines: mpsc::Receiver<String>,
    shown: Vec<String>,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Simulator {
    /// Starts it and reads its output up to `ready`; None if it exited first (a port taken
    /// meanwhile: the caller picks others).
    fn start(inventory: &Path, dir: &Path, change: &Path, home: &Path) -> Option<Simulator> {
        let mut child = poolpatch()
            .arg("simulate")
            .arg("--inventory")
            .arg(inventory)
            .arg("--dir")
            .arg(dir)
            .arg("--change")
            .arg(change)
            .arg("--speed")
            .arg("100000")
            .env("HOME", home)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("poolpatch simulate starts");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text);
            text
        });
        let mut sim = Simulator {
            child,
            lines,
            shown: Vec::new(),
        };
        loop {
            // Generous: only a hang ends here (an exit disconnects at once).
            match sim.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    let ready = line == "ready";
                    sim.shown.push(line);
                    if ready {
                        return Some(sim);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!(
                        "simulate printed no `ready` in a minute:\n{}",
                        sim.shown.join("\n")
                    )
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = sim.child.wait().expect("simulate ended");
                    let err = errors.join().unwrap_or_default();
                    assert!(
                        status.code() == Some(3) && err.contains("cannot listen on"),
                        "simulate ended without `ready` ({status}):\n{}\n{err}",
                        sim.shown.join("\n")
                    );
                    eprintln!("simulate could not bind, retrying with other ports: {err}");
                    return None;
                }
            }
        }
    }

    /// The value printed for a `defaults.ssh` key (`  identity_file: '…'`).
    fn setting(&self, key: &str) -> String {
        let prefix = format!("  {key}: ");
        self.shown
            .iter()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no `{key}` line in:\n{}", self.shown.join("\n")))
            .to_string()
    }

    /// Stops it with SIGTERM (by its pid) and returns its exit code and last lines.
    fn terminate(mut self) -> (Option<i32>, Vec<String>) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        let status = self.child.wait().expect("simulate ends");
        // Its output ends with the process: read to the end.
        let rest: Vec<String> = self.lines.iter().collect();
        (status.code(), rest)
    }
}

/// The example inventory with each server at its own address on a free high port.
fn with_free_ports(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        match line.find("ssh: { address: ") {
            Some(at) => {
                let rest = &line[at + "ssh: { address: ".len()..];
                let address: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.')
                    .collect();
                let close = line[at..].find('}').expect("one line mapping") + at;
                let port = std::net::TcpListener::bind((address.as_str(), 0))
                    .and_then(|l| l.local_addr())
                    .expect("a free port")
                    .port();
                out.push_str(&line[..at]);
                out.push_str(&format!("ssh: {{ address: {address}, port: {port} }}"));
                out.push_str(&line[close + 1..]);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Replaces the value of `key:` in `defaults.ssh`.
fn set_default(text: &str, key: &str, value: &str) -> String {
    let mut done = false;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if !done && l.trim_start().starts_with(&format!("{key}:")) {
                done = true;
                format!("    {key}: {value}")
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(done, "no {key} in the inventory");
    out.join("\n") + "\n"
}

/// `poolpatch simulate` for a copy of the example inventory in `d` whose servers have
/// free high ports (picked again if one is taken before the simulator binds it).
fn simulated(d: &Path, sim_dir: &Path, change: &Path, home: &Path) -> (PathBuf, Simulator) {
    let example = std::fs::read_to_string(example_inventory()).expect("example");
    let mut attempt = 0;
    loop {
        attempt += 1;
        let inventory = write(d, "estate.yaml", &with_free_ports(&example));
        if let Some(sim) = Simulator::start(&inventory, sim_dir, change, home) {
            return (inventory, sim);
        }
        assert!(attempt < 5, "no free ports after {attempt} attempts");
    }
}

/// Points the inventory's `defaults.ssh` at the files `sim` wrote, with the two lines it
/// printed.
fn use_simulator_files(inventory: &Path, sim: &Simulator) {
    let text = std::fs::read_to_string(inventory).expect("inventory");
    let text = set_default(&text, "identity_file", &sim.setting("identity_file"));
    let text = set_default(&text, "known_hosts", &sim.setting("known_hosts"));
    std::fs::write(inventory, text).expect("inventory");
}

#[test]
fn run_against_simulate_in_two_processes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let home = d.join("home");
    std::fs::create_dir_all(&home).expect("home");
    let change = write(d, "change.yaml", &change_text());
    let sim_dir = d.join("sim");
    let (inventory, sim) = simulated(d, &sim_dir, &change, &home);
    // One line per host at the address and port of the inventory.
    let text = std::fs::read_to_string(&inventory).expect("inventory");
    for (fqdn, address) in [
        ("be01.ams.contoso.com", "127.0.0.11"),
        ("se02.tyo.contoso.com", "127.0.0.33"),
    ] {
        let port = text
            .lines()
            .find_map(|l| {
                l.split(&format!("address: {address}, port: "))
                    .nth(1)
                    .map(|p| p.trim_end_matches(" }").to_string())
            })
            .expect("the port");
        assert!(
            sim.shown.iter().any(|l| l
                .trim_start()
                .starts_with(&format!("{fqdn} → {address}:{port} "))),
            "{fqdn}: {}",
            sim.shown.join("\n")
        );
    }
    assert!(sim_dir.join("id_ed25519").exists());
    assert!(sim_dir.join("known_hosts").exists());
    // The lines it says to set are valid YAML values that name its files.
    let identity = sim.setting("identity_file");
    let known_hosts = sim.setting("known_hosts");
    let canonical = sim_dir.canonicalize().expect("sim dir");
    assert_eq!(
        identity,
        format!("'{}'", canonical.join("id_ed25519").display())
    );
    let text = set_default(&text, "identity_file", &identity);
    let text = set_default(&text, "known_hosts", &known_hosts);
    std::fs::write(&inventory, text).expect("inventory");

    let run_dir = d.join("run");
    let shown = Shown::from(
        poolpatch()
            .arg("run")
            .arg("--inventory")
            .arg(&inventory)
            .arg("--change")
            .arg(&change)
            .arg("--run-dir")
            .arg(&run_dir)
            .arg("--plain")
            .env("HOME", &home)
            .output()
            .expect("poolpatch run"),
    );
    shown.expect(0);
    assert!(
        shown
            .stdout
            .contains("10 done, 0 failed or restored unfinished, 0 skipped, 0 breaches"),
        "{}",
        shown.stdout
    );
    assert!(
        shown.stdout.contains(&format!(
            "status:  poolpatch status --run {}",
            run_dir.display()
        )),
        "{}",
        shown.stdout
    );
    let records = journal::read(&run_dir).expect("the journal").records;
    let uploads = records
        .iter()
        .filter(|r| matches!(r.event, Event::Uploaded { .. }))
        .count();
    assert_eq!(uploads, 10, "every host received its installer");
    let done = records
        .iter()
        .filter(|r| matches!(r.event, Event::ServerDone { .. }))
        .count();
    assert_eq!(done, 10);

    let status = run(["status".as_ref(), "--run".as_ref(), run_dir.as_os_str()]);
    status.expect(0);
    assert!(status.stdout.contains("— finished"), "{}", status.stdout);
    assert!(
        status.stdout.contains(
            "servers:  10 done, 0 in flight, 0 failed or restored unfinished, 0 skipped, 0 pending"
        ),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("breaches: none"),
        "{}",
        status.stdout
    );

    let (code, rest) = sim.terminate();
    assert_eq!(code, Some(0), "{rest:?}");
    assert!(
        rest.iter().any(|l| l == "poolpatch simulate: stopped"),
        "{rest:?}"
    );
    // Nothing was written where the operator's own keys live.
    assert!(!home.join(".ssh").exists());
}

#[test]
fn run_leaving_servers_unscheduled_is_incomplete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let home = d.join("home");
    std::fs::create_dir_all(&home).expect("home");
    let full = write(d, "change.yaml", &change_text());
    // 24 minutes: New York's back end and Tokyo's three servers are not scheduled.
    let small = write(
        d,
        "change-24m.yaml",
        &change_text().replace("budget: 25m ", "budget: 24m "),
    );
    let (inventory, sim) = simulated(d, &d.join("sim"), &full, &home);
    use_simulator_files(&inventory, &sim);
    let run_dir = d.join("run");
    let shown = Shown::from(
        poolpatch()
            .arg("run")
            .arg("--inventory")
            .arg(&inventory)
            .arg("--change")
            .arg(&small)
            .arg("--run-dir")
            .arg(&run_dir)
            .arg("--plain")
            .env("HOME", &home)
            .output()
            .expect("poolpatch run"),
    );
    shown.expect(1);
    assert!(
        shown
            .stdout
            .contains("6 done, 0 failed or restored unfinished, 0 skipped, 0 breaches"),
        "{}",
        shown.stdout
    );
    assert!(
        shown
            .stdout
            .contains("not scheduled: 4 server(s) in scope (`poolpatch plan` says why)"),
        "{}",
        shown.stdout
    );
    assert!(
        shown
            .stderr
            .contains("warning: be01.nyc.contoso.com is not scheduled: the predicted outage"),
        "{}",
        shown.stderr
    );
    let (code, _) = sim.terminate();
    assert_eq!(code, Some(0));
}
