//! Subcommands and the options they share.

mod boards;
mod gen;
mod infer;
mod plan;
mod run;
mod sweep;

use harness::plan::{InputPlacement, PatchConfig};

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
    /// Build, deploy and measure one (model, patch config, board); append to runs.csv.
    Run(run::Cmd),
    /// Run a grid of models x configs x boards from a TOML spec.
    Sweep(sweep::Cmd),
    /// Write the generated sources of one firmware image (for building it by hand).
    Gen(gen::Cmd),
}

impl Command {
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            Command::Plan(c) => c.run(),
            Command::Infer(c) => c.run(),
            Command::Boards(c) => c.run(),
            Command::Run(c) => c.run(),
            Command::Sweep(c) => c.run(),
            Command::Gen(c) => c.run(),
        }
    }
}

/// `--model`.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// A `.tflite` file (int8, see the README for the supported ops) or a zoo name
    /// (mbv2-w0.35-r144, mbv1-w0.25-r96, resnet8-r32, tiny).
    #[arg(long, short)]
    pub model: String,
}

impl ModelArgs {
    pub fn load(&self) -> anyhow::Result<harness::model::ModelBuf> {
        Ok(patchbench::load_model(&self.model)?)
    }
}

/// `--split`, `--patches`, `--input-in`.
#[derive(clap::Args)]
pub struct ConfigArgs {
    /// Number of leading ops run patch by patch (0: layer-wise).
    #[arg(long, default_value_t = 0)]
    pub split: u16,
    /// Patch grid over the patch stage's output, `NxM` (rows x columns) or `N` for NxN.
    #[arg(long, default_value = "1x1", value_parser = parse_grid)]
    pub patches: (u16, u16),
    /// Where the input tensor lives: read from flash, or copied into the arena.
    #[arg(long, value_enum, default_value_t = Placement::Flash)]
    pub input_in: Placement,
}

/// `--input-in` values.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Placement {
    /// Read in place from flash: not part of the arena.
    Flash,
    /// Copied into the arena: counted in the arena.
    Arena,
}

impl From<Placement> for InputPlacement {
    fn from(p: Placement) -> Self {
        match p {
            Placement::Flash => InputPlacement::Flash,
            Placement::Arena => InputPlacement::Arena,
        }
    }
}

impl ConfigArgs {
    pub fn config(&self) -> PatchConfig {
        PatchConfig { split: self.split, nh: self.patches.0, nw: self.patches.1, input_in: self.input_in.into() }
    }
}

/// Parses `NxM` or `N` (clap value parser).
pub fn parse_grid(s: &str) -> anyhow::Result<(u16, u16)> {
    patchbench::sweep::parse_grid(s)
}

#[cfg(test)]
mod tests {
    use super::parse_grid;

    #[test]
    fn grids_parse() {
        assert_eq!(parse_grid("4x3").unwrap(), (4, 3));
        assert_eq!(parse_grid("5").unwrap(), (5, 5));
        assert!(parse_grid("0x2").is_err());
        assert!(parse_grid("ax2").unwrap_err().to_string().contains("not a whole number"));
    }
}
