//! What a simulated host is: its role and product, its starting state, how long each
//! command takes, and which faults to inject.

use std::collections::BTreeMap;
use std::time::Duration;

use poolpatch_inventory::{Product, Role, Server};
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{PrivateKey, PublicKey};
use sha2::{Digest, Sha256};

/// The Lync / Skype for Business Windows services a back end runs (by service name).
pub const LYNC_SERVICES: [&str; 6] = [
    "REPLICA",
    "RTCCLSAGT",
    "RTCSRV",
    "RTCDATAPROXY",
    "RTCMEDSRV",
    "RTCASMCU",
];

/// A command the simulator recognises in a script line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ActionKind {
    /// `whoami /groups`.
    Groups,
    /// `Get-FileHash`.
    FileHash,
    /// `Get-PSDrive … .Free`.
    FreeDisk,
    /// `Stop-CsWindowsService`.
    StopServices,
    /// `Start-CsWindowsService`.
    StartServices,
    /// The verification line (`Get-CsWindowsService` … `NOT RUNNING`).
    VerifyServices,
    /// `net stop w3svc`.
    StopW3svc,
    /// `net start w3svc`.
    StartW3svc,
    /// The update installer (`LyncServerUpdateInstaller.exe` / `SkypeServerUpdateInstaller.exe`).
    Install,
    /// `Install-CsDatabase`.
    UpdateDatabases,
    /// `Restart-Computer`.
    Restart,
    /// A read-only probe line (`Write-Output ('key=' + …)`).
    Probe,
}

impl ActionKind {
    /// A stable name for records and messages.
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Groups => "groups",
            ActionKind::FileHash => "file-hash",
            ActionKind::FreeDisk => "free-disk",
            ActionKind::StopServices => "stop-services",
            ActionKind::StartServices => "start-services",
            ActionKind::VerifyServices => "verify-services",
            ActionKind::StopW3svc => "stop-w3svc",
            ActionKind::StartW3svc => "start-w3svc",
            ActionKind::Install => "install",
            ActionKind::UpdateDatabases => "update-databases",
            ActionKind::Restart => "restart",
            ActionKind::Probe => "probe",
        }
    }
}

/// How long each command takes on the host, before scaling, and the scale.
///
/// Durations run on tokio's clock, so under a paused clock a 12-minute installer costs no
/// real time; over real TCP, a small `scale` keeps rehearsals short.
#[derive(Debug, Clone, PartialEq)]
pub struct SimDurations {
    /// `whoami /groups`.
    pub groups: Duration,
    /// `Get-FileHash` of the staged installer.
    pub file_hash: Duration,
    /// `Get-PSDrive`.
    pub free_disk: Duration,
    /// `Stop-CsWindowsService`.
    pub stop_services: Duration,
    /// `Start-CsWindowsService`.
    pub start_services: Duration,
    /// The verification line.
    pub verify_services: Duration,
    /// `net stop w3svc`.
    pub stop_w3svc: Duration,
    /// `net start w3svc`.
    pub start_w3svc: Duration,
    /// The update installer.
    pub install: Duration,
    /// `Install-CsDatabase -Update`.
    pub update_databases: Duration,
    /// From `Restart-Computer` returning to the connections dropping.
    pub restart: Duration,
    /// How long the host is unreachable while it restarts.
    pub reboot_downtime: Duration,
    /// Every duration is multiplied by this (1.0 = real time; 0.001 for fast tests). A
    /// negative or non-finite scale counts as 0.
    pub scale: f64,
}

impl Default for SimDurations {
    /// Plausible times for a back end on decent hardware.
    fn default() -> Self {
        SimDurations {
            groups: Duration::from_secs(1),
            file_hash: Duration::from_secs(3),
            free_disk: Duration::from_secs(1),
            stop_services: Duration::from_secs(90),
            start_services: Duration::from_secs(120),
            verify_services: Duration::from_secs(5),
            stop_w3svc: Duration::from_secs(5),
            start_w3svc: Duration::from_secs(5),
            install: Duration::from_secs(12 * 60),
            update_databases: Duration::from_secs(4 * 60),
            restart: Duration::from_secs(5),
            reboot_downtime: Duration::from_secs(4 * 60),
            scale: 1.0,
        }
    }
}

impl SimDurations {
    /// The defaults with every duration multiplied by `scale`.
    pub fn scaled(scale: f64) -> SimDurations {
        SimDurations {
            scale,
            ..SimDurations::default()
        }
    }

    /// Every command instantaneous (restart and downtime too).
    pub fn instant() -> SimDurations {
        SimDurations::scaled(0.0)
    }

    /// The unscaled duration of an action.
    pub fn base(&self, kind: ActionKind) -> Duration {
        match kind {
            ActionKind::Groups => self.groups,
            ActionKind::FileHash => self.file_hash,
            ActionKind::FreeDisk => self.free_disk,
            ActionKind::StopServices => self.stop_services,
            ActionKind::StartServices => self.start_services,
            ActionKind::VerifyServices => self.verify_services,
            ActionKind::StopW3svc => self.stop_w3svc,
            ActionKind::StartW3svc => self.start_w3svc,
            ActionKind::Install => self.install,
            ActionKind::UpdateDatabases => self.update_databases,
            ActionKind::Restart | ActionKind::Probe => Duration::ZERO,
        }
    }

    /// The scaled duration of an action.
    pub fn of(&self, kind: ActionKind) -> Duration {
        self.scale(self.base(kind))
    }

    /// `d` multiplied by the scale, never panicking: at most a year.
    pub fn scale(&self, d: Duration) -> Duration {
        const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
        let factor = if self.scale.is_finite() && self.scale > 0.0 {
            self.scale
        } else {
            0.0
        };
        let secs = d.as_secs_f64() * factor;
        Duration::try_from_secs_f64(secs).map_or(YEAR, |d| d.min(YEAR))
    }
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultEffect {
    /// The command runs for its duration, changes nothing, and fails with this exit code
    /// and standard error.
    Fail {
        /// The exit code (a cmdlet failing under `$ErrorActionPreference='Stop'` gives 1).
        exit_code: i32,
        /// What it writes to standard error.
        stderr: String,
    },
    /// The command never answers (until the host restarts or the simulator stops).
    Hang,
    /// The host drops every connection halfway through the command. The command itself runs
    /// to completion on the host, as a process that outlives its session would.
    DropConnection,
    /// (Installer only) the update installs and the installer exits 3010: a restart is
    /// required before the databases can be updated.
    RebootRequired,
    /// (`Restart-Computer` only) the host stays unreachable this much longer than
    /// [`SimDurations::reboot_downtime`] (scaled like every duration).
    SlowBoot(Duration),
}

/// A fault injected into one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The action it applies to.
    pub action: ActionKind,
    /// Which invocation of that action on this host (1 = the first); `None` = every one.
    pub occurrence: Option<u32>,
    /// What happens.
    pub effect: FaultEffect,
}

impl Fault {
    /// `effect` on the first invocation of `action`.
    pub fn new(action: ActionKind, effect: FaultEffect) -> Fault {
        Fault {
            action,
            occurrence: Some(1),
            effect,
        }
    }

    /// The same fault on the `n`-th invocation instead (1-based).
    pub fn on_occurrence(mut self, n: u32) -> Fault {
        self.occurrence = Some(n);
        self
    }

    /// The same fault on every invocation.
    pub fn every_time(mut self) -> Fault {
        self.occurrence = None;
        self
    }
}

/// Everything about one simulated host.
#[derive(Debug, Clone)]
pub struct SimHostConfig {
    /// The server's FQDN (for records and messages).
    pub fqdn: String,
    /// Lync 2013 or Skype for Business: decides the installer and the shell module.
    pub product: Product,
    /// Back end (with its SQL server and collocated databases) or Standard Edition.
    pub role: Role,
    /// The account allowed to log on (compared without case, as Windows does).
    pub user: String,
    /// The NetBIOS domain shown by `whoami /groups`.
    pub domain: String,
    /// Whether the account is a member of CSAdministrator.
    pub cs_administrator: bool,
    /// Public keys accepted for `user`.
    pub authorized_keys: Vec<PublicKey>,
    /// The host's own key (its public half goes into known_hosts).
    pub host_key: PrivateKey,
    /// Lync service names; all Running at start unless `services_running` is false.
    pub services: Vec<String>,
    /// Whether the Lync services run at start.
    pub services_running: bool,
    /// Whether w3svc runs at start.
    pub w3svc_running: bool,
    /// The installed version before the update.
    pub version_before: String,
    /// The version the update installs.
    pub version_after: String,
    /// Free bytes on the system drive, before stored files.
    pub free_bytes: u64,
    /// Files present at start, by path (Windows paths; `/C:/x` and `C:\x` are the same file,
    /// and names compare without case).
    pub files: BTreeMap<String, Vec<u8>>,
    /// The SHA-256 (hex) the installer must have; `None` accepts any file at the path.
    pub installer_sha256: Option<String>,
    /// How long commands take.
    pub durations: SimDurations,
    /// Faults to inject.
    pub faults: Vec<Fault>,
}

/// A fresh random Ed25519 key (host keys, test client keys).
pub fn random_ed25519_key() -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&rand::random::<[u8; 32]>()))
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl SimHostConfig {
    /// A healthy, unpatched host for `server` running `product`: services and w3svc
    /// running, the account a CSAdministrator, 50 GB free, a fresh Ed25519 host key, no
    /// authorized key yet (add one with [`SimHostConfig::authorize`]).
    pub fn for_server(server: &Server, product: Product) -> SimHostConfig {
        let (before, after) = match product {
            Product::Lync2013 => ("5.0.8308.1001", "5.0.8308.1182"),
            Product::Sfb2015 => ("6.0.9319.534", "6.0.9319.619"),
            Product::Sfb2019 => ("7.0.2046.385", "7.0.2046.530"),
        };
        SimHostConfig {
            fqdn: server.fqdn.as_str().to_string(),
            product,
            role: server.role.clone(),
            user: server.ssh.user.clone(),
            domain: "CONTOSO".into(),
            cs_administrator: true,
            authorized_keys: Vec::new(),
            host_key: random_ed25519_key(),
            services: LYNC_SERVICES.iter().map(|s| s.to_string()).collect(),
            services_running: true,
            w3svc_running: true,
            version_before: before.into(),
            version_after: after.into(),
            free_bytes: 50_000_000_000,
            files: BTreeMap::new(),
            installer_sha256: None,
            durations: SimDurations::default(),
            faults: Vec::new(),
        }
    }

    /// Accepts `key` for the account.
    pub fn authorize(mut self, key: PublicKey) -> SimHostConfig {
        self.authorized_keys.push(key);
        self
    }

    /// Puts a file on the host at start.
    pub fn with_file(mut self, path: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        self.files.insert(path.into(), bytes.into());
        self
    }

    /// Requires the installer to have exactly these bytes' SHA-256 (they need not be staged
    /// yet: upload them, or add them with [`SimHostConfig::with_file`]).
    pub fn expect_installer(mut self, bytes: &[u8]) -> SimHostConfig {
        self.installer_sha256 = Some(sha256_hex(bytes));
        self
    }

    /// Sets the durations.
    pub fn with_durations(mut self, durations: SimDurations) -> SimHostConfig {
        self.durations = durations;
        self
    }

    /// Adds a fault.
    pub fn with_fault(mut self, fault: Fault) -> SimHostConfig {
        self.faults.push(fault);
        self
    }

    /// The shell module name of the product (`Lync` or `SkypeForBusiness`).
    pub fn module(&self) -> &'static str {
        poolpatch_plans::procedure::shell_module(self.product)
    }

    /// The installer file name of the product.
    pub fn installer_name(&self) -> &'static str {
        poolpatch_plans::procedure::installer_file_name(self.product)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_never_panics() {
        let mut d = SimDurations::scaled(0.5);
        assert_eq!(d.of(ActionKind::Install), Duration::from_secs(6 * 60));
        d.scale = f64::NAN;
        assert_eq!(d.of(ActionKind::Install), Duration::ZERO);
        d.scale = -3.0;
        assert_eq!(d.of(ActionKind::Install), Duration::ZERO);
        d.scale = f64::MAX;
        assert_eq!(
            d.of(ActionKind::Install),
            Duration::from_secs(365 * 24 * 3600)
        );
    }

    #[test]
    fn keys_are_random() {
        assert_ne!(
            random_ed25519_key().public_key(),
            random_ed25519_key().public_key()
        );
    }
}
