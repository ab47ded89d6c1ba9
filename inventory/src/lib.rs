//! # poolpatch-inventory
//!
//! What exists: sites, pools, Front End servers, Back End and Standard Edition servers, the
//! SQL servers their databases live on, and how to reach each server over SSH.
//!
//! The inventory is read in three stages (as zincati reads its configuration):
//! 1. [`yaml`] parses the file into a tree of nodes that know their line and column;
//! 2. [`decode`] reads typed values out of it, collecting *every* problem instead of
//!    stopping at the first;
//! 3. validation turns the result into the [`model`] types, which only valid values reach.
//!
//! [`graph`] builds the dependency graph (Front End → pool → back ends, mirror partners,
//! paired pools, `after:` ordering) and prints it as DOT or Mermaid.

pub mod decode;
pub mod diag;
pub mod model;
pub mod yaml;

pub use diag::{Diagnostic, Diagnostics, Pos};
pub use model::*;
