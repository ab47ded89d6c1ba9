//! Integration tests of loading, validation and the dependency graph.

mod example;
mod files;
mod graph;
mod helpers;
mod hostile;
mod many;
mod rules_refs;
mod rules_ssh;
mod rules_values;
mod scale;
