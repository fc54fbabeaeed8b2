//! Mid-turn cost estimates. The CLI reports a turn's exact cost only in its final `result`;
//! to stop an expensive turn *while it runs*, the exchange prices the token counts of each
//! model call as they stream (`message_start` / `message_delta`) with list prices per model
//! family. The CLI's own figure stays authoritative once the result arrives.

use crate::turn::Usage;

/// USD per million tokens: (input, output). Cache writes cost 1.25× input, reads 0.1×.
fn prices(model: &str) -> (f64, f64) {
    let m = model.to_ascii_lowercase();
    if m.contains("haiku") {
        (1.0, 5.0)
    } else if m.contains("sonnet") {
        (3.0, 15.0)
    } else {
        // Opus, and anything unknown: the dearest current family, so the estimate errs high.
        (5.0, 25.0)
    }
}

/// Price of `usage` on `model`.
pub fn cost_usd(model: &str, usage: &Usage) -> f64 {
    let (input, output) = prices(model);
    (usage.input_tokens as f64 * input
        + usage.cache_creation_input_tokens as f64 * input * 1.25
        + usage.cache_read_input_tokens as f64 * input * 0.1
        + usage.output_tokens as f64 * output)
        / 1e6
}

/// Accumulates the usage of a turn's model calls as they stream.
#[derive(Debug, Clone, Default)]
pub struct CostMeter {
    model: Option<String>,
    /// Usage of the calls that have finished streaming.
    done: Usage,
    done_usd: f64,
    /// The call in progress: its input side and output so far.
    current: Usage,
}

impl CostMeter {
    /// Feeds one `MessageUsage` event.
    pub fn on_usage(&mut self, usage: &Usage, start: bool, model: Option<&str>) {
        if start {
            self.close_current();
            if let Some(m) = model {
                self.model = Some(m.to_owned());
            }
            self.current = *usage;
        } else {
            // `message_delta` counts are cumulative within one message.
            self.current.output_tokens = usage.output_tokens.max(self.current.output_tokens);
        }
    }

    fn close_current(&mut self) {
        let u = std::mem::take(&mut self.current);
        self.done_usd += cost_usd(self.model(), &u);
        self.done = self.done + u;
    }

    fn model(&self) -> &str {
        self.model.as_deref().unwrap_or("opus")
    }

    /// Estimated cost of the turn so far.
    pub fn estimate_usd(&self) -> f64 {
        self.done_usd + cost_usd(self.model(), &self.current)
    }

    /// Tokens seen so far.
    pub fn usage(&self) -> Usage {
        self.done + self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_priced_and_calls_accumulate() {
        let u = Usage {
            input_tokens: 1_000_000,
            output_tokens: 1_000_000,
            ..Usage::default()
        };
        assert_eq!(cost_usd("claude-haiku-4-5", &u), 6.0);
        assert_eq!(cost_usd("sonnet", &u), 18.0);
        assert_eq!(cost_usd("claude-opus-4-8", &u), 30.0);
        assert_eq!(cost_usd("something-new", &u), 30.0);
        let mut m = CostMeter::default();
        let start = Usage {
            input_tokens: 100,
            ..Usage::default()
        };
        m.on_usage(&start, true, Some("claude-sonnet-4-5"));
        m.on_usage(
            &Usage {
                output_tokens: 10,
                ..Usage::default()
            },
            false,
            None,
        );
        m.on_usage(
            &Usage {
                output_tokens: 50,
                ..Usage::default()
            },
            false,
            None,
        );
        m.on_usage(&start, true, None);
        m.on_usage(
            &Usage {
                output_tokens: 50,
                ..Usage::default()
            },
            false,
            None,
        );
        assert_eq!(m.usage().input_tokens, 200);
        assert_eq!(m.usage().output_tokens, 100);
        let expected = (200.0 * 3.0 + 100.0 * 15.0) / 1e6;
        assert!((m.estimate_usd() - expected).abs() < 1e-12);
    }
}
