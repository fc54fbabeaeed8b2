//! A turn's thinking blocks, put together from the streamed deltas for its [`TurnResult`]
//! (`crate::turn::TurnResult::thinking`): a block is its thinking deltas, then its signature;
//! it ends at the end of its content block, at text, or at the start of another message.

use crate::turn::Thinking;

/// Where the block being streamed is.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No block open: the next thinking delta starts one.
    #[default]
    Closed,
    /// Thinking deltas are arriving.
    Thinking,
    /// Its signature is arriving.
    Signing,
}

/// The thinking blocks of one turn.
#[derive(Debug, Default)]
pub(crate) struct ThinkingLog {
    blocks: Vec<Thinking>,
    state: State,
}

impl ThinkingLog {
    /// A piece of thinking: the open block's, or the first of a new one.
    pub(crate) fn delta(&mut self, piece: &str) {
        match self.blocks.last_mut() {
            Some(block) if self.state == State::Thinking => block.text.push_str(piece),
            _ => self.blocks.push(Thinking {
                text: piece.to_owned(),
                signature: None,
            }),
        }
        self.state = State::Thinking;
    }

    /// A piece of the open block's signature (a block of its own if none is open).
    pub(crate) fn signature(&mut self, piece: &str) {
        if self.state == State::Closed {
            self.blocks.push(Thinking::default());
        }
        if let Some(block) = self.blocks.last_mut() {
            block.signature.get_or_insert_default().push_str(piece);
        }
        self.state = State::Signing;
    }

    /// Other output (a content block's end, text, a new message): the open block is over.
    pub(crate) fn close(&mut self) {
        self.state = State::Closed;
    }

    /// The blocks, in order.
    pub(crate) fn into_blocks(self) -> Vec<Thinking> {
        self.blocks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(text: &str, signature: Option<&str>) -> Thinking {
        Thinking {
            text: text.into(),
            signature: signature.map(Into::into),
        }
    }

    #[test]
    fn deltas_then_signature_make_one_block_and_a_close_starts_the_next() {
        let mut log = ThinkingLog::default();
        log.delta("thinking ");
        log.delta("about it");
        log.signature("sig-");
        log.signature("1");
        log.close();
        // The next model call (after a tool round) thinks again.
        log.delta("again");
        log.signature("sig-2");
        log.delta("unsigned");
        log.close();
        log.delta("cut short");
        assert_eq!(
            log.into_blocks(),
            [
                block("thinking about it", Some("sig-1")),
                block("again", Some("sig-2")),
                block("unsigned", None),
                block("cut short", None),
            ]
        );
    }

    #[test]
    fn a_signature_without_thinking_is_a_block_of_its_own() {
        let mut log = ThinkingLog::default();
        log.signature("sig");
        assert_eq!(log.into_blocks(), [block("", Some("sig"))]);
        assert!(ThinkingLog::default().into_blocks().is_empty());
    }
}
