//! # poolpatch-inventory
//!
//! What exists: sites, pools, Front End servers, Back End and Standard Edition servers, the
//! SQL servers their databases live on, and how to reach each server over SSH.
//!
//! The inventory is read in three stages (as zincati reads its configuration):
//! 1. [`yaml`] parses the file into a tree of nodes that know their line and column;
//! 2. [`decode`] reads typed values out of it, collecting *every* problem instead of
//!    stopping at the first;
//! 3. validation checks the values together (unique names, references, pairings, the
//!    `after:` ordering) and builds the [`model`] types, which only valid values reach.
//!
//! [`load()`] and [`from_str()`] run all three. [`graph`] builds the dependency graph
//! (Front End → pool → back ends, mirror partners, paired pools, `after:` ordering) and
//! prints it as DOT or Mermaid; [`pool_order`] orders pools by `after:`.
//!
//! ```
//! let inventory = poolpatch_inventory::from_str("estate.yaml", "
//! version: 1
//! defaults:
//!   ssh: { user: svc-poolpatch, identity_file: /etc/poolpatch/id_ed25519, known_hosts: /etc/poolpatch/known_hosts }
//! sites:
//!   - { name: berlin, time_zone: Europe/Berlin }
//! pools:
//!   - fqdn: se01.ber.contoso.com
//!     site: berlin
//!     edition: standard
//!     product: lync2013
//!     server: { ssh: { address: 127.0.0.31 } }
//! ").unwrap();
//! assert_eq!(inventory.pools[0].servers[0].ssh.address, "127.0.0.31");
//!
//! let problems = poolpatch_inventory::from_str("bad.yaml", "version: 1\nsites: []\npools: []\nsite: x\n")
//!     .unwrap_err();
//! assert!(problems.to_string().contains("bad.yaml:4:1: site: unknown field `site`"));
//! ```
//!
//! The file format is documented in `docs/usage/inventory.md`.

#![warn(missing_docs)]

pub mod decode;
pub mod diag;
pub mod graph;
mod input;
pub mod load;
pub mod model;
mod ssh;
mod validate;
mod values;
pub mod windows;
pub mod yaml;

pub use diag::{Diagnostic, Diagnostics, Pos};
pub use graph::{DependencyGraph, pool_order};
pub use input::FORMAT_VERSION;
pub use load::{LoadOptions, from_str, from_str_with, load, load_with};
pub use model::*;
