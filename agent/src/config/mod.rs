//! The YAML configuration: the public contract (see README "Configuration").
//!
//! Loading goes: read file → `${VAR}` interpolation → `SLUICE__A__B` env overrides →
//! typed deserialization (unknown keys rejected, full key paths in errors) → semantic
//! validation (URLs, files, names). Every failure is a [`ConfigError`] naming the key.

mod env;
mod model;
mod validate;

use std::path::{Path, PathBuf};

pub use model::*;
pub use validate::{BatchLimits, RegistrySettings, Validated};

/// A configuration problem: which key, what is wrong, how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// Full path of the key, e.g. `source.postgres.url` (or the file for I/O problems).
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Loads and validates a config file, applying process environment overrides.
pub fn load(path: &Path) -> Result<Validated, ConfigError> {
    let vars: Vec<(String, String)> = std::env::vars().collect();
    load_with_env(path, &vars)
}

pub fn load_with_env(path: &Path, vars: &[(String, String)]) -> Result<Validated, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            path.display().to_string(),
            format!("cannot read the config file: {e}"),
        )
    })?;
    let base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    parse(&text, vars, &base_dir)
}

/// Parses config text; relative paths in it are resolved against `base_dir`.
pub fn parse(
    text: &str,
    vars: &[(String, String)],
    base_dir: &Path,
) -> Result<Validated, ConfigError> {
    let mut tree: serde_yaml::Value = if text.trim().is_empty() {
        serde_yaml::Value::Mapping(Default::default())
    } else {
        serde_yaml::from_str(text)
            .map_err(|e| ConfigError::new("config file", format!("not valid YAML: {e}")))?
    };
    env::interpolate(&mut tree, vars, "")?;
    env::apply_overrides(&mut tree, vars)?;
    let cfg: Config = serde_path_to_error::deserialize(tree).map_err(deser_error)?;
    validate::validate(cfg, base_dir)
}

/// Turns a serde error into one naming the full key path.
fn deser_error(e: serde_path_to_error::Error<serde_yaml::Error>) -> ConfigError {
    let path = e.path().to_string();
    let inner = e.inner().to_string();
    // serde_yaml appends " at line N column M"; keep it, it helps.
    let join = |child: &str| {
        if path == "." || path.is_empty() {
            child.to_string()
        } else {
            format!("{path}.{child}")
        }
    };
    if let Some(rest) = inner.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or_default();
        return ConfigError::new(join(field), "required key is missing");
    }
    if let Some(rest) = inner.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or_default();
        let key = if path.ends_with(field) {
            path.clone()
        } else {
            join(field)
        };
        let expected = rest.split_once(", expected ").map(|x| x.1).unwrap_or("");
        return ConfigError::new(
            key,
            format!(
                "unknown key; expected {}",
                expected.split(" at line").next().unwrap_or(expected)
            ),
        );
    }
    let key = if path == "." {
        "config".to_string()
    } else {
        path
    };
    ConfigError::new(key, inner)
}

#[cfg(test)]
mod tests;
