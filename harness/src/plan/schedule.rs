//! Schedules: how a model runs, as one value (`no_std`, `Copy`, allocation-free).
//!
//! A schedule is a list of stages in op order. Stage k runs the ops from where stage k-1
//! ended (op 0 for the first) up to its `end`, patch by patch over a grid of its output, with
//! a strategy: `recompute` (MCUNetV2: overlapping halos computed again by each tile) or
//! `cache` (StreamNet: the rows and columns the next tile needs kept in arena buffers). The
//! tensor at each stage end exists whole; after the last stage the model runs layer-wise.
//!
//! Text: `END@RxC[+cache]` per stage, comma separated, stages in op order
//! (`6@2x2,13@3x3+cache`); `layer-wise` for none. TinyEngine's `(split_idx, n_patches)` is
//! the one-stage schedule `split@nxn`.

use super::config::{Grid, GridError, PatchConfig};

/// Most stages a schedule holds (a record header and a generated image carry them all).
pub const MAX_STAGES: usize = 16;

/// How a stage's tiles get the overlap (halo) between neighbouring input tiles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Strategy {
    /// Every tile computes its halo again (MCUNetV2).
    #[default]
    Recompute,
    /// Tiles run in raster order and keep what the next tile needs in buffers (StreamNet):
    /// nothing is computed twice.
    Cache,
}

impl Strategy {
    /// The text after `+` (`cache`), or `recompute`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Strategy::Recompute => "recompute",
            Strategy::Cache => "cache",
        }
    }
}

impl core::fmt::Display for Strategy {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One patch stage: the ops from the previous stage's end up to `end` (exclusive), run over
/// `grid` of op `end - 1`'s output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Stage {
    /// The op after the stage's last op (the stage's ops are `start..end`).
    pub end: u16,
    /// The patch grid over the stage output.
    pub grid: Grid,
    /// How the halos are handled.
    pub strategy: Strategy,
}

impl core::fmt::Display for Stage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}@{}", self.end, self.grid)?;
        if self.strategy == Strategy::Cache {
            f.write_str("+cache")?;
        }
        Ok(())
    }
}

/// A list of up to [`MAX_STAGES`] stages in op order; empty: layer-wise.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Schedule {
    stages: [Stage; MAX_STAGES],
    len: u8,
}

impl Default for Schedule {
    /// Layer-wise.
    fn default() -> Self {
        Schedule::LAYERWISE
    }
}

impl core::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Schedule({self})")
    }
}

/// Why a list of stages, or a text, is not a [`Schedule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScheduleError {
    /// A stage is not `END@RxC` or `END@RxC+cache`.
    Syntax,
    /// A stage's grid is not a grid.
    Grid(GridError),
    /// A stage ends at op 0, or not after the previous stage.
    Order {
        /// The stage's end.
        end: u16,
        /// Where it would start.
        start: u16,
    },
    /// More than [`MAX_STAGES`] stages.
    TooMany,
}

impl core::fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const FORM: &str =
            "a schedule is `layer-wise` or stages `END@RxC[+cache]` in op order, comma separated, e.g. 6@2x2,13@3x3+cache";
        match *self {
            ScheduleError::Syntax => f.write_str(FORM),
            ScheduleError::Grid(e) => write!(f, "{e} ({FORM})"),
            ScheduleError::Order { end, start } => write!(
                f,
                "a stage ending at op {end} would start at op {start}: every stage holds at least one op and stages come in op order ({FORM})"
            ),
            ScheduleError::TooMany => write!(f, "a schedule holds at most {MAX_STAGES} stages"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ScheduleError {}

impl Schedule {
    /// No stage: layer by layer.
    pub const LAYERWISE: Schedule =
        Schedule { stages: [Stage { end: 0, grid: Grid::ONE, strategy: Strategy::Recompute }; MAX_STAGES], len: 0 };

    /// A schedule of `stages`, checked for order and count (not against a model).
    pub fn new(stages: &[Stage]) -> Result<Schedule, ScheduleError> {
        if stages.len() > MAX_STAGES {
            return Err(ScheduleError::TooMany);
        }
        let mut start = 0;
        for s in stages {
            if s.end <= start {
                return Err(ScheduleError::Order { end: s.end, start });
            }
            if s.grid.nh == 0 || s.grid.nw == 0 {
                return Err(ScheduleError::Grid(GridError::Zero));
            }
            start = s.end;
        }
        let mut out = Schedule::LAYERWISE;
        out.stages[..stages.len()].copy_from_slice(stages);
        out.len = stages.len() as u8;
        Ok(out)
    }

    /// MCUNetV2's one recompute stage of the first `split` ops over `grid` (layer-wise when
    /// `split` is 0).
    pub fn one_stage(split: u16, grid: Grid) -> Schedule {
        if split == 0 {
            return Schedule::LAYERWISE;
        }
        let mut out = Schedule::LAYERWISE;
        out.stages[0] = Stage { end: split, grid, strategy: Strategy::Recompute };
        out.len = 1;
        out
    }

    /// The stages, in op order.
    pub fn stages(&self) -> &[Stage] {
        &self.stages[..usize::from(self.len)]
    }

    /// No stage.
    pub fn is_layerwise(&self) -> bool {
        self.len == 0
    }

    /// The schedule that actually runs, so that two spellings of one image are one schedule in
    /// results: a stage of one patch runs its ops layer by layer, which is what the ops after
    /// the last stage do, so trailing one-patch stages are left out, and consecutive ones
    /// merge into one (`3@1x1,5@1x1,8@2x2` is `5@1x1,8@2x2`). A one-patch stage before a
    /// patched one stays: it says where that stage starts.
    pub fn effective(&self) -> Schedule {
        let mut out = Schedule::LAYERWISE;
        let stages = self.stages();
        for (i, s) in stages.iter().enumerate() {
            let one = s.grid == Grid::ONE;
            let next_one = stages.get(i + 1).is_some_and(|n| n.grid == Grid::ONE);
            let patched_later = stages[i + 1..].iter().any(|n| n.grid != Grid::ONE);
            if one && (next_one || !patched_later) {
                continue;
            }
            // A one-patch stage runs layer-wise whatever its strategy: one spelling.
            let strategy = if one { Strategy::Recompute } else { s.strategy };
            out.stages[usize::from(out.len)] = Stage { strategy, ..*s };
            out.len += 1;
        }
        out
    }

    /// `(start, stage)` of every stage: where it starts and the stage.
    pub fn spans(&self) -> impl Iterator<Item = (u16, Stage)> + '_ {
        let mut start = 0;
        self.stages().iter().map(move |s| {
            let span = (start, *s);
            start = s.end;
            span
        })
    }

    /// The one recompute stage from op 0 as `(split, grid)`, when that is what this is (what
    /// the planner and the images run today); `None` for several stages or a cached one.
    pub fn as_one_stage(&self) -> Option<(u16, Grid)> {
        match self.effective().stages() {
            [] => Some((0, Grid::ONE)),
            [s] if s.strategy == Strategy::Recompute => Some((s.end, s.grid)),
            _ => None,
        }
    }
}

impl core::fmt::Display for Schedule {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.is_layerwise() {
            return f.write_str("layer-wise");
        }
        for (i, s) in self.stages().iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

impl core::str::FromStr for Schedule {
    type Err = ScheduleError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text == "layer-wise" || text == "layerwise" {
            return Ok(Schedule::LAYERWISE);
        }
        let mut stages = [Stage::default(); MAX_STAGES];
        let mut n = 0;
        for part in text.split(',') {
            if n == MAX_STAGES {
                return Err(ScheduleError::TooMany);
            }
            let part = part.trim();
            let (body, strategy) = match part.split_once('+') {
                Some((b, "cache")) => (b, Strategy::Cache),
                Some((b, "recompute")) => (b, Strategy::Recompute),
                Some(_) => return Err(ScheduleError::Syntax),
                None => (part, Strategy::Recompute),
            };
            let (end, grid) = body.split_once('@').ok_or(ScheduleError::Syntax)?;
            let end: u16 = end.trim().parse().map_err(|_| ScheduleError::Syntax)?;
            let grid: Grid = grid.parse().map_err(ScheduleError::Grid)?;
            stages[n] = Stage { end, grid, strategy };
            n += 1;
        }
        Schedule::new(&stages[..n])
    }
}

impl From<PatchConfig> for Schedule {
    /// `split@grid`, or layer-wise.
    fn from(c: PatchConfig) -> Schedule {
        Schedule::one_stage(c.split, c.grid)
    }
}

serde_as_text!(Schedule, ScheduleError, "a schedule such as \"13@4x4\" or \"6@2x2,13@3x3+cache\"");

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;

    #[test]
    fn schedules_have_one_canonical_text() {
        for text in ["layer-wise", "13@4x4", "6@2x2,13@3x3+cache", "1@1x2,2@3x1,5@8x8+cache"] {
            let s: Schedule = text.parse().unwrap();
            assert_eq!(s.to_string(), text);
        }
        let s: Schedule = " 6@2x2 , 13@3+cache ".parse().unwrap();
        assert_eq!(s.to_string(), "6@2x2,13@3x3+cache");
        assert_eq!("6@2x2+recompute".parse::<Schedule>().unwrap().to_string(), "6@2x2");
        assert_eq!(Schedule::from(PatchConfig::new(13, 4, 4)).to_string(), "13@4x4");
        assert_eq!(Schedule::from(PatchConfig::LAYERWISE), Schedule::LAYERWISE);
    }

    #[test]
    fn bad_schedules_say_what_a_schedule_is() {
        for (text, want) in [
            ("13", ScheduleError::Syntax),
            ("13@4x4+stream", ScheduleError::Syntax),
            ("x@4x4", ScheduleError::Syntax),
            ("13@0x4", ScheduleError::Grid(GridError::Zero)),
            ("0@2x2", ScheduleError::Order { end: 0, start: 0 }),
            ("6@2x2,6@3x3", ScheduleError::Order { end: 6, start: 6 }),
            ("9@2x2,6@3x3", ScheduleError::Order { end: 6, start: 9 }),
            ("1@2,2@2,3@2,4@2,5@2,6@2,7@2,8@2,9@2,10@2,11@2,12@2,13@2,14@2,15@2,16@2,17@2", ScheduleError::TooMany),
            ("", ScheduleError::Syntax),
        ] {
            assert_eq!(text.parse::<Schedule>(), Err(want), "{text}");
            assert!(want.to_string().contains("END@RxC") || want == ScheduleError::TooMany);
        }
    }

    #[test]
    fn one_patch_stages_run_layer_wise() {
        let s: Schedule = "3@1x1,6@2x2".parse().unwrap();
        assert_eq!(s.effective(), s, "ops 0..3 layer-wise, then a stage from op 3");
        assert_eq!(s.as_one_stage(), None);
        let spans: std::vec::Vec<(u16, u16)> = s.spans().map(|(a, st)| (a, st.end)).collect();
        assert_eq!(spans, [(0, 3), (3, 6)]);
        let s: Schedule = "2@1x1+cache,3@1x1,6@2x2,8@1x1,9@1x1".parse().unwrap();
        assert_eq!(s.effective().to_string(), "3@1x1,6@2x2");
        assert_eq!("6@2x2,9@1x1".parse::<Schedule>().unwrap().as_one_stage(), Some((6, Grid::new(2, 2))));
        assert_eq!("13@1x1".parse::<Schedule>().unwrap().effective(), Schedule::LAYERWISE);
        assert_eq!("6@2x2,13@3x3".parse::<Schedule>().unwrap().as_one_stage(), None);
        assert_eq!("6@2x2+cache".parse::<Schedule>().unwrap().as_one_stage(), None);
    }
}
