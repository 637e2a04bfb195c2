//! `patchbench infer`: run the engine on the host.

use super::{ConfigArgs, ModelArgs};
use anyhow::{bail, Context};
use harness::exec;
use harness::plan::plan;
use std::path::PathBuf;

#[derive(clap::Parser)]
pub struct Cmd {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    config: ConfigArgs,
    /// Raw int8 input tensor, NHWC order.
    #[arg(long)]
    input: PathBuf,
    /// Where to write the raw int8 output tensor.
    #[arg(long)]
    output: PathBuf,
    /// Write every op output that exists in full as DIR/opNN.bin (NN = op index).
    #[arg(long, value_name = "DIR")]
    dump: Option<PathBuf>,
}

impl Cmd {
    pub fn run(self) -> anyhow::Result<()> {
        let m = self.model.load()?;
        let model = m.as_model();
        let p = plan(&model, self.config.config()).with_context(|| format!("planning {}", m.name))?;
        let raw = std::fs::read(&self.input).with_context(|| format!("reading {}", self.input.display()))?;
        let t = model.tensor(model.input);
        if raw.len() != t.len() {
            bail!(
                "{} has {} bytes but model {} takes a 1x{}x{}x{} int8 input ({} bytes)",
                self.input.display(),
                raw.len(),
                m.name,
                t.h,
                t.w,
                t.c,
                t.len()
            );
        }
        let input: &[i8] = bytemuck::cast_slice(&raw);
        if let Some(dir) = &self.dump {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut arena = vec![0u8; p.arena_peak_bytes];
        let mut dump_err = None;
        let out = exec::run_observed(&model, &p.exec(), &mut arena, input, |i, bytes| {
            if let (Some(dir), None) = (&self.dump, &dump_err) {
                let path = dir.join(format!("op{i:02}.bin"));
                if let Err(e) = std::fs::write(&path, bytemuck::cast_slice::<i8, u8>(bytes)) {
                    dump_err = Some(anyhow::Error::from(e).context(format!("writing {}", path.display())));
                }
            }
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(e) = dump_err {
            return Err(e);
        }
        std::fs::write(&self.output, bytemuck::cast_slice::<i8, u8>(out))
            .with_context(|| format!("writing {}", self.output.display()))?;
        eprintln!(
            "{}: {} output bytes written to {} (arena {} B, {} MACs planned)",
            m.name,
            out.len(),
            self.output.display(),
            p.arena_peak_bytes,
            p.planned_macs
        );
        Ok(())
    }
}
