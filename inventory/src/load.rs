//! Loading an inventory: read the file, parse the YAML ([`crate::yaml`]), read the values
//! one by one (kinds, grammar), then check them together (names, references, pairings,
//! `after:` cycles) and build the [`Inventory`].
//!
//! Every stage reports all the problems it finds; a file with ten mistakes gets ten
//! diagnostics in one run, sorted by position.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use crate::decode::Ctx;
use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::model::Inventory;
use crate::yaml::{self, MAX_FILE_BYTES};
use crate::{input, validate};

/// What loading needs from the environment, passed in so that tests need no environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// The directory `~` expands to in paths; `None` when unknown (then `~` is an error).
    pub home: Option<PathBuf>,
    /// The directory relative paths are resolved against (the inventory file's own);
    /// `None` leaves them relative to the working directory.
    pub base_dir: Option<PathBuf>,
}

impl LoadOptions {
    /// `home` from `$HOME`, no base directory.
    pub fn from_env() -> LoadOptions {
        LoadOptions {
            home: std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from),
            base_dir: None,
        }
    }
}

/// Loads and validates the inventory file at `path`, with `~` expanded from `$HOME` and
/// relative paths resolved against the file's directory.
///
/// ```no_run
/// let inventory = poolpatch_inventory::load(std::path::Path::new("estate.yaml"))
///     .map_err(|problems| eprintln!("{problems}"));
/// ```
pub fn load(path: &Path) -> Result<Inventory, Diagnostics> {
    load_with(path, &LoadOptions::from_env())
}

/// [`load`] with explicit options. A missing `base_dir` is taken from `path`.
pub fn load_with(path: &Path, opts: &LoadOptions) -> Result<Inventory, Diagnostics> {
    let text = read_text(path).map_err(|d| Diagnostics { items: vec![d] })?;
    let mut opts = opts.clone();
    if opts.base_dir.is_none() {
        opts.base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf);
    }
    from_str_with(&path.display().to_string(), &text, &opts)
}

/// Validates the inventory `text`, read from the file `file_name` (used in diagnostics
/// only), with `~` expanded from `$HOME`; relative paths stay relative.
pub fn from_str(file_name: &str, text: &str) -> Result<Inventory, Diagnostics> {
    from_str_with(file_name, text, &LoadOptions::from_env())
}

/// [`from_str`] with explicit options.
pub fn from_str_with(
    file_name: &str,
    text: &str,
    opts: &LoadOptions,
) -> Result<Inventory, Diagnostics> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let root = yaml::parse(file_name, text).map_err(|d| Diagnostics { items: vec![d] })?;
    let mut ctx = Ctx::new(file_name);
    let inventory = input::decode(&mut ctx, &root, opts)
        .and_then(|input| validate::validate(&mut ctx, &input, opts));
    match inventory {
        Some(inventory) if ctx.diags.is_empty() => Ok(inventory),
        _ => {
            if ctx.diags.is_empty() {
                ctx.error(
                    Pos::START,
                    "",
                    "internal error: the inventory was refused without a reason; please report this",
                );
            }
            Err(ctx.diags.sorted())
        }
    }
}

/// Reads a UTF-8 text file of at most [`MAX_FILE_BYTES`]; any failure is a diagnostic
/// naming the file (and, for bad UTF-8, the position of the first bad byte).
pub fn read_text(path: &Path) -> Result<String, Diagnostic> {
    let name = path.display().to_string();
    let fail =
        |message: String, help: &str| Diagnostic::new(&name, Pos::START, "", message).help(help);
    let io = |e: std::io::Error| {
        let (what, help) = match e.kind() {
            ErrorKind::NotFound => ("no such file".to_string(), "check the path"),
            ErrorKind::PermissionDenied => (
                "permission denied".to_string(),
                "check the file's permissions for the account running poolpatch",
            ),
            _ => (e.to_string(), "check that the path names a readable file"),
        };
        fail(format!("cannot read the file: {what}"), help)
    };
    let file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_dir() {
        return Err(fail(
            "cannot read the file: it is a directory".into(),
            "name the inventory file itself, not its directory",
        ));
    }
    let too_large = |size: String| {
        fail(
            format!(
                "the file is {size} bytes, more than the {MAX_FILE_BYTES} bytes poolpatch reads"
            ),
            "split the estate into several inventories, or check that this is the right file",
        )
    };
    if meta.len() > MAX_FILE_BYTES as u64 {
        return Err(too_large(meta.len().to_string()));
    }
    let mut bytes = Vec::new();
    // `take` guards against files that grow, and special files that report no size.
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(too_large(format!("more than {MAX_FILE_BYTES}")));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let prefix = String::from_utf8_lossy(bytes.get(..valid).unwrap_or_default());
        let line = prefix.matches('\n').count() + 1;
        let column = prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let byte = bytes.get(valid).copied().unwrap_or_default();
        Diagnostic::new(
            &name,
            Pos { line, column },
            "",
            format!("the file is not UTF-8 text: byte 0x{byte:02X} cannot start a character"),
        )
        .help("save the file as UTF-8")
    })
}
