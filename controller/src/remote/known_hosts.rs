//! Host keys against an OpenSSH known_hosts file, strictly.
//!
//! russh's reader does the matching (plain and hashed names, `[host]:port`); this module
//! adds what an operator needs: the physical line of a changed key (russh skips comment
//! lines when counting), the exact line to add for an unknown key, and the rule that
//! `--accept-new-host-keys` records a key only for a host that has none at all.

use std::path::Path;

use russh::keys::known_hosts::{
    check_known_hosts_path, known_host_keys_path, learn_known_hosts_path,
};
use russh::keys::{HashAlg, PublicKey};

use super::RemoteError;

/// `ssh-ed25519 SHA256:…` for messages.
pub(crate) fn fingerprint(key: &PublicKey) -> String {
    format!(
        "{} {}",
        key.algorithm().as_str(),
        key.fingerprint(HashAlg::Sha256)
    )
}

/// The known_hosts name of a host: `host` on port 22, `[host]:port` otherwise (as OpenSSH).
pub fn known_hosts_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The known_hosts line that records `key` for `host` and `port`.
pub fn known_hosts_line(host: &str, port: u16, key: &PublicKey) -> String {
    let mut key = key.clone();
    key.set_comment("");
    let text = key
        .to_openssh()
        .unwrap_or_else(|_| format!("{} <unencodable key>", key.algorithm().as_str()));
    format!("{} {}", known_hosts_name(host, port), text.trim_end())
}

/// russh numbers known_hosts lines without counting `#` comment lines; the line an operator
/// must edit counts every line.
fn physical_line(file: &Path, counted: usize) -> usize {
    let Ok(text) = std::fs::read_to_string(file) else {
        return counted;
    };
    let mut seen = 0;
    for (i, line) in text.split('\n').enumerate() {
        if line.starts_with('#') {
            continue;
        }
        seen += 1;
        if seen == counted {
            return i + 1;
        }
    }
    counted
}

/// Checks `key` for `host`:`port` against `file`; with `accept_new`, records it when the
/// host has no key recorded at all.
pub fn check_host_key(
    host: &str,
    port: u16,
    key: &PublicKey,
    file: &Path,
    accept_new: bool,
) -> Result<(), RemoteError> {
    let known_hosts_error = |reason: String| RemoteError::KnownHosts {
        host: host.to_string(),
        port,
        file: file.to_path_buf(),
        reason,
    };
    match check_known_hosts_path(host, port, key, file) {
        Ok(true) => Ok(()),
        Ok(false) => {
            let recorded = known_host_keys_path(host, port, file)
                .map_err(|e| known_hosts_error(e.to_string()))?;
            if accept_new && recorded.is_empty() {
                learn_known_hosts_path(host, port, key, file).map_err(|e| {
                    known_hosts_error(format!("cannot record the new host key: {e}"))
                })?;
                tracing::warn!(
                    host,
                    port,
                    file = %file.display(),
                    key = %fingerprint(key),
                    "recorded the host key of a host that had none (--accept-new-host-keys)"
                );
                return Ok(());
            }
            Err(RemoteError::HostKeyUnknown {
                host: host.to_string(),
                port,
                file: file.to_path_buf(),
                fingerprint: fingerprint(key),
                known_hosts_line: known_hosts_line(host, port, key),
                other_keys: recorded.len(),
            })
        }
        Err(russh::keys::Error::KeyChanged { line }) => Err(RemoteError::HostKeyChanged {
            host: host.to_string(),
            port,
            file: file.to_path_buf(),
            line: physical_line(file, line),
            fingerprint: fingerprint(key),
        }),
        Err(e) => Err(known_hosts_error(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::random_ed25519_key;

    #[test]
    fn names_and_lines_follow_openssh() {
        let key = random_ed25519_key();
        assert_eq!(known_hosts_name("127.0.0.11", 22), "127.0.0.11");
        assert_eq!(known_hosts_name("127.0.0.11", 2222), "[127.0.0.11]:2222");
        let line = known_hosts_line("127.0.0.11", 2222, key.public_key());
        assert!(
            line.starts_with("[127.0.0.11]:2222 ssh-ed25519 AAAA"),
            "{line}"
        );
    }

    #[test]
    fn strict_checks_and_accept_new() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        let (key, other) = (random_ed25519_key(), random_ed25519_key());
        let unknown = check_host_key("h.example", 22, key.public_key(), &file, false);
        assert!(matches!(
            unknown,
            Err(RemoteError::HostKeyUnknown { other_keys: 0, .. })
        ));
        check_host_key("h.example", 22, key.public_key(), &file, true).unwrap();
        check_host_key("h.example", 22, key.public_key(), &file, false).unwrap();
        // A host with a recorded key never gets another one recorded.
        let before = std::fs::read_to_string(&file).unwrap();
        let changed = check_host_key("h.example", 22, other.public_key(), &file, true);
        let Err(RemoteError::HostKeyChanged { line, .. }) = changed else {
            panic!("expected a changed key: {changed:?}");
        };
        // The reported line is the one holding the recorded key (russh's learning writes
        // a newline first into a new file).
        let recorded = before.lines().nth(line - 1).unwrap();
        assert_eq!(
            recorded,
            known_hosts_line("h.example", 22, key.public_key())
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    }

    #[test]
    fn physical_lines_count_comments() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        std::fs::write(&file, "# a\nx ssh-ed25519 A\n# b\n\ny ssh-ed25519 B\n").unwrap();
        assert_eq!(physical_line(&file, 1), 2);
        assert_eq!(physical_line(&file, 3), 5);
        assert_eq!(physical_line(&dir.path().join("missing"), 7), 7);
    }
}
