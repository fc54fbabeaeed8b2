//! [`OutputLimit`]: OpenAI's `max_tokens` / `max_completion_tokens` and `stop`, applied to an
//! answer as it streams. The CLI has no per-turn output limit, so the gateway watches the
//! text: at a stop string or at the token limit it emits what comes before, says the answer
//! is finished (`finish_reason` `stop` or `length`), and the turn is cut (the worker
//! interrupts the CLI and stays warm). Streaming holds back only as many characters as the
//! longest stop string could still need. Tokens are estimated at [`CHARS_PER_TOKEN`]
//! characters each (the text's real tokenization is not known mid-stream).

/// Characters per token of the estimate.
pub(crate) const CHARS_PER_TOKEN: usize = 4;

/// Why the output was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// A stop string was reached (`finish_reason: "stop"`).
    Stop,
    /// The token limit was reached (`finish_reason: "length"`).
    Length,
}

/// The limits of one answer and where the stream stands against them.
#[derive(Debug, Clone)]
pub struct OutputLimit {
    max_chars: Option<usize>,
    stop: Vec<String>,
    /// Characters that may be the start of a stop string (held back).
    hold: usize,
    held: String,
    emitted_chars: usize,
    cut: Option<Cut>,
    /// The stop string the answer ended at.
    matched: Option<String>,
}

fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// The first `n` characters of `s`.
fn take_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl OutputLimit {
    /// Limits of `max_tokens` and `stop` strings; `None` when there are none.
    pub fn new(max_tokens: Option<u64>, stop: Vec<String>) -> Option<Self> {
        if max_tokens.is_none() && stop.is_empty() {
            return None;
        }
        let hold = stop.iter().map(|s| char_len(s)).max().unwrap_or(1) - 1;
        Some(Self {
            max_chars: max_tokens.map(|t| {
                usize::try_from(t)
                    .unwrap_or(usize::MAX)
                    .saturating_mul(CHARS_PER_TOKEN)
            }),
            stop,
            hold,
            held: String::new(),
            emitted_chars: 0,
            cut: None,
            matched: None,
        })
    }

    /// Set once the output is cut.
    pub fn cut(&self) -> Option<Cut> {
        self.cut
    }

    /// The token limit (`max_tokens`), if any.
    pub fn max_tokens(&self) -> Option<u64> {
        self.max_chars
            .map(|c| u64::try_from(c / CHARS_PER_TOKEN).unwrap_or(u64::MAX))
    }

    /// The stop string the answer was cut at (Anthropic's `stop_sequence`).
    pub fn matched_stop(&self) -> Option<&str> {
        (self.cut == Some(Cut::Stop))
            .then_some(self.matched.as_deref())
            .flatten()
    }

    /// Passes `text` through the token limit, cutting there.
    fn emit(&mut self, text: &str) -> String {
        let Some(max) = self.max_chars else {
            self.emitted_chars += char_len(text);
            return text.to_owned();
        };
        let room = max.saturating_sub(self.emitted_chars);
        let n = char_len(text);
        if n < room {
            self.emitted_chars += n;
            return text.to_owned();
        }
        // At or over the limit: this is the end of the answer.
        self.cut.get_or_insert(Cut::Length);
        self.emitted_chars += room.min(n);
        take_chars(text, room).to_owned()
    }

    /// The part of a new delta to send now (empty once cut).
    pub fn push(&mut self, delta: &str) -> String {
        if self.cut.is_some() {
            return String::new();
        }
        let mut buf = std::mem::take(&mut self.held);
        buf.push_str(delta);
        let first_stop = self
            .stop
            .iter()
            .filter_map(|s| buf.find(s.as_str()).map(|at| (at, s)))
            .min_by_key(|(at, _)| *at);
        if let Some((at, stop)) = first_stop {
            let stop = stop.clone();
            let out = self.emit(&buf[..at]);
            if self.cut.is_none() {
                self.cut = Some(Cut::Stop);
                self.matched = Some(stop);
            }
            return out;
        }
        let keep = self.hold.min(char_len(&buf));
        let split = buf
            .char_indices()
            .nth(char_len(&buf) - keep)
            .map_or(buf.len(), |(i, _)| i);
        self.held = buf[split..].to_owned();
        self.emit(&buf[..split])
    }

    /// What is left to send when the answer ends on its own (the held-back tail).
    pub fn finish(&mut self) -> String {
        if self.cut.is_some() {
            return String::new();
        }
        let held = std::mem::take(&mut self.held);
        self.emit(&held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(limit: &mut OutputLimit, deltas: &[&str]) -> String {
        let mut out = String::new();
        for d in deltas {
            out.push_str(&limit.push(d));
        }
        out + &limit.finish()
    }

    #[test]
    fn the_stop_string_reached_is_told() {
        let mut l = OutputLimit::new(None, vec!["END".into(), "lo".into()]).unwrap();
        assert_eq!(run(&mut l, &["hel", "lo wor", "ld END"]), "hel");
        assert_eq!(l.cut(), Some(Cut::Stop));
        assert_eq!(l.matched_stop(), Some("lo"));
        let mut l = OutputLimit::new(Some(1), vec!["zz".into()]).unwrap();
        run(&mut l, &["hello"]);
        assert_eq!(l.cut(), Some(Cut::Length));
        assert_eq!(l.matched_stop(), None);
    }

    #[test]
    fn no_limits_no_filter() {
        assert!(OutputLimit::new(None, vec![]).is_none());
    }

    #[test]
    fn the_token_limit_cuts_at_its_estimate() {
        let mut l = OutputLimit::new(Some(2), vec![]).unwrap();
        assert_eq!(run(&mut l, &["abc", "defgh", "ijk"]), "abcdefgh");
        assert_eq!(l.cut(), Some(Cut::Length));
        // An answer that ends exactly at the limit, or under it, is not cut.
        let mut l = OutputLimit::new(Some(2), vec![]).unwrap();
        assert_eq!(run(&mut l, &["abc", "de"]), "abcde");
        assert_eq!(l.cut(), None);
    }

    #[test]
    fn output_ends_before_the_first_stop_string_even_across_deltas() {
        let mut l = OutputLimit::new(None, vec!["echo".into(), "STOP".into()]).unwrap();
        // "ec" | "ho" spans two deltas: nothing of it is sent.
        let mut sent = vec![l.push("say: ec")];
        sent.push(l.push("ho and more"));
        assert_eq!(sent.concat(), "say: ");
        assert_eq!(
            sent[0], "say:",
            "holds back only len(longest stop) - 1 chars"
        );
        assert_eq!(l.cut(), Some(Cut::Stop));
        assert_eq!(l.push("later"), "");
        // The earliest of several stop strings wins; a tail that never completes one is sent.
        let mut l = OutputLimit::new(None, vec!["xyz".into(), "b".into()]).unwrap();
        assert_eq!(run(&mut l, &["aab xyz"]), "aa");
        let mut l = OutputLimit::new(None, vec!["xyz".into()]).unwrap();
        assert_eq!(run(&mut l, &["abc x", "y"]), "abc xy");
        assert_eq!(l.cut(), None);
    }

    #[test]
    fn multibyte_text_is_cut_on_character_boundaries() {
        let mut l = OutputLimit::new(Some(1), vec!["é!".into()]).unwrap();
        assert_eq!(run(&mut l, &["héllo wörld"]), "héll");
        assert_eq!(l.cut(), Some(Cut::Length));
    }
}
