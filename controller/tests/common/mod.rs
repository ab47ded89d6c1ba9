//! Shared by the tests that need a real OpenSSH sshd: the ForceCommand script that plays
//! the Windows side of the procedure, and sshd started on a loopback address with it.
#![allow(dead_code)]

use std::net::TcpListener as StdListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// OpenSSH's server.
pub const SSHD: &str = "/usr/sbin/sshd";

/// Whether the test can run: true when sshd is installed. Without it, fails in CI (the
/// `CI` environment variable) and prints a loud SKIPPED line elsewhere.
pub fn sshd_available(test: &str) -> bool {
    if Path::new(SSHD).exists() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{SSHD} not found: {test} is mandatory in CI (apt-get install -y openssh-server)");
    }
    eprintln!("SKIPPED: {SSHD} not found — {test} did not run");
    false
}

/// The known_hosts line for sshd's own Ed25519 host key in `dir`, reached at
/// `address`:`port`.
pub fn known_hosts_line(dir: &Path, address: &str, port: u16) -> String {
    let public =
        std::fs::read_to_string(dir.join("ssh_host_ed25519_key.pub")).expect("sshd's host key");
    let mut parts = public.split_whitespace();
    let (kind, key) = (parts.next().expect("key type"), parts.next().expect("key"));
    format!("[{address}]:{port} {kind} {key}")
}

/// The Windows side: decodes `-EncodedCommand`, keeps state in files under `state/`,
/// enforces the procedure's order in a simple form, and hands `sftp` to OpenSSH's
/// sftp-server. It plays an Enterprise Edition back end (SQL Server
/// `sql01.ams.contoso.com`, collocated stores) unless a file `role` next to it says
/// `standard`: then it is a Standard Edition server, whose database update must be
/// `-LocalDatabases`.
pub const WINDOWS_PY: &str = r#"
import base64, hashlib, os, re, sys, time
HERE = os.path.dirname(os.path.abspath(__file__))
STATE = os.path.join(HERE, "state")
SQL = "sql01.ams.contoso.com"
ROLE_FILE = os.path.join(HERE, "role")
ROLE = open(ROLE_FILE).read().strip() if os.path.exists(ROLE_FILE) else "backend"
def get(name, default):
    p = os.path.join(STATE, name)
    return open(p).read().strip() if os.path.exists(p) else default
def put(name, value):
    with open(os.path.join(STATE, name), "w") as f:
        f.write(value)
    with open(os.path.join(STATE, "log"), "a") as f:
        f.write(name + "=" + value + "\n")
def literal_after(line, flag):
    m = re.search(re.escape(flag) + r"\s+'((?:[^']|'')*)'", line, re.I)
    return m.group(1).replace("''", "'") if m else None
def out(s):
    sys.stdout.write(s + "\r\n")
def fail(code, message):
    sys.stderr.write(message + "\r\n")
    sys.exit(code)
original = os.environ.get("SSH_ORIGINAL_COMMAND", "")
if original.endswith("sftp-server"):
    os.execv(original, [original])
prefix = "powershell.exe -NoLogo -NoProfile -NonInteractive -EncodedCommand "
if not original.startswith(prefix):
    fail(126, "not an encoded PowerShell command: " + original)
script = base64.b64decode(original[len(prefix):]).decode("utf-16-le")
last = 0
for raw in script.splitlines():
    line = raw.strip()
    l = line.lower()
    if not l or l.startswith("$progresspreference") or l.startswith("$erroractionpreference"):
        continue
    if l.startswith("import-module"):
        if "skypeforbusiness" not in l:
            fail(1, "Import-Module : module not found: " + line)
        continue
    if l.startswith("exit"):
        arg = l[4:].strip()
        sys.exit(int(arg) if re.fullmatch(r"-?\d+", arg) else last)
    if "get-filehash" in l:
        path = literal_after(line, "-LiteralPath")
        try:
            data = open(path, "rb").read()
        except (OSError, TypeError):
            fail(1, "Get-FileHash : file not found: %s" % path)
        out(hashlib.sha256(data).hexdigest().upper())
        continue
    if "get-psdrive" in l:
        st = os.statvfs(HERE)
        out(str(st.f_bavail * st.f_frsize))
        continue
    if "whoami" in l:
        out('"CONTOSO\\Domain Users","Group","S-1-5-21-1-513","Mandatory group"')
        out('"CONTOSO\\CSAdministrator","Group","S-1-5-21-1-1157","Mandatory group"')
        continue
    if "stop-cswindowsservice" in l:
        put("services", "Stopped")
        continue
    if "start-cswindowsservice" in l:
        put("services", "Running")
        continue
    if "get-cswindowsservice" in l:
        if get("services", "Running") != "Running":
            out("NOT RUNNING: RTCSRV Stopped")
            sys.exit(3)
        continue
    if re.match(r"net\s+stop\s+w3svc", l):
        if get("w3svc", "Running") != "Running":
            fail(2, "The World Wide Web Publishing Service service is not started.")
        put("w3svc", "Stopped")
        continue
    if re.match(r"net\s+start\s+w3svc", l):
        if get("w3svc", "Running") == "Running":
            fail(2, "The requested service has already been started.")
        put("w3svc", "Running")
        continue
    if "skypeserverupdateinstaller.exe" in l:
        path = literal_after(line, "-FilePath")
        if not path or not os.path.exists(path):
            fail(1, "Start-Process : the installer is not staged: %s" % path)
        if get("services", "Running") == "Running" or get("w3svc", "Running") == "Running":
            fail(1603, "Setup cannot continue: services are running")
        time.sleep(0.3)
        put("installed", "yes")
        sys.exit(0)
    if "install-csdatabase" in l:
        if get("installed", "no") != "yes":
            fail(1, "Install-CsDatabase : the update is not installed")
        if ROLE == "standard":
            if ("-localdatabases" not in l or "-configureddatabases" in l
                    or "-sqlserverfqdn" in l):
                fail(1, "Install-CsDatabase : wrong variant for a Standard Edition server: " + line)
            put("databases", "updated -LocalDatabases")
            continue
        if ("-configureddatabases" not in l or "-excludecollocatedstores" not in l
                or literal_after(line, "-SqlServerFqdn") != SQL):
            fail(1, "Install-CsDatabase : wrong variant for this back end: " + line)
        put("databases", "updated")
        continue
    fail(127, "unknown command: " + line)
sys.exit(last)
"#;

/// sshd, stopped (by its own pid) when dropped.
pub struct Sshd(pub Child);

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A port free (a moment ago) on `address`.
pub fn free_port(address: &str) -> u16 {
    StdListener::bind((address, 0))
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("a free port on {address}: {e}"))
        .port()
}

/// Starts sshd on `address`:`port` with its ForceCommand Windows stand-in in `dir`
/// (host key, `state/`, `files/`, `sshd.log`), accepting the keys in `authorized`.
pub fn start_sshd(dir: &Path, address: &str, port: u16, authorized: &str) -> Sshd {
    std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
    std::fs::create_dir_all(dir.join("state")).expect("state dir");
    std::fs::create_dir_all(dir.join("files")).expect("files dir");
    let host_key = dir.join("ssh_host_ed25519_key");
    sh(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            &host_key.display().to_string(),
        ],
    );
    std::fs::write(dir.join("authorized_keys"), authorized).expect("authorized_keys");
    std::fs::write(dir.join("windows.py"), WINDOWS_PY).expect("windows.py");
    let config = format!(
        "Port {port}\nListenAddress {address}\nHostKey {hk}\nAuthorizedKeysFile {ak}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\nPidFile {pid}\nSubsystem sftp /usr/lib/openssh/sftp-server\nForceCommand /usr/bin/python3 {py}\n",
        hk = host_key.display(),
        ak = dir.join("authorized_keys").display(),
        pid = dir.join("sshd.pid").display(),
        py = dir.join("windows.py").display(),
    );
    let config_path = dir.join("sshd_config");
    std::fs::write(&config_path, config).expect("sshd_config");
    let child = Command::new(SSHD)
        .args(["-D", "-e", "-f"])
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("sshd.log")).expect("sshd.log"),
        ))
        .spawn()
        .expect("sshd starts");
    let sshd = Sshd(child);
    for _ in 0..200 {
        if std::net::TcpStream::connect((address, port)).is_ok() {
            return sshd;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!(
        "sshd did not listen: {}",
        std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
    );
}
