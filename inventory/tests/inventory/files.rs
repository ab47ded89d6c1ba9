//! `load`: reading the file, and problems of the file as a whole.

use std::fs;

use poolpatch_inventory::{LoadOptions, SshAuth, load_with};

use crate::helpers::{dedent, example_text, opts};

fn only(d: poolpatch_inventory::Diagnostics) -> poolpatch_inventory::Diagnostic {
    assert_eq!(d.len(), 1, "{d}");
    d.items.into_iter().next().expect("one diagnostic")
}

#[test]
fn a_missing_file_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nope.yaml");
    let d = only(load_with(&path, &opts()).expect_err("missing"));
    assert_eq!(d.file, path.display().to_string());
    assert_eq!(d.message, "cannot read the file: no such file");
    assert_eq!(d.help.as_deref(), Some("check the path"));
}

#[test]
fn a_directory_is_not_an_inventory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = only(load_with(dir.path(), &opts()).expect_err("directory"));
    assert_eq!(d.message, "cannot read the file: it is a directory");
}

#[test]
fn a_file_that_is_not_utf8_points_at_the_first_bad_byte() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("latin1.yaml");
    fs::write(&path, b"version: 1\nsites: [{ name: k\xf6ln }]\n").expect("write");
    let d = only(load_with(&path, &opts()).expect_err("not UTF-8"));
    assert_eq!((d.pos.line, d.pos.column), (2, 18));
    assert_eq!(
        d.message,
        "the file is not UTF-8 text: byte 0xF6 cannot start a character"
    );
    assert_eq!(d.help.as_deref(), Some("save the file as UTF-8"));
}

#[test]
fn a_huge_file_is_refused_before_reading() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("huge.yaml");
    let f = fs::File::create(&path).expect("create");
    // Sparse: no 100 MB are written.
    f.set_len(100 * 1024 * 1024).expect("set_len");
    let d = only(load_with(&path, &opts()).expect_err("too large"));
    assert_eq!(
        d.message,
        "the file is 104857600 bytes, more than the 8388608 bytes poolpatch reads"
    );
}

#[test]
fn an_empty_file_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("empty.yaml");
    fs::write(&path, "\n").expect("write");
    let d = only(load_with(&path, &opts()).expect_err("empty"));
    assert_eq!(d.message, "the file is empty");
}

#[test]
fn relative_key_paths_are_relative_to_the_inventory_and_a_bom_is_fine() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("inv.yaml");
    let text = dedent(
        "
        version: 1
        defaults:
          ssh: { user: svc-poolpatch, identity_file: keys/id_ed25519, known_hosts: keys/known_hosts }
        sites:
          - { name: berlin, time_zone: Europe/Berlin }
        pools:
          - { fqdn: se01.ber.contoso.com, site: berlin, edition: standard, product: lync2013, server: {} }
        ",
    );
    fs::write(&path, format!("\u{feff}{text}")).expect("write");
    let inv = load_with(&path, &LoadOptions::default()).unwrap_or_else(|d| panic!("{d}"));
    let ssh = &inv.pools[0].servers[0].ssh;
    assert_eq!(
        ssh.auth,
        SshAuth::IdentityFile(dir.path().join("keys/id_ed25519"))
    );
    assert_eq!(ssh.known_hosts, dir.path().join("keys/known_hosts"));
}

#[test]
fn diagnostics_render_with_the_offending_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("inv.yaml");
    let text = example_text().replace("time_zone: Asia/Tokyo", "time_zone: Asia/Tokio");
    fs::write(&path, &text).expect("write");
    let d = load_with(&path, &opts()).expect_err("bad time zone");
    let rendered = d.render(&|_| Some(text.clone()));
    let name = path.display().to_string();
    assert!(
        rendered.starts_with(&format!(
            "error: {name}:25:16: sites[2].time_zone: `Asia/Tokio` is not an IANA time zone\n"
        )),
        "{rendered}"
    );
    assert!(
        rendered.contains("25 |     time_zone: Asia/Tokio\n   |                ^"),
        "{rendered}"
    );
    assert!(
        rendered.contains("help: did you mean `Asia/Tokyo`?"),
        "{rendered}"
    );
    assert!(rendered.ends_with("1 problem found"), "{rendered}");
}
