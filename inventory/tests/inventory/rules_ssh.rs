//! SSH settings: defaults, per-server overrides, what must be known after merging.

use std::path::PathBuf;

use poolpatch_inventory::{LoadOptions, RemoteShell, SshAuth, SshEndpoint, from_str_with};

use crate::helpers::{HOME, dedent, expect_one, load, problems};

/// Two Standard Edition servers with the given `defaults.ssh` and per-server `ssh:`.
fn two_servers(defaults: &str, first: &str, second: &str) -> String {
    dedent(&format!(
        "
        version: 1
        defaults:
          ssh: {{ {defaults} }}
        sites:
          - {{ name: berlin, time_zone: Europe/Berlin }}
        pools:
          - fqdn: se01.ber.contoso.com
            site: berlin
            edition: standard
            product: lync2013
            server: {{ ssh: {{ {first} }} }}
          - fqdn: se02.ber.contoso.com
            site: berlin
            edition: standard
            product: lync2013
            server: {{ ssh: {{ {second} }} }}
        "
    ))
}

fn endpoints(text: &str) -> Vec<SshEndpoint> {
    let inv = load(text).unwrap_or_else(|d| panic!("{d}"));
    inv.servers().map(|s| s.ssh.clone()).collect()
}

#[test]
fn defaults_fill_in_what_a_server_leaves_out() {
    let e = endpoints(&two_servers(
        "user: svc-poolpatch, identity_file: ~/.ssh/poolpatch_ed25519",
        "address: 127.0.0.41",
        "address: '[::1]', port: 2222, user: 'CONTOSO\\svc-patch', shell: posix",
    ));
    assert_eq!(
        e[0],
        SshEndpoint {
            address: "127.0.0.41".into(),
            port: 22,
            user: "svc-poolpatch".into(),
            auth: SshAuth::IdentityFile(PathBuf::from(HOME).join(".ssh/poolpatch_ed25519")),
            known_hosts: PathBuf::from(HOME).join(".ssh/known_hosts"),
            shell: RemoteShell::Powershell,
        }
    );
    assert_eq!(e[1].address, "::1");
    assert_eq!(e[1].port, 2222);
    assert_eq!(e[1].user, "CONTOSO\\svc-patch");
    assert_eq!(e[1].shell, RemoteShell::Posix);
}

#[test]
fn a_server_without_address_is_reached_at_its_fqdn() {
    let e = endpoints(&two_servers("user: svc-poolpatch, agent: true", "", ""));
    assert_eq!(e[0].address, "se01.ber.contoso.com");
    assert_eq!(e[0].auth, SshAuth::Agent);
}

#[test]
fn a_servers_auth_replaces_the_default_method() {
    let e = endpoints(&two_servers(
        "user: svc-poolpatch, identity_file: /etc/poolpatch/id",
        "agent: true",
        "agent: false",
    ));
    assert_eq!(e[0].auth, SshAuth::Agent);
    // `agent: false` is the same as leaving it out: the default applies.
    assert_eq!(e[1].auth, SshAuth::IdentityFile("/etc/poolpatch/id".into()));
}

#[test]
fn a_server_without_user_is_named() {
    expect_one(
        &two_servers("agent: true", "user: svc-poolpatch", ""),
        (16, 20),
        "pools[1].server.ssh.user",
        "no SSH user for `se02.ber.contoso.com`",
        "set `user:` in `defaults.ssh` or in the server's own `ssh:`",
    );
}

#[test]
fn a_setting_no_server_has_is_reported_once_at_the_defaults() {
    expect_one(
        &two_servers("user: svc-poolpatch", "", ""),
        (3, 8),
        "defaults.ssh.identity_file",
        "no SSH authentication for any of the 2 servers",
        "set `identity_file: PATH` or `agent: true`",
    );
}

#[test]
fn without_home_tilde_paths_and_the_default_known_hosts_are_errors() {
    let no_home = LoadOptions::default();
    let text = two_servers("user: svc-poolpatch, identity_file: ~/.ssh/id", "", "");
    let all = from_str_with("inv.yaml", &text, &no_home)
        .expect_err("HOME is needed")
        .items;
    let summary: Vec<String> = all.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        summary,
        [
            "inv.yaml:3:8: defaults.ssh.known_hosts: no known_hosts file for any of the 2 servers: HOME is not set, so the default ~/.ssh/known_hosts cannot be used",
            "inv.yaml:3:46: defaults.ssh.identity_file: `~/.ssh/id` starts with `~`, but HOME is not set, so it cannot be expanded",
        ]
    );
    let text = two_servers(
        "user: svc-poolpatch, agent: true, known_hosts: /etc/kh",
        "",
        "",
    );
    assert!(from_str_with("inv.yaml", &text, &no_home).is_ok());
}

#[test]
fn relative_paths_resolve_against_the_base_directory() {
    let opts = LoadOptions {
        home: None,
        base_dir: Some(PathBuf::from("/srv/poolpatch")),
    };
    let text = two_servers(
        "user: svc-poolpatch, identity_file: keys/id, known_hosts: /etc/kh",
        "",
        "",
    );
    let inv = from_str_with("inv.yaml", &text, &opts).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        inv.pools[0].servers[0].ssh.auth,
        SshAuth::IdentityFile(PathBuf::from("/srv/poolpatch/keys/id"))
    );
}

#[test]
fn a_bad_default_is_reported_once_not_per_server() {
    let all = problems(&two_servers("user: 'svc poolpatch', agent: true", "", ""));
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].field, "defaults.ssh.user");
}
