//! The grammar of single inventory values that are not FQDNs (those are [`crate::Fqdn`]).
//!
//! Every value that may reach a remote command or a drawing is restricted to characters that
//! mean nothing to PowerShell, cmd.exe or a POSIX shell, so that downstream code can quote it
//! as a literal without surprises. Each check returns the cleaned value or a message saying
//! what is wrong; the caller adds the position and the field.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Longest site name, upgrade domain or user name we accept.
const MAX_NAME: usize = 64;

/// Longest user name (`CONTOSO\svc-poolpatch`, `svc-poolpatch@contoso.com`).
const MAX_USER: usize = 256;

/// Longest local path.
const MAX_PATH: usize = 4096;

/// Describes the first character of `s` that is not allowed, for messages.
fn bad_char(s: &str, allowed: impl Fn(char) -> bool) -> Option<String> {
    s.chars().find(|c| !allowed(*c)).map(|c| {
        if c.is_control() || c.is_whitespace() {
            format!("the character U+{:04X}", u32::from(c))
        } else {
            format!("`{c}`")
        }
    })
}

/// A site name: 1–64 ASCII letters, digits, `-`, `_` or `.`, starting with a letter or
/// digit (`amsterdam`, `ams-dc1`).
pub(crate) fn site_name(s: &str) -> Result<String, String> {
    identifier(s, "a site name")
}

/// An upgrade domain as Lync names them (`UD1`, `FabricUD2`): the same grammar as a site name.
pub(crate) fn upgrade_domain(s: &str) -> Result<String, String> {
    identifier(s, "an upgrade domain")
}

fn identifier(s: &str, what: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err(format!("{what} cannot be empty"));
    }
    if s.chars().count() > MAX_NAME {
        return Err(format!("{what} has at most {MAX_NAME} characters"));
    }
    if let Some(c) = bad_char(s, |c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(format!(
            "{c} is not allowed in {what} (letters, digits, `-`, `_` and `.` only)"
        ));
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!("{what} starts with a letter or a digit"));
    }
    Ok(s.to_string())
}

/// An SSH / Windows account name: letters, digits and `. - _ \ @` (`svc-poolpatch`,
/// `CONTOSO\svc-patch`, `svc-patch@contoso.com`); starting with a letter or digit so that
/// it can never be read as an option.
pub(crate) fn user(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("a user name cannot be empty".into());
    }
    if s.chars().count() > MAX_USER {
        return Err(format!("a user name has at most {MAX_USER} characters"));
    }
    if let Some(c) = bad_char(s, |c| c.is_ascii_alphanumeric() || ".-_\\@".contains(c)) {
        return Err(format!(
            "{c} is not allowed in a user name (letters, digits, `.`, `-`, `_`, `\\` and `@` only), \
             so it could not be placed safely in a remote command"
        ));
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("a user name starts with a letter or a digit".into());
    }
    if s.matches('\\').count() > 1 || s.ends_with('\\') {
        return Err("write a domain account as DOMAIN\\user (one `\\`, then the name)".into());
    }
    Ok(s.to_string())
}

/// An SSH address: an IPv4 or IPv6 literal (IPv6 may be in brackets) or a host name made of
/// DNS labels (`localhost`, `be01.ams.contoso.com`). Host names are lower-cased; IP
/// addresses are written in their canonical form.
pub(crate) fn address(s: &str) -> Result<String, String> {
    let unbracketed = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    if s.is_empty() {
        return Err("an address cannot be empty".into());
    }
    if s.contains(':') || s.contains('[') {
        return Err(format!("`{s}` is not a valid IPv6 address"));
    }
    if s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!("`{s}` is not a valid IPv4 address"));
    }
    let name = s.strip_suffix('.').unwrap_or(s);
    if name.len() > 253 {
        return Err("a host name has at most 253 characters".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("`{s}` has an empty label (two dots in a row?)"));
        }
        if label.len() > 63 {
            return Err(format!("the label `{label}` is longer than 63 characters"));
        }
        if let Some(c) = bad_char(label, |c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(format!(
                "{c} is not allowed in a host name (letters, digits, `-` and `.` only)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("the label `{label}` starts or ends with `-`"));
        }
    }
    if name
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(format!(
            "`{s}` is neither an IP address nor a host name (a host name does not end in a number)"
        ));
    }
    Ok(name.to_ascii_lowercase())
}

/// A local file path. `~` or `~/…` at the start expands to `home`; other relative paths are
/// resolved against `base` when given (the directory of the inventory file).
pub(crate) fn path(s: &str, home: Option<&Path>, base: Option<&Path>) -> Result<PathBuf, String> {
    if s.is_empty() {
        return Err("a path cannot be empty".into());
    }
    if s.len() > MAX_PATH {
        return Err(format!("a path has at most {MAX_PATH} bytes"));
    }
    if let Some(c) = bad_char(s, |c| !c.is_control()) {
        return Err(format!("{c} is not allowed in a path"));
    }
    let tilde_rest = if s == "~" {
        Some("")
    } else {
        s.strip_prefix("~/")
    };
    if let Some(rest) = tilde_rest {
        let Some(home) = home else {
            return Err(format!(
                "`{s}` starts with `~`, but HOME is not set, so it cannot be expanded"
            ));
        };
        return Ok(if rest.is_empty() {
            home.to_path_buf()
        } else {
            home.join(rest)
        });
    }
    if s.starts_with('~') {
        return Err(format!(
            "`{s}`: only `~/` (your own home directory) is expanded, not `~user`"
        ));
    }
    let p = PathBuf::from(s);
    Ok(match base {
        Some(base) if p.is_relative() => base.join(p),
        _ => p,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(address("127.0.0.21").unwrap(), "127.0.0.21");
        assert_eq!(address("[::1]").unwrap(), "::1");
        assert_eq!(address("::1").unwrap(), "::1");
        assert_eq!(address("BE01.Contoso.com").unwrap(), "be01.contoso.com");
        assert_eq!(address("localhost").unwrap(), "localhost");
        assert!(address("127.0.0.300").unwrap_err().contains("IPv4"));
        assert!(address("fe80::1%eth0").unwrap_err().contains("IPv6"));
        assert!(address("host;calc").unwrap_err().contains("`;`"));
        assert!(address("a b").unwrap_err().contains("U+0020"));
        assert!(address("host.123").unwrap_err().contains("neither"));
        assert!(address("").is_err());
    }

    #[test]
    fn users() {
        assert!(user("svc-poolpatch").is_ok());
        assert!(user("CONTOSO\\svc-patch").is_ok());
        assert!(user("svc.patch@contoso.com").is_ok());
        assert!(user("-oProxyCommand").is_err());
        assert!(user("svc'x").unwrap_err().contains("`'`"));
        assert!(user("a$(calc)").is_err());
        assert!(user("A\\B\\c").is_err());
        assert!(user("CONTOSO\\").is_err());
    }

    #[test]
    fn paths_expand_tilde_only_for_self() {
        let home = Path::new("/home/op");
        assert_eq!(
            path("~/.ssh/id", Some(home), None).unwrap(),
            PathBuf::from("/home/op/.ssh/id")
        );
        assert_eq!(path("~", Some(home), None).unwrap(), home);
        assert!(path("~root/.ssh/id", Some(home), None).is_err());
        assert!(path("~/.ssh/id", None, None).unwrap_err().contains("HOME"));
        assert_eq!(
            path("keys/id", None, Some(Path::new("/etc/pp"))).unwrap(),
            PathBuf::from("/etc/pp/keys/id")
        );
        assert!(path("a\nb", None, None).is_err());
    }

    #[test]
    fn identifiers() {
        assert!(site_name("ams-dc1").is_ok());
        assert!(site_name("_x").is_err());
        assert!(site_name("new york").is_err());
        assert!(upgrade_domain("UD1").is_ok());
        assert!(upgrade_domain("UD`1").is_err());
    }
}
