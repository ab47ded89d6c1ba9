//! Reading the scripts of `plans::procedure` line by line, as the simulated host does.
//!
//! PowerShell is case-insensitive, so lines are matched without case. Every script of the
//! procedure has exactly one line that does the work; the rest is preamble
//! (`$ProgressPreference`, `$ErrorActionPreference`, `Import-Module`) and an explicit
//! `exit`. A line the simulator does not know is an error (exit 127), never silently
//! ignored: a new step must be taught to the simulator on purpose.

/// Characters PowerShell treats as a single quote (as `plans::quote` does).
const QUOTES: [char; 5] = ['\'', '\u{2018}', '\u{2019}', '\u{201A}', '\u{201B}'];

/// The flags of an `Install-CsDatabase` line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DatabaseUpdate {
    /// `-Update`.
    pub update: bool,
    /// `-ConfiguredDatabases` (Enterprise Edition back ends).
    pub configured_databases: bool,
    /// `-LocalDatabases` (Standard Edition servers).
    pub local_databases: bool,
    /// The value of `-SqlServerFqdn`.
    pub sql_server: Option<String>,
    /// `-ExcludeCollocatedStores`.
    pub exclude_collocated_stores: bool,
    /// Any other flag (refused: the simulator knows no other).
    pub other_flags: Vec<String>,
}

/// What a line asks the host to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimAction {
    /// `whoami /groups`.
    Groups,
    /// `Get-FileHash -LiteralPath <path>`.
    FileHash {
        /// The path, unquoted.
        path: String,
    },
    /// `(Get-PSDrive -Name <drive>).Free`.
    FreeDisk {
        /// The drive name.
        drive: String,
    },
    /// `Stop-CsWindowsService`.
    StopServices,
    /// `Start-CsWindowsService`.
    StartServices,
    /// The verification line.
    VerifyServices,
    /// `net stop w3svc`.
    StopW3svc,
    /// `net start w3svc`.
    StartW3svc,
    /// Runs an update installer.
    Install {
        /// The installer file name the line mentions.
        installer: String,
        /// The path given to `-FilePath` (or the word naming the installer).
        path: String,
    },
    /// `Install-CsDatabase …`.
    UpdateDatabases(DatabaseUpdate),
    /// `Restart-Computer`.
    Restart,
    /// A read-only probe line printing `key=value` (see `plans::procedure::probe`).
    Probe {
        /// The key printed (`services-down`, `w3svc`, `installer-running`, `version`,
        /// `databases-stale`).
        key: String,
    },
}

impl SimAction {
    /// Its kind (for durations and faults).
    pub fn kind(&self) -> super::ActionKind {
        use super::ActionKind as K;
        match self {
            SimAction::Groups => K::Groups,
            SimAction::FileHash { .. } => K::FileHash,
            SimAction::FreeDisk { .. } => K::FreeDisk,
            SimAction::StopServices => K::StopServices,
            SimAction::StartServices => K::StartServices,
            SimAction::VerifyServices => K::VerifyServices,
            SimAction::StopW3svc => K::StopW3svc,
            SimAction::StartW3svc => K::StartW3svc,
            SimAction::Install { .. } => K::Install,
            SimAction::UpdateDatabases(_) => K::UpdateDatabases,
            SimAction::Restart => K::Restart,
            SimAction::Probe { .. } => K::Probe,
        }
    }
}

/// The argument of `exit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitArg {
    /// A literal code.
    Code(i32),
    /// `$LASTEXITCODE` or anything else: the last command's code.
    Last,
}

/// One classified line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Line {
    /// Blank or preamble.
    Ignore,
    /// `Import-Module <name>`.
    ImportModule(String),
    /// `exit …`.
    Exit(ExitArg),
    /// A command; `then_exit` when the line itself ends the script with the command's code
    /// (`…; exit $p.ExitCode`).
    Action { action: SimAction, then_exit: bool },
    /// Not understood.
    Unknown,
}

/// Reads a PowerShell single-quoted literal at the start of `s`; returns it and the rest.
pub(crate) fn parse_literal(s: &str) -> Option<(String, &str)> {
    let mut chars = s.char_indices().peekable();
    match chars.next() {
        Some((_, q)) if QUOTES.contains(&q) => {}
        _ => return None,
    }
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        if QUOTES.contains(&c) {
            match chars.peek() {
                Some(&(_, d)) if QUOTES.contains(&d) => {
                    out.push(d);
                    chars.next();
                }
                _ => return Some((out, &s[i + c.len_utf8()..])),
            }
        } else {
            out.push(c);
        }
    }
    None
}

/// Splits into words: quoted literals (unquoted) or bare words; `;`, `(` and `)` end a bare
/// word.
fn tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return out;
        }
        if let Some((lit, after)) = parse_literal(rest) {
            out.push(lit);
            rest = after;
            continue;
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || c == ';' || c == '(' || c == ')')
            .unwrap_or(rest.len());
        if end == 0 {
            // A lone separator.
            let sep_len = rest.chars().next().map_or(1, char::len_utf8);
            rest = &rest[sep_len..];
            continue;
        }
        out.push(rest[..end].to_string());
        rest = &rest[end..];
    }
}

/// The value after `flag` (case-insensitive) in `line`, unquoted.
fn value_after(line: &str, flag: &str) -> Option<String> {
    let words = tokens(line);
    let at = words.iter().position(|w| w.eq_ignore_ascii_case(flag))?;
    words.get(at + 1).cloned()
}

fn database_update(line: &str) -> DatabaseUpdate {
    let lower = line.to_ascii_lowercase();
    let start = lower.find("install-csdatabase").map_or(0, |i| i + 18);
    let words = tokens(&line[start..]);
    let mut db = DatabaseUpdate::default();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        match w.to_ascii_lowercase().as_str() {
            "-update" => db.update = true,
            "-configureddatabases" => db.configured_databases = true,
            "-localdatabases" => db.local_databases = true,
            "-excludecollocatedstores" => db.exclude_collocated_stores = true,
            "-sqlserverfqdn" => {
                db.sql_server = words.get(i + 1).cloned();
                i += 1;
            }
            _ => db.other_flags.push(w.clone()),
        }
        i += 1;
    }
    db
}

/// Classifies one line of a script. Queries that name the installer's path (`Get-FileHash`)
/// are matched before the installer itself.
pub(crate) fn classify(line: &str) -> Line {
    let trimmed = line.trim();
    let l = trimmed.to_ascii_lowercase();
    let squashed = l.split_whitespace().collect::<Vec<_>>().join(" ");
    let action = |action| Line::Action {
        action,
        then_exit: false,
    };
    if l.is_empty()
        || l.starts_with('#')
        || l.starts_with("$progresspreference")
        || l.starts_with("$erroractionpreference")
    {
        return Line::Ignore;
    }
    if l.starts_with("import-module") {
        let name = tokens(&trimmed["import-module".len()..])
            .into_iter()
            .next()
            .unwrap_or_default();
        return Line::ImportModule(name);
    }
    // A probe line: `Write-Output ('key=' + …)`. Checked first: its expression may name any
    // cmdlet (Get-CsWindowsService, Test-CsDatabase) without running it as a step.
    if let Some(rest) = l.strip_prefix("write-output ('")
        && let Some((key, _)) = rest.split_once("='")
    {
        return action(SimAction::Probe {
            key: key.to_string(),
        });
    }
    if l.contains("install-csdatabase") {
        return action(SimAction::UpdateDatabases(database_update(trimmed)));
    }
    if l.contains("get-filehash") {
        let path = value_after(trimmed, "-LiteralPath")
            .or_else(|| value_after(trimmed, "-Path"))
            .unwrap_or_default();
        return action(SimAction::FileHash { path });
    }
    if l.contains("get-psdrive") {
        let drive = value_after(trimmed, "-Name").unwrap_or_else(|| "C".into());
        return action(SimAction::FreeDisk { drive });
    }
    for installer in [
        "LyncServerUpdateInstaller.exe",
        "SkypeServerUpdateInstaller.exe",
    ] {
        if l.contains(&installer.to_ascii_lowercase()) {
            let path = value_after(trimmed, "-FilePath").unwrap_or_else(|| {
                tokens(trimmed)
                    .into_iter()
                    .find(|w| {
                        w.to_ascii_lowercase()
                            .contains(&installer.to_ascii_lowercase())
                    })
                    .unwrap_or_else(|| installer.to_string())
            });
            return Line::Action {
                action: SimAction::Install {
                    installer: installer.to_string(),
                    path,
                },
                then_exit: l.contains("exit"),
            };
        }
    }
    if l.contains("whoami") && l.contains("/groups") {
        return action(SimAction::Groups);
    }
    if l.contains("restart-computer") {
        return action(SimAction::Restart);
    }
    if l.contains("stop-cswindowsservice") {
        return action(SimAction::StopServices);
    }
    if l.contains("start-cswindowsservice") {
        return action(SimAction::StartServices);
    }
    if l.contains("get-cswindowsservice") {
        return action(SimAction::VerifyServices);
    }
    if squashed.starts_with("net stop w3svc") {
        return action(SimAction::StopW3svc);
    }
    if squashed.starts_with("net start w3svc") {
        return action(SimAction::StartW3svc);
    }
    if l == "exit" || l.starts_with("exit ") {
        let arg = l[4..].trim().trim_end_matches(';');
        return Line::Exit(arg.parse().map_or(ExitArg::Last, ExitArg::Code));
    }
    Line::Unknown
}

/// The store key of a Windows (or POSIX) path: `/C:/x/Y` and `C:\x\y` are the same file.
pub fn path_key(path: &str) -> String {
    let p = path.trim().replace('\\', "/");
    let bytes = p.as_bytes();
    let p = if bytes.len() >= 3 && bytes[0] == b'/' && bytes[2] == b':' {
        p[1..].to_string()
    } else {
        p
    };
    p.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::super::ActionKind;
    use super::*;
    use poolpatch_plans::quote::ps_literal;

    #[test]
    fn literals_round_trip_with_plans_quoting() {
        for s in [
            "plain",
            "O'Brien",
            "a\u{2019}b",
            "C:\\Program Files\\x.exe",
            "",
        ] {
            let lit = ps_literal(s);
            assert_eq!(parse_literal(&lit), Some((s.to_string(), "")));
        }
        assert_eq!(parse_literal("'unterminated"), None);
        assert_eq!(parse_literal("bare"), None);
    }

    #[test]
    fn lines_of_the_procedure() {
        assert_eq!(
            classify("$ProgressPreference = 'SilentlyContinue'"),
            Line::Ignore
        );
        assert_eq!(
            classify("Import-Module 'SkypeForBusiness'"),
            Line::ImportModule("SkypeForBusiness".into())
        );
        assert_eq!(classify("exit $LASTEXITCODE"), Line::Exit(ExitArg::Last));
        assert_eq!(classify("exit 0"), Line::Exit(ExitArg::Code(0)));
        assert_eq!(classify("exit -1"), Line::Exit(ExitArg::Code(-1)));
        assert_eq!(
            classify("(Get-FileHash -Algorithm SHA256 -LiteralPath 'C:\\x\\it''s.exe').Hash"),
            Line::Action {
                action: SimAction::FileHash {
                    path: "C:\\x\\it's.exe".into()
                },
                then_exit: false
            }
        );
        let install = classify(
            "$p = Start-Process -FilePath 'C:\\p\\SkypeServerUpdateInstaller.exe' -ArgumentList '/silentmode' -Wait -PassThru -NoNewWindow; exit $p.ExitCode",
        );
        assert_eq!(
            install,
            Line::Action {
                action: SimAction::Install {
                    installer: "SkypeServerUpdateInstaller.exe".into(),
                    path: "C:\\p\\SkypeServerUpdateInstaller.exe".into()
                },
                then_exit: true
            }
        );
        assert_eq!(
            classify("NET  STOP W3SVC"),
            Line::Action {
                action: SimAction::StopW3svc,
                then_exit: false
            }
        );
        assert_eq!(classify("Remove-Item C:\\"), Line::Unknown);
    }

    /// Every script of the procedure is read as the step it is, whatever paths it names.
    #[test]
    fn every_step_of_the_procedure_is_recognised() {
        use poolpatch_inventory::{
            Fqdn, Pos, Product, RemoteShell, Role, Server, SshAuth, SshEndpoint,
        };
        use poolpatch_plans::procedure::{FinalStep, InstallerOnHost, StepKind, procedure};
        let server = Server {
            fqdn: Fqdn::parse("se01.contoso.com").unwrap(),
            pool: Fqdn::parse("se01.contoso.com").unwrap(),
            role: Role::StandardEdition,
            ssh: SshEndpoint {
                address: "127.0.0.1".into(),
                port: 22,
                user: "svc".into(),
                auth: SshAuth::Agent,
                known_hosts: "/k".into(),
                shell: RemoteShell::Powershell,
            },
            pos: Pos::START,
        };
        let installer = InstallerOnHost {
            path: "C:\\ProgramData\\poolpatch\\SkypeServerUpdateInstaller.exe".into(),
            sha256: "00".repeat(32),
            min_free_bytes: 1,
        };
        let p = procedure(&server, Product::Sfb2015, &installer, FinalStep::Reboot);
        for step in p.preflight.iter().chain(&p.outage).chain(&p.recovery) {
            let actions: Vec<ActionKind> = step
                .script
                .lines()
                .filter_map(|l| match classify(l) {
                    Line::Action { action, .. } => Some(action.kind()),
                    Line::Unknown => panic!("{}: unknown line {l}", step.kind.name()),
                    _ => None,
                })
                .collect();
            let expected: &[ActionKind] = match step.kind {
                StepKind::CheckGroups => &[ActionKind::Groups],
                StepKind::CheckInstaller => &[ActionKind::FileHash],
                StepKind::CheckDisk => &[ActionKind::FreeDisk],
                StepKind::StopServices | StepKind::StopServicesAgain => &[ActionKind::StopServices],
                StepKind::StopW3svc => &[ActionKind::StopW3svc],
                StepKind::InstallUpdate => &[ActionKind::Install],
                StepKind::Reboot => &[ActionKind::Restart],
                StepKind::StartW3svc => &[ActionKind::StartW3svc],
                StepKind::UpdateDatabases => &[ActionKind::UpdateDatabases],
                StepKind::StartServices => &[ActionKind::StartServices, ActionKind::VerifyServices],
                StepKind::Probe => &[ActionKind::Probe; 6],
            };
            assert_eq!(actions, expected, "{}", step.kind.name());
        }
    }

    #[test]
    fn database_flags() {
        let Line::Action {
            action: SimAction::UpdateDatabases(db),
            ..
        } = classify(
            "Install-CsDatabase -Update -ConfiguredDatabases -SqlServerFqdn 'sql01.contoso.com' -ExcludeCollocatedStores",
        )
        else {
            panic!("not a database line");
        };
        assert!(db.update && db.configured_databases && db.exclude_collocated_stores);
        assert!(!db.local_databases && db.other_flags.is_empty());
        assert_eq!(db.sql_server.as_deref(), Some("sql01.contoso.com"));
    }

    #[test]
    fn path_keys() {
        assert_eq!(
            path_key("/C:/ProgramData/X.exe"),
            path_key("c:\\programdata\\x.EXE")
        );
        assert_eq!(path_key("/tmp/a"), "/tmp/a");
    }
}
