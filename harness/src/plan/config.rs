//! Patch configurations and their validation (`no_std`).

use crate::model::{Model, NO_TENSOR};

/// Where the model input tensor lives during inference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum InputPlacement {
    /// Read in place from flash (a constant): not part of the arena.
    #[default]
    Flash,
    /// Copied into the arena first (a sensor frame buffer): counted in the arena.
    Arena,
}

impl InputPlacement {
    /// Every placement, in CLI order.
    pub const ALL: [InputPlacement; 2] = [InputPlacement::Flash, InputPlacement::Arena];

    /// `flash` or `arena`.
    pub const fn as_str(self) -> &'static str {
        match self {
            InputPlacement::Flash => "flash",
            InputPlacement::Arena => "arena",
        }
    }
}

impl core::fmt::Display for InputPlacement {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that names no [`InputPlacement`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownPlacement;

impl core::fmt::Display for UnknownPlacement {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("the input placement must be `flash` or `arena`")
    }
}

impl core::str::FromStr for InputPlacement {
    type Err = UnknownPlacement;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        InputPlacement::ALL.into_iter().find(|p| p.as_str() == s).ok_or(UnknownPlacement)
    }
}

/// A patch grid `nh x nw` over the patch stage's output: `nh` rows of patches, `nw` columns.
/// Written `NxM` (or `N` for `NxN`) on the command line, in specs and in CSV.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Grid {
    /// Patch rows.
    pub nh: u16,
    /// Patch columns.
    pub nw: u16,
}

impl Grid {
    /// One patch: layer-by-layer inference.
    pub const ONE: Grid = Grid { nh: 1, nw: 1 };

    /// An `nh x nw` grid.
    pub const fn new(nh: u16, nw: u16) -> Grid {
        Grid { nh, nw }
    }

    /// Number of patches.
    pub const fn patches(self) -> usize {
        self.nh as usize * self.nw as usize
    }
}

impl Default for Grid {
    /// One patch.
    fn default() -> Self {
        Grid::ONE
    }
}

impl core::fmt::Display for Grid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}x{}", self.nh, self.nw)
    }
}

/// Why text is not a [`Grid`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GridError {
    /// A side is not a whole number.
    NotANumber,
    /// A side is zero.
    Zero,
}

impl core::fmt::Display for GridError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GridError::NotANumber => f.write_str("a patch grid is `NxM` (rows x columns) or `N` for NxN, e.g. 4x4"),
            GridError::Zero => f.write_str("a patch grid needs at least one row and one column, e.g. 4x4"),
        }
    }
}

impl core::str::FromStr for Grid {
    type Err = GridError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let side = |v: &str| v.trim().parse::<u16>().map_err(|_| GridError::NotANumber);
        let (nh, nw) = match s.split_once(['x', 'X']) {
            Some((a, b)) => (side(a)?, side(b)?),
            None => (side(s)?, side(s)?),
        };
        if nh == 0 || nw == 0 {
            return Err(GridError::Zero);
        }
        Ok(Grid { nh, nw })
    }
}

serde_as_text!(Grid, GridError, "a patch grid such as \"4x4\"");

#[cfg(feature = "std")]
impl std::error::Error for GridError {}
#[cfg(feature = "std")]
impl std::error::Error for UnknownPlacement {}

/// `(split, nh x nw)`: the first `split` ops run patch by patch over an `nh x nw` grid of the
/// patch stage's output. `split = 0` or a 1x1 grid is plain layer-by-layer inference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PatchConfig {
    /// Number of leading ops in the patch stage.
    pub split: u16,
    /// The patch grid over the stage output.
    pub grid: Grid,
    /// Where the input tensor lives.
    pub input_in: InputPlacement,
}

impl Default for PatchConfig {
    fn default() -> Self {
        Self::LAYERWISE
    }
}

impl PatchConfig {
    /// Layer-by-layer inference, input in flash.
    pub const LAYERWISE: PatchConfig = PatchConfig { split: 0, grid: Grid::ONE, input_in: InputPlacement::Flash };

    /// A patch configuration with the input in flash.
    pub const fn new(split: u16, nh: u16, nw: u16) -> Self {
        PatchConfig { split, grid: Grid { nh, nw }, input_in: InputPlacement::Flash }
    }

    /// True when this runs layer by layer (no patch stage).
    pub const fn is_layerwise(&self) -> bool {
        self.split == 0 || (self.grid.nh == 1 && self.grid.nw == 1)
    }

    /// Number of patches.
    pub const fn patches(&self) -> usize {
        self.grid.patches()
    }

    /// The config that runs `schedule` with the input in `input_in`: one recompute stage from
    /// op 0 (or none); other schedules are [`ConfigError::NotYet`].
    pub fn from_schedule(schedule: &super::Schedule, input_in: InputPlacement) -> Result<PatchConfig, ConfigError> {
        match schedule.as_one_stage() {
            Some((split, grid)) => Ok(PatchConfig { split, grid, input_in }),
            None => {
                let e = schedule.effective();
                Err(ConfigError::NotYet {
                    stages: e.stages().len() as u8,
                    cache: e.stages().iter().any(|s| s.strategy == super::Strategy::Cache),
                })
            }
        }
    }

    /// The schedule this config runs.
    pub fn schedule(&self) -> super::Schedule {
        super::Schedule::from(self.effective())
    }

    /// The config that actually runs: a 1x1 grid at any split is layer-wise (split 0), so
    /// two spellings of one image are one config in results.
    pub const fn effective(self) -> PatchConfig {
        if self.is_layerwise() {
            PatchConfig { split: 0, grid: Grid::ONE, input_in: self.input_in }
        } else {
            self
        }
    }
}

/// Why a patch configuration cannot run on a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `split` is past the last op that can end a patch stage.
    SplitOutOfRange {
        /// The requested split.
        split: u16,
        /// The largest valid split.
        max: u16,
    },
    /// The patch stage would contain an op that is not spatial (RESHAPE, FULLY_CONNECTED, ...).
    NotSpatial {
        /// The requested split.
        split: u16,
        /// The first op that is not spatial.
        op: u16,
        /// Its TFLite name.
        name: &'static str,
    },
    /// A tensor other than the stage output is used on both sides of the split (a residual
    /// branch crosses it).
    BranchCrossesSplit {
        /// The requested split.
        split: u16,
        /// The op whose output crosses ([`u16::MAX`]: the model input).
        producer: u16,
    },
    /// Zero patches, or more patch rows/columns than the stage output has.
    TooManyPatches {
        /// Requested grid rows.
        nh: u16,
        /// Requested grid columns.
        nw: u16,
        /// Rows of the stage output.
        rows: u16,
        /// Columns of the stage output.
        cols: u16,
    },
    /// A patch grid was given with `split = 0`.
    PatchesWithoutStage,
    /// A schedule this planner cannot run yet: several stages, a stage that does not start at
    /// op 0, or halo caching.
    NotYet {
        /// Stages of the schedule (after one-patch stages are merged away).
        stages: u8,
        /// Some stage caches its halos.
        cache: bool,
    },
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            ConfigError::SplitOutOfRange { split, max } => write!(
                f,
                "split {split} is out of range: the patch stage can hold at most the first {max} ops (valid splits are 0..={max}, some cut inside residual blocks are not)"
            ),
            ConfigError::NotSpatial { split, op, name } => write!(
                f,
                "split {split} would put op {op} ({name}) in the patch stage, but it needs its whole input, not a tile (a global pool, a squeeze-and-excite squeeze, a classifier, a broadcast operand): it ends the patch stage; use a split of at most {op}"
            ),
            ConfigError::BranchCrossesSplit { split, producer } => {
                if producer == u16::MAX {
                    write!(f, "split {split} cuts a branch: the model input")?;
                } else {
                    write!(f, "split {split} cuts a branch: the output of op {producer}")?;
                }
                write!(
                    f,
                    " is used on both sides of the split; choose a split at a block boundary (`patchbench plan --model M` lists the valid splits)"
                )
            }
            ConfigError::TooManyPatches { nh, nw, rows, cols } => write!(
                f,
                "a {nh}x{nw} patch grid does not fit the patch stage output of {rows}x{cols}: use 1..={rows} patch rows and 1..={cols} patch columns"
            ),
            ConfigError::PatchesWithoutStage => {
                write!(f, "a patch grid needs a patch stage: give a split of at least 1, or use 1x1 patches")
            }
            ConfigError::NotYet { cache: true, .. } => write!(
                f,
                "halo caching (`+cache`) is not implemented in this patchbench yet: use recompute stages (`END@RxC`)"
            ),
            ConfigError::NotYet { .. } => write!(
                f,
                "this takes one recompute stage from op 0 (`SPLIT@RxC`, e.g. 13@4x4), and the schedule has several stages"
            ),
        }
    }
}

/// The largest split whose stage holds only spatial ops ([`Model::op_is_spatial`]).
pub fn max_split(model: &Model) -> u16 {
    model.ops.iter().take_while(|op| model.op_is_spatial(op)).count() as u16
}

/// Checks that `split` is a clean cut: all ops before it are spatial and the only tensor
/// that crosses it is the output of op `split - 1`.
pub fn check_split(model: &Model, split: u16) -> Result<(), ConfigError> {
    check_span(model, 0, split)
}

/// Checks that ops `start..end` can run as one patch stage: all spatial, and the only tensor
/// made inside that is read after it (or is a graph output) is the output of op `end - 1`.
/// What the stage reads of tensors made before it exists whole, so anything may.
pub fn check_span(model: &Model, start: u16, end: u16) -> Result<(), ConfigError> {
    let max = max_split(model);
    if end == 0 {
        return Ok(());
    }
    if end as usize > model.ops.len() {
        return Err(ConfigError::SplitOutOfRange { split: end, max });
    }
    if let Some(k) = (start..end).find(|&k| !model.op_is_spatial(&model.ops[usize::from(k)])) {
        return Err(ConfigError::NotSpatial { split: end, op: k, name: model.ops[usize::from(k)].kind.name() });
    }
    let stage_output = model.ops[end as usize - 1].output;
    // The op (u16::MAX: the model input, for a stage from op 0) making a tensor of the stage.
    let stage_producer = |t: u16| {
        if t == model.input && start == 0 {
            Some(u16::MAX)
        } else {
            model.ops[start as usize..end as usize].iter().position(|op| op.output == t).map(|i| start + i as u16)
        }
    };
    let leaving = model.ops[end as usize..].iter().flat_map(|op| op.input_ids()).chain(model.outputs.iter().copied());
    for t in leaving {
        if t != stage_output && t != NO_TENSOR {
            if let Some(producer) = stage_producer(t) {
                return Err(ConfigError::BranchCrossesSplit { split: end, producer });
            }
        }
    }
    Ok(())
}

/// Validates a schedule against a model: every patched stage a clean span
/// ([`check_span`]) whose output has at least as many rows and columns as its grid. A
/// one-patch stage runs layer-wise and needs only to end inside the model.
pub fn check_schedule(model: &Model, schedule: &super::Schedule) -> Result<(), ConfigError> {
    for (start, stage) in schedule.spans() {
        let Grid { nh, nw } = stage.grid;
        if stage.end as usize > model.ops.len() {
            return Err(ConfigError::SplitOutOfRange { split: stage.end, max: max_split(model) });
        }
        if stage.grid == Grid::ONE {
            continue;
        }
        check_span(model, start, stage.end)?;
        let out = model.tensor(model.ops[stage.end as usize - 1].output);
        if nh > out.h || nw > out.w {
            return Err(ConfigError::TooManyPatches { nh, nw, rows: out.h, cols: out.w });
        }
        if stage.strategy == super::Strategy::Cache {
            let e = schedule.effective();
            return Err(ConfigError::NotYet { stages: e.stages().len() as u8, cache: true });
        }
    }
    Ok(())
}

/// Validates a whole configuration against a model.
pub fn check_config(model: &Model, config: &PatchConfig) -> Result<(), ConfigError> {
    let Grid { nh, nw } = config.grid;
    if nh == 0 || nw == 0 {
        return Err(ConfigError::TooManyPatches { nh, nw, rows: 0, cols: 0 });
    }
    if config.split == 0 {
        return if config.patches() == 1 { Ok(()) } else { Err(ConfigError::PatchesWithoutStage) };
    }
    check_split(model, config.split)?;
    let out = model.tensor(model.ops[config.split as usize - 1].output);
    if nh > out.h || nw > out.w {
        return Err(ConfigError::TooManyPatches { nh, nw, rows: out.h, cols: out.w });
    }
    Ok(())
}

#[cfg(feature = "std")]
impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_and_placements_parse_and_print() {
        assert_eq!("4x3".parse::<Grid>(), Ok(Grid::new(4, 3)));
        assert_eq!("5".parse::<Grid>(), Ok(Grid::new(5, 5)));
        assert_eq!("2X1".parse::<Grid>(), Ok(Grid::new(2, 1)));
        assert_eq!("0x2".parse::<Grid>(), Err(GridError::Zero));
        assert_eq!("ax2".parse::<Grid>(), Err(GridError::NotANumber));
        assert_eq!("".parse::<Grid>(), Err(GridError::NotANumber));
        let mut s = [0u8; 8];
        let mut w = Buf(&mut s, 0);
        core::fmt::write(&mut w, format_args!("{}", Grid::new(12, 1))).unwrap();
        assert_eq!(&w.0[..w.1], b"12x1");
        assert_eq!("arena".parse::<InputPlacement>(), Ok(InputPlacement::Arena));
        assert_eq!("ram".parse::<InputPlacement>(), Err(UnknownPlacement));
    }

    struct Buf<'a>(&'a mut [u8], usize);
    impl core::fmt::Write for Buf<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            self.0[self.1..self.1 + s.len()].copy_from_slice(s.as_bytes());
            self.1 += s.len();
            Ok(())
        }
    }

    #[test]
    fn a_one_patch_grid_runs_layer_wise() {
        let c = PatchConfig { split: 4, grid: Grid::ONE, input_in: InputPlacement::Arena };
        assert!(c.is_layerwise());
        assert_eq!(c.effective(), PatchConfig { split: 0, grid: Grid::ONE, input_in: InputPlacement::Arena });
        let p = PatchConfig::new(4, 2, 1);
        assert_eq!(p.effective(), p);
    }
}
