//! Staging the installer over SFTP, then checking it with `Get-FileHash` on the host.

use std::time::Duration;

use poolpatch::remote::{ExitOutcome, RemoteError};
use poolpatch::sim::{SimDurations, SimEventKind, sha256_hex};
use poolpatch_inventory::Product;
use poolpatch_plans::procedure::FinalStep;

use crate::helpers::*;

const T: Duration = Duration::from_secs(10);

#[tokio::test]
async fn an_upload_then_get_filehash_match_and_a_second_upload_replaces_the_file() {
    let lab = Lab::new();
    let role = back_end(false);
    let cfg = config("be01.ams.contoso.com", role.clone(), Product::Sfb2015, &lab)
        .with_durations(SimDurations::instant());
    let (host, _l, server) = start_tcp(cfg, role, "127.0.0.55", &lab).await;
    let remote = connect(&server).await.expect("connects");

    // Larger than one SFTP packet and one channel window chunk.
    let first: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    remote
        .upload(&lab.file("first.exe", &first), SFB_INSTALLER_SFTP)
        .await
        .expect("uploads");
    let p = procedure_for(
        &server,
        Product::Sfb2015,
        SFB_INSTALLER,
        &first,
        FinalStep::StartServices,
    );
    let hash = run(&*remote, &p.preflight[1], T).await;
    assert_ok(&p.preflight[1], &hash);
    assert_eq!(hash.stdout_text().trim(), sha256_hex(&first).to_uppercase());
    assert_eq!(host.file(SFB_INSTALLER).as_deref(), Some(&first[..]));

    let second = b"MZ a newer package".to_vec();
    remote
        .upload(&lab.file("second.exe", &second), SFB_INSTALLER_SFTP)
        .await
        .expect("replaces");
    let hash = run(&*remote, &p.preflight[1], T).await;
    assert_eq!(
        hash.stdout_text().trim(),
        sha256_hex(&second).to_uppercase()
    );
    let files = host.state().files;
    assert_eq!(files.len(), 1, "no partial file is left behind: {files:?}");
    assert_eq!(files[0].path, SFB_INSTALLER_SFTP);

    let record = host.record();
    let stored: Vec<&str> = record
        .iter()
        .filter_map(|e| match &e.kind {
            SimEventKind::FileStored { path, .. } => Some(path.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(stored.len(), 2);
    assert!(
        stored.iter().all(|p| p.ends_with(".poolpatch-partial")),
        "{stored:?}"
    );
    assert!(
        record
            .iter()
            .any(|e| matches!(e.kind, SimEventKind::FileRemoved { .. }))
    );
}

#[tokio::test]
async fn missing_files_full_disks_and_unreadable_sources_are_reported() {
    let lab = Lab::new();
    let role = back_end(false);
    let mut cfg = config("be02.ams.contoso.com", role.clone(), Product::Sfb2015, &lab)
        .with_durations(SimDurations::instant());
    cfg.free_bytes = 1000;
    let (host, _l, server) = start_tcp(cfg, role, "127.0.0.56", &lab).await;
    let remote = connect(&server).await.expect("connects");

    let p = procedure_for(
        &server,
        Product::Sfb2015,
        SFB_INSTALLER,
        b"x",
        FinalStep::StartServices,
    );
    let missing = run(&*remote, &p.preflight[1], T).await;
    assert_eq!(missing.exit, ExitOutcome::Code(1));
    assert!(missing.stderr_text().contains("file not found"));

    let err = remote
        .upload(&lab.file("big.exe", &[0u8; 4000]), SFB_INSTALLER_SFTP)
        .await
        .expect_err("the disk is too small");
    assert!(matches!(err, RemoteError::Sftp { .. }), "{err}");
    assert!(err.to_string().contains("not enough space"), "{err}");
    assert!(
        host.state().files.is_empty(),
        "the partial file was removed"
    );

    let err = remote
        .upload(&lab.dir.path().join("nowhere.exe"), SFB_INSTALLER_SFTP)
        .await
        .expect_err("no such local file");
    assert!(matches!(err, RemoteError::LocalFile { .. }), "{err}");

    let disk = run(&*remote, &p.preflight[2], T).await;
    assert_eq!(disk.stdout_text().trim(), "1000");
}
