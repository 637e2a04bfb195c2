//! Resolving `--model` arguments into engine models.

use harness::model::ModelBuf;
use harness::zoo;
use std::path::Path;

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelSourceError {
    /// Neither a zoo name nor an existing file.
    #[error("unknown model `{name}`: use a zoo name ({zoo}) or a path to a .tflite file")]
    Unknown {
        /// What was asked for.
        name: String,
        /// The zoo names, comma separated.
        zoo: String,
    },
    /// A `.tflite` file that could not be imported.
    #[error("{path}: {source}")]
    Import {
        /// The file.
        path: String,
        /// Why.
        source: crate::tflite::ImportError,
    },
    /// The model was built but is malformed.
    #[error("model `{name}` is malformed: {source}")]
    Invalid {
        /// Model name.
        name: String,
        /// What is wrong.
        source: harness::ModelError,
    },
}

/// Comma-separated zoo names, for messages.
pub fn zoo_names() -> String {
    zoo::MODELS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// Loads a model by zoo name or `.tflite` path and validates it.
pub fn load_model(spec: &str) -> Result<ModelBuf, ModelSourceError> {
    let m = if let Some(m) = zoo::build(spec) {
        m
    } else if Path::new(spec).is_file() {
        crate::tflite::import_file(Path::new(spec))
            .map_err(|source| ModelSourceError::Import { path: spec.to_string(), source })?
    } else {
        return Err(ModelSourceError::Unknown { name: spec.to_string(), zoo: zoo_names() });
    };
    m.as_model().validate().map_err(|source| ModelSourceError::Invalid { name: m.name.clone(), source })?;
    Ok(m)
}
