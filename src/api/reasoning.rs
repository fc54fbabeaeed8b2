//! The model's thinking as the OpenAI surfaces show it: [`Reasoning`] gathers a turn's
//! thinking deltas into blocks (a block ends at its signature or when text follows), so chat
//! completions can show them as one `reasoning_content` (blocks separated by a blank line) and
//! the Responses API as the summary parts of a `reasoning` item. Signatures are not shown:
//! the conversation's thinking stays with its worker, so clients never give it back.

/// What a thinking delta adds to the reasoning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    /// The block the delta belongs to (0 for the first).
    pub block: usize,
    /// True when the delta starts that block.
    pub starts: bool,
}

/// A turn's thinking, as it arrives.
#[derive(Debug, Default)]
pub(crate) struct Reasoning {
    blocks: Vec<String>,
    /// The last block still takes deltas.
    open: bool,
}

/// What separates two thinking blocks in `reasoning_content`.
const BLOCK_SEPARATOR: &str = "\n\n";

impl Reasoning {
    /// A piece of thinking; `None` for an empty piece (it adds nothing, and opens no block).
    pub(crate) fn delta(&mut self, piece: &str) -> Option<Step> {
        if piece.is_empty() {
            return None;
        }
        let starts = !self.open;
        if starts {
            self.blocks.push(String::new());
            self.open = true;
        }
        let block = self.blocks.len() - 1;
        self.blocks[block].push_str(piece);
        Some(Step { block, starts })
    }

    /// The open block is over (its signature, or text, came).
    pub(crate) fn close(&mut self) {
        self.open = false;
    }

    /// The piece of `reasoning_content` a thinking delta adds: the piece, after a blank line
    /// when it starts a block after another; `None` when it adds nothing.
    pub(crate) fn chat_delta(&mut self, piece: &str) -> Option<String> {
        let step = self.delta(piece)?;
        Some(match step {
            Step {
                block: 1..,
                starts: true,
            } => format!("{BLOCK_SEPARATOR}{piece}"),
            _ => piece.to_owned(),
        })
    }

    /// The blocks' texts, in order.
    pub(crate) fn blocks(&self) -> &[String] {
        &self.blocks
    }

    /// `reasoning_content`: the blocks separated by a blank line (what the chat deltas add up
    /// to); `None` when the model did not think.
    pub(crate) fn content(&self) -> Option<String> {
        (!self.blocks.is_empty()).then(|| self.blocks.join(BLOCK_SEPARATOR))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_make_blocks_that_end_at_a_signature_or_text() {
        let mut r = Reasoning::default();
        assert_eq!(r.content(), None);
        assert_eq!(r.delta(""), None, "an empty piece opens no block");
        assert_eq!(
            r.delta("think"),
            Some(Step {
                block: 0,
                starts: true
            })
        );
        assert_eq!(
            r.delta("ing"),
            Some(Step {
                block: 0,
                starts: false
            })
        );
        r.close();
        r.close();
        assert_eq!(
            r.delta("more"),
            Some(Step {
                block: 1,
                starts: true
            })
        );
        assert_eq!(r.blocks(), ["thinking", "more"]);
        assert_eq!(r.content().as_deref(), Some("thinking\n\nmore"));
    }

    #[test]
    fn chat_deltas_add_up_to_the_content() {
        let mut r = Reasoning::default();
        let mut streamed = String::new();
        for (piece, close) in [
            ("a", false),
            ("b", true),
            ("", false),
            ("c", true),
            ("d", false),
        ] {
            if let Some(d) = r.chat_delta(piece) {
                streamed.push_str(&d);
            }
            if close {
                r.close();
            }
        }
        assert_eq!(streamed, "ab\n\nc\n\nd");
        assert_eq!(r.content().as_deref(), Some(streamed.as_str()));
    }
}
