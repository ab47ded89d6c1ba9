//! Loading, stage 2: the YAML tree read into input types that keep every value's position.
//!
//! This stage checks what can be checked of one value on its own: kinds, required fields,
//! unknown fields, choices, FQDN / address / user / path grammar, time zones. A wrong value is
//! reported and read as absent, so that the next stage ([`crate::validate`]) still sees the
//! rest of the file and can check references between values.
//!
//! To add a field (as a site's `windows:` was): add it to the input struct, read it in the
//! matching `decode_*` function, and carry it over in [`crate::validate`]; unknown-field
//! reports and "did you mean" follow from the read.

use crate::decode::{At, Ctx, Fields};
use crate::diag::{Pos, did_you_mean};
use crate::load::LoadOptions;
use crate::model::{CollocatedDatabase, Edition, Fqdn, MirrorRole, Product};
use crate::ssh::{self, Level, SshInput};
use crate::values;
use crate::windows::{self, WindowsInput};
use crate::yaml::{Node, Value};

/// The inventory format version this code reads.
pub const FORMAT_VERSION: i128 = 1;

/// The whole file as written.
#[derive(Debug)]
pub(crate) struct InventoryInput {
    /// `defaults.ssh` (all absent when not written).
    pub defaults_ssh: SshInput,
    /// `sites:` in file order.
    pub sites: Vec<SiteInput>,
    /// `pools:` in file order.
    pub pools: Vec<PoolInput>,
}

/// One entry of `sites:`.
#[derive(Debug)]
pub(crate) struct SiteInput {
    /// Where the entry starts.
    pub pos: Pos,
    /// `name`.
    pub name: Option<At<String>>,
    /// `time_zone`, canonical IANA spelling.
    pub time_zone: Option<At<String>>,
    /// `windows`, when written and valid.
    pub windows: Option<WindowsInput>,
}

/// One entry of `pools:`.
#[derive(Debug)]
pub(crate) struct PoolInput {
    /// Where the entry starts.
    pub pos: Pos,
    /// Its path (`pools[3]`).
    pub field: String,
    /// `fqdn`.
    pub fqdn: Option<At<Fqdn>>,
    /// `site`.
    pub site: Option<At<String>>,
    /// `edition`.
    pub edition: Option<At<Edition>>,
    /// `product`.
    pub product: Option<At<Product>>,
    /// `backup_pool`.
    pub backup_pool: Option<At<Fqdn>>,
    /// `after`, valid entries only.
    pub after: Vec<At<Fqdn>>,
    /// Where `front_ends:` is written, if it is.
    pub front_ends_key: Option<At<()>>,
    /// `front_ends`.
    pub front_ends: Vec<FrontEndInput>,
    /// Where `back_ends:` is written, if it is, with the number of entries written when it
    /// is a list.
    pub back_ends_key: Option<At<Option<usize>>>,
    /// `back_ends`.
    pub back_ends: Vec<ServerInput>,
    /// Where `server:` is written, if it is.
    pub server_key: Option<At<()>>,
    /// `server` (Standard Edition).
    pub server: Option<ServerInput>,
    /// `windows`, when written and valid (the site's otherwise).
    pub windows: Option<WindowsInput>,
}

/// One entry of `front_ends:`.
#[derive(Debug)]
pub(crate) struct FrontEndInput {
    /// `fqdn`.
    pub fqdn: Option<At<Fqdn>>,
    /// `upgrade_domain`.
    pub upgrade_domain: Option<String>,
}

/// A patched server: an entry of `back_ends:` or a Standard Edition pool's `server:`.
#[derive(Debug)]
pub(crate) struct ServerInput {
    /// Where the entry starts.
    pub pos: Pos,
    /// `fqdn` (for a Standard Edition server, the pool's when not written).
    pub fqdn: Option<At<Fqdn>>,
    /// Back End settings; `None` for a Standard Edition server.
    pub back_end: Option<BackEndInput>,
    /// `ssh`.
    pub ssh: SshInput,
}

/// What only a Back End has.
#[derive(Debug)]
pub(crate) struct BackEndInput {
    /// `sql_server`.
    pub sql_server: Option<At<Fqdn>>,
    /// `mirror`, if written and complete.
    pub mirror: Option<MirrorInput>,
    /// `collocated_databases`.
    pub collocated: Vec<CollocatedDatabase>,
}

/// A back end's `mirror:`.
#[derive(Debug)]
pub(crate) struct MirrorInput {
    /// `role`.
    pub role: At<MirrorRole>,
    /// `partner`.
    pub partner: At<Fqdn>,
}

/// Reads the document. `None` when nothing more can be read sensibly (the root is not a
/// mapping, or the file is of another format version); the reasons are in `ctx`.
pub(crate) fn decode(ctx: &mut Ctx, root: &Node, opts: &LoadOptions) -> Option<InventoryInput> {
    let mut f = ctx.fields(root, "")?;
    if let Some(n) = f.required(ctx, "version", "the format version, 1") {
        match &n.value {
            Value::Int(v) if *v == FORMAT_VERSION => {}
            Value::Int(v) => {
                // Another version means another format: reading on would only produce noise.
                ctx.error_help(
                    n.pos,
                    "version",
                    format!("unsupported inventory version {v}"),
                    format!("this poolpatch reads version {FORMAT_VERSION}"),
                );
                return None;
            }
            other => ctx.error_help(
                n.pos,
                "version",
                format!("expected the version number, found {}", other.kind()),
                format!("write `version: {FORMAT_VERSION}`"),
            ),
        }
    }
    let defaults_ssh = decode_defaults(ctx, &mut f, opts);
    let sites = match f.required(ctx, "sites", "a list of sites (name, time_zone)") {
        Some(n) => list(ctx, n, "sites", decode_site),
        None => Vec::new(),
    };
    let pools = match f.required(ctx, "pools", "a list of pools") {
        Some(n) => {
            if matches!(&n.value, Value::Seq(items) if items.is_empty()) {
                ctx.error_help(
                    n.pos,
                    "pools",
                    "the inventory has no pools",
                    "list the pools to patch under `pools:`",
                );
            }
            list(ctx, n, "pools", |ctx, n, path| {
                decode_pool(ctx, n, path, opts)
            })
        }
        None => Vec::new(),
    };
    f.finish(ctx);
    Some(InventoryInput {
        defaults_ssh,
        sites,
        pools,
    })
}

/// Reads every item of the list at `path` with `item`.
fn list<T>(
    ctx: &mut Ctx,
    node: &Node,
    path: &str,
    mut item: impl FnMut(&mut Ctx, &Node, &str) -> Option<T>,
) -> Vec<T> {
    let Some(items) = ctx.list(node, path) else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, n)| item(ctx, n, &format!("{path}[{i}]")))
        .collect()
}

/// Where the key `name` of `f` is written, as a presence marker.
fn key_at(f: &Fields<'_>, name: &str, node: &Node) -> At<()> {
    At {
        value: (),
        pos: f.key_pos(name).unwrap_or(node.pos),
        field: f.path_of(name),
    }
}

/// Where the key `name` of `f` is written, with the length of its list value.
fn list_key_at(f: &Fields<'_>, name: &str, node: &Node) -> At<Option<usize>> {
    At {
        value: match &node.value {
            Value::Seq(items) => Some(items.len()),
            _ => None,
        },
        pos: f.key_pos(name).unwrap_or(node.pos),
        field: f.path_of(name),
    }
}

fn decode_defaults(ctx: &mut Ctx, root: &mut Fields<'_>, opts: &LoadOptions) -> SshInput {
    let absent = SshInput::absent(root.pos(), "defaults.ssh".into());
    let Some(n) = root.optional("defaults") else {
        return absent;
    };
    let Some(mut f) = ctx.fields(n, "defaults") else {
        return absent;
    };
    let ssh = match f.optional("ssh") {
        Some(n) => ssh::decode(ctx, n, "defaults.ssh", Level::Defaults, opts),
        None => SshInput::absent(n.pos, "defaults.ssh".into()),
    };
    f.finish(ctx);
    ssh
}

fn decode_site(ctx: &mut Ctx, node: &Node, path: &str) -> Option<SiteInput> {
    let mut f = ctx.fields(node, path)?;
    let name = f
        .required(ctx, "name", "the site's name (letters, digits, `-`, `_`)")
        .and_then(|n| {
            ctx.checked(
                n,
                &f.path_of("name"),
                values::site_name,
                "name the site like `amsterdam` or `ams-dc1`",
            )
        });
    let time_zone = f
        .required(
            ctx,
            "time_zone",
            "the site's IANA time zone, e.g. Europe/Amsterdam",
        )
        .and_then(|n| time_zone(ctx, n, &f.path_of("time_zone")));
    let windows = f
        .optional("windows")
        .and_then(|n| windows::decode(ctx, n, &f.path_of("windows")));
    f.finish(ctx);
    Some(SiteInput {
        pos: node.pos,
        name,
        time_zone,
        windows,
    })
}

/// Reads an IANA time zone name, checked against the bundled database.
fn time_zone(ctx: &mut Ctx, node: &Node, field: &str) -> Option<At<String>> {
    let t = ctx.text(node, field)?;
    match jiff::tz::db().get(&t.value) {
        Ok(tz) => {
            let canonical = tz.iana_name().unwrap_or(&t.value).to_string();
            Some(At {
                value: canonical,
                ..t
            })
        }
        Err(_) => {
            // Some 600 names to compare with: only while problems are few (see
            // `validate::SUGGESTION_LIMIT`).
            let names: Vec<String> = if ctx.diags.len() < crate::validate::SUGGESTION_LIMIT {
                jiff::tz::db().available().map(|n| n.to_string()).collect()
            } else {
                Vec::new()
            };
            let help = match did_you_mean(&t.value, names.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "write a name from the IANA time zone database, such as \
                         Europe/Amsterdam, America/New_York or Asia/Tokyo"
                    .to_string(),
            };
            ctx.error_help(
                t.pos,
                field,
                format!("`{}` is not an IANA time zone", t.value),
                help,
            );
            None
        }
    }
}

fn decode_pool(ctx: &mut Ctx, node: &Node, path: &str, opts: &LoadOptions) -> Option<PoolInput> {
    let mut f = ctx.fields(node, path)?;
    let fqdn = f
        .required(ctx, "fqdn", "the pool's FQDN")
        .and_then(|n| ctx.fqdn(n, &f.path_of("fqdn"), "the pool"));
    let site = f
        .required(ctx, "site", "the name of the pool's site")
        .and_then(|n| ctx.text(n, &f.path_of("site")));
    let edition = f
        .required(ctx, "edition", "`enterprise` or `standard`")
        .and_then(|n| ctx.choice(n, &f.path_of("edition"), &Edition::NAMES))
        .and_then(|t| choice_value(t, Edition::from_name));
    let product = f
        .required(ctx, "product", "`lync2013`, `sfb2015` or `sfb2019`")
        .and_then(|n| ctx.choice(n, &f.path_of("product"), &Product::NAMES))
        .and_then(|t| choice_value(t, Product::from_name));
    let backup_pool = f
        .optional("backup_pool")
        .and_then(|n| ctx.fqdn(n, &f.path_of("backup_pool"), "the paired pool"));
    let after = match f.optional("after") {
        Some(n) => list(ctx, n, &f.path_of("after"), |ctx, n, path| {
            ctx.fqdn(n, path, "a pool that must be done first")
        }),
        None => Vec::new(),
    };
    let (front_ends_key, front_ends) = match f.optional("front_ends") {
        Some(n) => (
            Some(key_at(&f, "front_ends", n)),
            list(ctx, n, &f.path_of("front_ends"), decode_front_end),
        ),
        None => (None, Vec::new()),
    };
    let (back_ends_key, back_ends) = match f.optional("back_ends") {
        Some(n) => (
            Some(list_key_at(&f, "back_ends", n)),
            list(ctx, n, &f.path_of("back_ends"), |ctx, n, path| {
                decode_server(ctx, n, path, true, opts)
            }),
        ),
        None => (None, Vec::new()),
    };
    let (server_key, server) = match f.optional("server") {
        Some(n) => (
            Some(key_at(&f, "server", n)),
            decode_server(ctx, n, &f.path_of("server"), false, opts),
        ),
        None => (None, None),
    };
    let windows = f
        .optional("windows")
        .and_then(|n| windows::decode(ctx, n, &f.path_of("windows")));
    f.finish(ctx);
    Some(PoolInput {
        pos: node.pos,
        field: path.to_string(),
        fqdn,
        site,
        edition,
        product,
        backup_pool,
        after,
        front_ends_key,
        front_ends,
        back_ends_key,
        back_ends,
        server_key,
        server,
        windows,
    })
}

/// Maps a checked choice to its enum value (`from_name` knows every listed name).
fn choice_value<T>(t: At<String>, from_name: fn(&str) -> Option<T>) -> Option<At<T>> {
    Some(At {
        value: from_name(&t.value)?,
        pos: t.pos,
        field: t.field,
    })
}

fn decode_front_end(ctx: &mut Ctx, node: &Node, path: &str) -> Option<FrontEndInput> {
    let mut f = ctx.fields(node, path)?;
    let fqdn = f
        .required(ctx, "fqdn", "the Front End server's FQDN")
        .and_then(|n| ctx.fqdn(n, &f.path_of("fqdn"), "the Front End server"));
    let upgrade_domain = f.optional("upgrade_domain").and_then(|n| {
        ctx.checked(
            n,
            &f.path_of("upgrade_domain"),
            values::upgrade_domain,
            "write the upgrade domain as Get-CsPoolFabricState shows it, e.g. `UD1`",
        )
        .map(|t| t.value)
    });
    f.finish(ctx);
    Some(FrontEndInput {
        fqdn,
        upgrade_domain,
    })
}

/// Reads a Back End (`back_end` true) or a Standard Edition `server:`.
fn decode_server(
    ctx: &mut Ctx,
    node: &Node,
    path: &str,
    back_end: bool,
    opts: &LoadOptions,
) -> Option<ServerInput> {
    let mut f = ctx.fields(node, path)?;
    let fqdn = if back_end {
        f.required(ctx, "fqdn", "the Back End server's FQDN")
    } else {
        f.optional("fqdn")
    }
    .and_then(|n| ctx.fqdn(n, &f.path_of("fqdn"), "the server"));
    let back_end = back_end.then(|| decode_back_end(ctx, &mut f));
    let ssh = match f.optional("ssh") {
        Some(n) => ssh::decode(ctx, n, &f.path_of("ssh"), Level::Server, opts),
        None => SshInput::absent(node.pos, f.path_of("ssh")),
    };
    f.finish(ctx);
    Some(ServerInput {
        pos: node.pos,
        fqdn,
        back_end,
        ssh,
    })
}

fn decode_back_end(ctx: &mut Ctx, f: &mut Fields<'_>) -> BackEndInput {
    let sql_server = f
        .required(
            ctx,
            "sql_server",
            "the SQL Server FQDN for `Install-CsDatabase -SqlServerFqdn` (usually the back end's own FQDN)",
        )
        .and_then(|n| ctx.fqdn(n, &f.path_of("sql_server"), "the SQL Server"));
    let mirror = f
        .optional("mirror")
        .and_then(|n| decode_mirror(ctx, n, &f.path_of("mirror")));
    let mut collocated: Vec<CollocatedDatabase> = Vec::new();
    if let Some(n) = f.optional("collocated_databases") {
        let path = f.path_of("collocated_databases");
        if let Some(items) = ctx.list(n, &path) {
            for (i, item) in items.iter().enumerate() {
                let path = format!("{path}[{i}]");
                let Some(t) = ctx.choice(item, &path, &CollocatedDatabase::NAMES) else {
                    continue;
                };
                let Some(db) = CollocatedDatabase::from_name(&t.value) else {
                    continue;
                };
                if collocated.contains(&db) {
                    ctx.error_help(
                        t.pos,
                        &path,
                        format!("`{}` is listed twice", t.value),
                        "list each collocated database once",
                    );
                } else {
                    collocated.push(db);
                }
            }
        }
    }
    BackEndInput {
        sql_server,
        mirror,
        collocated,
    }
}

fn decode_mirror(ctx: &mut Ctx, node: &Node, path: &str) -> Option<MirrorInput> {
    let mut f = ctx.fields(node, path)?;
    let role = f
        .required(ctx, "role", "`principal` or `mirror`: this server's side")
        .and_then(|n| ctx.choice(n, &f.path_of("role"), &MirrorRole::NAMES))
        .and_then(|t| choice_value(t, MirrorRole::from_name));
    let partner = f
        .required(ctx, "partner", "the FQDN of the other back end of the pair")
        .and_then(|n| ctx.fqdn(n, &f.path_of("partner"), "the partner back end"));
    f.finish(ctx);
    Some(MirrorInput {
        role: role?,
        partner: partner?,
    })
}
