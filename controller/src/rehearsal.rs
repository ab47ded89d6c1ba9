//! Rehearsals: the real controller against simulated hosts.
//!
//! A rehearsal starts one simulated Lync / Skype for Business server per patched server of
//! an inventory (real SSH on loopback), points the inventory at them (addresses, ports, a
//! fresh client key and a known_hosts file written for them), and can compress a plan's
//! time so that a 20-minute outage takes seconds. `poolpatch demo` and the end-to-end tests
//! are rehearsals; nothing else in the controller knows it is not talking to production.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use poolpatch_inventory::{Inventory, SshAuth};
use poolpatch_plans::Change;
use poolpatch_plans::plan::{Plan, PlannedStep, ServerWindow};

use crate::sim::{Customize, EstateOptions, Listen, SimDurations, SimError, SimEstate};

/// A running rehearsal. Dropping it stops the simulated hosts.
pub struct Rehearsal {
    /// The simulated hosts.
    pub estate: SimEstate,
    /// The inventory, pointed at the simulated hosts.
    pub inventory: Inventory,
    /// The client key the hosts accept.
    pub identity: PathBuf,
}

/// How to start a rehearsal.
pub struct RehearsalOptions {
    /// Where the key, the known_hosts file (and whatever the caller adds) are written.
    pub dir: PathBuf,
    /// Where the hosts listen.
    pub listen: Listen,
    /// How long commands take on the hosts.
    pub durations: SimDurations,
    /// Per-host changes (faults, files), applied after the installer expectations.
    pub customize: Option<Customize>,
}

/// Why a rehearsal could not start.
#[derive(Debug, thiserror::Error)]
pub enum RehearsalError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The simulated hosts could not start.
    #[error(transparent)]
    Sim(#[from] SimError),
}

impl Rehearsal {
    /// Starts a simulated host for every patched server of `inventory`. Each host expects
    /// the installer bytes of its product from `change` (uploaded during preflight), and
    /// reports the change's target version once updated.
    pub async fn start(
        inventory: &Inventory,
        change: &Change,
        options: RehearsalOptions,
    ) -> Result<Rehearsal, RehearsalError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| RehearsalError::Io { path, source }
        };
        std::fs::create_dir_all(&options.dir).map_err(io(&options.dir))?;
        let identity = options.dir.join("id_ed25519");
        let public = crate::sim::write_identity_file(&identity).map_err(io(&identity))?;

        let mut installers = std::collections::BTreeMap::new();
        for (product, installer) in &change.update.installers {
            let bytes = std::fs::read(&installer.file).map_err(io(&installer.file))?;
            installers.insert(*product, (bytes, installer.version.clone()));
        }
        let products: std::collections::BTreeMap<String, poolpatch_inventory::Product> = inventory
            .pools
            .iter()
            .flat_map(|p| {
                p.servers
                    .iter()
                    .map(move |s| (s.fqdn.to_string(), p.product))
            })
            .collect();
        let user = options.customize.clone();
        let customize: Customize = Arc::new(move |server, mut config| {
            if let Some((bytes, version)) = products
                .get(server.fqdn.as_str())
                .and_then(|p| installers.get(p))
            {
                // The host installs exactly the package and version the change names.
                config = config.expect_installer(bytes);
                config.version_after = version.clone();
            }
            match &user {
                Some(f) => f(server, config),
                None => config,
            }
        });
        let estate = SimEstate::start(
            inventory,
            EstateOptions {
                listen: options.listen,
                authorized_key: public,
                known_hosts: options.dir.join("known_hosts"),
                durations: options.durations,
                customize: Some(customize),
            },
        )
        .await?;
        let mut inventory = inventory.clone();
        for pool in &mut inventory.pools {
            for server in &mut pool.servers {
                if let Some(reached) = estate.server(server.fqdn.as_str()) {
                    server.ssh = reached.ssh.clone();
                    server.ssh.auth = SshAuth::IdentityFile(identity.clone());
                }
            }
        }
        Ok(Rehearsal {
            estate,
            inventory,
            identity,
        })
    }
}

/// Divides every duration of `plan` by `factor` (a rehearsal's compressed time): budget,
/// threshold, predictions, estimates, step timeouts and the timeline. The connect timeout
/// is real network time and stays as it is.
pub fn compress_plan(plan: &mut Plan, factor: f64) {
    let f = if factor.is_finite() && factor >= 1.0 {
        factor
    } else {
        1.0
    };
    let s = |d: Duration| Duration::from_secs_f64(d.as_secs_f64() / f);
    plan.policy.budget = s(plan.policy.budget);
    plan.policy.threshold = s(plan.policy.threshold);
    plan.totals.duration = s(plan.totals.duration);
    for server in &mut plan.servers {
        let o = &mut server.outage;
        o.predicted = s(o.predicted);
        o.budget = s(o.budget);
        o.threshold = s(o.threshold);
        o.restore_by = s(o.restore_by);
        o.if_reboot_requested = o.if_reboot_requested.map(s);
        server.impact.duration = s(server.impact.duration);
        if let Some(w) = &mut server.window {
            *w = ServerWindow {
                start: s(w.start),
                outage_start: s(w.outage_start),
                end: s(w.end),
            };
        }
        let steps = &mut server.steps;
        let all = steps
            .preflight
            .iter_mut()
            .chain(steps.outage.iter_mut())
            .chain(steps.recovery.iter_mut())
            .chain(std::iter::once(&mut steps.reboot));
        for p in all {
            let p: &mut PlannedStep = p;
            p.estimate = s(p.estimate);
            p.timeout = s(p.timeout);
            p.at = p.at.map(s);
        }
    }
}
