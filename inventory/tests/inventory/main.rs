//! Integration tests of loading, validation and the dependency graph: one binary, shared
//! helpers in `helpers`.

mod docs;
mod example;
mod files;
mod graph;
mod helpers;
mod hostile;
mod many;
mod rules_back_ends;
mod rules_refs;
mod rules_ssh;
mod rules_values;
mod rules_windows;
mod scale;
