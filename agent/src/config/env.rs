//! `${VAR}` interpolation and `SLUICE__SECTION__KEY` overrides on the YAML tree.

use serde_yaml::{Mapping, Value};

use super::ConfigError;

pub const PREFIX: &str = "SLUICE__";

fn lookup<'a>(vars: &'a [(String, String)], name: &str) -> Option<&'a str> {
    vars.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Replaces `${VAR}` in every string value; `$$` is a literal `$`. An unset variable is
/// an error naming the key and the variable.
pub fn interpolate(
    v: &mut Value,
    vars: &[(String, String)],
    path: &str,
) -> Result<(), ConfigError> {
    match v {
        Value::String(s) if s.contains('$') => *s = expand(s, vars, path)?,
        Value::Mapping(m) => {
            for (k, child) in m.iter_mut() {
                let key = k.as_str().unwrap_or("?");
                let p = if path.is_empty() {
                    key.to_string()
                } else {
                    format!("{path}.{key}")
                };
                interpolate(child, vars, &p)?;
            }
        }
        Value::Sequence(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                interpolate(child, vars, &format!("{path}[{i}]"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn expand(s: &str, vars: &[(String, String)], path: &str) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let end = r.find('}').ok_or_else(|| {
                ConfigError::new(
                    path,
                    "unterminated ${...}: write ${NAME}, or $$ for a literal $",
                )
            })?;
            let name = &r[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(ConfigError::new(
                    path,
                    format!("invalid variable name in ${{{name}}}"),
                ));
            }
            let val = lookup(vars, name).ok_or_else(|| {
                ConfigError::new(
                    path,
                    format!("environment variable {name} is not set (referenced as ${{{name}}})"),
                )
            })?;
            out.push_str(val);
            rest = &r[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Applies `SLUICE__A__B=value` as `a.b: value` (value parsed as a YAML scalar, so
/// numbers, booleans and `[a, b]` lists work).
pub fn apply_overrides(tree: &mut Value, vars: &[(String, String)]) -> Result<(), ConfigError> {
    let mut sorted: Vec<&(String, String)> =
        vars.iter().filter(|(k, _)| k.starts_with(PREFIX)).collect();
    sorted.sort();
    for (name, raw) in sorted {
        let parts: Vec<String> = name[PREFIX.len()..]
            .split("__")
            .map(|p| p.to_ascii_lowercase())
            .collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(ConfigError::new(
                name.as_str(),
                "malformed override name: use SLUICE__SECTION__KEY with double underscores between levels",
            ));
        }
        let value: Value = serde_yaml::from_str(raw).unwrap_or_else(|_| Value::String(raw.clone()));
        // A value like "127.0.0.1:9092" parses as a string anyway; null stays a string.
        let value = if value.is_null() {
            Value::String(raw.clone())
        } else {
            value
        };
        set_path(tree, &parts, value, name)?;
    }
    Ok(())
}

fn set_path(
    tree: &mut Value,
    parts: &[String],
    value: Value,
    var: &str,
) -> Result<(), ConfigError> {
    let mut cur = tree;
    for (i, part) in parts.iter().enumerate() {
        if cur.is_null() {
            *cur = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(m) = cur else {
            return Err(ConfigError::new(
                parts[..i].join("."),
                format!("{var} sets a key below a value that is not a section"),
            ));
        };
        let key = Value::String(part.clone());
        if i == parts.len() - 1 {
            m.insert(key, value);
            return Ok(());
        }
        cur = m.entry(key).or_insert(Value::Null);
    }
    Ok(())
}
