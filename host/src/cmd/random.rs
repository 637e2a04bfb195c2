//! `patchbench random-model`: a random int8 CNN as a `.tflite` file (the generator of the
//! differential tests), to try patchbench on models nobody has seen.

use anyhow::Context;
use std::path::PathBuf;

#[derive(clap::Parser)]
pub struct Cmd {
    /// Seed: the same seed gives the same model.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// File to write.
    #[arg(long)]
    out: PathBuf,
}

impl Cmd {
    pub fn run(self) -> anyhow::Result<()> {
        let bytes = patchbench::tflite::synth::random_cnn(self.seed);
        std::fs::write(&self.out, bytes).with_context(|| format!("writing {}", self.out.display()))?;
        let m = patchbench::load_model(&self.out.to_string_lossy())?;
        println!("{}: {} ops, {} MACs", self.out.display(), m.ops.len(), m.as_model().macs());
        Ok(())
    }
}
