//! # poolpatch-plans
//!
//! What to do and when. `plan(inventory, change) -> Plan` is a pure, deterministic function:
//! the same inputs give the same bytes, and the result is what the change board approves.
//!
//! - [`change`]: the change file (which update, scope, outage budget, policies), validated
//!   with every problem reported at once;
//! - [`plan`](mod@plan): the plan value (timeline, steps, verdicts, impact), built by
//!   [`plan()`](fn@plan), and
//!   its JSON form;
//! - [`procedure`]: the documented update procedure per server, as data, with the exact
//!   script of every step and the `Install-CsDatabase` variant chosen by role;
//! - [`quote`]: PowerShell literal quoting and `-EncodedCommand`;
//! - [`estimates`]: step duration estimates and where they come from;
//! - [`history`]: what past runs observed, read from their run directories;
//! - [`render`]: the plan as terminal text and as Markdown;
//! - [`safety`]: the rules that decide whether a server may start now, shared by the
//!   scheduler and the executor;
//! - [`schedule`]: the list scheduler that simulates the timeline;
//! - [`units`]: durations, sizes, staging paths, digests;
//! - [`windows`]: maintenance-window arithmetic (weekly windows in a time zone, blackouts,
//!   daylight saving).

pub mod change;
pub mod estimates;
pub mod history;
pub mod plan;
pub mod procedure;
pub mod quote;
pub mod render;
pub mod safety;
pub mod schedule;
#[cfg(test)]
mod testing;

pub use change::{Change, change_from_str, load_change};
pub use plan::{Plan, PlanInput, plan, plan_with};
pub mod units;
pub mod windows;
