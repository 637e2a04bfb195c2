//! `patchbench gen`: the generated sources of one image, to build the firmware by hand
//! (`PATCHBENCH_GEN=DIR cargo build --release` in firmware/).

use super::ImageArgs;
use anyhow::Context;
use patchbench::firmware;
use std::path::PathBuf;

#[derive(clap::Parser)]
pub struct Cmd {
    #[command(flatten)]
    image: ImageArgs,
    /// Directory to write.
    #[arg(long)]
    out: PathBuf,
}

impl Cmd {
    pub fn run(self) -> anyhow::Result<()> {
        let board = self.image.board()?;
        let m = self.image.model.load()?;
        let p = self.image.config.plan(&m.as_model()).with_context(|| format!("planning {}", m.name))?;
        firmware::generate(&m.as_model(), &p, &board, self.image.repeats, &self.out)?;
        println!("{}", self.out.display());
        Ok(())
    }
}
