//! One exchange with the child: write a user message, read its lines until the `result`.
//!
//! This runs in its own task (owning the child's I/O for the duration) so the worker actor's
//! mailbox stays free. It forwards text as it arrives, treats every line (including
//! `api_retry`) as liveness, and turns a dropped receiver or an idle timeout into an in-band
//! interrupt; an interrupt that is not answered in time, an over-long line, stdout EOF or the
//! child's exit make the process unusable ([`ExchangeEnd::Broken`]).

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};

use crate::child::{ChildError, ChildIo, ExitInfo};
use crate::pricing::CostMeter;
use crate::protocol::{self, CliEvent, ControlRequest, ResultLine};
use crate::transcript::{self, SavedTurn, TranscriptDir, TranscriptSink};
use crate::turn::{SessionId, Thinking, ToolCall, TurnEvent};

use super::thinking::ThinkingLog;

/// How long a completed turn may wait for the CLI to save it (it flushes every 100 ms); past
/// it the turn fails and the process is replaced.
const SAVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the turn's conversation is saved, so a completed turn can be confirmed saved.
#[derive(Debug, Clone)]
pub(crate) struct SaveCheck {
    pub(crate) dir: TranscriptDir,
    /// Where the last confirmed save ended: (CLI session, position in its file). This turn's
    /// entries come after it when the session is the same.
    pub(crate) saved: Option<(String, u64)>,
    /// Where a completed turn's transcript is kept too (awaited before the turn is reported).
    pub(crate) keep: Option<(TranscriptSink, SessionId)>,
}

/// Timing limits of one exchange.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExchangeLimits {
    /// No line for this long mid-turn → interrupt.
    pub(crate) idle_timeout: Duration,
    /// Interrupt not answered by a `result` within this → the process is broken.
    pub(crate) interrupt_timeout: Duration,
    /// How long the turn may wait for the results of external tool calls (the caller answers
    /// them); the idle timeout does not apply while it waits.
    pub(crate) external_wait: Duration,
}

/// Why an interrupt was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InterruptCause {
    /// The caller dropped its stream (client disconnect) or could not keep up.
    Cancelled,
    /// No output within the idle timeout.
    IdleTimeout,
    /// The turn's estimated cost passed its cap.
    CostLimit,
    /// The caller cut the turn: it completes with what was said.
    Cut,
}

/// How an exchange ended.
#[derive(Debug)]
pub(crate) enum ExchangeEnd {
    /// The CLI printed its `result`: the process is healthy and can take the next turn.
    Finished {
        result: ResultLine,
        /// Text assembled from the deltas (falls back to the result text).
        text: String,
    },
    /// The process is no longer usable and must be killed.
    Broken { reason: String },
}

/// Everything the worker needs after an exchange.
#[derive(Debug)]
pub(crate) struct ExchangeReport {
    pub(crate) end: ExchangeEnd,
    /// Set when an interrupt was sent, with its cause.
    pub(crate) interrupted: Option<InterruptCause>,
    /// The CLI session id seen in this exchange's `system/init`.
    pub(crate) cli_session_id: Option<String>,
    /// Tokens and estimated cost seen in the stream (what is known if no result arrives).
    pub(crate) meter: CostMeter,
    /// Set when the turn was confirmed saved: (CLI session, position its file was read to).
    pub(crate) saved: Option<(String, u64)>,
    /// The thinking blocks streamed (kept for a turn that finished).
    pub(crate) thinking: Vec<Thinking>,
    /// The I/O, handed back for the next exchange.
    pub(crate) io: ChildIo,
}

const INTERRUPT_ID_PREFIX: &str = "interrupt-";

/// What one exchange sends and how it is run.
#[derive(Debug)]
pub(crate) struct Exchange {
    /// A complete stdin line (see [`protocol::user_message_line`] and
    /// [`protocol::command_line`]).
    pub(crate) input: String,
    /// Receives the turn's events (none for internal exchanges like `/clear`).
    pub(crate) sink: Option<mpsc::Sender<TurnEvent>>,
    pub(crate) limits: ExchangeLimits,
    /// Interrupt the turn once its estimated cost passes this.
    pub(crate) max_cost_usd: Option<f64>,
    /// Interrupt the turn when this is cancelled (the caller's cut).
    pub(crate) cut: Option<tokio_util::sync::CancellationToken>,
    /// Numbers this exchange's control requests.
    pub(crate) seq: u64,
    /// Confirm a completed turn saved before reporting it.
    pub(crate) save: Option<SaveCheck>,
    /// The name prefix of external tools (`mcp__<server>__`): their calls are reported as
    /// [`TurnEvent::ToolUse`] and waited for with [`ExchangeLimits::external_wait`].
    pub(crate) external_prefix: Option<String>,
}

/// Runs one exchange on the child's I/O.
pub(crate) async fn run_exchange(
    mut io: ChildIo,
    mut exit: watch::Receiver<Option<ExitInfo>>,
    exchange: Exchange,
) -> ExchangeReport {
    let Exchange {
        input,
        sink,
        limits,
        max_cost_usd,
        cut,
        seq,
        save,
        external_prefix,
    } = exchange;
    // External tool calls whose results the CLI has not received yet.
    let mut awaiting: Vec<String> = Vec::new();
    // External tool calls of the message being streamed, reported together when it ends.
    let mut calls: Vec<ToolCall> = Vec::new();
    let mut interrupted = None;
    let mut cli_session_id = None;
    // The transcript id of the turn's last assistant message, and of its last entry of any
    // kind (assistant or user line).
    let mut last_message: Option<String> = None;
    let mut last_entry: Option<String> = None;
    // Cut while it waited for external results: the CLI answers the calls itself and notes the
    // interrupt, and the conversation is kept to go on (the caller sets the turn aside).
    let mut set_aside = false;
    let mut text = String::new();
    let mut thinking = ThinkingLog::default();
    let mut meter = CostMeter::default();
    macro_rules! broken {
        ($reason:expr) => {
            return ExchangeReport {
                end: ExchangeEnd::Broken { reason: $reason },
                interrupted,
                cli_session_id,
                meter,
                saved: None,
                thinking: Vec::new(),
                io,
            }
        };
    }
    if let Err(e) = io.write_line(&input).await {
        broken!(e.to_string());
    }
    let mut last_line = Instant::now();
    let mut interrupt_deadline: Option<Instant> = None;
    // Send the interrupt line; failure to write means the child is gone.
    let request_id = format!("{INTERRUPT_ID_PREFIX}{seq}");
    loop {
        let sink_closed = async {
            match &sink {
                Some(s) if interrupted.is_none() => s.closed().await,
                _ => std::future::pending().await,
            }
        };
        let cut_now = async {
            match &cut {
                Some(c) if interrupted.is_none() => c.cancelled().await,
                _ => std::future::pending().await,
            }
        };
        let idle_deadline = last_line
            + if awaiting.is_empty() {
                limits.idle_timeout
            } else {
                limits.external_wait
            };
        let cause = tokio::select! {
            biased;
            line = io.next_line() => {
                last_line = Instant::now();
                match line {
                    None => broken!("the child closed its output".into()),
                    Some(Err(ChildError::LineTooLong(n))) => {
                        broken!(format!("the child printed a line longer than {n} bytes"));
                    }
                    Some(Err(e)) => broken!(e.to_string()),
                    Some(Ok(line)) => {
                        let parsed = protocol::parse_line(&line);
                        // A message's external calls are reported together once it ends (they
                        // are all known then, and the CLI is about to make them).
                        let flushed = if !calls.is_empty() && ends_message(&parsed) {
                            let batch = TurnEvent::ToolCalls(std::mem::take(&mut calls));
                            forward(&sink, interrupted, batch, limits.idle_timeout).await
                        } else {
                            None
                        };
                        let cause = match parsed {
                        Ok(CliEvent::TextDelta(piece)) => {
                            thinking.close();
                            text.push_str(&piece);
                            forward(&sink, interrupted, TurnEvent::TextDelta(piece), limits.idle_timeout).await
                        }
                        Ok(CliEvent::ThinkingDelta(piece)) => {
                            thinking.delta(&piece);
                            forward(&sink, interrupted, TurnEvent::ThinkingDelta(piece), limits.idle_timeout).await
                        }
                        Ok(CliEvent::SignatureDelta(piece)) => {
                            thinking.signature(&piece);
                            forward(&sink, interrupted, TurnEvent::ThinkingSignature(piece), limits.idle_timeout).await
                        }
                        Ok(CliEvent::StreamOther { event_type }) => {
                            if event_type == "content_block_stop" {
                                thinking.close();
                            }
                            None
                        }
                        Ok(CliEvent::Result(result)) => {
                            if text.is_empty() && !result.is_error {
                                text = result.result.clone().unwrap_or_default();
                            }
                            if cli_session_id.is_none() {
                                cli_session_id = result.session_id.clone();
                            }
                            let completed = !result.is_error && interrupted.is_none();
                            // The entry that must be in the transcript before the turn is
                            // acknowledged: its answer, or for a turn set aside the CLI's note
                            // of the interrupt (its conversation is usually handed on at once).
                            let confirm = if completed {
                                last_message.as_ref()
                            } else if set_aside {
                                last_entry.as_ref()
                            } else {
                                None
                            };
                            let mut saved = None;
                            if let (Some(save), Some(sid), Some(uuid)) =
                                (&save, &cli_session_id, confirm)
                            {
                                // Acknowledge the turn only once `--resume` would find it.
                                let path = save.dir.file(sid);
                                let from = match &save.saved {
                                    Some((before, pos)) if before == sid => *pos,
                                    _ => 0,
                                };
                                let started = Instant::now();
                                tokio::select! {
                                    r = transcript::wait_for_entry(&path, from, uuid, SAVE_TIMEOUT) => match r {
                                        Ok(pos) => {
                                            tracing::trace!(waited = ?started.elapsed(), "turn saved");
                                            saved = Some((sid.clone(), pos));
                                            if let Some((sink, session)) = &save.keep {
                                                let turn = SavedTurn { cli_session_id: sid.clone(), file: path.clone(), len: pos };
                                                sink.keep(session.clone(), turn).await;
                                            }
                                        }
                                        // A process that cannot save its turn in time (stopped,
                                        // stuck on its disk) is not trusted with the next one.
                                        Err(e) => broken!(e.to_string()),
                                    },
                                    () = exited(&mut exit) => broken!("the child exited before its transcript recorded the turn".into()),
                                }
                            }
                            return ExchangeReport {
                                end: ExchangeEnd::Finished { result, text },
                                interrupted,
                                cli_session_id,
                                meter,
                                saved,
                                thinking: thinking.into_blocks(),
                                io,
                            };
                        }
                        Ok(CliEvent::MessageUsage { usage, start, model }) => {
                            if start {
                                thinking.close();
                            }
                            meter.on_usage(&usage, start, model.as_deref());
                            match max_cost_usd {
                                Some(max) if meter.estimate_usd() > max => Some(InterruptCause::CostLimit),
                                _ => None,
                            }
                        }
                        Ok(CliEvent::SystemInit { session_id, .. }) => {
                            cli_session_id = Some(session_id);
                            None
                        }
                        Ok(CliEvent::Assistant { uuid, tool_uses, .. }) => {
                            if uuid.is_some() {
                                last_message.clone_from(&uuid);
                                last_entry = uuid;
                            }
                            for call in tool_uses {
                                let Some(name) = external_prefix.as_deref().and_then(|p| call.name.strip_prefix(p)) else {
                                    continue;
                                };
                                awaiting.push(call.id.clone());
                                calls.push(ToolCall { id: call.id, name: name.to_owned(), input: call.input });
                            }
                            None
                        }
                        Ok(CliEvent::User { tool_results, uuid }) => {
                            awaiting.retain(|id| !tool_results.contains(id));
                            if uuid.is_some() {
                                last_entry = uuid;
                            }
                            None
                        }
                        Ok(CliEvent::ApiRetry { attempt, max_retries, error_status, .. }) => {
                            tracing::info!(attempt, max_retries, ?error_status, "the CLI is retrying an upstream call");
                            None
                        }
                        Ok(CliEvent::ControlResponse { request_id, success, error }) => {
                            if !success {
                                tracing::warn!(%request_id, ?error, "control request failed");
                            }
                            None
                        }
                        Ok(CliEvent::Unknown { kind }) => {
                            tracing::debug!(%kind, "ignoring an unknown line type");
                            None
                        }
                        Ok(_) => None,
                        Err(e) => {
                            tracing::warn!(error = %e, "ignoring a line that is not valid stream-json");
                            None
                        }
                        };
                        flushed.or(cause)
                    }
                }
            }
            () = exited(&mut exit) => broken!("the child exited mid-turn".into()),
            () = sink_closed => Some(InterruptCause::Cancelled),
            () = cut_now => Some(InterruptCause::Cut),
            () = sleep_until(idle_deadline), if interrupted.is_none() => Some(InterruptCause::IdleTimeout),
            () = sleep_until(interrupt_deadline.unwrap_or_else(Instant::now)), if interrupt_deadline.is_some() => {
                broken!("the interrupt was not acknowledged in time".into());
            }
        };
        if let (Some(cause), None) = (cause, interrupted) {
            interrupted = Some(cause);
            set_aside = cause == InterruptCause::Cut && !awaiting.is_empty();
            interrupt_deadline = Some(Instant::now() + limits.interrupt_timeout);
            tracing::debug!(?cause, "interrupting the turn");
            let line = protocol::control_request_line(&request_id, ControlRequest::Interrupt);
            if let Err(e) = io.write_line(&line).await {
                broken!(e.to_string());
            }
        }
    }
}

/// Sends a turn event to the caller; a caller that is gone, or takes nothing for `timeout`,
/// cancels the turn. Nothing is sent once the turn is being interrupted.
async fn forward(
    sink: &Option<mpsc::Sender<TurnEvent>>,
    interrupted: Option<InterruptCause>,
    event: TurnEvent,
    timeout: Duration,
) -> Option<InterruptCause> {
    match (sink, interrupted) {
        (Some(s), None) => s
            .send_timeout(event, timeout)
            .await
            .err()
            .map(|_| InterruptCause::Cancelled),
        _ => None,
    }
}

/// Whether a line ends the message being streamed (or shows that it ended).
fn ends_message(parsed: &Result<CliEvent, protocol::ProtocolError>) -> bool {
    matches!(
        parsed,
        Ok(CliEvent::MessageUsage { .. } | CliEvent::User { .. } | CliEvent::Result(_))
    ) || matches!(parsed, Ok(CliEvent::StreamOther { event_type }) if event_type == "message_delta" || event_type == "message_stop")
}

/// Part of a start-up failure's reason when `--resume` found no transcript for its session
/// (the CLI prints "No conversation found with session ID" and exits).
pub(crate) const NO_TRANSCRIPT: &str = "no saved transcript to resume";

/// Sends `initialize` and waits for its answer: proof that the process is up and speaking
/// the protocol.
pub(crate) async fn handshake(
    io: &mut ChildIo,
    exit: &mut watch::Receiver<Option<ExitInfo>>,
    timeout: Duration,
) -> Result<(), String> {
    const ID: &str = "initialize";
    io.write_line(&protocol::control_request_line(
        ID,
        ControlRequest::Initialize,
    ))
    .await
    .map_err(|e| e.to_string())?;
    let wait = async {
        loop {
            match io.next_line().await {
                None => return Err("the child closed its output during start-up".to_owned()),
                Some(Err(e)) => return Err(e.to_string()),
                Some(Ok(line)) => match protocol::parse_line(&line) {
                    Ok(CliEvent::ControlResponse {
                        request_id,
                        success,
                        error,
                    }) if request_id == ID => {
                        return if success {
                            Ok(())
                        } else {
                            Err(format!("initialize failed: {}", error.unwrap_or_default()))
                        };
                    }
                    // The CLI gave up before the handshake (it exits next).
                    Ok(CliEvent::Result(r)) if r.is_error => {
                        let errors = r.errors.join("; ");
                        return Err(if errors.contains("No conversation found") {
                            format!("{NO_TRANSCRIPT}: {errors}")
                        } else {
                            format!(
                                "the CLI failed at start-up: {}",
                                if errors.is_empty() { r.subtype } else { errors }
                            )
                        });
                    }
                    _ => {}
                },
            }
        }
    };
    let outcome = tokio::select! {
        r = wait => r,
        () = exited(exit) => Err(String::new()),
        () = tokio::time::sleep(timeout) => Err(format!("no answer to initialize within {timeout:?}")),
    };
    match outcome {
        Err(e) if e.is_empty() => {
            let info = (*exit.borrow()).map(|i| i.to_string()).unwrap_or_default();
            Err(format!("the child exited during start-up ({info})"))
        }
        other => other,
    }
}

/// Resolves once the child has exited (or its waiter is gone); holds no borrow when pending.
async fn exited(exit: &mut watch::Receiver<Option<ExitInfo>>) {
    let _ = exit.wait_for(Option::is_some).await;
}
