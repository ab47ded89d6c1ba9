//! Reports of arbitrary journals: events in any order, for servers the plan knows or not,
//! with any numbers and any text. Every format renders without panicking, the HTML parses,
//! and the JSON reads back.

mod report_fixture;

use poolpatch::journal::{Event, ExitRecord, Journal, Record, WatchdogAction};
use poolpatch::report::{self, Report};
use poolpatch_plans::procedure::StepKind;

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn number(&mut self) -> u64 {
        match self.below(4) {
            0 => 0,
            1 => u64::MAX - self.below(3),
            2 => self.below(10_000),
            _ => self.below(10_000_000),
        }
    }
    fn text(&mut self) -> String {
        let parts = [
            "",
            "ok",
            "<b>&amp;</b>",
            "\u{1b}[31mred\u{1b}[0m",
            "line\nbreak",
            "| pipe `tick` *",
            "\u{0}\u{7}\u{fffe}",
            "caf\u{e9} \u{1f600}",
            "]]>",
            "\"'",
        ];
        (0..self.below(3)).map(|_| *self.pick(&parts)).collect()
    }
}

fn event(rng: &mut Rng, servers: &[&str]) -> Event {
    let server = rng.pick(servers).to_string();
    let step = *rng.pick(&StepKind::ALL);
    let exit = match rng.below(3) {
        0 => ExitRecord::Code {
            code: rng.next() as i32,
        },
        1 => ExitRecord::Signal { signal: rng.text() },
        _ => ExitRecord::Unknown { reason: rng.text() },
    };
    match rng.below(17) {
        0 => Event::RunStarted {
            change: rng.text(),
            inventory: rng.text(),
            change_file: rng.text(),
            servers: rng.below(20) as usize,
            operator: rng.text(),
            rehearsal: rng.below(2) == 0,
        },
        1 => Event::PreflightPassed {
            server,
            checks: vec![rng.text()],
        },
        2 => Event::PreflightFailed {
            server,
            reason: rng.text(),
        },
        3 => Event::StepStarted {
            server,
            step,
            recovery: rng.below(2) == 0,
            command: rng.text(),
        },
        4 | 5 => Event::StepFinished {
            server,
            step,
            recovery: rng.below(2) == 0,
            exit,
            ok: rng.below(2) == 0,
            duration_ms: rng.number(),
            stdout_tail: rng.text(),
            stderr_tail: rng.text(),
        },
        6 => Event::OutageStarted {
            server,
            pool: rng.text(),
        },
        7 => Event::OutageEnded {
            server,
            outage_ms: rng.number(),
        },
        8 => Event::Watchdog {
            server,
            action: if rng.below(2) == 0 {
                WatchdogAction::Restore
            } else {
                WatchdogAction::Finish
            },
            remaining: vec![step],
            down_ms: rng.number(),
        },
        9 => Event::Breach {
            server,
            pool: rng.text(),
            down_ms: rng.number(),
        },
        10 => Event::ServerDone {
            server,
            outage_ms: rng.number(),
        },
        11 => Event::ServerBudgetExhausted {
            server,
            remaining: vec![step],
        },
        12 => Event::ServerFailed {
            server,
            step: Some(step),
            reason: rng.text(),
            restored: rng.below(2) == 0,
        },
        13 => Event::ServerSkipped {
            server,
            reason: rng.text(),
        },
        14 => Event::PoolHalted {
            pool: rng.text(),
            reason: rng.text(),
        },
        15 => Event::RunHalted { reason: rng.text() },
        _ => Event::RunFinished {
            done: 1,
            failed: 2,
            skipped: 3,
            breaches: 4,
        },
    }
}

fn check(r: &Report) {
    assert!(!r.to_text().is_empty());
    assert!(!r.to_markdown().is_empty());
    let html = r.to_html();
    roxmltree::Document::parse_with_options(
        &html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("HTML does not parse: {e}"));
    let json = r.to_json();
    assert_eq!(&Report::from_json(&json).unwrap(), r);
}

#[test]
fn any_journal_renders_in_every_format() {
    let plan = report_fixture::plan();
    let servers = [
        "be01.ams.contoso.com",
        "be02.ams.contoso.com",
        "se02.tyo.contoso.com",
        "unknown.example.com",
        "<script>x</script>",
    ];
    let t0 = report_fixture::t0();
    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let n = rng.below(40);
        let records = (0..n)
            .map(|i| Record {
                v: 1,
                seq: i,
                at: t0,
                elapsed_ms: rng.number(),
                event: event(&mut rng, &servers),
            })
            .collect();
        let journal = Journal {
            records,
            torn_last_line: (rng.below(4) == 0).then_some(n as usize + 1),
        };
        for speed in [None, Some(240.0), Some(f64::NAN)] {
            let r = report::from_run(
                &plan,
                &journal,
                &report::build::RunOptions {
                    run_dir: Some("runs/<&>".into()),
                    rehearsal_speed: speed,
                },
            );
            check(&r);
        }
    }
}

#[test]
fn plans_with_nothing_scheduled_or_zero_budgets_render() {
    let mut plan = report_fixture::plan();
    plan.policy.budget = std::time::Duration::ZERO;
    plan.policy.threshold = std::time::Duration::ZERO;
    for s in &mut plan.servers {
        s.outage.budget = std::time::Duration::ZERO;
        s.window = None;
    }
    plan.totals.duration = std::time::Duration::ZERO;
    check(&report::from_plan(&plan));
    let empty = Journal {
        records: Vec::new(),
        torn_last_line: Some(1),
    };
    check(&report::from_run(&plan, &empty, &Default::default()));

    // The other extreme: durations as long as a plan can hold.
    let mut plan = report_fixture::plan();
    let huge = std::time::Duration::from_secs(u64::MAX);
    plan.policy.budget = huge;
    plan.policy.threshold = huge;
    plan.totals.duration = huge;
    for s in &mut plan.servers {
        s.outage.predicted = huge;
        if let Some(w) = &mut s.window {
            w.end = huge;
        }
    }
    check(&report::from_plan(&plan));
    let dir = tempfile::tempdir().unwrap();
    report_fixture::script().write(dir.path());
    let journal = poolpatch::journal::read(dir.path()).unwrap();
    check(&report::from_run(&plan, &journal, &Default::default()));
}
