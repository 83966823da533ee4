//! Schema validation and identity.
//!
//! Two schema texts are the same schema when their JSON values are equal:
//! whitespace and the order of object keys do not matter, everything else
//! (doc, aliases, default values, custom properties such as `connect.name`,
//! the order of record fields and enum symbols) does. This is deliberately
//! *not* Avro's Parsing Canonical Form, which would merge schemas that differ
//! in doc or properties and so hand one id to schemas that consumers see as
//! different.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;

/// The schema formats the registry accepts. Only Avro for now; JSON Schema
/// and Protobuf would be further variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SchemaType {
    #[serde(rename = "AVRO")]
    Avro,
}

impl SchemaType {
    pub const ALL: &'static [SchemaType] = &[SchemaType::Avro];

    pub fn as_str(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
        }
    }

    /// Parse the `schemaType` of a request; absent means AVRO, as in Confluent's API.
    pub fn from_request(value: Option<&str>) -> Result<Self, ApiError> {
        let Some(value) = value else {
            return Ok(SchemaType::Avro);
        };
        if value.eq_ignore_ascii_case("AVRO") {
            return Ok(SchemaType::Avro);
        }
        let upper = value.to_ascii_uppercase();
        if upper == "JSON" || upper == "PROTOBUF" {
            Err(ApiError::invalid_schema(format!(
                "schemaType {upper} is not supported: this registry (bundled with Sluice) only supports AVRO schemas"
            )))
        } else {
            Err(ApiError::invalid_schema(format!(
                "unknown schemaType '{}': this registry only supports AVRO schemas",
                value.escape_debug()
            )))
        }
    }
}

/// What makes two registered schemas the same schema.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SchemaKey {
    pub schema_type: SchemaType,
    /// The schema JSON re-serialized with sorted object keys and no whitespace.
    pub canonical: String,
}

/// A validated schema, ready to register or look up.
#[derive(Clone, Debug)]
pub struct PreparedSchema {
    /// The text to store and hand back (the request's text, or its canonical
    /// form when the client asked to normalize).
    pub text: String,
    pub key: SchemaKey,
}

/// Validate `text` as a schema of `schema_type` and compute its identity.
pub fn prepare(
    schema_type: SchemaType,
    text: &str,
    normalize: bool,
) -> Result<PreparedSchema, ApiError> {
    if text.trim().is_empty() {
        return Err(ApiError::invalid_schema("Empty schema"));
    }
    match schema_type {
        SchemaType::Avro => validate_avro(text)?,
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::invalid_schema(format!("Invalid schema: not valid JSON: {e}")))?;
    let canonical = canonical_json(&value);
    let key = SchemaKey {
        schema_type,
        canonical,
    };
    let text = if normalize {
        key.canonical.clone()
    } else {
        text.to_string()
    };
    Ok(PreparedSchema { text, key })
}

/// The identity of an already stored schema text (no validation beyond JSON).
pub fn key_of_stored(schema_type: SchemaType, text: &str) -> Result<SchemaKey, serde_json::Error> {
    let value: Value = serde_json::from_str(text)?;
    Ok(SchemaKey {
        schema_type,
        canonical: canonical_json(&value),
    })
}

fn validate_avro(text: &str) -> Result<(), ApiError> {
    // The parser is third-party code fed with request data: never let a bug
    // in it take the request (or the registry) down.
    match std::panic::catch_unwind(|| apache_avro::Schema::parse_str(text)) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(ApiError::invalid_schema(format!("Invalid schema: {e}"))),
        Err(_) => Err(ApiError::invalid_schema(
            "Invalid schema: the Avro schema parser failed on this schema",
        )),
    }
}

/// JSON text of `value` with object keys sorted and no insignificant
/// whitespace, independent of serde_json's `preserve_order` feature.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_scalar(&Value::String(k.clone()), out);
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &Value, out: &mut String) {
    // Display of a scalar Value is its compact JSON text.
    let _ = write!(out, "{value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"long"}]}"#;

    #[test]
    fn whitespace_and_key_order_do_not_change_identity() {
        let a = prepare(SchemaType::Avro, RECORD, false).unwrap();
        let b = prepare(
            SchemaType::Avro,
            r#"{ "namespace": "shop", "name": "Order", "type": "record",
                 "fields": [ { "type": "long", "name": "id" } ] }"#,
            false,
        )
        .unwrap();
        assert_eq!(a.key, b.key);
        assert_ne!(a.text, b.text, "the submitted text is kept as is");
    }

    #[test]
    fn doc_and_properties_change_identity() {
        let base = prepare(SchemaType::Avro, RECORD, false).unwrap();
        let with_doc = prepare(
            SchemaType::Avro,
            r#"{"type":"record","name":"Order","namespace":"shop","doc":"x","fields":[{"name":"id","type":"long"}]}"#,
            false,
        )
        .unwrap();
        let with_prop = prepare(
            SchemaType::Avro,
            r#"{"type":"record","name":"Order","namespace":"shop","connect.name":"shop.Order","fields":[{"name":"id","type":"long"}]}"#,
            false,
        )
        .unwrap();
        assert_ne!(base.key, with_doc.key);
        assert_ne!(base.key, with_prop.key);
        assert_ne!(with_doc.key, with_prop.key);
    }

    #[test]
    fn normalize_stores_the_canonical_text() {
        let p = prepare(SchemaType::Avro, "{ \"type\" : \"string\" }", true).unwrap();
        assert_eq!(p.text, r#"{"type":"string"}"#);
    }

    #[test]
    fn invalid_schemas_are_42201_with_the_parser_message() {
        for bad in [
            "",
            "   ",
            "{not json",
            r#"{"type":"record","name":"R"}"#,
            r#"{"type":"nosuchtype"}"#,
            r#""NoSuchNamedType""#,
        ] {
            let e = prepare(SchemaType::Avro, bad, false).unwrap_err();
            assert_eq!(e.code, 42201, "{bad:?}");
            assert_eq!(e.status.as_u16(), 422, "{bad:?}");
            assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn schema_type_parsing() {
        assert_eq!(SchemaType::from_request(None).unwrap(), SchemaType::Avro);
        assert_eq!(
            SchemaType::from_request(Some("avro")).unwrap(),
            SchemaType::Avro
        );
        let e = SchemaType::from_request(Some("PROTOBUF")).unwrap_err();
        assert_eq!(e.code, 42201);
        assert!(e.message.contains("only supports AVRO"), "{}", e.message);
        let e = SchemaType::from_request(Some("JSON")).unwrap_err();
        assert!(e.message.contains("JSON"), "{}", e.message);
    }

    #[test]
    fn canonical_json_escapes_strings_and_sorts_nested_keys() {
        let v: Value =
            serde_json::from_str(r#"{"b":{"y":1,"x":"q\"\n"},"a":[2.5,null,true]}"#).unwrap();
        assert_eq!(
            canonical_json(&v),
            r#"{"a":[2.5,null,true],"b":{"x":"q\"\n","y":1}}"#
        );
    }
}
