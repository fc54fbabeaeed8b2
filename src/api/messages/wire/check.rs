//! Reading JSON fields with errors that name them, in the API's wording ("Field required",
//! "Input should be a valid string").

use serde_json::{Map, Value};

use super::WireError;

/// The JSON object of a part.
pub(super) type Object = Map<String, Value>;

/// `parent.key` (or `key` at the top).
pub(super) fn at(parent: &str, key: impl std::fmt::Display) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// `v` as an object.
pub(super) fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Object, WireError> {
    v.as_object()
        .ok_or_else(|| WireError::new(path, "Input should be an object"))
}

/// `v` as a list.
pub(super) fn list<'a>(v: &'a Value, path: &str) -> Result<&'a [Value], WireError> {
    v.as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| WireError::new(path, "Input should be a valid list"))
}

/// `v` as a string.
pub(super) fn string<'a>(v: &'a Value, path: &str) -> Result<&'a str, WireError> {
    v.as_str()
        .ok_or_else(|| WireError::new(path, "Input should be a valid string"))
}

/// A field that must be there (null counts as absent).
pub(super) fn required<'a>(o: &'a Object, key: &str, parent: &str) -> Result<&'a Value, WireError> {
    match o.get(key) {
        None | Some(Value::Null) => Err(WireError::new(at(parent, key), "Field required")),
        Some(v) => Ok(v),
    }
}

/// A field that may be absent or null.
pub(super) fn optional<'a>(o: &'a Object, key: &str) -> Option<&'a Value> {
    o.get(key).filter(|v| !v.is_null())
}

/// A required string field.
pub(super) fn required_str<'a>(
    o: &'a Object,
    key: &str,
    parent: &str,
) -> Result<&'a str, WireError> {
    string(required(o, key, parent)?, &at(parent, key))
}

/// An optional string field.
pub(super) fn optional_str<'a>(
    o: &'a Object,
    key: &str,
    parent: &str,
) -> Result<Option<&'a str>, WireError> {
    optional(o, key)
        .map(|v| string(v, &at(parent, key)))
        .transpose()
}

/// An optional boolean field.
pub(super) fn optional_bool(
    o: &Object,
    key: &str,
    parent: &str,
) -> Result<Option<bool>, WireError> {
    optional(o, key)
        .map(|v| {
            v.as_bool()
                .ok_or_else(|| WireError::new(at(parent, key), "Input should be a valid boolean"))
        })
        .transpose()
}

/// `v` as a non-negative integer.
pub(super) fn unsigned(v: &Value, path: &str) -> Result<u64, WireError> {
    if let Some(n) = v.as_u64() {
        return Ok(n);
    }
    match v.as_i64() {
        Some(_) => Err(WireError::new(
            path,
            "Input should be greater than or equal to 0",
        )),
        None => Err(WireError::new(path, "Input should be a valid integer")),
    }
}

/// The `type` of a tagged part (a content block, a source, a tool choice).
pub(super) fn tag<'a>(o: &'a Object, parent: &str) -> Result<&'a str, WireError> {
    required_str(o, "type", parent)
}
