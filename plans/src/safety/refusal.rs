//! Why a server may not start now, in words an operator reads in a plan or a status line.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::units::format_duration;

/// Why a server may not start now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "rule", rename_all = "kebab-case")]
pub enum Refusal {
    /// The server is not part of this estate or not in the change's scope.
    NotInScope {
        /// The server.
        server: String,
    },
    /// The state asked about was made for another estate (a caller's mistake): refusing is
    /// the only safe answer.
    ForeignState {
        /// The server.
        server: String,
    },
    /// The server is already down (being updated).
    AlreadyDown {
        /// The server.
        server: String,
    },
    /// The server is already updated.
    AlreadyDone {
        /// The server.
        server: String,
    },
    /// The outage budget is not below the resiliency threshold.
    BudgetNotBelowThreshold {
        /// The budget.
        budget: Duration,
        /// The threshold.
        threshold: Duration,
    },
    /// The server's predicted outage is not below the budget.
    OutageNotBelowBudget {
        /// The server.
        server: String,
        /// Its predicted outage.
        predicted: Duration,
        /// The budget.
        budget: Duration,
    },
    /// A pool that must come first (`after:`) is not done.
    AfterPoolNotDone {
        /// The server's pool.
        pool: String,
        /// The pool it waits for.
        after: String,
    },
    /// A principal waits for its mirror side to be updated first.
    MirrorSideFirst {
        /// The principal.
        server: String,
        /// Its mirror-side partner.
        mirror: String,
    },
    /// The server's mirror partner is down.
    MirrorPartnerDown {
        /// The server.
        server: String,
        /// Its partner.
        partner: String,
    },
    /// Another back end of the same pool is down.
    BackEndOfPoolDown {
        /// The pool.
        pool: String,
        /// The server that is down.
        down: String,
    },
    /// The pool's paired (backup) pool is in progress or has a server down.
    PairedPoolBusy {
        /// The server's pool.
        pool: String,
        /// The paired pool.
        paired: String,
        /// A server of the paired pool that is down, if any.
        down: Option<String>,
    },
    /// Starting another pool would exceed the number of pools patched at once.
    ConcurrencyLimit {
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |d: &Duration| format_duration(*d);
        match self {
            Refusal::NotInScope { server } => write!(f, "{server} is not in the change's scope"),
            Refusal::ForeignState { server } => write!(
                f,
                "{server} cannot be checked: the state given belongs to another estate"
            ),
            Refusal::AlreadyDown { server } => write!(f, "{server} is already being updated"),
            Refusal::AlreadyDone { server } => write!(f, "{server} is already updated"),
            Refusal::BudgetNotBelowThreshold { budget, threshold } => write!(
                f,
                "the outage budget ({}) is not below the {} resiliency threshold",
                d(budget),
                d(threshold)
            ),
            Refusal::OutageNotBelowBudget {
                server,
                predicted,
                budget,
            } => write!(
                f,
                "the predicted outage of {server} ({}) is not below the {} budget",
                d(predicted),
                d(budget)
            ),
            Refusal::AfterPoolNotDone { pool, after } => {
                write!(f, "pool {pool} comes after pool {after}, which is not done")
            }
            Refusal::MirrorSideFirst { server, mirror } => write!(
                f,
                "{server} holds the principal: its mirror side {mirror} must be updated first (SQL Server's rolling order)"
            ),
            Refusal::MirrorPartnerDown { server, partner } => {
                write!(f, "the mirror partner of {server}, {partner}, is down")
            }
            Refusal::BackEndOfPoolDown { pool, down } => {
                write!(f, "another back end of pool {pool}, {down}, is down")
            }
            Refusal::PairedPoolBusy {
                pool,
                paired,
                down: Some(down),
            } => write!(
                f,
                "pool {pool} is paired with pool {paired}, whose server {down} is down"
            ),
            Refusal::PairedPoolBusy {
                pool,
                paired,
                down: None,
            } => {
                write!(
                    f,
                    "pool {pool} is paired with pool {paired}, which is in progress"
                )
            }
            Refusal::ConcurrencyLimit { limit } => write!(
                f,
                "{limit} pool{} already in progress, the most patched at once",
                if *limit == 1 { " is" } else { "s are" }
            ),
        }
    }
}
