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

/// `patchbench random-input`: a random input for a model, raw bytes in its input's type (what
/// `infer --input` and TFLM read), the same for the same seed.
#[derive(clap::Parser)]
pub struct InputCmd {
    #[command(flatten)]
    model: super::ModelArgs,
    /// Seed: the same seed gives the same input.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// File to write.
    #[arg(long)]
    out: PathBuf,
}

impl InputCmd {
    pub fn run(self) -> anyhow::Result<()> {
        let m = self.model.load()?;
        let model = m.as_model();
        let t = model.tensor(model.input);
        // Checked before a byte is made: a model declaring an absurd input must not fill the disk.
        if t.bytes() > patchbench::runner::MAX_HOST_BYTES {
            anyhow::bail!(
                "model {} takes a 1x{}x{}x{} input of {} B: no microcontroller model's input is this large (more than {} B); check the model's input shape",
                m.name,
                t.h,
                t.w,
                t.c,
                t.bytes(),
                patchbench::runner::MAX_HOST_BYTES
            );
        }
        let input = patchbench::models::random_input(&model, self.seed);
        std::fs::write(&self.out, bytemuck::cast_slice::<i8, u8>(&input))
            .with_context(|| format!("writing {}", self.out.display()))?;
        println!("{}: 1x{}x{}x{} {} ({} bytes)", self.out.display(), t.h, t.w, t.c, t.dtype.name(), input.len());
        Ok(())
    }
}
