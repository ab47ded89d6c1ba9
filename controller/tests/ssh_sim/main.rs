//! The SSH client (`poolpatch::remote`) against the simulator (`poolpatch::sim`): real SSH
//! over TCP on 127.0.0.x, and over in-memory streams under tokio's paused clock.
//!
//! Each module pins one kind of behaviour a user would notice: the whole procedure on each
//! role, the preconditions a real server enforces, host-key checking, lost connections and
//! timeouts, file staging, and a whole estate started from an inventory.

mod estate;
mod faults;
mod helpers;
mod host_keys;
mod preconditions;
mod procedure;
mod transfer;
