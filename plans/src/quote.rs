//! Safe PowerShell: literal quoting and `-EncodedCommand`.
//!
//! Nothing from the inventory or the change file is spliced raw into a command: values are
//! validated by grammar when loaded and, on top of that, always written as single-quoted
//! PowerShell literals here. Scripts go to the host base64-encoded (UTF-16LE), which needs no
//! quoting by cmd.exe, PowerShell or a POSIX shell on the way.

use base64::Engine as _;

/// Characters PowerShell treats as a single quote inside a single-quoted string: the ASCII
/// apostrophe and the typographic single quotes (U+2018, U+2019, U+201A, U+201B).
const SINGLE_QUOTES: [char; 5] = ['\'', '\u{2018}', '\u{2019}', '\u{201A}', '\u{201B}'];

/// `s` as a PowerShell single-quoted literal: inside one, only a quote character has a
/// meaning, and doubling it makes it literal. No variable or sub-expression expansion happens.
pub fn ps_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if SINGLE_QUOTES.contains(&c) {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// The value of `-EncodedCommand` for `script`: base64 of its UTF-16LE bytes.
pub fn encode_command(script: &str) -> String {
    let bytes: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The inverse of [`encode_command`]; `None` if `b64` is not base64 of UTF-16LE text.
pub fn decode_command(b64: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    if bytes.len() % 2 != 0 {
        return None;
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).ok()
}

/// The command line that runs `script` in a fresh, non-interactive Windows PowerShell.
pub fn powershell_command_line(script: &str) -> String {
    format!(
        "powershell.exe -NoLogo -NoProfile -NonInteractive -EncodedCommand {}",
        encode_command(script)
    )
}

/// The script carried by a command line built by [`powershell_command_line`], if it is one.
pub fn script_of_command_line(line: &str) -> Option<String> {
    let rest = line
        .trim()
        .strip_prefix("powershell.exe -NoLogo -NoProfile -NonInteractive -EncodedCommand ")?;
    decode_command(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn literals_double_every_kind_of_single_quote() {
        assert_eq!(ps_literal("sql01.contoso.com"), "'sql01.contoso.com'");
        assert_eq!(ps_literal("O'Brien"), "'O''Brien'");
        assert_eq!(ps_literal("a\u{2019}b"), "'a\u{2019}\u{2019}b'");
        assert_eq!(ps_literal("$(Remove-Item C:\\)"), "'$(Remove-Item C:\\)'");
    }

    #[test]
    fn encoded_command_matches_powershell_convention() {
        // [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes('dir')) = ZABpAHIA
        assert_eq!(encode_command("dir"), "ZABpAHIA");
        let line = powershell_command_line("exit 0");
        assert!(
            line.starts_with("powershell.exe -NoLogo -NoProfile -NonInteractive -EncodedCommand ")
        );
        assert_eq!(script_of_command_line(&line).as_deref(), Some("exit 0"));
    }

    proptest! {
        #[test]
        fn encoding_round_trips(s in "\\PC*") {
            prop_assert_eq!(decode_command(&encode_command(&s)), Some(s));
        }

        /// A literal never ends early: after removing the outer quotes, every quote
        /// character stands in a doubled pair.
        #[test]
        fn literal_never_closes_early(s in "\\PC*") {
            let lit = ps_literal(&s);
            let inner: Vec<char> = lit.chars().skip(1).collect();
            let inner = &inner[..inner.len() - 1];
            let mut i = 0;
            while i < inner.len() {
                if SINGLE_QUOTES.contains(&inner[i]) {
                    prop_assert!(i + 1 < inner.len() && inner[i + 1] == inner[i]);
                    i += 2;
                } else {
                    i += 1;
                }
            }
        }
    }
}
