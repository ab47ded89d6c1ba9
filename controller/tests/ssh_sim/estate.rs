//! A whole estate started from the example inventory, reached through `dyn Connector`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use poolpatch::remote::{Connector, SshConnector, SshOptions};
use poolpatch::sim::{EstateOptions, Listen, SimDurations, SimEstate, write_identity_file};
use poolpatch_inventory::{LoadOptions, Product, Role, load_with};
use poolpatch_plans::procedure::{FinalStep, database_command};

use crate::helpers::*;

#[tokio::test]
async fn an_estate_from_the_example_inventory_answers_on_the_inventory_addresses() {
    let home = tempfile::tempdir().expect("a home directory");
    std::fs::create_dir_all(home.path().join(".ssh")).expect(".ssh");
    let client_key =
        write_identity_file(&home.path().join(".ssh/poolpatch_ed25519")).expect("a key");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../inventory/examples/estate.yaml");
    let inventory = load_with(
        &example,
        &LoadOptions {
            home: Some(home.path().to_path_buf()),
            base_dir: None,
        },
    )
    .expect("the example inventory is valid");
    let known_hosts = home.path().join(".ssh/poolpatch_known_hosts");
    let estate = SimEstate::start(
        &inventory,
        EstateOptions {
            listen: Listen::InventoryAddressesAnyPort,
            authorized_key: client_key,
            known_hosts: known_hosts.clone(),
            durations: SimDurations::instant(),
            customize: Some(Arc::new(|server, mut cfg| {
                if server.fqdn.as_str() == "se02.tyo.contoso.com" {
                    cfg.cs_administrator = false;
                }
                cfg
            })),
        },
    )
    .await
    .expect("the estate starts");

    let servers: Vec<_> = inventory.servers().collect();
    assert_eq!(estate.hosts().count(), servers.len());
    let lines = std::fs::read_to_string(&known_hosts).expect("known_hosts written");
    assert_eq!(
        lines.lines().filter(|l| !l.starts_with('#')).count(),
        servers.len()
    );

    let connector: Arc<dyn Connector> = Arc::new(SshConnector::new(SshOptions::default()));
    for original in servers {
        let reached = estate
            .server(original.fqdn.as_str())
            .expect("every server is simulated");
        assert_eq!(reached.ssh.address, original.ssh.address);
        let host = estate.host(original.fqdn.as_str()).expect("its host");
        let remote = connector.connect(reached).await.expect("connects");
        let product = host.config().product;
        let p = procedure_for(
            reached,
            product,
            "C:\\ProgramData\\poolpatch\\cu.exe",
            b"",
            FinalStep::StartServices,
        );
        let groups = run(&*remote, &p.preflight[0], Duration::from_secs(10)).await;
        assert_ok(&p.preflight[0], &groups);
        assert_eq!(
            groups.stdout_text().contains("CSAdministrator"),
            original.fqdn.as_str() != "se02.tyo.contoso.com"
        );
        assert_eq!(host.commands().len(), 1);
        assert_eq!(host.config().role, original.role);
        if let Role::BackEnd { .. } = original.role {
            assert!(database_command(&original.role).contains("-ConfiguredDatabases"));
        }
    }
    let tokyo = estate
        .host("be01.tyo.contoso.com")
        .expect("Tokyo's back end");
    assert_eq!(tokyo.config().product, Product::Lync2013);
    assert_eq!(
        tokyo.config().installer_name(),
        "LyncServerUpdateInstaller.exe"
    );

    let be01 = estate.server("be01.ams.contoso.com").expect("be01").clone();
    estate.shutdown().await;
    assert!(
        connector.connect(&be01).await.is_err(),
        "stopped hosts refuse"
    );
}
