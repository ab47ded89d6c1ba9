//! SSH settings: `defaults.ssh` and each server's own `ssh:`, read and then merged into one
//! [`SshEndpoint`] per server.
//!
//! Merging is field by field: a server's own value wins over the default. The two ways to
//! authenticate (`identity_file`, `agent: true`) are one setting: a server that names either
//! replaces the default's method as a whole. After merging, `user` and the authentication
//! method must be known; `port` defaults to 22, `shell` to `powershell`, `known_hosts` to
//! `~/.ssh/known_hosts` and `address` to the server's FQDN.

use std::path::PathBuf;

use crate::decode::Ctx;
use crate::diag::Pos;
use crate::load::LoadOptions;
use crate::model::{Fqdn, RemoteShell, SshAuth, SshEndpoint};
use crate::values;
use crate::yaml::Node;

/// The default TCP port.
const DEFAULT_PORT: u16 = 22;

/// A setting as written: absent, written but wrong (already reported), or given.
///
/// Keeping "written but wrong" apart from "absent" keeps a bad default from producing a
/// second, misleading "missing" report for every server.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Slot<T> {
    /// Not written.
    Absent,
    /// Written, but wrong; a diagnostic says why.
    Invalid,
    /// Written and valid.
    Given(T),
}

impl<T> Slot<T> {
    /// `self` if written (even if wrong), else `fallback`.
    fn or<'a>(&'a self, fallback: &'a Slot<T>) -> &'a Slot<T> {
        match self {
            Slot::Absent => fallback,
            _ => self,
        }
    }

    fn from_option(o: Option<T>) -> Slot<T> {
        o.map_or(Slot::Invalid, Slot::Given)
    }
}

/// One `ssh:` mapping as written (`defaults.ssh` or a server's own).
#[derive(Debug, Clone)]
pub(crate) struct SshInput {
    /// Where the mapping is (or its owner, when there is none).
    pub pos: Pos,
    /// Its field path (`defaults.ssh`, `pools[0].back_ends[1].ssh`).
    pub field: String,
    /// `address` (never in `defaults.ssh`).
    pub address: Slot<String>,
    /// `port`.
    pub port: Slot<u16>,
    /// `user`.
    pub user: Slot<String>,
    /// `identity_file` or `agent: true`.
    pub auth: Slot<SshAuth>,
    /// `known_hosts`.
    pub known_hosts: Slot<PathBuf>,
    /// `shell`.
    pub shell: Slot<RemoteShell>,
}

impl SshInput {
    /// Nothing written at `field` (owned by the mapping at `pos`).
    pub fn absent(pos: Pos, field: String) -> SshInput {
        SshInput {
            pos,
            field,
            address: Slot::Absent,
            port: Slot::Absent,
            user: Slot::Absent,
            auth: Slot::Absent,
            known_hosts: Slot::Absent,
            shell: Slot::Absent,
        }
    }
}

/// Whether the mapping being read is `defaults.ssh` (which has no `address`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// `defaults.ssh`.
    Defaults,
    /// A server's own `ssh:`.
    Server,
}

/// Reads an `ssh:` mapping at `field`.
pub(crate) fn decode(
    ctx: &mut Ctx,
    node: &Node,
    field: &str,
    level: Level,
    opts: &LoadOptions,
) -> SshInput {
    let mut out = SshInput::absent(node.pos, field.to_string());
    let Some(mut f) = ctx.fields(node, field) else {
        // A wrong kind: everything in it is "written but wrong".
        out.user = Slot::Invalid;
        out.auth = Slot::Invalid;
        out.known_hosts = Slot::Invalid;
        return out;
    };
    if let Some(n) = f.optional("address") {
        let path = f.path_of("address");
        out.address = match level {
            Level::Server => Slot::from_option(
                ctx.checked(n, &path, values::address, ADDRESS_HELP)
                    .map(|a| a.value),
            ),
            Level::Defaults => {
                ctx.error_help(
                    n.pos,
                    &path,
                    "`address` cannot be a default: every server has its own",
                    "set `ssh: { address: … }` on each server; without it, a server is reached at its FQDN",
                );
                Slot::Invalid
            }
        };
    }
    if let Some(n) = f.optional("port") {
        let port = ctx.integer(n, &f.path_of("port"), 1, i128::from(u16::MAX));
        // In range 1..=65535, so the conversion cannot fail; `ok()` keeps it panic-free.
        out.port = Slot::from_option(port.and_then(|p| u16::try_from(p).ok()));
    }
    if let Some(n) = f.optional("user") {
        out.user = Slot::from_option(
            ctx.checked(n, &f.path_of("user"), values::user, USER_HELP)
                .map(|u| u.value),
        );
    }
    let identity = f.optional("identity_file").map(|n| {
        let path = f.path_of("identity_file");
        Slot::from_option(local_path(ctx, n, &path, opts))
    });
    let agent = f
        .optional("agent")
        .map(|n| (n.pos, ctx.boolean(n, &f.path_of("agent"))));
    out.auth = match (identity, agent) {
        (Some(_), Some((pos, Some(true)))) => {
            ctx.error_help(
                pos,
                &f.path_of("agent"),
                "both `identity_file` and `agent: true` are set",
                "set exactly one: `identity_file: PATH` for a key file, or `agent: true` for ssh-agent",
            );
            Slot::Invalid
        }
        (Some(Slot::Given(p)), _) => Slot::Given(SshAuth::IdentityFile(p)),
        (Some(_), _) | (None, Some((_, None))) => Slot::Invalid,
        (None, Some((_, Some(true)))) => Slot::Given(SshAuth::Agent),
        (None, Some((_, Some(false)))) | (None, None) => Slot::Absent,
    };
    if let Some(n) = f.optional("known_hosts") {
        out.known_hosts = Slot::from_option(local_path(ctx, n, &f.path_of("known_hosts"), opts));
    }
    if let Some(n) = f.optional("shell") {
        let shell = ctx.choice(n, &f.path_of("shell"), &RemoteShell::NAMES);
        out.shell = Slot::from_option(shell.and_then(|s| RemoteShell::from_name(&s.value)));
    }
    f.finish(ctx);
    out
}

const ADDRESS_HELP: &str = "write an IPv4 address (127.0.0.21), an IPv6 address (::1) or a host name (be01.ams.contoso.com)";
const USER_HELP: &str =
    "write the account as `svc-poolpatch`, `CONTOSO\\svc-poolpatch` or `svc-poolpatch@contoso.com`";

fn local_path(ctx: &mut Ctx, node: &Node, field: &str, opts: &LoadOptions) -> Option<PathBuf> {
    let t = ctx.text(node, field)?;
    match values::path(&t.value, opts.home.as_deref(), opts.base_dir.as_deref()) {
        Ok(p) => Some(p),
        Err(why) => {
            ctx.error_help(
                t.pos,
                field,
                why,
                "write an absolute path, or one starting with `~/`",
            );
            None
        }
    }
}

/// What a server's merged settings lack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Missing {
    /// No `user` in the server's `ssh` nor in `defaults.ssh`.
    User,
    /// Neither `identity_file` nor `agent: true`.
    Auth,
    /// No `known_hosts`, and no HOME for the default.
    KnownHosts,
}

impl Missing {
    /// The field name, for paths and messages.
    pub fn field(self) -> &'static str {
        match self {
            Missing::User => "user",
            Missing::Auth => "identity_file",
            Missing::KnownHosts => "known_hosts",
        }
    }
}

/// The outcome of merging: the endpoint, or what is missing (empty if the only problems
/// are settings written wrong, which were reported where they are written).
pub(crate) type Merged = Result<SshEndpoint, Vec<Missing>>;

/// Takes the value of a slot, noting what is missing.
struct Picker<'a> {
    missing: &'a mut Vec<Missing>,
}

impl Picker<'_> {
    fn pick<T: Clone>(&mut self, slot: &Slot<T>, if_absent: Option<Missing>) -> Option<T> {
        match slot {
            Slot::Given(v) => Some(v.clone()),
            Slot::Invalid => None,
            Slot::Absent => {
                self.missing.extend(if_absent);
                None
            }
        }
    }
}

/// Merges `own` over `defaults` for the server `fqdn`.
pub(crate) fn merge(
    defaults: &SshInput,
    own: &SshInput,
    fqdn: &Fqdn,
    opts: &LoadOptions,
) -> Merged {
    let mut missing = Vec::new();
    let mut pick = Picker {
        missing: &mut missing,
    };
    let user: Option<String> = pick.pick(own.user.or(&defaults.user), Some(Missing::User));
    let auth: Option<SshAuth> = pick.pick(own.auth.or(&defaults.auth), Some(Missing::Auth));
    let default_known_hosts = match &opts.home {
        Some(home) => Slot::Given(home.join(".ssh").join("known_hosts")),
        None => Slot::Absent,
    };
    let known_hosts: Option<PathBuf> = pick.pick(
        own.known_hosts
            .or(&defaults.known_hosts)
            .or(&default_known_hosts),
        Some(Missing::KnownHosts),
    );
    let port_default = Slot::Given(DEFAULT_PORT);
    let port: Option<u16> = pick.pick(own.port.or(&defaults.port).or(&port_default), None);
    let shell_default = Slot::Given(RemoteShell::Powershell);
    let shell: Option<RemoteShell> =
        pick.pick(own.shell.or(&defaults.shell).or(&shell_default), None);
    let address_default = Slot::Given(fqdn.as_str().to_string());
    let address: Option<String> = pick.pick(own.address.or(&address_default), None);
    match (user, auth, known_hosts, port, shell, address) {
        (Some(user), Some(auth), Some(known_hosts), Some(port), Some(shell), Some(address)) => {
            Ok(SshEndpoint {
                address,
                port,
                user,
                auth,
                known_hosts,
                shell,
            })
        }
        // Written-but-wrong settings were reported where they are written; only what
        // is absent everywhere is missing.
        _ => Err(missing),
    }
}
