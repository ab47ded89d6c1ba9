//! Integration tests of loading, validation and the dependency graph.

mod example;
mod helpers;
mod rules_refs;
mod rules_ssh;
mod rules_values;
