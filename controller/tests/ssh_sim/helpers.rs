//! Shared helpers: a lab directory with a client key and a known_hosts file, servers and
//! simulated hosts, and the procedure's steps run through the `RemoteHost` boundary.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use poolpatch::remote::{
    Connector, ExecOutput, RemoteError, RemoteHost, SshConnector, SshOptions, command_line,
};
use poolpatch::sim::{SimHost, SimHostConfig, SimListener, write_identity_file};
use poolpatch_inventory::{
    CollocatedDatabase, Fqdn, Pos, Product, RemoteShell, Role, Server, SshAuth, SshEndpoint,
};
use poolpatch_plans::procedure::{FinalStep, InstallerOnHost, Procedure, Step, procedure};
use russh::keys::PublicKey;
use tempfile::TempDir;

/// Where the installer is staged in these tests (a Windows path, as the scripts name it).
pub const SFB_INSTALLER: &str = "C:\\ProgramData\\poolpatch\\SkypeServerUpdateInstaller.exe";
/// The same file as an SFTP path on Windows OpenSSH.
pub const SFB_INSTALLER_SFTP: &str = "/C:/ProgramData/poolpatch/SkypeServerUpdateInstaller.exe";
/// The Lync 2013 installer.
pub const LYNC_INSTALLER: &str = "C:\\ProgramData\\poolpatch\\LyncServerUpdateInstaller.exe";

/// A temporary directory with a client identity and a known_hosts file.
pub struct Lab {
    pub dir: TempDir,
    pub identity: PathBuf,
    pub client_key: PublicKey,
    pub known_hosts: PathBuf,
}

impl Lab {
    pub fn new() -> Lab {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let identity = dir.path().join("id_ed25519");
        let client_key = write_identity_file(&identity).expect("an identity file");
        let known_hosts = dir.path().join("known_hosts");
        Lab {
            dir,
            identity,
            client_key,
            known_hosts,
        }
    }

    /// A local file holding `bytes`.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).expect("a local file");
        p
    }

    /// Appends a host's key for `server` to the known_hosts file.
    pub fn trust(&self, host: &SimHost, server: &Server) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.known_hosts)
            .expect("known_hosts opens");
        writeln!(
            f,
            "{}",
            host.known_hosts_line(&server.ssh.address, server.ssh.port)
        )
        .expect("known_hosts written");
    }
}

pub fn fqdn(s: &str) -> Fqdn {
    Fqdn::parse(s).expect("a valid FQDN")
}

/// An Enterprise Edition back end whose SQL server is `sql01.ams.contoso.com`.
pub fn back_end(collocated: bool) -> Role {
    Role::BackEnd {
        sql_server: fqdn("sql01.ams.contoso.com"),
        mirror: None,
        collocated_databases: if collocated {
            vec![
                CollocatedDatabase::Archiving,
                CollocatedDatabase::Monitoring,
            ]
        } else {
            Vec::new()
        },
    }
}

/// A server reached at `address`:`port` with the lab's key and known_hosts.
pub fn server(name: &str, role: Role, address: &str, port: u16, lab: &Lab) -> Server {
    Server {
        fqdn: fqdn(name),
        pool: fqdn("pool01.ams.contoso.com"),
        role,
        ssh: SshEndpoint {
            address: address.into(),
            port,
            user: "svc-poolpatch".into(),
            auth: SshAuth::IdentityFile(lab.identity.clone()),
            known_hosts: lab.known_hosts.clone(),
            shell: RemoteShell::Powershell,
        },
        pos: Pos::START,
    }
}

/// Starts `config`'s host on `address`, port 0; returns the host, its listener and the
/// server pointed at it, its key trusted in the lab's known_hosts.
pub async fn start_tcp(
    config: SimHostConfig,
    role: Role,
    address: &str,
    lab: &Lab,
) -> (SimHost, SimListener, Server) {
    let host = SimHost::new(config.authorize(lab.client_key.clone()));
    let listener = host
        .listen(format!("{address}:0").parse().expect("a socket address"))
        .await
        .expect("the simulated host listens");
    let srv = server(
        &host.config().fqdn.clone(),
        role,
        address,
        listener.local_addr().port(),
        lab,
    );
    lab.trust(&host, &srv);
    (host, listener, srv)
}

/// A simulated host's configuration for a server with this role.
pub fn config(name: &str, role: Role, product: Product, lab: &Lab) -> SimHostConfig {
    SimHostConfig::for_server(&server(name, role, "127.0.0.1", 22, lab), product)
}

/// The procedure for `server` with the installer at `path` holding `bytes`.
pub fn procedure_for(
    server: &Server,
    product: Product,
    path: &str,
    bytes: &[u8],
    final_step: FinalStep,
) -> Procedure {
    let installer = InstallerOnHost {
        path: path.into(),
        sha256: poolpatch::sim::sha256_hex(bytes),
        min_free_bytes: 1 << 30,
    };
    procedure(server, product, &installer, final_step)
}

/// Runs `step` as the executor would: its PowerShell command line, in a fresh channel.
pub async fn run(host: &dyn RemoteHost, step: &Step, timeout: Duration) -> ExecOutput {
    host.run(
        &command_line(RemoteShell::Powershell, &step.script),
        timeout,
    )
    .await
}

/// Connects with the strict default options.
pub async fn connect(server: &Server) -> Result<Arc<dyn RemoteHost>, RemoteError> {
    SshConnector::new(SshOptions::default())
        .connect(server)
        .await
}

/// Connects again until the host answers (it may be restarting), up to `tries` times.
pub async fn reconnect(server: &Server, tries: u32, pause: Duration) -> Arc<dyn RemoteHost> {
    let mut last = None;
    for _ in 0..tries {
        match connect(server).await {
            Ok(h) => return h,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(pause).await;
    }
    panic!("the host did not come back: {last:?}");
}

/// Asserts `out` ended with one of `step`'s success codes, showing its output if not.
pub fn assert_ok(step: &Step, out: &ExecOutput) {
    assert!(
        out.exit.is_success(&step.ok_exit_codes),
        "{} failed: {}\nstdout: {}\nstderr: {}",
        step.kind.name(),
        out.exit,
        out.stdout_text(),
        out.stderr_text()
    );
}
