//! # patchbench (host)
//!
//! The host side of patchbench: resolving models (zoo names, later `.tflite` files),
//! reporting plans, running the engine on the host, and (in later stages) building firmware,
//! deploying it to QEMU or boards, collecting records, sweeping, plotting and recommending.
//! The `patchbench` binary is a thin CLI over this library.

pub mod models;
pub mod report;

pub use models::load_model;
