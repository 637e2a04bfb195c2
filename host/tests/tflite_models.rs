//! Oracles 1 and 2 on real models: the three MLPerf Tiny CNNs, imported from their `.tflite`
//! files, reproduce TFLite Micro's bytes (outputs, logits, every layer), and patch-based
//! execution reproduces layer-wise execution for every valid config. The models and TFLM's
//! reference outputs come from `$PATCHBENCH_MODELS` or `../shared/models` (see `common`).

mod common;

use common::{run, Outputs};

use harness::exec::{self, Trace};
use harness::model::{Model, ModelBuf};
use harness::plan::{plan, valid_splits, Grid, InputPlacement, PatchConfig, Region};
use patchbench::tflite;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

const MODELS: [&str; 3] = ["vww_96_int8", "pretrainedResnet_quant", "kws_ref_model"];

#[derive(Deserialize)]
struct Reference {
    model: String,
    seed: u32,
    input_file: String,
    output_file: String,
    logits_file: String,
    logits_tensor_index: usize,
}

#[derive(Deserialize)]
struct Layer {
    op: usize,
    tensor: usize,
    file: String,
}

fn read(path: &Path) -> Vec<i8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytemuck::cast_slice(&bytes).to_vec()
}

fn import(dir: &Path, name: &str) -> (ModelBuf, Vec<usize>) {
    let path = dir.join("mlperf-tiny").join(format!("{name}.tflite"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (model, sources) = tflite::import_mapped(&bytes, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    (model, sources.tensors)
}

fn reference_dir(dir: &Path) -> PathBuf {
    dir.join("mlperf-tiny/reference")
}

#[test]
fn outputs_and_logits_match_tflm_for_every_reference_input() {
    let Some(dir) = common::models_dir() else { return };
    let refs = reference_dir(&dir);
    let index: Vec<Reference> = serde_json::from_slice(&std::fs::read(refs.join("index.json")).unwrap()).unwrap();
    for name in MODELS {
        assert!(index.iter().any(|r| r.model == format!("{name}.tflite")), "{name} has no reference in index.json");
    }
    for r in &index {
        let (m, sources) = import(&dir, r.model.trim_end_matches(".tflite"));
        let (out, outputs) = run(&m, PatchConfig::LAYERWISE, &read(&refs.join(&r.input_file)));
        assert_eq!(out, read(&refs.join(&r.output_file)), "{} seed {}: output", r.model, r.seed);
        let logits_op = m.ops.iter().position(|op| sources[usize::from(op.output)] == r.logits_tensor_index);
        let logits_op =
            logits_op.unwrap_or_else(|| panic!("{}: no op writes tensor {}", r.model, r.logits_tensor_index));
        assert_eq!(outputs.0[&logits_op], read(&refs.join(&r.logits_file)), "{} seed {}: logits", r.model, r.seed);
    }
}

#[test]
fn every_layer_matches_tflm() {
    let Some(dir) = common::models_dir() else { return };
    let refs = reference_dir(&dir);
    let index: BTreeMap<String, Vec<Layer>> =
        serde_json::from_slice(&std::fs::read(refs.join("layers/index.json")).unwrap()).unwrap();
    for name in MODELS {
        let layers = &index[&format!("{name}.tflite")];
        let (m, sources) = import(&dir, name);
        assert_eq!(layers.len(), m.ops.len(), "{name}: one dump per TFLite operator");
        let (_, outputs) = run(&m, PatchConfig::LAYERWISE, &read(&refs.join(format!("{name}.seed1.input.bin"))));
        for l in layers {
            assert_eq!(sources[usize::from(m.ops[l.op].output)], l.tensor, "{name} op {}: output tensor", l.op);
            let expected = read(&refs.join("layers").join(&l.file));
            assert!(
                outputs.0[&l.op] == expected,
                "{name}: op {} ({}) departs from TFLM",
                l.op,
                m.ops[l.op].kind.name()
            );
        }
    }
}

/// Compares, as they are produced, every op output that exists in full and every tile a
/// patch computes with the same pixels of layer-wise's outputs.
struct SameAs<'a> {
    model: &'a Model<'a>,
    layerwise: &'a Outputs,
    full: usize,
    tiles: usize,
    first_difference: Option<(usize, Option<Region>)>,
}

impl Trace for SameAs<'_> {
    fn full(&mut self, op: usize, output: &[i8]) {
        self.full += 1;
        if self.first_difference.is_none() && self.layerwise.0[&op] != output {
            self.first_difference = Some((op, None));
        }
    }

    fn tile(&mut self, op: usize, r: Region, pixels: &[i8]) {
        self.tiles += 1;
        let t = self.model.tensor(self.model.ops[op].output);
        let (w, c) = (usize::from(t.w), usize::from(t.c));
        let row = usize::from(r.w) * c;
        let same = (0..usize::from(r.h)).all(|y| {
            let at = ((usize::from(r.y0) + y) * w + usize::from(r.x0)) * c;
            pixels[y * row..(y + 1) * row] == self.layerwise.0[&op][at..at + row]
        });
        if !same && self.first_difference.is_none() {
            self.first_difference = Some((op, Some(r)));
        }
    }
}

/// Oracle 2 on `name`: patch execution equals layer-wise execution for every valid config:
/// every split, every grid from 1x1 to one-pixel patches, the input in flash and in the
/// arena (alternating by grid, so each split sees both). Every op output that exists in full
/// is compared, not only the model output. Runs on every core; returns the configs checked.
fn patches_match_layerwise(name: &str) -> usize {
    let Some(dir) = common::models_dir() else { return 0 };
    let (m, _) = import(&dir, name);
    let model = m.as_model();
    let input = read(&reference_dir(&dir).join(format!("{name}.seed2.input.bin")));
    let (reference, layerwise) = run(&m, PatchConfig::LAYERWISE, &input);
    let mut configs = Vec::new();
    for split in valid_splits(&model) {
        let stage_out = model.tensor(model.ops[usize::from(split) - 1].output);
        for nh in 1..=stage_out.h {
            for nw in 1..=stage_out.w {
                let input_in = if (nh + nw) % 2 == 0 { InputPlacement::Flash } else { InputPlacement::Arena };
                configs.push(PatchConfig { split, grid: Grid::new(nh, nw), input_in });
            }
        }
    }
    assert!(!configs.is_empty(), "{name} has no valid split");
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while let Some(&config) = configs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let p = plan(&model, config).unwrap_or_else(|e| panic!("{name} {config:?}: {e}"));
                    let mut arena = vec![0x5au8; p.arena_peak_bytes];
                    let mut same =
                        SameAs { model: &model, layerwise: &layerwise, full: 0, tiles: 0, first_difference: None };
                    let out = exec::run_traced(&model, &p.exec(), &mut arena, &input, &mut same).unwrap();
                    assert!(out.concat() == reference, "{name} {config:?}: output differs from layer-wise");
                    if let Some((op, tile)) = same.first_difference {
                        panic!("{name} {config:?}: op {op} (tile {tile:?}) differs from layer-wise");
                    }
                    // The stage's last op and every later op exist in full; the other stage ops
                    // as one tile per patch (a 1x1 grid is planned as layer-wise: no stage).
                    let tiled: usize = p.stages.iter().map(|s| (s.ops() - 1) * usize::from(s.patches)).sum();
                    let tiled_ops: usize = p.stages.iter().map(|s| s.ops() - 1).sum();
                    assert_eq!(same.full, m.ops.len() - tiled_ops, "{name} {config:?}");
                    assert_eq!(same.tiles, tiled, "{name} {config:?}");
                }
            });
        }
    });
    eprintln!("{name}: {} patch configs equal layer-wise, every tile and every full op output", configs.len());
    configs.len()
}

#[test]
fn vww_patches_match_layerwise_for_every_valid_config() {
    let n = patches_match_layerwise("vww_96_int8");
    assert!(n == 0 || n == 10_262, "{n} configs");
}

#[test]
fn resnet8_patches_match_layerwise_for_every_valid_config() {
    let Some(dir) = common::models_dir() else { return };
    // Residual ADDs inside the stage: splits after each block, none inside one (13 and 14:
    // after the global AVERAGE_POOL_2D and its shape-keeping RESHAPE).
    assert_eq!(valid_splits(&import(&dir, "pretrainedResnet_quant").0.as_model()), [1, 4, 8, 12, 13, 14]);
    patches_match_layerwise("pretrainedResnet_quant");
}

#[test]
fn dscnn_patches_match_layerwise_for_every_valid_config() {
    patches_match_layerwise("kws_ref_model");
}

#[test]
fn infer_dumps_every_layer_from_patch_tiles() {
    let Some(dir) = common::models_dir() else { return };
    let refs = reference_dir(&dir);
    let out = tempfile::tempdir().unwrap();
    // DS-CNN with its first five ops in a 5x2 patch stage: ops 0-3 exist only as tiles.
    let name = "kws_ref_model";
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_patchbench"))
        .args(["infer", "--model"])
        .arg(dir.join(format!("mlperf-tiny/{name}.tflite")))
        .arg("--input")
        .arg(refs.join(format!("{name}.seed1.input.bin")))
        .arg("--output")
        .arg(out.path().join("out.bin"))
        .arg("--dump")
        .arg(out.path().join("dump"))
        .args(["--split", "5", "--patches", "5x2", "--input-in", "arena"])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(read(&out.path().join("out.bin")), read(&refs.join(format!("{name}.seed1.output.bin"))));
    for op in 0..13 {
        let file = format!("op{op:02}.bin");
        let expected = read(&refs.join("layers").join(format!("{name}.seed1.{file}")));
        assert!(read(&out.path().join("dump").join(&file)) == expected, "{name} patched dump {file} differs from TFLM");
    }
}

#[test]
fn region_type_is_shared_with_the_engine() {
    // The tile callback hands out plan regions; a stage op's tile lies inside its tensor.
    let Some(dir) = common::models_dir() else { return };
    let (m, _) = import(&dir, "pretrainedResnet_quant");
    struct Tiles(Vec<(usize, Region)>);
    impl Trace for Tiles {
        fn tile(&mut self, op: usize, region: Region, pixels: &[i8]) {
            assert!(!pixels.is_empty());
            self.0.push((op, region));
        }
    }
    let model = m.as_model();
    let p = plan(&model, PatchConfig::new(4, 2, 2)).unwrap();
    let mut arena = vec![0u8; p.arena_peak_bytes];
    let mut tiles = Tiles(Vec::new());
    exec::run_traced(&model, &p.exec(), &mut arena, &vec![0; 3072], &mut tiles).unwrap();
    assert_eq!(tiles.0.len(), 4 * 3, "ops 0-2 of the stage, four patches each");
    for (op, r) in tiles.0 {
        let t = model.tensor(model.ops[op].output);
        assert!(Region::full(t).contains(&r), "op {op}: {r:?}");
    }
}

#[test]
fn plan_reports_the_input_placement_and_the_arena_of_an_imported_model() {
    let Some(dir) = common::models_dir() else { return };
    let path = dir.join("mlperf-tiny/vww_96_int8.tflite");
    let (m, _) = import(&dir, "vww_96_int8");
    for (placement, input_in) in [("flash", InputPlacement::Flash), ("arena", InputPlacement::Arena)] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_patchbench"))
            .args(["plan", "--json", "--input-in", placement, "--model"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["input_in"], placement);
        let expected = plan(&m.as_model(), PatchConfig { input_in, ..PatchConfig::LAYERWISE }).unwrap();
        assert_eq!(json["arena_peak_bytes"], expected.arena_peak_bytes);
        assert_eq!(json["ops"].as_array().unwrap().len(), 31, "one line per TFLite operator");
    }
}

#[test]
fn the_layerwise_plan_lists_the_best_patch_configs_with_their_planned_arenas() {
    let Some(dir) = common::models_dir() else { return };
    for name in MODELS {
        let (m, _) = import(&dir, name);
        let model = m.as_model();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_patchbench"))
            .args(["plan", "--model"])
            .arg(dir.join(format!("mlperf-tiny/{name}.tflite")))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        let layerwise = plan(&model, PatchConfig::LAYERWISE).unwrap();
        let best: Vec<&str> = text.lines().skip_while(|l| !l.starts_with("best patch configs (")).skip(2).collect();
        // Every listed config is what `plan` gives it, needs less than layer-wise, and the
        // list goes from the largest arena (least overhead) down.
        let mut last = (layerwise.arena_peak_bytes, -1.0);
        for line in &best {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (nh, nw) = f[1].split_once('x').unwrap();
            let config = PatchConfig::new(f[0].parse().unwrap(), nh.parse().unwrap(), nw.parse().unwrap());
            let p = plan(&model, config).unwrap();
            assert_eq!(f[2].replace(',', "").parse::<usize>().unwrap(), p.arena_peak_bytes, "{name}: {line}");
            let overhead: f64 = f[4].parse().unwrap();
            assert!((overhead - p.recompute_overhead_pct).abs() < 0.01, "{name}: {line}");
            assert!(p.arena_peak_bytes < last.0 && overhead > last.1, "{name}: {line} after {last:?}");
            last = (p.arena_peak_bytes, overhead);
        }
        assert!(!best.is_empty(), "{name}:\n{text}");
        if name == "kws_ref_model" {
            // DS-CNN's stage outputs are as large as its layer-wise arena: square grids never
            // help, only a tall grid of a short stage saves a few percent, at a high price.
            let saved = 1.0 - last.0 as f64 / layerwise.arena_peak_bytes as f64;
            assert!(saved < 0.1, "{text}");
            assert!(
                best.iter().all(|l| {
                    let grid = l.split_whitespace().nth(1).unwrap();
                    grid.split_once('x').is_some_and(|(h, w)| h != w)
                }),
                "{text}"
            );
        }
    }
}

#[test]
fn damaged_real_models_are_refused_or_valid_never_a_panic() {
    use rand::{Rng, SeedableRng};
    let Some(dir) = common::models_dir() else { return };
    let good = std::fs::read(dir.join("mlperf-tiny/kws_ref_model.tflite")).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut refused = 0;
    for _ in 0..1500 {
        let mut bytes = good.clone();
        // Damage the flatbuffer's tables and vectors (the first few KB), not only weights.
        let span = if rng.gen_bool(0.5) { 4096.min(bytes.len()) } else { bytes.len() };
        for _ in 0..rng.gen_range(1..6) {
            let i = rng.gen_range(8..span);
            bytes[i] = rng.gen();
        }
        match tflite::import(&bytes, "damaged") {
            Ok(m) => assert!(m.as_model().validate().is_ok()),
            Err(e) => {
                assert!(!e.to_string().is_empty());
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "no damaged file was refused");
}
