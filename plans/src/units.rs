//! Values of the change file that have a grammar: durations, sizes, remote directories,
//! SHA-256 digests and version numbers.
//!
//! Each parser returns the reason a value is wrong as a sentence, and the change-file decoder
//! adds where it was written and an example of what would be right.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The longest duration the change file accepts anywhere: no single step, budget or timeout
/// of a back end update is anywhere near a day, so a longer value is a typo (`25h`).
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Examples shown when a duration cannot be read.
pub const DURATION_EXAMPLES: &str = "write a number and a unit, such as `90s`, `25m` or `1h 30m`";

/// Parses a duration such as `25m`, `90s` or `1h 30m` (humantime's grammar), in whole
/// seconds, from zero to [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    parse_duration_up_to(s, MAX_DURATION)
}

/// [`parse_duration`] with another longest value (a canary's bake may last days).
pub fn parse_duration_up_to(s: &str, max: Duration) -> Result<Duration, String> {
    let t = s.trim();
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("`{t}` has no unit"));
    }
    let d = humantime::parse_duration(t).map_err(|e| format!("`{t}` is not a duration ({e})"))?;
    if d.subsec_nanos() != 0 {
        return Err(format!("`{t}` is not a whole number of seconds"));
    }
    if d > max {
        return Err(if max == MAX_DURATION {
            format!(
                "`{t}` is longer than {}, which no step or budget needs",
                format_duration(MAX_DURATION)
            )
        } else {
            format!("`{t}` is longer than {}", format_duration(max))
        });
    }
    Ok(d)
}

/// A duration written compactly and exactly in whole seconds: `25m`, `1h 30m`, `2m 5s`, `0s`.
/// Always ASCII; [`parse_duration`] reads it back.
pub fn format_duration(d: Duration) -> String {
    let total = d.as_secs();
    let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60);
    let mut parts = Vec::with_capacity(3);
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 {
        parts.push(format!("{m}m"));
    }
    if s > 0 || parts.is_empty() {
        parts.push(format!("{s}s"));
    }
    parts.join(" ")
}

/// An offset from the start of the plan as `+H:MM:SS`, for timelines.
pub fn format_offset(d: Duration) -> String {
    let t = d.as_secs();
    format!("+{}:{:02}:{:02}", t / 3600, (t / 60) % 60, t % 60)
}

/// Units accepted in sizes, with their factor in bytes.
const SIZE_UNITS: [(&str, u64); 9] = [
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
];

/// The largest size accepted: more free space than this is surely a typo.
pub const MAX_SIZE_BYTES: u64 = 64 << 40;

/// Parses a size such as `500MiB`, `4GiB` or `4 GB` into bytes. A unit is required.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = (&t[..split], t[split..].trim_start());
    if digits.is_empty() {
        return Err(format!("`{t}` does not start with a whole number"));
    }
    if unit.is_empty() {
        return Err(format!("`{t}` has no unit"));
    }
    let Some((_, factor)) = SIZE_UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(format!(
            "`{unit}` is not a size unit (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"
        ));
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{digits}` is too large"))?;
    match n.checked_mul(*factor) {
        Some(b) if b <= MAX_SIZE_BYTES => Ok(b),
        _ => Err(format!("`{t}` is more than 64TiB")),
    }
}

/// A size in the largest binary unit that divides it exactly: `4GiB`, `500MiB`, `12B`.
pub fn format_size(bytes: u64) -> String {
    for (unit, factor) in [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ] {
        if bytes >= factor && bytes.is_multiple_of(factor) {
            return format!("{}{unit}", bytes / factor);
        }
    }
    format!("{bytes}B")
}

/// Which grammar a [`RemoteDir`] follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathStyle {
    /// `C:\ProgramData\poolpatch\updates`: Windows servers.
    Windows,
    /// `/var/lib/poolpatch/updates`: lab hosts and simulators.
    Posix,
}

/// The directory on each server where the installer is staged: an absolute path whose
/// characters cannot mean anything to PowerShell, cmd.exe or a POSIX shell.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RemoteDir {
    /// The path without a trailing separator (except a bare root such as `C:\`).
    pub path: String,
    /// Windows or POSIX.
    pub style: PathStyle,
}

/// Longest staging directory accepted: with the installer's file name the whole path stays
/// well below Windows' 260-character MAX_PATH.
pub const MAX_REMOTE_DIR_CHARS: usize = 200;

/// Punctuation allowed in a path component besides ASCII letters, digits and spaces. Left
/// out on purpose: quotes, `$`, `` ` ``, `;`, `&`, `|`, `<`, `>`, `%`, `!`, `^`, `#`, braces,
/// and the wildcard characters `*`, `?`, `[`, `]` (Start-Process -FilePath expands them).
const PATH_PUNCTUATION: &str = "._-()+,=@~";

/// Windows device names that cannot be a file or directory name.
const RESERVED_WINDOWS_NAMES: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

impl RemoteDir {
    /// Checks `s` against the path grammar; the error says what is wrong.
    pub fn parse(s: &str) -> Result<RemoteDir, String> {
        if s.is_empty() {
            return Err("the path is empty".into());
        }
        if s.chars().count() > MAX_REMOTE_DIR_CHARS {
            return Err(format!(
                "the path is longer than {MAX_REMOTE_DIR_CHARS} characters"
            ));
        }
        if let Some(c) = s.chars().find(|c| {
            !(c.is_ascii_alphanumeric()
                || *c == ' '
                || *c == '\\'
                || *c == '/'
                || *c == ':'
                || PATH_PUNCTUATION.contains(*c))
        }) {
            return Err(format!(
                "{} is not allowed in a staging path (letters, digits, spaces and {PATH_PUNCTUATION} only)",
                describe_char(c)
            ));
        }
        let bytes = s.as_bytes();
        if s.starts_with("\\\\") {
            return Err("a network (UNC) path cannot be a staging directory".into());
        }
        if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
            let rest = &s[2..];
            if rest.contains('/') {
                return Err("a Windows path uses `\\` between names, not `/`".into());
            }
            if !rest.starts_with('\\') {
                return Err(format!(
                    "`{s}` is relative to the current directory of drive {}:",
                    char::from(bytes[0])
                ));
            }
            let body = rest.trim_end_matches('\\');
            check_components(body.split('\\').skip(1), true)?;
            let drive = char::from(bytes[0]).to_ascii_uppercase();
            return Ok(RemoteDir {
                path: format!("{drive}:\\{}", body.trim_start_matches('\\')),
                style: PathStyle::Windows,
            });
        }
        if let Some(rest) = s.strip_prefix('/') {
            if s.contains('\\') || s.contains(':') {
                return Err("a POSIX path cannot contain `\\` or `:`".into());
            }
            let body = rest.trim_end_matches('/');
            if !body.is_empty() {
                check_components(body.split('/'), false)?;
            }
            return Ok(RemoteDir {
                path: format!("/{body}"),
                style: PathStyle::Posix,
            });
        }
        Err(format!("`{s}` is not an absolute path"))
    }

    /// The path of `file_name` in this directory.
    pub fn join(&self, file_name: &str) -> String {
        let sep = match self.style {
            PathStyle::Windows => '\\',
            PathStyle::Posix => '/',
        };
        if self.path.ends_with(sep) {
            format!("{}{file_name}", self.path)
        } else {
            format!("{}{sep}{file_name}", self.path)
        }
    }
}

fn check_components<'a>(parts: impl Iterator<Item = &'a str>, windows: bool) -> Result<(), String> {
    for part in parts {
        if part.is_empty() {
            return Err("the path has an empty name (two separators in a row)".into());
        }
        if part == "." || part == ".." {
            return Err(format!(
                "`{part}` is not allowed: write the directory itself"
            ));
        }
        if part.starts_with(' ') || part.ends_with(' ') {
            return Err(format!("the name `{part}` starts or ends with a space"));
        }
        if windows {
            if part.contains(':') {
                return Err("`:` is only allowed after the drive letter".into());
            }
            if part.ends_with('.') {
                return Err(format!(
                    "the name `{part}` ends with `.`, which Windows drops"
                ));
            }
            let stem = part.split('.').next().unwrap_or(part).to_ascii_uppercase();
            if RESERVED_WINDOWS_NAMES.contains(&stem.as_str()) {
                return Err(format!("`{part}` is a reserved Windows device name"));
            }
        }
    }
    Ok(())
}

/// A character as a reader can see it in a message (control characters by name).
fn describe_char(c: char) -> String {
    match c {
        '\n' => "a line break".into(),
        '\r' => "a carriage return".into(),
        '\t' => "a tab".into(),
        c if c.is_control() => format!("the control character U+{:04X}", u32::from(c)),
        c if !c.is_ascii() => format!("`{c}` (U+{:04X})", u32::from(c)),
        c => format!("`{c}`"),
    }
}

/// Parses a SHA-256 digest: 64 hexadecimal digits, returned in lower case.
pub fn parse_sha256(s: &str) -> Result<String, String> {
    let t = s.trim();
    if let Some(c) = t.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("{} is not a hexadecimal digit", describe_char(c)));
    }
    if t.len() != 64 {
        return Err(format!(
            "a SHA-256 digest has 64 hexadecimal digits, this has {}",
            t.len()
        ));
    }
    Ok(t.to_ascii_lowercase())
}

/// Parses a product version such as `6.0.9319.690`: two to four dot-separated numbers.
pub fn parse_version(s: &str) -> Result<String, String> {
    let t = s.trim();
    let parts: Vec<&str> = t.split('.').collect();
    let ok = (2..=4).contains(&parts.len())
        && parts
            .iter()
            .all(|p| (1..=9).contains(&p.len()) && p.chars().all(|c| c.is_ascii_digit()));
    if ok {
        Ok(t.to_string())
    } else {
        Err(format!("`{t}` is not a version number"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_format() {
        assert_eq!(parse_duration("25m"), Ok(Duration::from_secs(1500)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("25").unwrap_err().contains("no unit"));
        assert!(parse_duration("25 minutes").is_ok());
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(
            parse_duration("1500ms")
                .unwrap_err()
                .contains("whole number")
        );
        assert!(parse_duration("25h").unwrap_err().contains("longer than"));
        for s in [0, 59, 60, 61, 1500, 3600, 5400, 86399] {
            let d = Duration::from_secs(s);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h 30m");
        assert_eq!(format_offset(Duration::from_secs(3725)), "+1:02:05");
    }

    #[test]
    fn sizes_need_a_known_unit() {
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("500 MiB"), Ok(500 << 20));
        assert_eq!(parse_size("4GB"), Ok(4_000_000_000));
        assert!(parse_size("4096").unwrap_err().contains("no unit"));
        assert!(parse_size("4gb").unwrap_err().contains("not a size unit"));
        assert!(parse_size("GiB").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
        assert!(parse_size("65TiB").unwrap_err().contains("64TiB"));
        assert_eq!(format_size(4 << 30), "4GiB");
        assert_eq!(format_size(1500), "1500B");
    }

    #[test]
    fn remote_dirs_follow_a_strict_grammar() {
        let w = RemoteDir::parse("c:\\ProgramData\\poolpatch\\updates\\").unwrap();
        assert_eq!(w.path, "C:\\ProgramData\\poolpatch\\updates");
        assert_eq!(
            w.join("a.exe"),
            "C:\\ProgramData\\poolpatch\\updates\\a.exe"
        );
        assert_eq!(RemoteDir::parse("D:\\").unwrap().join("a.exe"), "D:\\a.exe");
        let p = RemoteDir::parse("/var/lib/poolpatch/").unwrap();
        assert_eq!(p.join("a.exe"), "/var/lib/poolpatch/a.exe");
        assert_eq!(p.style, PathStyle::Posix);
        assert!(RemoteDir::parse("C:\\Program Files (x86)\\Poolpatch").is_ok());
        for (bad, why) in [
            ("C:\\a'b", "`'`"),
            ("C:\\$env:TEMP", "`$`"),
            ("C:\\a`b", "```"),
            ("C:\\a;b", "`;`"),
            ("C:\\a&b", "`&`"),
            ("C:\\a|b", "`|`"),
            ("C:\\a\nb", "line break"),
            ("C:\\a\u{2019}b", "U+2019"),
            ("C:\\a*", "`*`"),
            ("C:\\a\"b", "`\"`"),
            ("\\\\srv\\share", "UNC"),
            ("C:updates", "relative"),
            ("updates", "not an absolute"),
            ("C:\\a\\..\\b", "`..`"),
            ("C:\\a\\\\b", "empty name"),
            ("C:/a/b", "not `/`"),
            ("C:\\con", "reserved"),
            ("C:\\a.", "ends with `.`"),
            ("/a\\b", "`\\`"),
            ("/a//b", "empty name"),
        ] {
            let err = RemoteDir::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        assert!(RemoteDir::parse(&format!("C:\\{}", "a".repeat(220))).is_err());
    }

    #[test]
    fn digests_and_versions() {
        let d = "AB".repeat(32);
        assert_eq!(parse_sha256(&d), Ok("ab".repeat(32)));
        assert!(parse_sha256("abc").unwrap_err().contains("has 3"));
        assert!(parse_sha256(&"zz".repeat(32)).unwrap_err().contains("`z`"));
        assert!(parse_version("6.0.9319.690").is_ok());
        assert!(parse_version("5.0").is_ok());
        assert!(parse_version("6").is_err());
        assert!(parse_version("6.0.x").is_err());
        assert!(parse_version("1.2.3.4.5").is_err());
    }
}
