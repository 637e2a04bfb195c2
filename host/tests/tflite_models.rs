//! Oracle 1 on real models: the three MLPerf Tiny CNNs, imported from their `.tflite` files,
//! reproduce TFLite Micro's bytes (outputs, logits, every layer), and patch-based execution
//! reproduces layer-wise execution for every valid split. The models and TFLM's reference
//! outputs come from `$PATCHBENCH_MODELS` or `../shared/models` (see `common`).

mod common;

use harness::exec::{self, Trace};
use harness::model::ModelBuf;
use harness::plan::{plan, valid_splits, InputPlacement, PatchConfig, Region};
use patchbench::tflite;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    tflite::import_mapped(&bytes, name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every op output that exists in full, by op index.
#[derive(Default)]
struct Outputs(BTreeMap<usize, Vec<i8>>);

impl Trace for Outputs {
    fn full(&mut self, op: usize, output: &[i8]) {
        self.0.insert(op, output.to_vec());
    }
}

fn run(m: &ModelBuf, config: PatchConfig, input: &[i8]) -> (Vec<i8>, Outputs) {
    let model = m.as_model();
    let p = plan(&model, config).unwrap_or_else(|e| panic!("{} {config:?}: {e}", m.name));
    let mut arena = vec![0x5au8; p.arena_peak_bytes];
    let mut outputs = Outputs::default();
    let out = exec::run_traced(&model, &p.exec(), &mut arena, input, &mut outputs).unwrap().to_vec();
    (out, outputs)
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

/// Patch grids tried at a split whose stage output is `h x w`: every grid when the stage
/// output has at most `every_up_to` pixels, else one, two, three and the most patches per
/// axis (one-pixel patches, the largest halo overhead) in every combination.
fn grids(h: u16, w: u16, every_up_to: usize) -> Vec<(u16, u16)> {
    let per_axis = |n: u16| -> Vec<u16> {
        if usize::from(h) * usize::from(w) <= every_up_to {
            return (1..=n).collect();
        }
        let mut v: Vec<u16> = [1, 2, 3, n].into_iter().filter(|&k| k <= n).collect();
        v.dedup();
        v
    };
    let (rows, cols) = (per_axis(h), per_axis(w));
    rows.iter().flat_map(|&nh| cols.iter().map(move |&nw| (nh, nw))).collect()
}

/// Patch execution of `name` equals layer-wise at every valid split, for the [`grids`],
/// alternating the input placement; every op output that exists in full is compared.
/// Returns the valid splits.
fn patches_match_layerwise(name: &str, every_up_to: usize) -> Vec<u16> {
    let Some(dir) = common::models_dir() else { return Vec::new() };
    let (m, _) = import(&dir, name);
    let model = m.as_model();
    let input = read(&reference_dir(&dir).join(format!("{name}.seed2.input.bin")));
    let (reference, layerwise) = run(&m, PatchConfig::LAYERWISE, &input);
    let splits = valid_splits(&model);
    assert!(!splits.is_empty(), "{name}");
    for &split in &splits {
        let stage_out = model.tensor(model.ops[usize::from(split) - 1].output);
        for (k, (nh, nw)) in grids(stage_out.h, stage_out.w, every_up_to).into_iter().enumerate() {
            let input_in = if k % 2 == 0 { InputPlacement::Flash } else { InputPlacement::Arena };
            let config = PatchConfig { split, nh, nw, input_in };
            let (out, outputs) = run(&m, config, &input);
            assert_eq!(out, reference, "{name} {config:?}: output");
            for (op, bytes) in &outputs.0 {
                assert!(*bytes == layerwise.0[op], "{name} {config:?}: op {op} differs from layer-wise");
            }
        }
    }
    splits
}

#[test]
fn vww_patches_match_layerwise_at_every_valid_split() {
    patches_match_layerwise("vww_96_int8", 0);
}

#[test]
fn resnet8_patches_match_layerwise_at_every_valid_split_and_every_grid_up_to_16x16() {
    let splits = patches_match_layerwise("pretrainedResnet_quant", 16 * 16);
    if !splits.is_empty() {
        // Residual ADDs inside the stage: splits after each block, none inside one.
        assert_eq!(splits, [1, 4, 8, 12, 13]);
    }
}

#[test]
fn dscnn_patches_match_layerwise_at_every_valid_split_and_every_grid() {
    patches_match_layerwise("kws_ref_model", usize::MAX);
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
