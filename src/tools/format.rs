//! `response_format` (`json_object`, `json_schema`): the answer is a JSON value the model gives
//! as the arguments of an output function (the CLI has no structured-output switch; a tool's
//! input is JSON by construction), checked against the schema before the client sees it.

use serde_json::{Value, json};

use crate::error::ApiError;

/// The output function's name.
pub const OUTPUT_FUNCTION: &str = "respond_with_json";

/// The answer's required shape.
#[derive(Debug, Clone)]
pub struct OutputFormat {
    /// The JSON Schema the answer must satisfy (an object schema).
    pub schema: Value,
}

impl PartialEq for OutputFormat {
    fn eq(&self, other: &Self) -> bool {
        self.schema == other.schema
    }
}

/// Reads `response_format`: `None` for absent or `{"type": "text"}`.
pub fn parse(format: Option<&Value>) -> Result<Option<OutputFormat>, ApiError> {
    let bad = |m: &str| ApiError::bad("response_format", m);
    let Some(f) = format.filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    let kind = f
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("`response_format` needs a `type`: text, json_object or json_schema"))?;
    let schema = match kind {
        "text" => return Ok(None),
        "json_object" => json!({"type": "object"}),
        "json_schema" => f
            .get("json_schema")
            .and_then(|s| s.get("schema"))
            .cloned()
            .ok_or_else(|| bad("`json_schema` needs a `schema`"))?,
        other => {
            return Err(bad(&format!(
                "unknown response_format type `{other}`: use text, json_object or json_schema"
            )));
        }
    };
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err(bad(
            "the answer's schema must describe an object (`\"type\": \"object\"`)",
        ));
    }
    jsonschema::validator_for(&schema)
        .map_err(|e| bad(&format!("the schema is not a valid JSON Schema: {e}")))?;
    Ok(Some(OutputFormat { schema }))
}

impl OutputFormat {
    /// What the turn's message asks of the model.
    pub fn instruction(&self) -> String {
        format!(
            "(Give your final answer only by calling the tool `{OUTPUT_FUNCTION}` with it as the arguments, not as text.)"
        )
    }

    /// The answer: the output function's arguments, else the text if it is a JSON object;
    /// checked against the schema. `Err` says why it does not conform.
    pub fn answer(&self, called: Option<&Value>, text: &str) -> Result<String, String> {
        let value = match called {
            Some(v) => v.clone(),
            None => {
                let trimmed = text.trim();
                let inner = trimmed
                    .strip_prefix("```json")
                    .or_else(|| trimmed.strip_prefix("```"))
                    .and_then(|s| s.strip_suffix("```"))
                    .unwrap_or(trimmed);
                serde_json::from_str(inner.trim())
                    .map_err(|_| "the model answered in text, not with JSON".to_owned())?
            }
        };
        let validator = jsonschema::validator_for(&self.schema).map_err(|e| e.to_string())?;
        if let Err(e) = validator.validate(&value) {
            return Err(format!("the model's JSON does not match the schema: {e}"));
        }
        Ok(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_read_and_answers_checked_against_the_schema() {
        assert!(parse(None).unwrap().is_none());
        assert!(parse(Some(&json!({"type": "text"}))).unwrap().is_none());
        let any = parse(Some(&json!({"type": "json_object"})))
            .unwrap()
            .unwrap();
        assert_eq!(
            any.answer(None, "```json\n{\"a\": 1}\n```").unwrap(),
            r#"{"a":1}"#
        );
        assert!(any.answer(None, "echo: hi").is_err());
        let f = parse(Some(
            &json!({"type": "json_schema", "json_schema": {"name": "city",
            "schema": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            crate::tools::request::output_function(&f).name,
            OUTPUT_FUNCTION
        );
        assert_eq!(
            f.answer(Some(&json!({"city": "Oslo"})), "").unwrap(),
            r#"{"city":"Oslo"}"#
        );
        let e = f.answer(Some(&json!({"city": 7})), "").unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        for bad in [
            json!({"type": "xml"}),
            json!({"type": "json_schema"}),
            json!({"type": "json_schema", "json_schema": {"schema": {"type": "array"}}}),
            json!({"type": "json_schema", "json_schema": {"schema": {"type": "object", "minProperties": "x"}}}),
        ] {
            let e = parse(Some(&bad)).unwrap_err();
            assert_eq!(
                e.envelope().error.param.as_deref(),
                Some("response_format"),
                "{bad}"
            );
        }
    }
}
