//! The documented update procedure for one Back End or Standard Edition server, as data.
//!
//! Microsoft's procedure (Lync Server 2013 and Skype for Business Server, "Upgrade or update
//! a Back End server or Standard Edition server"):
//!
//! | # | step | command |
//! |---|---|---|
//! | 4 | stop Lync services — **the outage starts** | `Stop-CsWindowsService` |
//! | 5 | stop the web service | `net stop w3svc` |
//! | 7 | install the update | `LyncServerUpdateInstaller.exe` / `SkypeServerUpdateInstaller.exe` |
//! | 9 | stop services again (GAC -d assemblies) | `Stop-CsWindowsService` |
//! | 10 | start the web service | `net start w3svc` |
//! | 11 | update the databases, by role | `Install-CsDatabase -Update …` |
//! | — | start services and verify — **the outage ends** | `Start-CsWindowsService`, all Running |
//!
//! Steps 1–3 become preflight checks (run before the outage, at no outage cost); steps 6 and
//! 8 (close and reopen the management shell) are honoured by running every step in a fresh
//! PowerShell process. The final step is not in the document: the outage ends only when every
//! Lync service is verified running again.
//!
//! Every script is self-contained, starts with the same preamble, and ends with an explicit
//! exit code. Exactly one command line per script does the work, so a host (or the
//! simulator) can tell what a step does by reading its lines.

use poolpatch_inventory::{Product, Role, Server};
use serde::{Deserialize, Serialize};

use crate::quote::{powershell_command_line, ps_literal};

/// Installer exit code meaning "success, a reboot is required" (Windows Installer's
/// ERROR_SUCCESS_REBOOT_REQUIRED).
pub const EXIT_REBOOT_REQUIRED: i32 = 3010;

/// Exit code of `net start` when the service is already running, and of `net stop` when it
/// is not started: either way the step's goal holds.
pub const EXIT_NET_ALREADY_STARTED: i32 = 2;

/// Exit code of the verification line when a Lync service is not Running.
pub const EXIT_SERVICES_NOT_RUNNING: i32 = 3;

/// What a step does. The names are stable: they appear in the journal, the plan and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// Preflight (step 1): the account's groups, which must include CsAdministrator.
    CheckGroups,
    /// Preflight (step 2): the SHA-256 of the staged installer.
    CheckInstaller,
    /// Preflight: free space on the drive the installer runs from.
    CheckDisk,
    /// Step 4: `Stop-CsWindowsService`. The outage starts when this is sent.
    StopServices,
    /// Step 5: `net stop w3svc`.
    StopW3svc,
    /// Step 7: the update installer, unattended. Must not be interrupted.
    InstallUpdate,
    /// Reboot requested by the installer, or chosen as the final step.
    Reboot,
    /// Step 9: `Stop-CsWindowsService` again, to pick up the GAC -d assemblies.
    StopServicesAgain,
    /// Step 10: `net start w3svc`.
    StartW3svc,
    /// Step 11: `Install-CsDatabase -Update …` chosen by role. Must not be interrupted.
    UpdateDatabases,
    /// Final: `Start-CsWindowsService`, then every Lync service must be Running. The outage
    /// ends when this succeeds.
    StartServices,
    /// Not a step of the procedure: asks the server for its state (services, w3svc, a
    /// running installer, the installed version, the databases) without changing anything.
    /// Used when a run is resumed.
    Probe,
}

impl StepKind {
    /// The stable name (`stop-services`).
    pub fn name(self) -> &'static str {
        match self {
            StepKind::CheckGroups => "check-groups",
            StepKind::CheckInstaller => "check-installer",
            StepKind::CheckDisk => "check-disk",
            StepKind::StopServices => "stop-services",
            StepKind::StopW3svc => "stop-w3svc",
            StepKind::InstallUpdate => "install-update",
            StepKind::Reboot => "reboot",
            StepKind::StopServicesAgain => "stop-services-again",
            StepKind::StartW3svc => "start-w3svc",
            StepKind::UpdateDatabases => "update-databases",
            StepKind::StartServices => "start-services",
            StepKind::Probe => "probe",
        }
    }

    /// Every kind of the procedure, in procedure order ([`StepKind::Probe`] is not one).
    pub const ALL: [StepKind; 11] = [
        StepKind::CheckGroups,
        StepKind::CheckInstaller,
        StepKind::CheckDisk,
        StepKind::StopServices,
        StepKind::StopW3svc,
        StepKind::InstallUpdate,
        StepKind::Reboot,
        StepKind::StopServicesAgain,
        StepKind::StartW3svc,
        StepKind::UpdateDatabases,
        StepKind::StartServices,
    ];

    /// The kind with this stable name.
    pub fn from_name(name: &str) -> Option<StepKind> {
        Self::ALL
            .into_iter()
            .chain([StepKind::Probe])
            .find(|k| k.name() == name)
    }

    /// The step's number in Microsoft's procedure, if it has one.
    pub fn documented_number(self) -> Option<u8> {
        match self {
            StepKind::CheckGroups => Some(1),
            StepKind::CheckInstaller => Some(2),
            StepKind::StopServices => Some(4),
            StepKind::StopW3svc => Some(5),
            StepKind::InstallUpdate => Some(7),
            StepKind::StopServicesAgain => Some(9),
            StepKind::StartW3svc => Some(10),
            StepKind::UpdateDatabases => Some(11),
            StepKind::CheckDisk | StepKind::Reboot | StepKind::StartServices | StepKind::Probe => {
                None
            }
        }
    }

    /// What the step is for, in words.
    pub fn title(self) -> &'static str {
        match self {
            StepKind::CheckGroups => "check the account is a member of CsAdministrator",
            StepKind::CheckInstaller => "check the staged installer's SHA-256",
            StepKind::CheckDisk => "check free disk space",
            StepKind::StopServices => "stop Lync services",
            StepKind::StopW3svc => "stop the web service",
            StepKind::InstallUpdate => "install the update",
            StepKind::Reboot => "restart the server",
            StepKind::StopServicesAgain => "stop Lync services again (GAC -d assemblies)",
            StepKind::StartW3svc => "start the web service",
            StepKind::UpdateDatabases => "update the databases",
            StepKind::StartServices => "start Lync services and verify they are running",
            StepKind::Probe => "ask the server for its state",
        }
    }

    /// Whether interrupting the step could leave the server broken: the watchdog waits for
    /// these to end before it restores services.
    pub fn must_not_be_interrupted(self) -> bool {
        matches!(self, StepKind::InstallUpdate | StepKind::UpdateDatabases)
    }

    /// Whether the step is part of the outage (services are down while it runs).
    pub fn in_outage(self) -> bool {
        !matches!(
            self,
            StepKind::CheckGroups
                | StepKind::CheckInstaller
                | StepKind::CheckDisk
                | StepKind::Probe
        )
    }
}

/// How a server's procedure ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FinalStep {
    /// `Start-CsWindowsService`, then verify every service is Running.
    #[default]
    StartServices,
    /// Restart the server, then start (if needed) and verify services.
    Reboot,
}

impl FinalStep {
    /// The spellings used in the change file.
    pub const NAMES: [&'static str; 2] = ["start-services", "reboot"];
}

/// One step: what it is, the command an operator reads, and the exact script sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// What the step does.
    pub kind: StepKind,
    /// The command as an operator would type it in the management shell.
    pub command: String,
    /// The complete PowerShell script run for this step, in a fresh process.
    pub script: String,
    /// Exit codes that mean success.
    pub ok_exit_codes: Vec<i32>,
}

impl Step {
    /// The command line sent over SSH for a PowerShell host.
    pub fn powershell_command_line(&self) -> String {
        powershell_command_line(&self.script)
    }
}

/// Where and what the update installer is, on the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallerOnHost {
    /// Absolute path of the staged installer on the server.
    pub path: String,
    /// Its expected SHA-256, lower-case hex.
    pub sha256: String,
    /// Free space required on its drive, in bytes.
    pub min_free_bytes: u64,
}

/// The whole procedure for one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Procedure {
    /// Checks that run before the outage may start (no outage cost).
    pub preflight: Vec<Step>,
    /// Steps 4 to the final step; the outage runs from the first to the end of the last.
    pub outage: Vec<Step>,
    /// What brings services back after a failure or a watchdog action: start the web
    /// service (already running is fine), start Lync services and verify.
    pub recovery: Vec<Step>,
    /// The step sent when the installer asks for a reboot (exit 3010); the procedure then
    /// goes on with step 9.
    pub reboot: Step,
}

/// The management shell module of `product`.
pub fn shell_module(product: Product) -> &'static str {
    match product {
        Product::Lync2013 => "Lync",
        Product::Sfb2015 | Product::Sfb2019 => "SkypeForBusiness",
    }
}

/// The installer's file name for `product`.
pub fn installer_file_name(product: Product) -> &'static str {
    match product {
        Product::Lync2013 => "LyncServerUpdateInstaller.exe",
        Product::Sfb2015 | Product::Sfb2019 => "SkypeServerUpdateInstaller.exe",
    }
}

/// The step 11 command for a server's role: the choice that decides whether the update is
/// an outage or a success.
///
/// - EE back end, no collocated databases: `-ConfiguredDatabases -SqlServerFqdn <fqdn>`
/// - EE back end with collocated databases: the same plus `-ExcludeCollocatedStores`
/// - Standard Edition: `-LocalDatabases`
pub fn database_command(role: &Role) -> String {
    match role {
        Role::BackEnd {
            sql_server,
            collocated_databases,
            ..
        } => {
            let mut c = format!(
                "Install-CsDatabase -Update -ConfiguredDatabases -SqlServerFqdn {}",
                ps_literal(sql_server.as_str())
            );
            if !collocated_databases.is_empty() {
                c.push_str(" -ExcludeCollocatedStores");
            }
            c
        }
        Role::StandardEdition => "Install-CsDatabase -Update -LocalDatabases".to_string(),
    }
}

const PREAMBLE: &str =
    "$ProgressPreference = 'SilentlyContinue'\n$ErrorActionPreference = 'Stop'\n";

/// The verification line: lists services that are not Running and exits 3 if any.
const VERIFY_LINE: &str = "$down = @(Get-CsWindowsService | Where-Object { $_.Status -ne 'Running' }); if ($down.Count -gt 0) { $down | ForEach-Object { Write-Output ('NOT RUNNING: ' + $_.Name + ' ' + $_.Status) }; exit 3 }";

fn cmdlet_script(product: Product, lines: &[&str]) -> String {
    let mut s = String::from(PREAMBLE);
    s.push_str(&format!(
        "Import-Module {}\n",
        ps_literal(shell_module(product))
    ));
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    s.push_str("exit 0\n");
    s
}

fn native_script(line: &str) -> String {
    format!("{PREAMBLE}{line}\nexit $LASTEXITCODE\n")
}

fn step(kind: StepKind, command: impl Into<String>, script: String, ok: &[i32]) -> Step {
    Step {
        kind,
        command: command.into(),
        script,
        ok_exit_codes: ok.to_vec(),
    }
}

/// The drive letter of a Windows path (`C` of `C:\x`), or `C` when the path has none.
fn drive_of(path: &str) -> char {
    let mut chars = path.chars();
    match (chars.next(), chars.next()) {
        (Some(d), Some(':')) if d.is_ascii_alphabetic() => d.to_ascii_uppercase(),
        _ => 'C',
    }
}

/// Builds the procedure for `server` of a pool running `product`.
pub fn procedure(
    server: &Server,
    product: Product,
    installer: &InstallerOnHost,
    final_step: FinalStep,
) -> Procedure {
    let path = ps_literal(&installer.path);
    let preflight = vec![
        step(
            StepKind::CheckGroups,
            "whoami /groups",
            native_script("whoami /groups /fo csv /nh"),
            &[0],
        ),
        step(
            StepKind::CheckInstaller,
            format!("Get-FileHash -Algorithm SHA256 -LiteralPath {path}"),
            format!(
                "{PREAMBLE}(Get-FileHash -Algorithm SHA256 -LiteralPath {path}).Hash\nexit 0\n"
            ),
            &[0],
        ),
        step(
            StepKind::CheckDisk,
            format!("(Get-PSDrive -Name '{}').Free", drive_of(&installer.path)),
            format!(
                "{PREAMBLE}(Get-PSDrive -Name '{}').Free\nexit 0\n",
                drive_of(&installer.path)
            ),
            &[0],
        ),
    ];

    let install_line = format!(
        "$p = Start-Process -FilePath {path} -ArgumentList '/silentmode' -Wait -PassThru -NoNewWindow; exit $p.ExitCode"
    );
    let db = database_command(&server.role);
    let start_and_verify = step(
        StepKind::StartServices,
        "Start-CsWindowsService",
        cmdlet_script(product, &["Start-CsWindowsService", VERIFY_LINE]),
        &[0],
    );
    let reboot = step(
        StepKind::Reboot,
        "Restart-Computer -Force",
        format!("{PREAMBLE}Restart-Computer -Force\nexit 0\n"),
        &[0],
    );
    let mut outage = vec![
        step(
            StepKind::StopServices,
            "Stop-CsWindowsService",
            cmdlet_script(product, &["Stop-CsWindowsService"]),
            &[0],
        ),
        // `net stop` exits 2 when the service is not started: the step's goal holds.
        step(
            StepKind::StopW3svc,
            "net stop w3svc",
            native_script("net stop w3svc"),
            &[0, EXIT_NET_ALREADY_STARTED],
        ),
        step(
            StepKind::InstallUpdate,
            format!("{} /silentmode", installer_file_name(product)),
            format!("{PREAMBLE}{install_line}\n"),
            &[0, EXIT_REBOOT_REQUIRED],
        ),
        step(
            StepKind::StopServicesAgain,
            "Stop-CsWindowsService",
            cmdlet_script(product, &["Stop-CsWindowsService"]),
            &[0],
        ),
        // `net start` exits 2 when the service already runs (after a restart it starts at
        // boot): the step's goal holds.
        step(
            StepKind::StartW3svc,
            "net start w3svc",
            native_script("net start w3svc"),
            &[0, EXIT_NET_ALREADY_STARTED],
        ),
        step(
            StepKind::UpdateDatabases,
            db.clone(),
            cmdlet_script(product, &[&db]),
            &[0],
        ),
    ];
    if final_step == FinalStep::Reboot {
        outage.push(reboot.clone());
    }
    outage.push(start_and_verify.clone());

    let recovery = vec![
        step(
            StepKind::StartW3svc,
            "net start w3svc",
            native_script("net start w3svc"),
            &[0, EXIT_NET_ALREADY_STARTED],
        ),
        start_and_verify,
    ];
    Procedure {
        preflight,
        outage,
        recovery,
        reboot,
    }
}

/// Where a product's core binary is, whose file version is the installed update level.
pub fn version_file(product: Product) -> &'static str {
    match product {
        Product::Lync2013 => {
            "C:\\Program Files\\Microsoft Lync Server 2013\\Server\\Core\\RtcHost.exe"
        }
        Product::Sfb2015 => {
            "C:\\Program Files\\Skype for Business Server 2015\\Server\\Core\\RtcHost.exe"
        }
        Product::Sfb2019 => {
            "C:\\Program Files\\Skype for Business Server 2019\\Server\\Core\\RtcHost.exe"
        }
    }
}

/// The database test matching the role's update command (`Test-CsDatabase` reports, per
/// database, whether its installed version is the expected one).
fn database_test(role: &Role) -> String {
    match role {
        Role::BackEnd { sql_server, .. } => format!(
            "Test-CsDatabase -ConfiguredDatabases -SqlServerFqdn {}",
            ps_literal(sql_server.as_str())
        ),
        Role::StandardEdition => "Test-CsDatabase -LocalService".to_string(),
    }
}

/// The probe: a read-only script that prints one `key=value` line per fact, for resuming
/// a run from what the server really is rather than what the journal guessed:
///
/// - `services-down=N`: Lync services not Running;
/// - `w3svc=Running|Stopped`;
/// - `installer-running=True|False`: the update installer is still running (a controller
///   that died mid-step does not stop it);
/// - `version=…`: the installed version (the core binary's product version);
/// - `databases-stale=N`: databases whose installed version is not the expected one;
/// - `reboot-pending=True|False`: a restart the installer asked for has not happened.
pub fn probe(server: &Server, product: Product) -> Step {
    let installer = installer_file_name(product).trim_end_matches(".exe");
    let lines = [
        "Write-Output ('services-down=' + @(Get-CsWindowsService | Where-Object { $_.Status -ne 'Running' }).Count)".to_string(),
        "Write-Output ('w3svc=' + (Get-Service -Name 'w3svc').Status)".to_string(),
        format!(
            "Write-Output ('installer-running=' + [bool](Get-Process -Name {} -ErrorAction SilentlyContinue))",
            ps_literal(installer)
        ),
        format!(
            "Write-Output ('version=' + (Get-Item -LiteralPath {}).VersionInfo.ProductVersion)",
            ps_literal(version_file(product))
        ),
        format!(
            "Write-Output ('databases-stale=' + @({} | Where-Object {{ -not $_.Succeed }}).Count)",
            database_test(&server.role)
        ),
        "Write-Output ('reboot-pending=' + [bool](Get-ItemProperty -LiteralPath 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Session Manager' -Name 'PendingFileRenameOperations' -ErrorAction SilentlyContinue))".to_string(),
    ];
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    Step {
        kind: StepKind::Probe,
        command: "Get-CsWindowsService; Get-Service w3svc; Get-Process; RtcHost.exe version; Test-CsDatabase".into(),
        script: cmdlet_script(product, &refs),
        ok_exit_codes: vec![0],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poolpatch_inventory::{CollocatedDatabase, Fqdn, Pos, RemoteShell, SshAuth, SshEndpoint};

    fn server(role: Role) -> Server {
        Server {
            fqdn: Fqdn::parse("be01.ams.contoso.com").unwrap(),
            pool: Fqdn::parse("pool01.ams.contoso.com").unwrap(),
            role,
            ssh: SshEndpoint {
                address: "127.0.0.11".into(),
                port: 22,
                user: "svc".into(),
                auth: SshAuth::Agent,
                known_hosts: "/k".into(),
                shell: RemoteShell::Powershell,
            },
            pos: Pos::START,
        }
    }

    fn backend(collocated: Vec<CollocatedDatabase>) -> Role {
        Role::BackEnd {
            sql_server: Fqdn::parse("sql01.ams.contoso.com").unwrap(),
            mirror: None,
            collocated_databases: collocated,
        }
    }

    const INSTALLER: fn() -> InstallerOnHost = || InstallerOnHost {
        path: "C:\\ProgramData\\poolpatch\\SkypeServerUpdateInstaller.exe".into(),
        sha256: "00".repeat(32),
        min_free_bytes: 1 << 30,
    };

    #[test]
    fn database_command_by_role() {
        assert_eq!(
            database_command(&backend(vec![])),
            "Install-CsDatabase -Update -ConfiguredDatabases -SqlServerFqdn 'sql01.ams.contoso.com'"
        );
        assert_eq!(
            database_command(&backend(vec![CollocatedDatabase::Monitoring])),
            "Install-CsDatabase -Update -ConfiguredDatabases -SqlServerFqdn 'sql01.ams.contoso.com' -ExcludeCollocatedStores"
        );
        assert_eq!(
            database_command(&Role::StandardEdition),
            "Install-CsDatabase -Update -LocalDatabases"
        );
    }

    #[test]
    fn outage_steps_follow_the_documented_order() {
        let p = procedure(
            &server(backend(vec![])),
            Product::Sfb2015,
            &INSTALLER(),
            FinalStep::StartServices,
        );
        let kinds: Vec<_> = p.outage.iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds,
            [
                StepKind::StopServices,
                StepKind::StopW3svc,
                StepKind::InstallUpdate,
                StepKind::StopServicesAgain,
                StepKind::StartW3svc,
                StepKind::UpdateDatabases,
                StepKind::StartServices
            ]
        );
        assert!(
            p.outage[2]
                .command
                .starts_with("SkypeServerUpdateInstaller.exe")
        );
        for s in p.outage.iter().chain(&p.preflight).chain(&p.recovery) {
            assert!(
                s.script
                    .starts_with("$ProgressPreference = 'SilentlyContinue'")
            );
            assert!(
                s.script.trim_end().lines().last().unwrap().contains("exit"),
                "{}",
                s.script
            );
        }
        let reboot = procedure(
            &server(Role::StandardEdition),
            Product::Lync2013,
            &INSTALLER(),
            FinalStep::Reboot,
        );
        let tail: Vec<_> = reboot.outage.iter().rev().take(2).map(|s| s.kind).collect();
        assert_eq!(tail, [StepKind::StartServices, StepKind::Reboot]);
        assert!(
            reboot.outage[2]
                .command
                .starts_with("LyncServerUpdateInstaller.exe")
        );
        assert!(reboot.outage[0].script.contains("Import-Module 'Lync'"));
    }

    #[test]
    fn step_names_round_trip() {
        for k in StepKind::ALL {
            assert_eq!(StepKind::from_name(k.name()), Some(k));
        }
    }
}
