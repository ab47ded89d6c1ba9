//! # poolpatch (the controller)
//!
//! Doing it: carries out a [`poolpatch_plans`] plan on real servers.
//!
//! - `remote`: the small boundary to one host (run a step, upload a file) and its SSH
//!   implementation (russh), with strict known_hosts checking;
//! - `sim`: simulated Lync / Skype for Business servers that speak real SSH, for tests,
//!   rehearsals and `poolpatch demo`;
//! - [`journal`]: the typed, durable event stream of a run; status and reports derive from it;
//! - [`lock`]: one controller per inventory at a time;
//! - [`notify`]: webhooks told about a run's important events (`notify:` in the change file).

pub mod cli;
pub mod exec;
pub mod journal;
pub mod lock;
pub mod notify;
pub mod progress;
pub mod rehearsal;
pub mod remote;
pub mod report;
pub mod sim;
pub mod status;
