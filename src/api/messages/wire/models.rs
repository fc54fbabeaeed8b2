//! `GET /v1/models` and `GET /v1/models/{id}` in the Messages API's shape (for clients that
//! send `anthropic-version`):
//!
//! ```json
//! {"data": [{"type": "model", "id": "claude-sonnet-4-5-20250929",
//!            "display_name": "Claude Sonnet 4.5", "created_at": "2025-09-29T00:00:00Z"}],
//!  "has_more": false, "first_id": "claude-sonnet-4-5-20250929",
//!  "last_id": "claude-sonnet-4-5-20250929"}
//! ```
//!
//! The whole catalogue is one page. `created_at` is the release date a model id ends with
//! (`...-20250929`), else the epoch (the API's own value for an unknown date).

use serde_json::{Value, json};

/// `created_at` of a model whose release date is not known.
pub const UNKNOWN_DATE: &str = "1970-01-01T00:00:00Z";

/// One model object.
pub fn model_object(id: &str, display_name: &str) -> Value {
    json!({
        "type": "model",
        "id": id,
        "display_name": display_name,
        "created_at": created_at(id),
    })
}

/// The model list: every `(id, display_name)` in order, on one page.
pub fn model_list<'a>(models: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    let data: Vec<Value> = models
        .into_iter()
        .map(|(id, name)| model_object(id, name))
        .collect();
    let first_id = data.first().map(|m| m["id"].clone()).unwrap_or(Value::Null);
    let last_id = data.last().map(|m| m["id"].clone()).unwrap_or(Value::Null);
    json!({"data": data, "has_more": false, "first_id": first_id, "last_id": last_id})
}

/// A display name for a Claude model id, in the API's style: `claude-sonnet-4-5-20250929` →
/// `Claude Sonnet 4.5`, `claude-3-5-haiku-latest` → `Claude Haiku 3.5`, `opus` → `Claude
/// Opus`. Names that are not Claude's (aliases such as `gpt-4`) are returned as they are.
pub fn display_name(id: &str) -> String {
    let rest = id.strip_prefix("claude-").unwrap_or(id);
    let mut family = None;
    let mut version: Vec<&str> = Vec::new();
    for part in rest.split('-') {
        match part {
            "opus" | "sonnet" | "haiku" if family.is_none() => family = Some(part),
            "latest" => {}
            p if p.len() == 8 && p.bytes().all(|b| b.is_ascii_digit()) => {}
            p if (1..=2).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
                version.push(p)
            }
            _ => return id.to_owned(),
        }
    }
    let Some(family) = family else {
        return id.to_owned();
    };
    while version.len() > 1 && version.last() == Some(&"0") {
        version.pop();
    }
    let mut name = format!("Claude {}{}", family[..1].to_uppercase(), &family[1..]);
    if !version.is_empty() {
        name.push(' ');
        name.push_str(&version.join("."));
    }
    name
}

/// The release date an id ends with, as RFC 3339; the epoch without one.
fn created_at(id: &str) -> String {
    let date = id.rsplit('-').next().unwrap_or_default();
    let plausible = date.len() == 8
        && date.bytes().all(|b| b.is_ascii_digit())
        && (1..=12).contains(&date[4..6].parse::<u8>().unwrap_or(0))
        && (1..=31).contains(&date[6..].parse::<u8>().unwrap_or(0));
    if plausible {
        format!("{}-{}-{}T00:00:00Z", &date[..4], &date[4..6], &date[6..])
    } else {
        UNKNOWN_DATE.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_has_the_apis_shape() {
        let list = model_list([
            ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5"),
            ("opus", "Claude Opus"),
        ]);
        assert_eq!(
            list,
            json!({
                "data": [
                    {"type": "model", "id": "claude-sonnet-4-5-20250929",
                        "display_name": "Claude Sonnet 4.5", "created_at": "2025-09-29T00:00:00Z"},
                    {"type": "model", "id": "opus", "display_name": "Claude Opus",
                        "created_at": UNKNOWN_DATE},
                ],
                "has_more": false,
                "first_id": "claude-sonnet-4-5-20250929",
                "last_id": "opus",
            })
        );
        let empty = model_list([]);
        assert_eq!(empty["data"], json!([]));
        assert_eq!(empty["first_id"], Value::Null);
        assert_eq!(model_object("gpt-4", "gpt-4")["created_at"], UNKNOWN_DATE);
        assert_eq!(model_object("x-99999999", "x")["created_at"], UNKNOWN_DATE);
    }

    #[test]
    fn display_names_follow_the_apis_style() {
        for (id, want) in [
            ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5"),
            ("claude-opus-4-1", "Claude Opus 4.1"),
            ("claude-opus-4-0", "Claude Opus 4"),
            ("claude-opus-4-20250514", "Claude Opus 4"),
            ("claude-haiku-4-5", "Claude Haiku 4.5"),
            ("claude-3-7-sonnet-latest", "Claude Sonnet 3.7"),
            ("claude-3-5-haiku-20241022", "Claude Haiku 3.5"),
            ("claude-3-opus-20240229", "Claude Opus 3"),
            ("opus", "Claude Opus"),
            ("sonnet", "Claude Sonnet"),
            ("gpt-4", "gpt-4"),
            ("claude-invented-9", "claude-invented-9"),
        ] {
            assert_eq!(display_name(id), want, "{id}");
        }
    }
}
