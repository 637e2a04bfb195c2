//! Shared by the integration tests: where the real models and TFLM are, and a traced run.

use harness::exec::{self, Trace};
use harness::model::ModelBuf;
use harness::plan::{plan, PatchConfig};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

/// Every op output that exists in full, by op index.
#[allow(dead_code)] // Not every test binary that includes `common` traces runs.
#[derive(Default)]
pub struct Outputs(pub BTreeMap<usize, Vec<i8>>);

impl Trace for Outputs {
    fn full(&mut self, op: usize, output: &[i8]) {
        self.0.insert(op, output.to_vec());
    }
}

/// Runs `m` under `config` on `input` in an arena of junk bytes: its output and every op
/// output that exists in full.
#[allow(dead_code)] // Not every test binary that includes `common` traces runs.
pub fn run(m: &ModelBuf, config: PatchConfig, input: &[i8]) -> (Vec<i8>, Outputs) {
    let model = m.as_model();
    let p = plan(&model, config).unwrap_or_else(|e| panic!("{} {config:?}: {e}", m.name));
    let mut arena = vec![0x5au8; p.arena_peak_bytes];
    let mut outputs = Outputs::default();
    let out = exec::run_traced(&model, &p.exec(), &mut arena, input, &mut outputs).unwrap().concat();
    (out, outputs)
}

/// Directory holding `mlperf-tiny/`: `$PATCHBENCH_MODELS`, else `../shared/models` beside the
/// checkout. `None` (after saying so on the terminal) when neither exists, unless
/// `PATCHBENCH_REQUIRE_MODELS` is set (as in CI), which makes their absence a failure.
#[allow(dead_code)] // Not every test binary that includes `common` reads the models.
pub fn models_dir() -> Option<PathBuf> {
    let dir = patchbench::models::shared_models_dir();
    if dir.join("mlperf-tiny").is_dir() {
        return Some(dir);
    }
    let why = match std::env::var_os("PATCHBENCH_MODELS") {
        Some(_) => format!("PATCHBENCH_MODELS={} has no mlperf-tiny/ directory", dir.display()),
        None => format!("PATCHBENCH_MODELS is not set and {} does not exist", dir.display()),
    };
    assert!(std::env::var_os("PATCHBENCH_REQUIRE_MODELS").is_none(), "the real models are required: {why}");
    // Straight to the terminal: the test harness captures `eprintln!` of passing tests.
    let _ = writeln!(std::io::stderr(), "SKIPPED (no models): {why}; point PATCHBENCH_MODELS at shared/models");
    None
}

/// A Python that runs TensorFlow Lite for Microcontrollers (`tflite_micro`):
/// `$PATCHBENCH_TFLM_PYTHON`, else the venv `scripts/setup-tflm.sh` makes in
/// `target/tflm-venv`. `None` (after saying so) when there is none, unless
/// `PATCHBENCH_REQUIRE_TFLM` is set (as in CI), which makes its absence a failure.
#[allow(dead_code)] // Not every test binary that includes `common` runs TFLM.
pub fn tflm_python() -> Option<PathBuf> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tflm-venv/bin/python");
    let python = std::env::var_os("PATCHBENCH_TFLM_PYTHON").map_or(venv, PathBuf::from);
    let works = std::process::Command::new(&python)
        .args(["-c", "import tflite_micro"])
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return Some(python);
    }
    let why = format!("{} cannot import tflite_micro", python.display());
    assert!(std::env::var_os("PATCHBENCH_REQUIRE_TFLM").is_none(), "TFLM is required: {why}");
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED (no TFLM): {why}; run scripts/setup-tflm.sh or set PATCHBENCH_TFLM_PYTHON"
    );
    None
}
