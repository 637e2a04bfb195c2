//! Planning: shapes, halos, arena layout and cost of a model under a patch configuration.
//!
//! The same code answers "what will this config cost" on the host (`patchbench plan`) and
//! produces the [`ExecPlan`] the executors (and the firmware) run from, so prediction and
//! measurement can be compared byte for byte.

/// Serde as the type's one text (`Display` out, `FromStr` in): grids and schedules are
/// carried as `4x4` and `6@2x2,13@3x3` in CSV, TOML and JSON. A text that does not parse is
/// an error quoting it.
macro_rules! serde_as_text {
    ($ty:ty, $err:ty, $expecting:literal) => {
        #[cfg(feature = "serde")]
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        #[cfg(feature = "serde")]
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$ty, E> {
                        v.parse().map_err(|e: $err| E::custom(format_args!("`{v}`: {e}")))
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

mod config;
mod geometry;
#[cfg(feature = "std")]
pub mod memory;
mod patch;
mod schedule;

pub use config::{
    check_config, check_schedule, check_span, check_split, max_split, ConfigError, Grid, GridError, InputPlacement,
    PatchConfig, UnknownPlacement,
};
pub use geometry::{input_region, macs_for_rows, overlap_lag, split_axis, Region};
pub use patch::{patch_tile, span_regions, stage_regions, stage_tile};
pub use schedule::{Schedule, ScheduleError, Stage, Strategy, MAX_STAGES};

use crate::model::ModelError;

/// Offset of a tensor that is not in the arena (the model input read from flash).
pub const IN_FLASH: u32 = u32::MAX;

/// [`ExecPlan::row_buffers`] entry of an op that writes its output directly.
pub const NO_ROW_BUFFER: u32 = u32::MAX;

/// One patch stage as the executors run it: ops `start..end`, patch by patch, each patch's
/// tiles at `regions[regions_at + p * (end - start) + (i - start)]` of [`ExecPlan::regions`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ExecStage {
    /// First op of the stage.
    pub start: u16,
    /// The op after its last.
    pub end: u16,
    /// Patches (at least 2: a one-patch stage runs layer-wise and is not listed).
    pub patches: u16,
    /// Where the stage's tiles start in [`ExecPlan::regions`].
    pub regions_at: u32,
}

impl ExecStage {
    /// Ops in the stage.
    pub const fn ops(&self) -> usize {
        (self.end - self.start) as usize
    }

    /// Op `i` runs in this stage.
    pub fn contains(&self, i: usize) -> bool {
        (usize::from(self.start)..usize::from(self.end)).contains(&i)
    }

    /// The region op `i` (of this stage) computes in patch `p`.
    pub fn region(&self, regions: &[Region], p: usize, i: usize) -> Option<Region> {
        regions.get(self.regions_at as usize + p * self.ops() + (i - self.start as usize)).copied()
    }
}

/// What the executors need of a plan: the patch stages, the arena offset of every tensor's
/// buffer and the tile every stage op computes for every patch. Borrowed, so the firmware
/// keeps it in flash.
#[derive(Clone, Copy, Debug)]
pub struct ExecPlan<'a> {
    /// The patched stages, in op order (none: layer-wise); every other op runs layer by layer.
    pub stages: &'a [ExecStage],
    /// Where the input lives.
    pub input_in: InputPlacement,
    /// Bytes the arena must have.
    pub arena_bytes: u32,
    /// Per tensor: byte offset of its buffer in the arena, or [`IN_FLASH`].
    pub offsets: &'a [u32],
    /// The tiles of every stage, stage after stage (see [`ExecStage::regions_at`]).
    pub regions: &'a [Region],
    /// Per op: arena offset of a one-output-row buffer, or [`NO_ROW_BUFFER`]. An op with a
    /// row buffer computes its output row by row into it and copies each row into place,
    /// because its output overlaps its input (only rows no later row reads are overwritten).
    pub row_buffers: &'a [u32],
}

/// Why a plan could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlanError {
    /// The model itself is malformed.
    Model(ModelError),
    /// The configuration does not fit the model.
    Config(ConfigError),
}

impl core::fmt::Display for PlanError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PlanError::Model(e) => write!(f, "invalid model: {e}"),
            PlanError::Config(e) => write!(f, "invalid patch config: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PlanError {}

impl From<ConfigError> for PlanError {
    fn from(e: ConfigError) -> Self {
        PlanError::Config(e)
    }
}

impl From<ModelError> for PlanError {
    fn from(e: ModelError) -> Self {
        PlanError::Model(e)
    }
}

#[cfg(feature = "std")]
mod build;
#[cfg(feature = "std")]
mod search;
#[cfg(feature = "std")]
pub use build::{candidates, plan, plan_schedule, plan_with, valid_ends, valid_splits, OpReport, Plan, PlanOptions};
#[cfg(feature = "std")]
pub use search::{search, Objective, SearchError};
