//! Plans for small estates: reasons a server is not scheduled, fixes, impact, notes.

use poolpatch_inventory::{Inventory, LoadOptions, from_str_with};
use poolpatch_plans::plan::{ImpactKind, NotScheduledReason, Verdict};
use poolpatch_plans::procedure::StepKind;
use poolpatch_plans::{change_from_str, plan};

const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn inventory() -> Inventory {
    let text = "version: 1\ndefaults:\n  ssh: { user: svc, identity_file: /k/id, known_hosts: /k/kh }\nsites:\n  - { name: ams, time_zone: Europe/Amsterdam }\npools:\n  - fqdn: pool.ams.contoso.com\n    site: ams\n    edition: enterprise\n    product: sfb2015\n    front_ends: [{ fqdn: fe1.ams.contoso.com }]\n    back_ends:\n      - { fqdn: be1.ams.contoso.com, sql_server: sql.ams.contoso.com }\n  - fqdn: se1.ams.contoso.com\n    site: ams\n    edition: standard\n    product: lync2013\n    after: [pool.ams.contoso.com]\n    server: {}\n";
    from_str_with("estate.yaml", text, &LoadOptions::default()).unwrap_or_else(|d| panic!("{d}"))
}

fn change(extra: &str) -> poolpatch_plans::Change {
    let text = format!(
        "version: 1\nname: t\nupdate:\n  remote_dir: 'D:\\Staging'\n  installers:\n    sfb2015: {{ file: s.exe, sha256: {DIGEST}, version: \"6.0.9319.690\" }}\n{extra}"
    );
    change_from_str("change.yaml", &text).unwrap_or_else(|d| panic!("{d}"))
}

#[test]
fn a_product_without_installer_is_not_scheduled() {
    let p = plan(&inventory(), &change(""));
    let se = p
        .servers
        .iter()
        .find(|s| s.fqdn == "se1.ams.contoso.com")
        .unwrap();
    let why = se.not_scheduled.as_ref().unwrap();
    assert_eq!(why.reason, NotScheduledReason::NoInstaller);
    assert_eq!(
        why.message,
        "the change has no installer for lync2013 (Lync Server 2013)"
    );
    assert_eq!(se.target_version, "");
    assert_eq!(
        se.installer.path,
        "D:\\Staging\\LyncServerUpdateInstaller.exe"
    );
    assert_eq!(se.impact.kind, ImpactKind::StandardEditionPoolDown);
    // The check against the inventory says the same before planning.
    assert!(change("").check_against(&inventory()).is_err());
}

#[test]
fn a_reboot_as_final_step_can_push_a_server_over_budget() {
    let p = plan(&inventory(), &change("final_step: reboot\n"));
    let be = &p
        .servers
        .iter()
        .find(|s| s.fqdn == "be1.ams.contoso.com")
        .unwrap();
    assert_eq!(be.outage.predicted.as_secs(), 30 * 60);
    assert_eq!(be.outage.verdict, Verdict::OverBudget);
    assert_eq!(be.outage.if_reboot_requested, None);
    assert_eq!(
        be.steps
            .outage
            .iter()
            .filter(|s| s.step.kind == StepKind::Reboot)
            .count(),
        1
    );
    let why = be.not_scheduled.as_ref().unwrap();
    assert_eq!(why.reason, NotScheduledReason::OverBudget);
    assert_eq!(
        why.fix.as_deref(),
        Some(
            "if install-update really takes less, lower its estimate (12m, built-in default) below 7m; or end with `final_step: start-services` instead of a reboot (saves about 8m); or no budget can allow 30m: it is not below the 30m threshold"
        )
    );
    // Its pool is not done, so the Standard Edition pool that comes after it waits.
    let se = p
        .servers
        .iter()
        .find(|s| s.fqdn == "se1.ams.contoso.com")
        .unwrap();
    assert_eq!(
        se.not_scheduled.as_ref().unwrap().reason,
        NotScheduledReason::NoInstaller
    );
    assert_eq!(p.totals.servers_scheduled, 0);
    assert_eq!(p.totals.duration.as_secs(), 0);
}

#[test]
fn dependants_wait_and_notes_explain() {
    let text = format!(
        "version: 1\nname: t\nupdate:\n  remote_dir: /srv/staging\n  installers:\n    sfb2015: {{ file: s.exe, sha256: {DIGEST}, version: \"6.0.9319.690\" }}\n    lync2013: {{ file: l.exe, sha256: {DIGEST}, version: \"5.0.8308.1182\" }}\n    sfb2019: {{ file: t.exe, sha256: {DIGEST}, version: \"7.0.2046.530\" }}\nestimates:\n  servers: {{ be1.ams.contoso.com: {{ update-databases: 6m }} }}\ntimeouts:\n  steps: {{ install-update: 10m }}\n"
    );
    let c = change_from_str("change.yaml", &text).unwrap();
    let p = plan(&inventory(), &c);
    let be = &p
        .servers
        .iter()
        .find(|s| s.fqdn == "be1.ams.contoso.com")
        .unwrap();
    assert_eq!(
        be.not_scheduled.as_ref().unwrap().reason,
        NotScheduledReason::OverBudget
    );
    assert_eq!(
        be.installer.path,
        "/srv/staging/SkypeServerUpdateInstaller.exe"
    );
    let se = p
        .servers
        .iter()
        .find(|s| s.fqdn == "se1.ams.contoso.com")
        .unwrap();
    let why = se.not_scheduled.as_ref().unwrap();
    assert_eq!(why.reason, NotScheduledReason::WaitsForPool);
    assert_eq!(
        why.message,
        "pool se1.ams.contoso.com comes after pool pool.ams.contoso.com (`after:`), which this plan does not complete"
    );
    assert!(p.notes.iter().any(|n| n == "The installer for sfb2019 is listed, but no server in scope runs Skype for Business Server 2019."), "{:#?}", p.notes);
    assert!(p.notes.iter().any(|n| n.starts_with("timeouts.steps.install-update (10m) is shorter than the step's estimate on 2 servers (first: be1.ams.contoso.com)")), "{:#?}", p.notes);
    let text = p.to_text();
    assert!(text.contains("NOT SCHEDULED (waits-for-pool)"), "{text}");
    let md = p.to_markdown();
    assert!(
        md.contains("| se1.ams.contoso.com | se1.ams.contoso.com | waits-for-pool |"),
        "{md}"
    );
}
