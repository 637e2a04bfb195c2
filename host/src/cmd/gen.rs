//! `patchbench gen`: the generated sources of one image, to build the firmware by hand
//! (`PATCHBENCH_GEN=DIR cargo build --release` in firmware/).

use super::{ConfigArgs, ModelArgs};
use anyhow::Context;
use harness::plan::plan;
use patchbench::{boards, firmware};
use std::path::PathBuf;

#[derive(clap::Parser)]
pub struct Cmd {
    /// Board from the catalog.
    #[arg(long, short, default_value = "qemu-m4")]
    board: String,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    config: ConfigArgs,
    /// Measured runs after one warm-up.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    repeats: u16,
    /// Directory to write.
    #[arg(long)]
    out: PathBuf,
}

impl Cmd {
    pub fn run(self) -> anyhow::Result<()> {
        let board = boards::find(&self.board)?;
        let m = self.model.load()?;
        let p = plan(&m.as_model(), self.config.config()).with_context(|| format!("planning {}", m.name))?;
        firmware::generate(&m.as_model(), &p, &board, self.repeats, &self.out)?;
        println!("{}", self.out.display());
        Ok(())
    }
}
