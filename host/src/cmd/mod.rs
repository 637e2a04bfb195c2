//! Subcommands and the options they share.

mod bench;
mod boards;
mod build;
mod fit;
mod gen;
mod infer;
mod merge;
mod plan;
mod plot;
mod probes;
mod random;
mod recommend;
mod run;
mod sweep;

use harness::plan::{Grid, InputPlacement, PatchConfig, Schedule};

/// All subcommands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Print the plan of a model under a patch config (shapes, MACs, tiles, arena), or sweep
    /// configs.
    Plan(plan::Cmd),
    /// Run the engine on the host on a raw int8 input.
    Infer(infer::Cmd),
    /// List the board catalog.
    Boards(boards::Cmd),
    /// Kernel benchmark: the MLPerf Tiny CNNs layer-wise and at their best patch configs, each
    /// kernel set, next to TFLM's figures.
    Bench(bench::Cmd),
    /// Build, deploy and measure one (model, patch config, board); append to runs.csv.
    Run(run::Cmd),
    /// Run a grid of models x configs x boards from a TOML spec.
    Sweep(sweep::Cmd),
    /// Write the generated sources of one firmware image (for building it by hand).
    Gen(gen::Cmd),
    /// Build one firmware image without deploying it; print its flash and RAM use.
    Build(build::Cmd),
    /// List the debug probes attached to this host (for real boards).
    Probes(probes::Cmd),
    /// Combine results folders (the shards of a partitioned sweep) without duplicates.
    Merge(merge::Cmd),
    /// Render figures (SVG and PNG) and summary.md from results folders.
    Plot(plot::Cmd),
    /// Recommend the patch config for a board, a RAM budget and a deadline.
    Recommend(recommend::Cmd),
    /// Fit and print the cycles model of a board on results folders.
    Fit(fit::Cmd),
    /// Write a random int8 CNN as a .tflite file (the differential tests' generator).
    RandomModel(random::Cmd),
    /// Write a random input for a model: raw bytes in its input's type (for `infer --input`).
    RandomInput(random::InputCmd),
}

impl Command {
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            Command::Plan(c) => c.run(),
            Command::Infer(c) => c.run(),
            Command::Boards(c) => c.run(),
            Command::Bench(c) => c.run(),
            Command::Run(c) => c.run(),
            Command::Sweep(c) => c.run(),
            Command::Gen(c) => c.run(),
            Command::Build(c) => c.run(),
            Command::Probes(c) => c.run(),
            Command::Merge(c) => c.run(),
            Command::Plot(c) => c.run(),
            Command::Recommend(c) => c.run(),
            Command::Fit(c) => c.run(),
            Command::RandomModel(c) => c.run(),
            Command::RandomInput(c) => c.run(),
        }
    }
}

/// `--model`.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// A `.tflite` file (int8, see the README for the supported ops), a zoo name
    /// (mbv2-w0.35-r144, mbv1-w0.25-r96, resnet8-r32, tiny) or random:SEED (a random CNN).
    #[arg(long, short)]
    pub model: String,
}

impl ModelArgs {
    pub fn load(&self) -> anyhow::Result<harness::model::ModelBuf> {
        Ok(patchbench::load_model(&self.model)?)
    }
}

/// What one firmware image is: `--board`, `--model`, the config and `--repeats`.
#[derive(clap::Args)]
pub struct ImageArgs {
    /// Board from the catalog (`patchbench boards`).
    #[arg(long, short, default_value = "qemu-m4")]
    pub board: String,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Measured runs after one warm-up.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    pub repeats: u16,
    /// Kernel set: `dsp` (the default on cores with the DSP extension: Cortex-M4, M7, M33),
    /// `portable` (the same algorithms in plain Rust, the default on Cortex-M0+ and M3) or
    /// `reference` (TFLM's reference kernels, for comparison).
    #[arg(long, value_parser = parse_kernels)]
    pub kernels: Option<KernelSet>,
}

impl ImageArgs {
    /// `--board`, running `--kernels` when given.
    pub fn board(&self) -> anyhow::Result<patchbench::boards::Board> {
        Ok(patchbench::boards::find(&self.board)?.with_kernels(self.kernels)?)
    }
}

/// `--kernels` (clap value parser).
pub fn parse_kernels(s: &str) -> Result<KernelSet, String> {
    s.parse().map_err(|e| format!("{e}, not `{s}`"))
}

/// `--schedule` (or its shorthand `--split` with `--patches`), `--input-in`.
#[derive(clap::Args)]
pub struct ConfigArgs {
    /// How the model runs: `layer-wise`, or patch stages in op order, each `END@RxC` (the ops
    /// up to op END, run over an RxC grid of their output, halos recomputed) or
    /// `END@RxC+cache`, comma separated: `13@4x4`, `6@2x2,13@3x3+cache`. This patchbench runs
    /// one recompute stage from op 0; the others are refused, saying so.
    #[arg(long, conflicts_with_all = ["split", "patches"], value_parser = parse_schedule)]
    pub schedule: Option<Schedule>,
    /// Number of leading ops run patch by patch (0: layer-wise); with `--patches`, shorthand
    /// for `--schedule SPLIT@PATCHES`.
    #[arg(long, default_value_t = 0)]
    pub split: u16,
    /// Patch grid over the patch stage's output, `NxM` (rows x columns) or `N` for NxN.
    #[arg(long, default_value = "1x1")]
    pub patches: Grid,
    /// Where the input tensor lives: `flash` (read in place, not in the arena) or `arena`
    /// (copied into the arena, counted in it).
    #[arg(long, default_value = "flash", value_parser = parse_placement)]
    pub input_in: InputPlacement,
}

impl ConfigArgs {
    /// The schedule asked for (`--schedule`, or `--split` with `--patches`).
    pub fn schedule(&self) -> Schedule {
        self.schedule.unwrap_or_else(|| Schedule::one_stage(self.split, self.patches))
    }

    /// The config that runs it, or why this patchbench cannot run it.
    pub fn config(&self) -> anyhow::Result<PatchConfig> {
        if self.schedule.is_none() {
            return Ok(PatchConfig { split: self.split, grid: self.patches, input_in: self.input_in });
        }
        let s = self.schedule();
        PatchConfig::from_schedule(&s, self.input_in).map_err(|e| anyhow::anyhow!("--schedule {s}: {e}"))
    }
}

impl ConfigArgs {
    /// The plan of `model` under the schedule asked for: any recompute schedule (plans and
    /// host runs need no image).
    pub fn plan(&self, model: &harness::Model) -> anyhow::Result<harness::plan::Plan> {
        if self.schedule.is_none() {
            return Ok(harness::plan::plan(model, self.config()?)?);
        }
        let s = self.schedule();
        harness::plan::plan_schedule(model, &s, self.input_in, Default::default())
            .map_err(|e| anyhow::anyhow!("--schedule {s}: {e}"))
    }
}

/// `--schedule` (clap value parser).
pub fn parse_schedule(s: &str) -> Result<Schedule, String> {
    s.parse().map_err(|e| format!("{e}, not `{s}`"))
}

use harness::kernels::KernelSet;

/// `--input-in` (clap value parser: the engine's type, with the choices in the message).
pub fn parse_placement(s: &str) -> Result<InputPlacement, String> {
    s.parse().map_err(|e| format!("{e}, not `{s}`"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct T {
        #[command(flatten)]
        config: ConfigArgs,
    }

    #[test]
    fn schedules_parse_and_the_shorthand_is_a_one_stage_schedule() {
        let t = T::try_parse_from(["t", "--schedule", "13@4x4", "--input-in", "arena"]).unwrap();
        assert_eq!(
            t.config.config().unwrap(),
            PatchConfig { split: 13, grid: Grid::new(4, 4), input_in: InputPlacement::Arena }
        );
        let t = T::try_parse_from(["t", "--split", "13", "--patches", "4x4"]).unwrap();
        assert_eq!(t.config.schedule().to_string(), "13@4x4");
        assert_eq!(T::try_parse_from(["t"]).unwrap().config.schedule().to_string(), "layer-wise");
        let e = T::try_parse_from(["t", "--schedule", "13@4x4", "--split", "3"]).err().unwrap().to_string();
        assert!(e.contains("cannot be used with"), "{e}");
        let e = T::try_parse_from(["t", "--schedule", "13:4x4"]).err().unwrap().to_string();
        assert!(e.contains("END@RxC"), "{e}");
        let t = T::try_parse_from(["t", "--schedule", "6@2x2,13@3x3+cache"]).unwrap();
        let e = t.config.config().unwrap_err().to_string();
        assert!(e.contains("6@2x2,13@3x3+cache") && e.contains("not implemented"), "{e}");
    }

    #[test]
    fn config_options_parse_into_engine_types() {
        let t = T::try_parse_from(["t", "--split", "4", "--patches", "2x3", "--input-in", "arena"]).unwrap();
        assert_eq!(
            t.config.config().unwrap(),
            PatchConfig { split: 4, grid: Grid::new(2, 3), input_in: InputPlacement::Arena }
        );
        assert_eq!(T::try_parse_from(["t", "--patches", "5"]).unwrap().config.patches, Grid::new(5, 5));
        let e = T::try_parse_from(["t", "--patches", "0x2"]).err().unwrap().to_string();
        assert!(e.contains("at least one row"), "{e}");
        let e = T::try_parse_from(["t", "--input-in", "ram"]).err().unwrap().to_string();
        assert!(e.contains("`flash` or `arena`"), "{e}");
    }
}
