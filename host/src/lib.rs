//! # patchbench (host)
//!
//! The host side of patchbench: resolving models, reporting plans, running the engine on the
//! host, generating and building one firmware image per (model, patch config, board),
//! deploying it to QEMU, collecting its records over RTT, and writing `runs.csv`. The
//! `patchbench` binary is a thin CLI over this library.

pub mod boards;
pub mod child;
pub mod collect;
pub mod costmodel;
pub mod deploy;
pub mod figures;
pub mod files;
pub mod firmware;
pub mod models;
pub mod recommend;
pub mod report;
pub mod results;
pub mod rtt;
pub mod runner;
pub mod sweep;
pub mod tflite;
pub mod units;

pub use models::load_model;
