//! Resolving `--model` arguments into engine models.

use harness::model::ModelBuf;
use harness::zoo;
use std::path::Path;

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelSourceError {
    /// Neither a zoo name nor an existing file.
    #[error("unknown model `{name}`: use a zoo name ({zoo}), random:SEED or a path to a .tflite file")]
    Unknown {
        /// What was asked for.
        name: String,
        /// The zoo names, comma separated.
        zoo: String,
    },
    /// A path to a file that does not exist.
    #[error("{path}: no such file (a model is a zoo name ({zoo}) or a path to a .tflite file)")]
    NoFile {
        /// The path.
        path: String,
        /// The zoo names, comma separated.
        zoo: String,
    },
    /// A path to something that is not a file (a directory, a device).
    #[error("{path} is {what}: give a .tflite file (or a zoo name: {})", zoo_names())]
    NotAFile {
        /// The path.
        path: String,
        /// What it is instead.
        what: &'static str,
    },
    /// A `.tflite` file that could not be imported.
    #[error("{path}: {error}")]
    Import {
        /// The file.
        path: String,
        /// Why (in the message itself, not chained, so it is printed once).
        error: crate::tflite::ImportError,
    },
    /// The model was built but is malformed.
    #[error("model `{name}` is malformed: {error}")]
    Invalid {
        /// Model name.
        name: String,
        /// What is wrong.
        error: harness::ModelError,
    },
}

/// Comma-separated zoo names, for messages.
/// The directory of shared model files (`mlperf-tiny/`, `mcunet/`, `tflm/`):
/// `$PATCHBENCH_MODELS`, else `../shared/models` beside the checkout.
pub fn shared_models_dir() -> std::path::PathBuf {
    std::env::var_os("PATCHBENCH_MODELS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::firmware::workspace_root().join("../shared/models"))
}

pub fn zoo_names() -> String {
    zoo::MODELS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// True for a `--model` value that names no file: a zoo name or `random:SEED`.
pub fn is_builtin(name: &str) -> bool {
    zoo::MODELS.iter().any(|(n, _)| *n == name) || name.starts_with("random:")
}

/// Loads a model by zoo name, `random:SEED` (a random int8 CNN of the differential tests'
/// generator, imported like a file) or `.tflite` path, and validates it.
pub fn load_model(spec: &str) -> Result<ModelBuf, ModelSourceError> {
    load_model_mapped(spec).map(|(m, _)| m)
}

/// [`load_model`], also returning the operator index in the source file of every op (TFLite
/// operator order: folded shape arithmetic leaves gaps; a zoo model's ops are their own).
pub fn load_model_mapped(spec: &str) -> Result<(ModelBuf, Vec<usize>), ModelSourceError> {
    let mapped = |imported: Result<(ModelBuf, crate::tflite::Sources), crate::tflite::ImportError>| {
        imported
            .map(|(m, sources)| (m, Some(sources.ops)))
            .map_err(|error| ModelSourceError::Import { path: spec.to_string(), error })
    };
    let (m, op_sources) = if let Some(m) = zoo::build(spec) {
        (m, None)
    } else if let Some(seed) = spec.strip_prefix("random:") {
        let seed: u64 =
            seed.parse().map_err(|_| ModelSourceError::Unknown { name: spec.to_string(), zoo: zoo_names() })?;
        let (mut m, ops) = mapped(crate::tflite::import_mapped(&crate::tflite::synth::random_cnn(seed), spec))?;
        m.name = spec.replace(':', "-");
        (m, ops)
    } else if Path::new(spec).exists() && !Path::new(spec).is_file() {
        let what = if Path::new(spec).is_dir() { "a directory" } else { "not a regular file" };
        return Err(ModelSourceError::NotAFile { path: spec.to_string(), what });
    } else if Path::new(spec).is_file() {
        mapped(crate::tflite::import_file_mapped(Path::new(spec)))?
    } else if spec.ends_with(".tflite") || spec.contains(std::path::MAIN_SEPARATOR) {
        return Err(ModelSourceError::NoFile { path: spec.to_string(), zoo: zoo_names() });
    } else {
        return Err(ModelSourceError::Unknown { name: spec.to_string(), zoo: zoo_names() });
    };
    m.as_model().validate().map_err(|error| ModelSourceError::Invalid { name: m.name.clone(), error })?;
    let op_sources = op_sources.unwrap_or_else(|| (0..m.ops.len()).collect());
    Ok((m, op_sources))
}

/// Longest model name: it lands in file names of figures, CSV cells and run ids.
pub const MAX_NAME: usize = 80;

/// A model name made from a file stem (or any text) that is safe wherever names land:
/// generated Rust sources, figure file names, CSV cells a spreadsheet opens, shell lines.
/// Letters, digits, `.`, `-` and `_` are kept; anything else (newlines, quotes, `$`, `;`,
/// `,`, `/`, non-ASCII) becomes `_`; a first character a spreadsheet or a shell would take
/// for an operator or an option (`-`, `.`) becomes `_`; at most [`MAX_NAME`] characters;
/// `model` when nothing is left.
pub fn safe_name(text: &str) -> String {
    let mut name: String = text
        .chars()
        .take(MAX_NAME)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .collect();
    if name.starts_with(['-', '.']) {
        name.replace_range(..1, "_");
    }
    if name.is_empty() {
        name = "model".into();
    }
    name
}

/// A random input for `model`, the same for the same `seed`: raw bytes in the input's element
/// type. int8 and uint8 inputs take every byte value; a float input takes values spread over
/// the range its QUANTIZE can represent (and a little beyond, to exercise clamping), so that
/// the int8 inside sees every level; without a QUANTIZE reading it, values in [-1, 1].
pub fn random_input(model: &harness::Model, seed: u64) -> Vec<i8> {
    use harness::model::{DType, OpKind};
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let input = model.tensor(model.input);
    match input.dtype {
        DType::I8 | DType::U8 => (0..input.len()).map(|_| rng.gen()).collect(),
        DType::F32 => {
            let quantize =
                model.ops.iter().find(|op| matches!(op.kind, OpKind::Quantize(_)) && op.inputs[0] == model.input);
            let (lo, hi) = quantize.map_or((-1.0, 1.0), |op| {
                let q = model.tensor(op.output);
                let real = |v: i32| (v - q.zero_point) as f32 * q.scale;
                (real(-132), real(131))
            });
            (0..input.len()).flat_map(|_| rng.gen_range(lo..=hi).to_le_bytes()).map(|b| b as i8).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_for_sources_files_cells_and_shells() {
        for (stem, want) in [
            ("vww_96_int8", "vww_96_int8"),
            ("mbv2-w0.35-r144", "mbv2-w0.35-r144"),
            ("new\nline", "new_line"),
            ("$(touch PWNED)`id`;x", "__touch_PWNED__id__x"),
            ("=cmd|calc!A0", "_cmd_calc_A0"),
            ("-rf", "_rf"),
            (".hidden", "_hidden"),
            ("a,b", "a_b"),
            ("", "model"),
            ("mödel", "m_del"),
        ] {
            assert_eq!(safe_name(stem), want, "{stem:?}");
        }
        assert_eq!(safe_name(&"x".repeat(500)).len(), MAX_NAME);
        // Nothing a spreadsheet takes for a formula.
        assert!(!safe_name("+1").starts_with(['=', '+', '-', '@']));
    }

    #[test]
    fn paths_that_are_not_files_say_what_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let e = load_model(dir.path().to_str().unwrap()).unwrap_err().to_string();
        assert!(e.contains("is a directory") && e.contains("tiny"), "{e}");
        if Path::new("/dev/null").exists() {
            let e = load_model("/dev/null").unwrap_err().to_string();
            assert!(e.contains("not a regular file"), "{e}");
        }
        let e = load_model("nope.tflite").unwrap_err().to_string();
        assert!(e.contains("no such file"), "{e}");
        assert!(load_model("random:x").unwrap_err().to_string().contains("random:SEED"));
    }
}
