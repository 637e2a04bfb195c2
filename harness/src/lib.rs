//! # harness
//!
//! The patchbench engine, shared by the host tool and the firmware: a `no_std` library that
//! describes int8 CNNs with TFLite quantization semantics ([`model`]), plans layer-by-layer
//! and patch-based execution and predicts its cost ([`plan`]), and executes both, bit for bit
//! identically, over one caller-provided arena ([`kernels`], [`exec`]).
//!
//! Stages depend one way: `model -> plan -> kernels -> exec`. Features: `std` adds the
//! host-side planner (memory layout), the model [`zoo`] and [`quant`] parameter derivation;
//! `serde` derives serialization for the IR and plans.
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]

pub mod exec;
pub mod fixedpoint;
pub mod kernels;
pub mod model;
pub mod plan;
#[cfg(feature = "std")]
pub mod quant;
#[cfg(feature = "record")]
pub mod record;
#[cfg(feature = "std")]
pub mod zoo;

pub use exec::{run, ExecError};
pub use model::{Model, ModelError};
pub use plan::{ExecPlan, PatchConfig};
