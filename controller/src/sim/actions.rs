//! What each recognised command does on a simulated host, and when the host refuses it:
//! the preconditions of the installer and of `Install-CsDatabase`, by role.

use std::time::Duration;

use poolpatch_inventory::Role;

use super::config::{FaultEffect, SimHostConfig, sha256_hex};
use super::host::SimHost;
use super::record::SimEventKind;
use super::script::{DatabaseUpdate, SimAction, path_key};

impl SimHost {
    /// Why the host refuses `action` now, as (exit code, standard error).
    pub(super) fn refusal(&self, action: &SimAction) -> Option<(i32, String)> {
        let cfg = &self.shared.config;
        let st = self.lock();
        match action {
            SimAction::Install { installer, path } => {
                if !installer.eq_ignore_ascii_case(cfg.installer_name()) {
                    return Some((
                        1603,
                        format!(
                            "{installer} is not the update for this server: it runs {} (installer {})",
                            cfg.product.display_name(),
                            cfg.installer_name()
                        ),
                    ));
                }
                let Some(file) = st.files.get(&path_key(path)) else {
                    return Some((
                        1,
                        format!(
                            "Start-Process : This command cannot be run due to the error: The system cannot find the file specified. ({path}: the installer is not staged)"
                        ),
                    ));
                };
                if let Some(expected) = &cfg.installer_sha256 {
                    let actual = sha256_hex(&file.data);
                    if !actual.eq_ignore_ascii_case(expected) {
                        return Some((
                            1603,
                            format!(
                                "{path} is not the expected update package (SHA-256 {actual}, expected {expected}): stage it again"
                            ),
                        ));
                    }
                }
                let running: Vec<&str> = st
                    .services
                    .iter()
                    .filter(|(_, r)| *r)
                    .map(|(n, _)| n.as_str())
                    .collect();
                if !running.is_empty() {
                    return Some((
                        1603,
                        format!(
                            "Setup cannot continue: Lync Server services are running ({}). Stop them with Stop-CsWindowsService first.",
                            running.join(", ")
                        ),
                    ));
                }
                if st.w3svc {
                    return Some((
                        1603,
                        "Setup cannot continue: the World Wide Web Publishing Service (w3svc) is running. Stop it with net stop w3svc first.".into(),
                    ));
                }
                None
            }
            SimAction::UpdateDatabases(db) => {
                if st.version != cfg.version_after {
                    return Some((
                        1,
                        format!(
                            "Install-CsDatabase : the update is not installed on this server (version {}, the databases need {}): run {} first",
                            st.version,
                            cfg.version_after,
                            cfg.installer_name()
                        ),
                    ));
                }
                if st.reboot_pending {
                    return Some((
                        1,
                        "Install-CsDatabase : a restart is pending after the update: restart the server first".into(),
                    ));
                }
                database_refusal(cfg, db).map(|r| (1, format!("Install-CsDatabase : {r}")))
            }
            _ => None,
        }
    }

    /// Carries out an action whose preconditions hold; returns (code, stdout, stderr).
    pub(super) fn apply(
        &self,
        action: &SimAction,
        effect: Option<FaultEffect>,
    ) -> (i32, String, String) {
        let cfg = &self.shared.config;
        let mut st = self.lock();
        let ok = |out: String| (0, out, String::new());
        match action {
            SimAction::Groups => {
                let d = &cfg.domain;
                let mut out = format!(
                    "\"{d}\\Domain Users\",\"Group\",\"S-1-5-21-1004336348-1177238915-682003330-513\",\"Mandatory group, Enabled by default, Enabled group\"\r\n\"BUILTIN\\Users\",\"Alias\",\"S-1-5-32-545\",\"Mandatory group, Enabled by default, Enabled group\"\r\n"
                );
                if cfg.cs_administrator {
                    out.push_str(&format!(
                        "\"{d}\\CSAdministrator\",\"Group\",\"S-1-5-21-1004336348-1177238915-682003330-1157\",\"Mandatory group, Enabled by default, Enabled group\"\r\n"
                    ));
                }
                ok(out)
            }
            SimAction::FileHash { path } => match st.files.get(&path_key(path)) {
                Some(f) => ok(format!("{}\r\n", sha256_hex(&f.data).to_uppercase())),
                None => (
                    1,
                    String::new(),
                    format!(
                        "Get-FileHash : file not found: Cannot find path '{path}' because it does not exist.\r\n"
                    ),
                ),
            },
            SimAction::FreeDisk { .. } => ok(format!(
                "{}\r\n",
                cfg.free_bytes.saturating_sub(st.stored_bytes())
            )),
            SimAction::StopServices => ok(String::new()),
            SimAction::StartServices => {
                self.start_services(&mut st);
                ok(String::new())
            }
            SimAction::VerifyServices => {
                let down: String = st
                    .services
                    .iter()
                    .filter(|(_, r)| !*r)
                    .map(|(n, _)| format!("NOT RUNNING: {n} Stopped\r\n"))
                    .collect();
                if down.is_empty() {
                    ok(String::new())
                } else {
                    (3, down, String::new())
                }
            }
            SimAction::StopW3svc => {
                if !st.w3svc {
                    return (2, String::new(), "The World Wide Web Publishing Service service is not started.\r\n\r\nMore help is available by typing NET HELPMSG 3521.\r\n".into());
                }
                st.w3svc = false;
                self.push(SimEventKind::W3svcStopped);
                ok("The World Wide Web Publishing Service service is stopping.\r\nThe World Wide Web Publishing Service service was stopped successfully.\r\n\r\n".into())
            }
            SimAction::StartW3svc => {
                if st.w3svc {
                    return (2, String::new(), "The requested service has already been started.\r\n\r\nMore help is available by typing NET HELPMSG 2182.\r\n".into());
                }
                st.w3svc = true;
                self.push(SimEventKind::W3svcRunning);
                ok("The World Wide Web Publishing Service service is starting.\r\nThe World Wide Web Publishing Service service was started successfully.\r\n\r\n".into())
            }
            SimAction::Install { .. } => {
                if st.version == cfg.version_after {
                    return ok(format!(
                        "The update {} is already installed.\r\n",
                        cfg.version_after
                    ));
                }
                st.version = cfg.version_after.clone();
                self.push(SimEventKind::UpdateInstalled {
                    version: cfg.version_after.clone(),
                });
                if effect == Some(FaultEffect::RebootRequired) {
                    st.reboot_pending = true;
                    return (
                        3010,
                        format!(
                            "Installed {}. A restart is required to complete the update.\r\n",
                            cfg.version_after
                        ),
                        String::new(),
                    );
                }
                ok(format!("Installed {}.\r\n", cfg.version_after))
            }
            SimAction::Probe { key } => {
                let value = match key.as_str() {
                    "services-down" => st.services.iter().filter(|(_, r)| !*r).count().to_string(),
                    "w3svc" => if st.w3svc { "Running" } else { "Stopped" }.to_string(),
                    "installer-running" => if st.installing { "True" } else { "False" }.to_string(),
                    "version" => st.version.clone(),
                    "reboot-pending" => {
                        if st.reboot_pending { "True" } else { "False" }.to_string()
                    }
                    "databases-stale" => u8::from(st.databases_version != st.version).to_string(),
                    other => {
                        return (
                            127,
                            String::new(),
                            format!("simulator: {} cannot answer probe `{other}`\r\n", cfg.fqdn),
                        );
                    }
                };
                ok(format!("{key}={value}\r\n"))
            }
            SimAction::UpdateDatabases(db) => {
                st.databases_version = cfg.version_after.clone();
                self.push(SimEventKind::DatabasesUpdated { update: db.clone() });
                ok("Install-CsDatabase: the databases are up to date.\r\n".into())
            }
            SimAction::Restart => {
                let extra = match effect {
                    Some(FaultEffect::SlowBoot(extra)) => extra,
                    _ => Duration::ZERO,
                };
                let host = self.clone();
                tokio::spawn(async move { host.restart(extra).await });
                ok(String::new())
            }
        }
    }
}

/// Why `Install-CsDatabase` with these flags is wrong for this host's role, if it is.
fn database_refusal(cfg: &SimHostConfig, db: &DatabaseUpdate) -> Option<String> {
    if let Some(flag) = db.other_flags.first() {
        return Some(format!(
            "A parameter cannot be found that matches parameter name '{flag}'."
        ));
    }
    if !db.update {
        return Some(
            "without -Update this would install new databases over existing ones: use -Update"
                .into(),
        );
    }
    if db.configured_databases && db.local_databases {
        return Some("Parameter set cannot be resolved using the specified named parameters (-ConfiguredDatabases and -LocalDatabases).".into());
    }
    let fqdn = &cfg.fqdn;
    match &cfg.role {
        Role::BackEnd {
            sql_server,
            collocated_databases,
            ..
        } => {
            if db.local_databases {
                return Some(format!(
                    "-LocalDatabases is for Standard Edition servers; {fqdn} is an Enterprise Edition back end: use -ConfiguredDatabases -SqlServerFqdn {sql_server}"
                ));
            }
            if !db.configured_databases {
                return Some(format!(
                    "{fqdn} is an Enterprise Edition back end: use -ConfiguredDatabases -SqlServerFqdn {sql_server}"
                ));
            }
            match &db.sql_server {
                None => {
                    return Some(format!(
                        "-ConfiguredDatabases needs -SqlServerFqdn {sql_server}"
                    ));
                }
                Some(given) if !given.eq_ignore_ascii_case(sql_server.as_str()) => {
                    return Some(format!(
                        "{given} is not the SQL Server of this back end ({sql_server}): nothing was updated"
                    ));
                }
                Some(_) => {}
            }
            if !collocated_databases.is_empty() && !db.exclude_collocated_stores {
                return Some(format!(
                    "databases are collocated on {fqdn} ({collocated_databases:?}): add -ExcludeCollocatedStores"
                ));
            }
            None
        }
        Role::StandardEdition => {
            if db.configured_databases {
                return Some(format!(
                    "-ConfiguredDatabases is for Enterprise Edition back ends; {fqdn} is a Standard Edition server: use -LocalDatabases"
                ));
            }
            if !db.local_databases {
                return Some(format!(
                    "{fqdn} is a Standard Edition server: use -LocalDatabases"
                ));
            }
            None
        }
    }
}
