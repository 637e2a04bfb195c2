//! Differential tests against TensorFlow Lite for Microcontrollers on models nobody has seen:
//! random int8 CNNs of the supported ops (`tflite::synth::random_cnn`) run on TFLM (the
//! `tflite-micro` package, through `scripts/tflm-run.py`) and on the engine, layer-wise and
//! patched, and every op's output must be the same bytes.

mod common;

use common::run;

use harness::model::ModelBuf;
use harness::plan::{valid_splits, Grid, InputPlacement, PatchConfig};
use patchbench::tflite::{self, synth};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How many random models one run checks.
const MODELS: u64 = 1000;
/// How many of them are checked at every valid config.
const EVERY_CONFIG: u64 = 100;

/// One random model, written for TFLM.
struct Case {
    seed: u64,
    dir: PathBuf,
    model: ModelBuf,
    /// TFLite tensor index of every IR tensor.
    sources: Vec<usize>,
    /// TFLite operator index of every IR op.
    op_sources: Vec<usize>,
    /// Operators of the file folded at import (shape arithmetic).
    folded: usize,
    input: Vec<i8>,
}

impl Case {
    fn new(root: &Path, seed: u64) -> Case {
        let bytes = synth::random_cnn(seed);
        Case::of(root, &format!("random{seed}"), &bytes, seed)
    }

    /// A case of the model in `bytes`, with the random input of `seed`.
    fn of(root: &Path, name: &str, bytes: &[u8], seed: u64) -> Case {
        let (model, sources) = tflite::import_mapped(bytes, name)
            .unwrap_or_else(|e| panic!("{name} (seed {seed}): a model of supported ops was refused: {e}"));
        let (op_sources, sources) = (sources.ops, sources.tensors);
        let folded = op_sources.last().map_or(0, |&last| last + 1 - op_sources.len());
        let m = model.as_model();
        let input = patchbench::models::random_input(&m, seed ^ 0x5eed);
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("model.tflite"), bytes).unwrap();
        std::fs::write(dir.join("input.bin"), bytemuck::cast_slice(&input)).unwrap();
        let tensors: Vec<String> = m.ops.iter().map(|op| sources[usize::from(op.output)].to_string()).collect();
        std::fs::write(dir.join("tensors.txt"), tensors.join("\n")).unwrap();
        Case { seed, dir, model, sources, op_sources, folded, input }
    }

    /// What TFLM wrote for this case: its output and op `op`'s output.
    fn tflm(&self, file: &str) -> Vec<i8> {
        if let Ok(e) = std::fs::read_to_string(self.dir.join("error.txt")) {
            panic!("seed {}: TFLM did not run the model: {e}", self.seed);
        }
        let bytes = std::fs::read(self.dir.join(file)).unwrap_or_else(|e| panic!("seed {}: {file}: {e}", self.seed));
        bytemuck::cast_slice(&bytes).to_vec()
    }

    fn tflm_op(&self, op: usize) -> Vec<i8> {
        self.tflm(&format!("t{}.bin", self.sources[usize::from(self.model.ops[op].output)]))
    }
}

/// Runs TFLM on every case, in one Python process.
fn run_tflm(python: &Path, cases: &[Case]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tflm-run.py");
    let out = Command::new(python).arg(script).args(cases.iter().map(|c| &c.dir)).output().unwrap();
    assert!(out.status.success(), "tflm-run.py failed: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn random_cnns_match_tflm_layerwise_and_patched() {
    let Some(python) = common::tflm_python() else { return };
    let root = tempfile::tempdir().unwrap();
    let cases: Vec<Case> = (0..MODELS).map(|seed| Case::new(root.path(), seed)).collect();
    run_tflm(&python, &cases);
    let (mut ops, mut patched, mut kinds) = (0, 0, BTreeMap::<&str, usize>::new());
    let mut several_outputs = 0;
    for case in &cases {
        let model = case.model.as_model();
        let expected = case.tflm("output.bin");
        let tflm_ops: Vec<Vec<i8>> = (0..model.ops.len()).map(|op| case.tflm_op(op)).collect();
        let (out, outputs) = run(&case.model, PatchConfig::LAYERWISE, &case.input);
        for (op, bytes) in &outputs.0 {
            let kind = model.ops[*op].kind.name();
            let tflm = &tflm_ops[*op];
            if let Some(i) = bytes.iter().zip(tflm).position(|(a, b)| a != b) {
                let t = model.tensor(model.ops[*op].output);
                panic!(
                    "seed {}: op {op} ({kind}, output {}x{}x{}) departs from TFLM at byte {i}: {} != {}",
                    case.seed, t.h, t.w, t.c, bytes[i], tflm[i]
                );
            }
            assert_eq!(bytes.len(), tflm.len(), "seed {}: op {op} ({kind}) size", case.seed);
            *kinds.entry(kind).or_default() += 1;
            let op = &model.ops[*op];
            if kind == "DEPTHWISE_CONV_2D" && model.tensor(op.output).c != model.tensor(op.inputs[0]).c {
                *kinds.entry("DEPTHWISE_CONV_2D (depth multiplier > 1)").or_default() += 1;
            }
            if matches!(op.kind, harness::model::OpKind::Add(_) | harness::model::OpKind::Mul(_)) {
                if op.input_ids().any(|t| model.is_constant(t)) {
                    *kinds.entry("ADD or MUL (constant operand)").or_default() += 1;
                }
                if op.input_ids().any(|t| model.tensor(t).len() != model.tensor(op.output).len()) {
                    *kinds.entry("ADD or MUL (broadcast)").or_default() += 1;
                }
            }
            if kind == "CONCATENATION" && op.input_ids().count() > 2 {
                *kinds.entry("CONCATENATION (3 to 5 inputs)").or_default() += 1;
            }
            if let harness::model::OpKind::Mean(p) = op.kind {
                if p.axes.count_ones() == 1 {
                    *kinds.entry("MEAN (one axis)").or_default() += 1;
                }
            }
            ops += 1;
        }
        assert_eq!(out, expected, "seed {}: output", case.seed);
        several_outputs += usize::from(model.outputs.len() > 1);
        if case.folded > 0 {
            *kinds.entry("SHAPE, STRIDED_SLICE, PACK (folded)").or_default() += 1;
        }
        // Every valid config of the first models (every split, every grid, both input
        // placements in turn); of the others, every split with a random grid and placement.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(case.seed);
        let mut configs = Vec::new();
        for split in valid_splits(&model) {
            let stage_out = model.tensor(model.ops[usize::from(split) - 1].output);
            let placement = |k: u16| if k.is_multiple_of(2) { InputPlacement::Flash } else { InputPlacement::Arena };
            if case.seed < EVERY_CONFIG {
                for (nh, nw) in (1..=stage_out.h).flat_map(|nh| (1..=stage_out.w).map(move |nw| (nh, nw))) {
                    configs.push(PatchConfig { split, grid: Grid::new(nh, nw), input_in: placement(nh + nw) });
                }
            } else {
                let (nh, nw) = (rng.gen_range(1..=stage_out.h), rng.gen_range(1..=stage_out.w));
                configs.push(PatchConfig { split, grid: Grid::new(nh, nw), input_in: placement(rng.gen_range(0..2)) });
            }
        }
        for config in configs {
            let (out, outputs) = run(&case.model, config, &case.input);
            assert_eq!(out, expected, "seed {} {config:?}: output departs from TFLM", case.seed);
            for (op, bytes) in &outputs.0 {
                assert!(*bytes == tflm_ops[*op], "seed {} {config:?}: op {op} departs from TFLM", case.seed);
            }
            patched += 1;
        }
    }
    eprintln!(
        "{MODELS} random CNNs ({several_outputs} with two outputs): {ops} op outputs equal TFLM's layer-wise, {patched} patch configs; ops {kinds:?}"
    );
    // The generator reaches every supported op, and graphs of several outputs.
    let every = ["CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MAX_POOL_2D", "AVERAGE_POOL_2D", "PAD", "RESHAPE", "MEAN"];
    let new = [
        "QUANTIZE",
        "DEQUANTIZE",
        "DEPTHWISE_CONV_2D (depth multiplier > 1)",
        "TRANSPOSE",
        "MEAN (one axis)",
        "MUL",
        "ADD or MUL (constant operand)",
        "ADD or MUL (broadcast)",
        "RESIZE_NEAREST_NEIGHBOR",
        "RELU",
        "RELU6",
        "LEAKY_RELU",
        "MAXIMUM",
        "MINIMUM",
        "REDUCE_MAX",
        "CONCATENATION",
        "PRELU",
        "LOGISTIC",
        "HARD_SWISH",
        "RESIZE_BILINEAR",
        "LOG_SOFTMAX",
        "CONCATENATION (3 to 5 inputs)",
        "SHAPE, STRIDED_SLICE, PACK (folded)",
    ];
    for kind in every.into_iter().chain(new) {
        assert!(kinds.get(kind).is_some_and(|&n| n >= 20), "{kind}: {kinds:?}");
    }
    assert!(kinds["FULLY_CONNECTED"] >= 20 && kinds["SOFTMAX"] >= 20, "{kinds:?}");
    assert!(patched >= MODELS as usize, "{patched} patch configs");
    assert!(several_outputs >= 20, "{several_outputs} models with several outputs");
}

/// `patchbench infer` on random models: `--output` and every `--dump` file, layer-wise and
/// patched, equal TFLM's bytes.
#[test]
fn infer_on_random_cnns_writes_tflms_bytes() {
    let Some(python) = common::tflm_python() else { return };
    let root = tempfile::tempdir().unwrap();
    let mut cases: Vec<Case> = (1000..1008).map(|seed| Case::new(root.path(), seed)).collect();
    // And one with shape arithmetic folded at import: its dumps keep TFLM's operator numbers.
    cases.extend((1008..).map(|seed| Case::new(root.path(), seed)).find(|c| c.folded > 0));
    run_tflm(&python, &cases);
    for case in &cases {
        let model = case.model.as_model();
        let split = valid_splits(&model).last().copied();
        let mut runs = vec![Vec::new()];
        if let Some(split) = split {
            let stage_out = model.tensor(model.ops[usize::from(split) - 1].output);
            let patches = format!("{}x{}", stage_out.h.min(2), stage_out.w.min(3));
            runs.push(vec!["--split".to_string(), split.to_string(), "--patches".into(), patches]);
        }
        for (k, extra) in runs.iter().enumerate() {
            let (out, dump) = (case.dir.join(format!("engine{k}.bin")), case.dir.join(format!("dump{k}")));
            let status = Command::new(env!("CARGO_BIN_EXE_patchbench"))
                .arg("infer")
                .arg("--model")
                .arg(case.dir.join("model.tflite"))
                .arg("--input")
                .arg(case.dir.join("input.bin"))
                .arg("--output")
                .arg(&out)
                .arg("--dump")
                .arg(&dump)
                .args(extra)
                .output()
                .unwrap();
            assert!(status.status.success(), "seed {}: {}", case.seed, String::from_utf8_lossy(&status.stderr));
            let read = |p: PathBuf| -> Vec<i8> { bytemuck::cast_slice(&std::fs::read(p).unwrap()).to_vec() };
            assert_eq!(read(out), case.tflm("output.bin"), "seed {} {extra:?}", case.seed);
            for op in 0..model.ops.len() {
                let file = dump.join(format!("op{:02}.bin", case.op_sources[op]));
                assert!(read(file) == case.tflm_op(op), "seed {} {extra:?}: op{op:02}.bin", case.seed);
            }
        }
    }
}

/// `scripts/tflm-check.sh` on a model of one's own: it passes when patchbench matches TFLM,
/// and names the first op that differs when it does not.
#[test]
fn the_check_script_compares_every_op_with_tflm() {
    let Some(python) = common::tflm_python() else { return };
    let root = tempfile::tempdir().unwrap();
    // A random CNN with a patch stage of at least two ops and 2x2 output pixels.
    let (seed, split) = (2000..)
        .find_map(|seed| {
            let m = tflite::import(&synth::random_cnn(seed), "m").unwrap();
            let model = m.as_model();
            let big = |s: u16| {
                let out = model.tensor(model.ops[usize::from(s) - 1].output);
                s >= 2 && out.h >= 2 && out.w >= 2
            };
            valid_splits(&model).into_iter().find(|&s| big(s)).map(|s| (seed, s))
        })
        .unwrap();
    let model = root.path().join("mine.tflite");
    std::fs::write(&model, synth::random_cnn(seed)).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tflm-check.sh");
    let check = |bin: &Path| {
        Command::new("bash")
            .arg(&script)
            .arg(&model)
            .args(["--seeds", "2", "--split", &split.to_string(), "--patches", "2x2"])
            .env("PATCHBENCH_BIN", bin)
            .env("PATCHBENCH_TFLM_PYTHON", &python)
            .output()
            .unwrap()
    };
    let ok = check(Path::new(env!("CARGO_BIN_EXE_patchbench")));
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{stdout}{}", String::from_utf8_lossy(&ok.stderr));
    assert_eq!(stdout.matches("op outputs and the model output equal TFLM's").count(), 2, "{stdout}");
    // A patchbench whose `infer` writes zeros everywhere: the first op is named.
    let fake = root.path().join("fake-patchbench");
    std::fs::write(
        &fake,
        format!(
            "#!/usr/bin/env bash\ncase $1 in plan|random-input) exec {} \"$@\";; esac\n\
             while [ $# -gt 0 ]; do case $1 in --output) out=$2;; --dump) dump=$2;; esac; shift; done\n\
             mkdir -p \"$dump\"; head -c 4096 /dev/zero > \"$out\"; for i in $(seq -w 0 40); do head -c 4096 /dev/zero > \"$dump/op$i.bin\"; done\n",
            env!("CARGO_BIN_EXE_patchbench")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let wrong = check(&fake);
    assert_eq!(wrong.status.code(), Some(1), "{}", String::from_utf8_lossy(&wrong.stderr));
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(stderr.contains("seed 1: op 0 differs from TFLM"), "{stderr}");
}

/// The deployed models of `../shared/models/mcunet` and `tflm` (float inputs and outputs,
/// squeeze-and-excite blocks, detection heads, a depth multiplier of 8): every op output and
/// every graph output is TFLM's, layer-wise and at patch configs (TinyEngine's among them),
/// for two random inputs each.
#[test]
fn deployed_models_match_tflm_layerwise_and_patched() {
    let Some(python) = common::tflm_python() else { return };
    let Some(models) = common::models_dir() else { return };
    let root = tempfile::tempdir().unwrap();
    // (file, patch configs): TinyEngine's split n (its first n conv layers) is patchbench's
    // split at the n-th CONV_2D or DEPTHWISE_CONV_2D (QUANTIZE and PAD run in the stage).
    let deployed: [(&str, &[PatchConfig]); 4] = [
        (
            "mcunet/mcunet-vww1.tflite",
            &[PatchConfig::new(8, 2, 2), PatchConfig::new(5, 3, 3), PatchConfig::new(13, 4, 4)],
        ),
        ("mcunet/mcunetv2-se-large.tflite", &[PatchConfig::new(12, 4, 4), PatchConfig::new(7, 2, 3)]),
        ("mcunet/mcunet-detection.tflite", &[PatchConfig::new(9, 2, 2), PatchConfig::new(13, 3, 4)]),
        ("tflm/person_detect.tflite", &[PatchConfig::new(6, 3, 3), PatchConfig::new(12, 2, 2)]),
    ];
    let mut cases = Vec::new();
    for (file, _) in &deployed {
        let bytes = std::fs::read(models.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let stem = Path::new(file).file_stem().unwrap().to_string_lossy().into_owned();
        for seed in [1, 2] {
            cases.push(Case::of(root.path(), &format!("{stem}-{seed}"), &bytes, seed));
        }
    }
    run_tflm(&python, &cases);
    let mut compared = 0;
    for (case, (file, configs)) in cases.iter().zip(deployed.iter().flat_map(|d| [d, d])) {
        let model = case.model.as_model();
        let expected = case.tflm("output.bin");
        let tflm_ops: Vec<Vec<i8>> = (0..model.ops.len()).map(|op| case.tflm_op(op)).collect();
        let layerwise = std::iter::once(PatchConfig::LAYERWISE);
        for config in layerwise.chain(configs.iter().copied()) {
            let (out, outputs) = run(&case.model, config, &case.input);
            assert!(out == expected, "{file} seed {} {config:?}: the graph outputs depart from TFLM", case.seed);
            for (op, bytes) in &outputs.0 {
                assert!(*bytes == tflm_ops[*op], "{file} seed {} {config:?}: op {op} departs from TFLM", case.seed);
            }
            if config.split == 0 {
                assert_eq!(outputs.0.len(), model.ops.len(), "{file}: every op output compared");
            }
            compared += 1;
        }
        eprintln!(
            "{file} seed {}: {} ops, {} bytes of graph outputs: TFLM's",
            case.seed,
            model.ops.len(),
            expected.len()
        );
    }
    assert_eq!(compared, 2 * (4 + 3 + 3 + 3), "every model, seed and config");
}
