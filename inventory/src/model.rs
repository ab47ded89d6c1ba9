//! The validated inventory: only values that passed every check reach these types.
//!
//! Every name that can reach a remote command (FQDNs, paths, user names) is held in a type
//! whose constructor checks its grammar, so that code downstream can quote it into a
//! PowerShell literal without re-checking.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::diag::Pos;
pub use crate::windows::WeeklyWindow;

/// A fully qualified domain name, lower-cased (DNS names compare without case).
///
/// Grammar: 2 to 127 labels separated by `.`, each 1–63 characters of ASCII letters, digits
/// and `-`, not starting or ending with `-`; 253 characters at most. This excludes every
/// character that has a meaning in PowerShell, cmd.exe or a POSIX shell.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Fqdn(String);

impl Fqdn {
    /// Checks `s` against the FQDN grammar; the error says what is wrong.
    pub fn parse(s: &str) -> Result<Fqdn, String> {
        let s = s.strip_suffix('.').unwrap_or(s);
        if s.is_empty() {
            return Err("an FQDN cannot be empty".into());
        }
        if s.len() > 253 {
            return Err(format!(
                "an FQDN has at most 253 characters, this has {}",
                s.len()
            ));
        }
        let labels: Vec<&str> = s.split('.').collect();
        if labels.len() < 2 {
            return Err(format!(
                "`{s}` is a single label: write the fully qualified name (host.domain.tld)"
            ));
        }
        for label in &labels {
            if label.is_empty() {
                return Err(format!("`{s}` has an empty label (two dots in a row?)"));
            }
            if label.len() > 63 {
                return Err(format!("the label `{label}` is longer than 63 characters"));
            }
            if let Some(c) = label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
            {
                return Err(format!(
                    "`{c}` is not allowed in an FQDN (letters, digits, `-` and `.` only)"
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(format!("the label `{label}` starts or ends with `-`"));
            }
        }
        Ok(Fqdn(s.to_ascii_lowercase()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first label (the host name): `be01` of `be01.ams.contoso.com`.
    pub fn host(&self) -> &str {
        self.0.split('.').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for Fqdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated inventory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inventory {
    /// Sites in file order.
    pub sites: Vec<Site>,
    /// Pools in file order.
    pub pools: Vec<Pool>,
}

/// A site (a data centre, a region): the unit of time zone and maintenance windows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Site {
    /// Unique name.
    pub name: String,
    /// IANA time zone name, known to be valid (`Europe/Amsterdam`).
    pub time_zone: String,
    /// Weekly maintenance windows in `time_zone`; empty: any time (no `windows:`, or
    /// `windows: any`). Overlapping windows are open while any of them is.
    pub windows: Vec<WeeklyWindow>,
    /// Where the site is defined.
    #[serde(skip)]
    pub pos: Pos,
}

/// Lync / Skype for Business edition of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Edition {
    /// Enterprise Edition: Front End servers and one or more Back End (SQL) servers.
    Enterprise,
    /// Standard Edition: a single server with local databases.
    Standard,
}

impl Edition {
    /// The spelling used in files.
    pub const NAMES: [&'static str; 2] = ["enterprise", "standard"];

    /// The spelling used in files.
    pub fn name(self) -> &'static str {
        match self {
            Edition::Enterprise => "enterprise",
            Edition::Standard => "standard",
        }
    }

    /// The edition spelled as in a file, if it is one.
    pub fn from_name(name: &str) -> Option<Edition> {
        match name {
            "enterprise" => Some(Edition::Enterprise),
            "standard" => Some(Edition::Standard),
            _ => None,
        }
    }

    /// The edition's display name.
    pub fn display_name(self) -> &'static str {
        match self {
            Edition::Enterprise => "Enterprise Edition",
            Edition::Standard => "Standard Edition",
        }
    }
}

/// The server product, which decides the update installer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Product {
    /// Lync Server 2013.
    Lync2013,
    /// Skype for Business Server 2015.
    Sfb2015,
    /// Skype for Business Server 2019.
    Sfb2019,
}

impl Product {
    /// The spellings used in files.
    pub const NAMES: [&'static str; 3] = ["lync2013", "sfb2015", "sfb2019"];

    /// The spelling used in files.
    pub fn name(self) -> &'static str {
        match self {
            Product::Lync2013 => "lync2013",
            Product::Sfb2015 => "sfb2015",
            Product::Sfb2019 => "sfb2019",
        }
    }

    /// The product spelled as in a file, if it is one.
    pub fn from_name(name: &str) -> Option<Product> {
        match name {
            "lync2013" => Some(Product::Lync2013),
            "sfb2015" => Some(Product::Sfb2015),
            "sfb2019" => Some(Product::Sfb2019),
            _ => None,
        }
    }

    /// The product's display name.
    pub fn display_name(self) -> &'static str {
        match self {
            Product::Lync2013 => "Lync Server 2013",
            Product::Sfb2015 => "Skype for Business Server 2015",
            Product::Sfb2019 => "Skype for Business Server 2019",
        }
    }
}

/// A pool: the unit that must keep a back end up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pool {
    /// The pool's FQDN.
    pub fqdn: Fqdn,
    /// Name of the site it belongs to (exists in [`Inventory::sites`]).
    pub site: String,
    /// Enterprise or Standard.
    pub edition: Edition,
    /// Lync 2013, SfB 2015 or SfB 2019.
    pub product: Product,
    /// The paired (disaster recovery) pool, if any; pairing is symmetric once validated.
    pub backup_pool: Option<Fqdn>,
    /// Pools that must be completely done before this one starts.
    pub after: Vec<Fqdn>,
    /// Front End servers (Enterprise only; empty for Standard).
    pub front_ends: Vec<FrontEnd>,
    /// The servers poolpatch patches: the Back End servers of an Enterprise pool, or the
    /// single server of a Standard Edition pool.
    pub servers: Vec<Server>,
    /// The pool's own maintenance windows, in its site's time zone, replacing the site's:
    /// `None` when it has none (its site's apply); `Some` of an empty list for
    /// `windows: any` (any time, whatever the site says). See [`Inventory::windows_of`].
    pub windows: Option<Vec<WeeklyWindow>>,
    /// Where the pool is defined.
    #[serde(skip)]
    pub pos: Pos,
}

/// A Front End server: it loses its back end while that is patched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrontEnd {
    /// The server's FQDN.
    pub fqdn: Fqdn,
    /// Its upgrade domain, if the operator recorded it.
    pub upgrade_domain: Option<String>,
}

/// A server that goes through the update procedure: an EE Back End or an SE server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Server {
    /// The server's FQDN.
    pub fqdn: Fqdn,
    /// The FQDN of its pool.
    pub pool: Fqdn,
    /// Its role, which decides the database command.
    pub role: Role,
    /// How to reach it.
    pub ssh: SshEndpoint,
    /// Where the server is defined.
    #[serde(skip)]
    pub pos: Pos,
}

/// What a patched server is, for the database step.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Role {
    /// An Enterprise Edition Back End server.
    BackEnd {
        /// The SQL Server FQDN given to `Install-CsDatabase -SqlServerFqdn`.
        sql_server: Fqdn,
        /// Mirroring, when the back end store is mirrored.
        mirror: Option<Mirror>,
        /// Databases collocated on this server; non-empty means `-ExcludeCollocatedStores`.
        collocated_databases: Vec<CollocatedDatabase>,
    },
    /// A Standard Edition server (local databases).
    StandardEdition,
}

/// One side of a SQL mirroring pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mirror {
    /// This server's side.
    pub role: MirrorRole,
    /// The other side (a back end of the same pool; the pairing is mutual).
    pub partner: Fqdn,
}

/// The side of a mirroring pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MirrorRole {
    /// Holds the principal copy.
    Principal,
    /// Holds the mirror copy.
    Mirror,
}

impl MirrorRole {
    /// The spellings used in files.
    pub const NAMES: [&'static str; 2] = ["principal", "mirror"];

    /// The spelling used in files.
    pub fn name(self) -> &'static str {
        match self {
            MirrorRole::Principal => "principal",
            MirrorRole::Mirror => "mirror",
        }
    }

    /// The role spelled as in a file, if it is one.
    pub fn from_name(name: &str) -> Option<MirrorRole> {
        match name {
            "principal" => Some(MirrorRole::Principal),
            "mirror" => Some(MirrorRole::Mirror),
            _ => None,
        }
    }

    /// The other side.
    pub fn other(self) -> MirrorRole {
        match self {
            MirrorRole::Principal => MirrorRole::Mirror,
            MirrorRole::Mirror => MirrorRole::Principal,
        }
    }
}

/// A database collocated on a back end besides the pool's own stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CollocatedDatabase {
    /// Archiving store.
    Archiving,
    /// Monitoring store.
    Monitoring,
    /// Persistent Chat store.
    PersistentChat,
    /// Persistent Chat compliance store.
    PersistentChatCompliance,
}

impl CollocatedDatabase {
    /// The spellings used in files.
    pub const NAMES: [&'static str; 4] = [
        "archiving",
        "monitoring",
        "persistent_chat",
        "persistent_chat_compliance",
    ];

    /// The spelling used in files.
    pub fn name(self) -> &'static str {
        match self {
            CollocatedDatabase::Archiving => "archiving",
            CollocatedDatabase::Monitoring => "monitoring",
            CollocatedDatabase::PersistentChat => "persistent_chat",
            CollocatedDatabase::PersistentChatCompliance => "persistent_chat_compliance",
        }
    }

    /// The database spelled as in a file, if it is one.
    pub fn from_name(name: &str) -> Option<CollocatedDatabase> {
        match name {
            "archiving" => Some(CollocatedDatabase::Archiving),
            "monitoring" => Some(CollocatedDatabase::Monitoring),
            "persistent_chat" => Some(CollocatedDatabase::PersistentChat),
            "persistent_chat_compliance" => Some(CollocatedDatabase::PersistentChatCompliance),
            _ => None,
        }
    }
}

/// How to reach a server over SSH. Defaults from the inventory's `defaults.ssh` are merged in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SshEndpoint {
    /// Host name or IP address to connect to (default: the server's FQDN).
    pub address: String,
    /// TCP port (default 22).
    pub port: u16,
    /// Account to log on with (a member of CsAdministrator).
    pub user: String,
    /// How to authenticate.
    pub auth: SshAuth,
    /// The known_hosts file that holds the server's host key.
    pub known_hosts: PathBuf,
    /// How commands are sent.
    pub shell: RemoteShell,
}

/// SSH authentication method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "path", rename_all = "snake_case")]
pub enum SshAuth {
    /// A private key file (OpenSSH format).
    IdentityFile(PathBuf),
    /// The key(s) of the running ssh-agent (`SSH_AUTH_SOCK`).
    Agent,
}

/// How a step is sent to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteShell {
    /// `powershell.exe -NoLogo -NoProfile -NonInteractive -EncodedCommand …` (Windows).
    Powershell,
    /// The script as-is to a POSIX shell (lab hosts and simulators).
    Posix,
}

impl RemoteShell {
    /// The spellings used in files.
    pub const NAMES: [&'static str; 2] = ["powershell", "posix"];

    /// The spelling used in files.
    pub fn name(self) -> &'static str {
        match self {
            RemoteShell::Powershell => "powershell",
            RemoteShell::Posix => "posix",
        }
    }

    /// The shell spelled as in a file, if it is one.
    pub fn from_name(name: &str) -> Option<RemoteShell> {
        match name {
            "powershell" => Some(RemoteShell::Powershell),
            "posix" => Some(RemoteShell::Posix),
            _ => None,
        }
    }
}

impl Inventory {
    /// The pool with this FQDN.
    pub fn pool(&self, fqdn: &Fqdn) -> Option<&Pool> {
        self.pools.iter().find(|p| &p.fqdn == fqdn)
    }

    /// The site with this name.
    pub fn site(&self, name: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.name == name)
    }

    /// The maintenance windows of `pool`'s servers: its own, else its site's; empty means
    /// any time.
    pub fn windows_of<'a>(&'a self, pool: &'a Pool) -> &'a [WeeklyWindow] {
        match &pool.windows {
            Some(own) => own,
            None => self.site(&pool.site).map_or(&[], |s| &s.windows),
        }
    }

    /// Every patched server, pool by pool in file order.
    pub fn servers(&self) -> impl Iterator<Item = &Server> {
        self.pools.iter().flat_map(|p| p.servers.iter())
    }

    /// The patched server with this FQDN.
    pub fn server(&self, fqdn: &Fqdn) -> Option<&Server> {
        self.servers().find(|s| &s.fqdn == fqdn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fqdn_grammar() {
        assert_eq!(
            Fqdn::parse("BE01.Ams.Contoso.com.").unwrap().as_str(),
            "be01.ams.contoso.com"
        );
        assert!(Fqdn::parse("be01").unwrap_err().contains("single label"));
        assert!(
            Fqdn::parse("be01.contoso.com;calc")
                .unwrap_err()
                .contains("`;`")
        );
        assert!(
            Fqdn::parse("be01..com")
                .unwrap_err()
                .contains("empty label")
        );
        assert!(
            Fqdn::parse("-be.contoso.com")
                .unwrap_err()
                .contains("starts or ends")
        );
        assert!(Fqdn::parse("be01.contoso.com'").is_err());
        assert!(Fqdn::parse("be 01.contoso.com").is_err());
    }
}
