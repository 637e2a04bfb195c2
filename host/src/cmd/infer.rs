//! `patchbench infer`: run the engine on the host.

use super::{ConfigArgs, ModelArgs};
use anyhow::{bail, Context};
use harness::exec;
use harness::model::{Model, Tensor};
use harness::plan::{plan, PatchConfig, Plan, Region};
use std::path::{Path, PathBuf};

#[derive(clap::Parser)]
pub struct Cmd {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    config: ConfigArgs,
    /// The input tensor's raw bytes, NHWC order, in the model input's type (int8, uint8, or
    /// little-endian float32 for a model that starts with QUANTIZE).
    #[arg(long)]
    input: PathBuf,
    /// Where to write the graph outputs: their raw bytes one after another, in the graph's
    /// order, each in its own type (int8, or little-endian float32 after a DEQUANTIZE).
    #[arg(long)]
    output: PathBuf,
    /// Write every op's output as DIR/opNN.bin (NN = the operator's index in the .tflite file;
    /// shape arithmetic folded at import has none). Inside a patch stage, an op's output is
    /// put together from the tiles the patches computed.
    #[arg(long, value_name = "DIR")]
    dump: Option<PathBuf>,
}

impl Cmd {
    pub fn run(self) -> anyhow::Result<()> {
        let (m, op_sources) = patchbench::models::load_model_mapped(&self.model.model)?;
        let model = m.as_model();
        let p = self.config.plan(&model).with_context(|| format!("planning {}", m.name))?;
        let raw = std::fs::read(&self.input).with_context(|| format!("reading {}", self.input.display()))?;
        let t = model.tensor(model.input);
        if raw.len() != t.bytes() {
            bail!(
                "{} has {} bytes but model {} takes a 1x{}x{}x{} {} input ({} bytes)",
                self.input.display(),
                raw.len(),
                m.name,
                t.h,
                t.w,
                t.c,
                t.dtype.name(),
                t.bytes()
            );
        }
        let input: &[i8] = bytemuck::cast_slice(&raw);
        if let Some(dir) = &self.dump {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut arena = patchbench::runner::host_buffer(p.arena_peak_bytes, "the arena")?;
        let mut dumps = Dumps::new(&model, &p);
        let out = exec::run_traced(&model, &p.exec(), &mut arena, input, &mut dumps)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .concat();
        if let Some(dir) = &self.dump {
            dumps.fill_uncomputed(&model, input)?;
            dumps.write(dir, &op_sources)?;
        }
        std::fs::write(&self.output, bytemuck::cast_slice::<i8, u8>(&out))
            .with_context(|| format!("writing {}", self.output.display()))?;
        let shapes: Vec<String> = model
            .outputs
            .iter()
            .map(|&o| {
                let t = model.tensor(o);
                format!("1x{}x{}x{} {}", t.h, t.w, t.c, t.dtype.name())
            })
            .collect();
        eprintln!(
            "{}: {} output bytes ({}) written to {} (arena {} B, {} MACs planned)",
            m.name,
            out.len(),
            shapes.join(" + "),
            self.output.display(),
            p.arena_peak_bytes,
            p.planned_macs
        );
        Ok(())
    }
}

/// Op outputs collected for `--dump`: whole tensors, and the stage ops' outputs assembled
/// from their tiles (with a mask of the pixels some patch computed).
struct Dumps {
    /// Bytes per pixel and width of each op's output.
    shapes: Vec<(usize, usize)>,
    outputs: Vec<Option<Vec<i8>>>,
    computed: Vec<Vec<bool>>,
}

impl exec::Trace for Dumps {
    fn full(&mut self, op: usize, bytes: &[i8]) {
        self.outputs[op] = Some(bytes.to_vec());
    }

    fn tile(&mut self, op: usize, region: Region, bytes: &[i8]) {
        let (c, w) = self.shapes[op];
        let (Some(out), Some(mask)) = (self.outputs[op].as_mut(), self.computed.get_mut(op)) else { return };
        let row = usize::from(region.w) * c;
        for (dy, src) in bytes.chunks_exact(row).enumerate() {
            let (y, x0) = (usize::from(region.y0) + dy, usize::from(region.x0));
            out[(y * w + x0) * c..][..row].copy_from_slice(src);
            mask[y * w + x0..][..usize::from(region.w)].fill(true);
        }
    }
}

impl Dumps {
    fn new(model: &Model, p: &Plan) -> Self {
        // Ops whose outputs exist only as tiles: every stage op but the last of its stage.
        let tiled = |i: usize| p.stage_of(i).is_some_and(|s| i + 1 < usize::from(s.end));
        let outs: Vec<&Tensor> = model.ops.iter().map(|op| model.tensor(op.output)).collect();
        let outputs = outs.iter().enumerate().map(|(i, t)| tiled(i).then(|| vec![0i8; t.bytes()])).collect();
        let computed = outs
            .iter()
            .enumerate()
            .map(|(i, t)| if tiled(i) { vec![false; usize::from(t.h) * usize::from(t.w)] } else { Vec::new() })
            .collect();
        let shapes = outs.iter().map(|t| (t.pixel_bytes(), usize::from(t.w))).collect();
        Dumps { shapes, outputs, computed }
    }

    /// Pixels of a stage op that no patch computed (no later op reads them: a VALID window
    /// or a stride drops them) are taken from a layer-wise run, so every dump holds the op's
    /// whole output as TFLM writes it.
    fn fill_uncomputed(&mut self, model: &Model, input: &[i8]) -> anyhow::Result<()> {
        if self.computed.iter().all(|m| m.iter().all(|&c| c)) {
            return Ok(());
        }
        let p = plan(model, PatchConfig::LAYERWISE)?;
        let mut arena = patchbench::runner::host_buffer(p.arena_peak_bytes, "the layer-wise arena")?;
        let mut layerwise = Dumps::new(model, &p);
        exec::run_traced(model, &p.exec(), &mut arena, input, &mut layerwise).map_err(|e| anyhow::anyhow!("{e}"))?;
        for (op, mask) in self.computed.iter().enumerate() {
            let c = self.shapes[op].0;
            let (Some(out), Some(full)) = (self.outputs[op].as_mut(), layerwise.outputs[op].as_ref()) else { continue };
            for (pixel, _) in mask.iter().enumerate().filter(|(_, &done)| !done) {
                out[pixel * c..][..c].copy_from_slice(&full[pixel * c..][..c]);
            }
        }
        Ok(())
    }

    /// Writes op `i`'s output as `opNN.bin`, NN = `op_sources[i]`, its operator index in the
    /// source file.
    fn write(&self, dir: &Path, op_sources: &[usize]) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (i, out) in self.outputs.iter().enumerate() {
            let Some(bytes) = out else { continue };
            let path = dir.join(format!("op{:02}.bin", op_sources[i]));
            std::fs::write(&path, bytemuck::cast_slice::<i8, u8>(bytes))
                .with_context(|| format!("writing {}", path.display()))?;
            let missing = self.computed.get(i).map_or(0, |m| m.iter().filter(|&&c| !c).count());
            if missing > 0 {
                eprintln!(
                    "note: op {}: no later op reads {missing} of its output pixels, so no patch computed them; {} has them from a layer-wise run",
                    op_sources[i],
                    path.display()
                );
            }
        }
        Ok(())
    }
}
