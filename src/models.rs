//! The model catalogue: which model names the gateway accepts and what they run as.
//!
//! A name is one of: an alias from `[models]` (OpenAI names such as `gpt-4` → `opus`), or a
//! Claude model name listed in `[catalogue] models` (the short names `opus`, `sonnet`, `haiku`
//! and full model ids). Anything else is unknown and refused with 404 `model_not_found`
//! before any worker is touched: every distinct model runs on workers of its own, so an open
//! set of names would let any client start cold workers and evict other keys' conversations.

use std::collections::{BTreeMap, BTreeSet};

/// The Claude model names known out of the box: the CLI's short names, then full ids, current
/// and older ones clients still send.
pub fn default_catalogue() -> Vec<String> {
    [
        "opus",
        "sonnet",
        "haiku",
        "claude-opus-4-8",
        "claude-opus-4-7",
        "claude-opus-4-6",
        "claude-sonnet-5",
        "claude-sonnet-4-6",
        "claude-opus-4-5",
        "claude-opus-4-5-20251101",
        "claude-opus-4-1",
        "claude-opus-4-1-20250805",
        "claude-opus-4-0",
        "claude-opus-4-20250514",
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
        "claude-sonnet-4-0",
        "claude-sonnet-4-20250514",
        "claude-haiku-4-5",
        "claude-haiku-4-5-20251001",
        "claude-3-7-sonnet-latest",
        "claude-3-7-sonnet-20250219",
        "claude-3-5-sonnet-latest",
        "claude-3-5-sonnet-20241022",
        "claude-3-5-haiku-latest",
        "claude-3-5-haiku-20241022",
        "claude-3-opus-latest",
        "claude-3-opus-20240229",
        "claude-3-haiku-20240307",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

/// Aliases and known Claude model names.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    aliases: BTreeMap<String, String>,
    known: BTreeSet<String>,
}

impl Catalogue {
    /// A catalogue of `aliases` (alias → Claude name) and `known` Claude names.
    pub fn new(aliases: BTreeMap<String, String>, known: &[String]) -> Self {
        Self {
            aliases,
            known: known.iter().cloned().collect(),
        }
    }

    /// The Claude model `name` runs as; `None` for a name the gateway does not know. A
    /// trailing context-window tag (`[1m]`, as Claude Code names its 1M-context variant) is
    /// part of what the client selected, not of the model's name.
    pub fn resolve(&self, name: &str) -> Option<String> {
        let name = strip_context_tag(name);
        match self.aliases.get(name) {
            Some(target) => Some(target.clone()),
            None => self.known.contains(name).then(|| name.to_owned()),
        }
    }

    /// True for an alias (as opposed to a Claude model name).
    pub fn is_alias(&self, name: &str) -> bool {
        self.aliases.contains_key(name)
    }

    /// Every accepted name with what it runs as: aliases first, then Claude names.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.aliases
            .iter()
            .map(|(a, t)| (a.as_str(), t.as_str()))
            .chain(
                self.known
                    .iter()
                    .filter(|k| !self.aliases.contains_key(*k))
                    .map(|k| (k.as_str(), k.as_str())),
            )
    }
}

/// `claude-opus-4-8[1m]` → `claude-opus-4-8`.
fn strip_context_tag(name: &str) -> &str {
    match name.strip_suffix(']').and_then(|n| n.rsplit_once('[')) {
        Some((base, tag)) if !base.is_empty() && tag.len() <= 8 => base,
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_known_names_resolve_and_nothing_else() {
        let c = Catalogue::new(
            [("gpt-4".to_owned(), "opus".to_owned())].into(),
            &default_catalogue(),
        );
        assert_eq!(c.resolve("gpt-4").as_deref(), Some("opus"));
        assert_eq!(c.resolve("sonnet").as_deref(), Some("sonnet"));
        assert_eq!(
            c.resolve("claude-3-opus-20240229").as_deref(),
            Some("claude-3-opus-20240229")
        );
        assert_eq!(c.resolve("claude-invented-9"), None);
        assert_eq!(
            c.resolve("claude-opus-4-8[1m]").as_deref(),
            Some("claude-opus-4-8")
        );
        assert_eq!(c.resolve("[1m]"), None);
        assert_eq!(c.resolve(&format!("claude-{}", "x".repeat(10_000))), None);
        assert!(c.entries().any(|(n, _)| n == "gpt-4"));
        assert!(c.entries().any(|(n, _)| n == "claude-3-5-haiku-20241022"));
    }
}
