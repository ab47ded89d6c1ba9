//! The executor: carries out a plan, server by server, under the outage watchdog.
//!
//! - [`run`]: the run loop across the estate (order, safety rules, preflight ahead, halts);
//! - [`server`]: one server's procedure, outage clock, watchdog and recovery path;
//! - [`recorder`]: the run clock and where events go (journal first, then observers).

pub mod recorder;
pub mod run;
pub mod server;

pub use recorder::{Recorder, RunClock};
pub use run::{Activity, OnFailure, RunSpec, RunSummary, StartGuard, run};
pub use server::{InstallerSource, OutagePolicy, ServerJob, ServerOutcome, ServerRun};
