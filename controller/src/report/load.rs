//! Reading a run directory: `plan.json`, `journal.jsonl` and, for a rehearsal, the
//! uncompressed plan with its speed (`rehearsal.json`).
//!
//! A rehearsal (`poolpatch demo`) runs a plan whose durations were divided by its speed.
//! Its `plan.json` holds that compressed plan in whole seconds, so at high speeds most
//! estimates read as 0. The demo therefore also writes `rehearsal.json`: the plan before
//! compression and the speed; the report then multiplies the journal's durations by the
//! speed and compares them with the real plan, in the plan's time.

use std::io;
use std::path::{Path, PathBuf};

use poolpatch_plans::Plan;
use poolpatch_plans::plan::PLAN_SCHEMA;
use serde::{Deserialize, Serialize};

use super::Report;
use super::build::{RunOptions, from_run};
use crate::exec::PLAN_FILE;
use crate::journal::{self, ReadError};

/// The rehearsal note's file name inside a run directory.
pub const REHEARSAL_FILE: &str = "rehearsal.json";

/// The rehearsal note's schema.
const REHEARSAL_SCHEMA: &str = "poolpatch.rehearsal/v1";

/// What a rehearsal leaves beside its journal so that reports read in the plan's time.
#[derive(Debug, Serialize, Deserialize)]
struct RehearsalNote {
    /// Always [`REHEARSAL_SCHEMA`].
    schema: String,
    /// How much faster than real time the rehearsal ran.
    speed: f64,
    /// The plan before its durations were compressed.
    plan: Plan,
}

/// Why a run directory cannot be reported on.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The directory does not exist or is not a directory.
    #[error("{dir} is not a run directory (it does not exist or is not a directory)")]
    NoDirectory {
        /// The directory.
        dir: String,
    },
    /// `plan.json` cannot be read.
    #[error(
        "cannot read the plan {path}: {source}; a run directory holds plan.json and journal.jsonl, written by `poolpatch run`"
    )]
    PlanMissing {
        /// Its path.
        path: String,
        /// The cause.
        source: io::Error,
    },
    /// `plan.json` is not a plan this poolpatch reads.
    #[error("{path} is damaged or not a plan: {reason}")]
    PlanInvalid {
        /// Its path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The journal cannot be read (missing, or damaged other than a torn last line).
    #[error(transparent)]
    Journal(#[from] ReadError),
    /// The rehearsal note is damaged.
    #[error("{path} is damaged: {reason} (remove it to report in the rehearsal's own time)")]
    Rehearsal {
        /// Its path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Reads the run directory `dir` and builds its report. A torn last journal line is
/// dropped and the report says so; any other damage is an error.
pub fn load(dir: &Path) -> Result<Report, LoadError> {
    if !dir.is_dir() {
        return Err(LoadError::NoDirectory {
            dir: dir.display().to_string(),
        });
    }
    let plan_path = dir.join(PLAN_FILE);
    let shown = plan_path.display().to_string();
    let text = std::fs::read_to_string(&plan_path).map_err(|source| LoadError::PlanMissing {
        path: shown.clone(),
        source,
    })?;
    let mut plan = Plan::from_json(&text).map_err(|e| LoadError::PlanInvalid {
        path: shown,
        reason: e.to_string(),
    })?;
    let journal = journal::read(dir)?;
    let mut speed = None;
    if let Some((p, s)) = read_rehearsal(dir)? {
        plan = p;
        speed = Some(s);
    }
    Ok(from_run(
        &plan,
        &journal,
        &RunOptions {
            run_dir: Some(dir.display().to_string()),
            rehearsal_speed: speed,
        },
    ))
}

fn read_rehearsal(dir: &Path) -> Result<Option<(Plan, f64)>, LoadError> {
    let path = dir.join(REHEARSAL_FILE);
    let shown = path.display().to_string();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(LoadError::Rehearsal {
                path: shown,
                reason: e.to_string(),
            });
        }
    };
    let bad = |reason: String| LoadError::Rehearsal {
        path: shown.clone(),
        reason,
    };
    let note: RehearsalNote = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if note.schema != REHEARSAL_SCHEMA {
        return Err(bad(format!(
            "schema `{}`, expected `{REHEARSAL_SCHEMA}`",
            note.schema
        )));
    }
    if note.plan.schema != PLAN_SCHEMA {
        return Err(bad(format!("its plan has schema `{}`", note.plan.schema)));
    }
    if !(note.speed.is_finite() && note.speed >= 1.0) {
        return Err(bad(format!(
            "speed {} is not a number of at least 1",
            note.speed
        )));
    }
    Ok(Some((note.plan, note.speed)))
}

/// Writes the rehearsal note into `run_dir`: `plan` is the plan before compression,
/// `speed` the factor its durations were divided by. Returns the file's path.
pub fn write_rehearsal(run_dir: &Path, speed: f64, plan: &Plan) -> io::Result<PathBuf> {
    let note = RehearsalNote {
        schema: REHEARSAL_SCHEMA.to_string(),
        speed,
        plan: plan.clone(),
    };
    let mut text = serde_json::to_string_pretty(&note).map_err(io::Error::other)?;
    text.push('\n');
    let path = run_dir.join(REHEARSAL_FILE);
    std::fs::write(&path, text)?;
    Ok(path)
}
