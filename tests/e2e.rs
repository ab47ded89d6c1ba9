//! End to end: poolpatch patches the example estate over real SSH against simulated
//! Lync / Skype for Business servers on their own 127.0.0.x addresses. Every check is made
//! from what the simulated hosts recorded, not from poolpatch's own journal.

use poolpatch::exec::ServerOutcome;
use poolpatch::sim::{ActionKind, SimAction};
use poolpatch_inventory::Role;
use poolpatch_tests::{example, overlap, rehearse};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_estate_patches_correctly() {
    let (inventory, change) = example();
    let r = rehearse(&inventory, &change, None).await;
    let summary = &r.report.summary;
    assert_eq!(
        summary.done(),
        10,
        "every server is patched: {:#?}",
        summary.outcomes
    );
    assert_eq!(r.report.breaches, 0);
    assert!(summary.halted.is_none());

    let documented = [
        ActionKind::StopServices,
        ActionKind::StopW3svc,
        ActionKind::Install,
        ActionKind::StopServices,
        ActionKind::StartW3svc,
        ActionKind::UpdateDatabases,
        ActionKind::StartServices,
        ActionKind::VerifyServices,
    ];
    for (server, host) in r.rehearsal.estate.hosts() {
        // Per host: the documented order, each step in its own command (fresh shell).
        let outage_actions: Vec<ActionKind> = host
            .commands()
            .iter()
            .flat_map(|c| c.kinds())
            .filter(|k| {
                !matches!(
                    k,
                    ActionKind::Groups | ActionKind::FileHash | ActionKind::FreeDisk
                )
            })
            .collect();
        assert_eq!(
            outage_actions, documented,
            "{}: order of the procedure",
            server.fqdn
        );

        // The right database command for the role.
        let db: Vec<SimAction> = host
            .commands()
            .iter()
            .flat_map(|c| c.actions.clone())
            .filter(|a| matches!(a, SimAction::UpdateDatabases(_)))
            .collect();
        assert_eq!(db.len(), 1, "{}", server.fqdn);
        let SimAction::UpdateDatabases(update) = &db[0] else {
            unreachable!()
        };
        assert!(update.update, "{}: -Update", server.fqdn);
        match &server.role {
            Role::StandardEdition => {
                assert!(
                    update.local_databases && !update.configured_databases,
                    "{}: {update:?}",
                    server.fqdn
                );
                assert_eq!(update.sql_server, None);
            }
            Role::BackEnd {
                collocated_databases,
                sql_server,
                ..
            } => {
                assert!(
                    update.configured_databases && !update.local_databases,
                    "{}: {update:?}",
                    server.fqdn
                );
                assert_eq!(update.sql_server.as_deref(), Some(sql_server.as_str()));
                assert_eq!(
                    update.exclude_collocated_stores,
                    !collocated_databases.is_empty(),
                    "{}: {update:?}",
                    server.fqdn
                );
            }
        }
        assert!(update.other_flags.is_empty(), "{}: {update:?}", server.fqdn);

        // Every outage ended, within the budget.
        let outages = host.outages();
        assert_eq!(outages.len(), 1, "{}: one outage", server.fqdn);
        let o = outages[0];
        let end = o.end.expect("services are running again");
        assert!(
            end - o.start < r.plan.policy.budget,
            "{}: outage {:?} within budget {:?}",
            server.fqdn,
            end - o.start,
            r.plan.policy.budget
        );
        assert!(host.state().services_running(), "{}", server.fqdn);
    }

    // Never two back ends of one pool down at once; paired pools never down together.
    let outages = r.outages();
    let servers: Vec<_> = r.rehearsal.inventory.servers().cloned().collect();
    for a in &servers {
        for b in &servers {
            if a.fqdn >= b.fqdn {
                continue;
            }
            let pa = r.rehearsal.inventory.pool(&a.pool).unwrap();
            let paired = pa.backup_pool.as_ref() == Some(&b.pool)
                || r.rehearsal
                    .inventory
                    .pool(&b.pool)
                    .unwrap()
                    .backup_pool
                    .as_ref()
                    == Some(&a.pool);
            if a.pool == b.pool || paired {
                for x in &outages[a.fqdn.as_str()] {
                    for y in &outages[b.fqdn.as_str()] {
                        assert!(
                            !overlap(x, y),
                            "{} and {} were down together",
                            a.fqdn,
                            b.fqdn
                        );
                    }
                }
            }
        }
    }
    // `after:`: pool02.ams starts only once pool01.ams is done.
    let end_pool01 = ["be01.ams.contoso.com", "be02.ams.contoso.com"]
        .iter()
        .map(|s| outages[*s][0].end.unwrap())
        .max()
        .unwrap();
    assert!(outages["be03.ams.contoso.com"][0].start >= end_pool01);
    // The mirror side before the principal.
    assert!(
        outages["be02.ams.contoso.com"][0].end.unwrap() <= outages["be01.ams.contoso.com"][0].start
    );
    assert!(
        summary
            .outcomes
            .values()
            .all(|o| matches!(o, ServerOutcome::Done { overrun: false, .. }))
    );
}
