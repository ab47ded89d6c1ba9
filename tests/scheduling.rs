//! The scheduling examples (docs/usage/systemd/, docs/usage/scheduling.md) hold: the
//! commands the units start are command lines `poolpatch` accepts, the timer is the one the
//! page describes, and, where `systemd-analyze` is installed, systemd accepts both units.

use std::path::Path;

use clap::Parser as _;
use poolpatch::cli::{Cli, Command};
use poolpatch_tests::root;

fn unit(name: &str) -> String {
    std::fs::read_to_string(root().join("docs/usage/systemd").join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The values of `key=` in a unit file, continuation lines joined.
fn values(text: &str, key: &str) -> Vec<String> {
    let joined = text.replace("\\\n", " ");
    joined
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
        .collect()
}

/// Splits a command line at spaces (the units' commands quote nothing that has one).
fn words(command: &str) -> Vec<String> {
    command.split_whitespace().map(str::to_string).collect()
}

#[test]
fn the_service_starts_a_run_poolpatch_accepts() {
    let service = unit("poolpatch.service");
    let start = values(&service, "ExecStart");
    assert_eq!(start.len(), 1, "{start:?}");
    let args = words(&start[0]);
    assert_eq!(args[0], "/usr/local/bin/poolpatch");
    let cli = Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{e}\n{args:?}"));
    let Command::Run(run) = cli.command else {
        panic!("not `poolpatch run`: {args:?}")
    };
    assert_eq!(run.runs, Path::new("/var/lib/poolpatch/runs"));
    assert!(run.plain, "plain lines for the system journal");
    assert_eq!(run.run_dir, None, "a new run directory each time");
    for (key, value) in [
        ("Type", "oneshot"),
        ("User", "poolpatch"),
        ("WorkingDirectory", "/var/lib/poolpatch"),
        ("StateDirectory", "poolpatch"),
        ("TimeoutStartSec", "infinity"),
        ("KillMode", "mixed"),
        ("Restart", "no"),
    ] {
        assert_eq!(values(&service, key), [value], "{key}");
    }
    assert!(
        values(&service, "SuccessExitStatus").is_empty(),
        "only 0 is a success"
    );

    // The report step runs `poolpatch report` twice, on the latest run directory.
    let post = values(&service, "ExecStopPost");
    assert_eq!(post.len(), 1);
    let shell = post[0]
        .strip_prefix("-/bin/sh -c '")
        .and_then(|s| s.strip_suffix('\''))
        .expect("a shell command whose failure does not fail the unit");
    // systemd turns `$$` into `$`.
    let shell = shell.replace("$$", "$");
    let reports: Vec<&str> = shell.split("/usr/local/bin/poolpatch ").skip(1).collect();
    assert_eq!(reports.len(), 2, "{shell}");
    for r in reports {
        let line = r.split(" &&").next().unwrap().split(";;").next().unwrap();
        let mut args = vec!["poolpatch".to_string()];
        args.extend(words(line));
        let cli = Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{e}\n{args:?}"));
        assert!(matches!(cli.command, Command::Report(_)), "{args:?}");
    }
    assert!(
        shell.contains(r#"case "$EXIT_STATUS" in 0|1|4)"#),
        "{shell}"
    );
}

#[test]
fn the_timer_is_saturday_night_in_berlin() {
    let timer = unit("poolpatch.timer");
    assert_eq!(
        values(&timer, "OnCalendar"),
        ["Sat *-*-* 21:30:00 Europe/Berlin"]
    );
    assert_eq!(values(&timer, "Persistent"), ["false"]);
    assert_eq!(values(&timer, "Unit"), ["poolpatch.service"]);
    let doc = std::fs::read_to_string(root().join("docs/usage/scheduling.md")).unwrap();
    assert!(doc.contains("OnCalendar=Sat *-*-* 21:30:00 Europe/Berlin"));
}

#[test]
fn systemd_accepts_the_units_where_it_is_installed() {
    let Ok(out) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        eprintln!("systemd-analyze is not installed: the unit files are not verified here");
        return;
    };
    assert!(out.status.success());
    // `verify` wants the binary to exist: point the service at one that does.
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let service =
        unit("poolpatch.service").replace("/usr/local/bin/poolpatch", &exe.display().to_string());
    std::fs::write(dir.path().join("poolpatch.service"), service).unwrap();
    std::fs::write(dir.path().join("poolpatch.timer"), unit("poolpatch.timer")).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .current_dir(dir.path())
        .args(["verify", "./poolpatch.service", "./poolpatch.timer"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // And the calendar expression means what the page says.
    let out = std::process::Command::new("systemd-analyze")
        .args(["calendar", "Sat *-*-* 21:30:00 Europe/Berlin"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Normalized form: Sat *-*-* 21:30:00 Europe/Berlin"),
        "{text}"
    );
}
