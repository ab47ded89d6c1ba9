//! The executor: carries out a plan, server by server, under the outage watchdog.
//!
//! - [`carry`]: a whole run: run directory, journal, progress, the run loop;
//! - [`resume`]: what a stopped run left, read from its journal;
//! - [`control`]: pause, resume and abort from outside (`poolpatch ctl`, signals);
//! - [`gates`]: maintenance windows, canary stages and the failure limit;
//! - [`spec`]: turns the plan into jobs (scripts, timeouts, predictions from the plan);
//! - [`run`](mod@run): the run loop across the estate (order, the plan's safety rules, preflight
//!   ahead, halts);
//! - [`server`]: one server's procedure, outage clock, watchdog and recovery path;
//! - [`recorder`]: the run clock and where events go (journal first, then observers).

pub mod carry;
pub mod control;
pub mod gates;
pub mod recorder;
pub mod resume;
pub mod run;
pub mod server;
pub mod spec;

pub use carry::{PLAN_FILE, RunContext, RunReport, StartError, carry_out, resume_plan, resume_run};
pub use recorder::{Recorder, RunClock};
pub use run::{Earlier, PlannedJob, RunSpec, RunSummary, run};
pub use server::{
    HostFacts, InFlight, InstallerSource, OutagePolicy, ServerJob, ServerOutcome, ServerRun,
};
pub use spec::run_spec;
