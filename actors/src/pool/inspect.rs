//! A close look at the pool for dashboards: every worker (state, conversation, profile, turns,
//! age) and the recent history of worker starts, failed starts and crashes. Asked for on
//! demand ([`super::PoolHandle::inspect`]), so the per-event snapshot stays cheap.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use crate::turn::{Profile, SessionId};
use crate::worker::WorkerId;

/// One worker as the pool sees it.
#[derive(Debug, Clone)]
pub struct WorkerView {
    /// The worker's number in this pool.
    pub id: WorkerId,
    /// Its CLI process, once spawned.
    pub pid: Option<u32>,
    /// `starting`, `idle`, `busy`, `clearing` (handing over with `/clear`) or `stopping`.
    pub state: &'static str,
    /// The conversation it holds or is being started for.
    pub session: Option<SessionId>,
    /// What it was started with (model, credential, system prompt).
    pub profile: Profile,
    /// Turns it has run since it started.
    pub turns: u64,
    /// Time since it was spawned.
    pub age: Duration,
    /// Time since its last turn ended (or since it was spawned).
    pub idle_for: Duration,
}

/// What happened to a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerEventKind {
    /// It became warm.
    Warm,
    /// Its process could not be started or did not become ready.
    StartFailed,
    /// A warm worker exited without being asked to (its running turn, if any, failed).
    Crashed,
}

impl WorkerEventKind {
    /// `warm`, `start_failed` or `crashed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warm => "warm",
            Self::StartFailed => "start_failed",
            Self::Crashed => "crashed",
        }
    }
}

/// One entry of the pool's recent history.
#[derive(Debug, Clone)]
pub struct WorkerEvent {
    /// When it happened.
    pub at: SystemTime,
    /// The worker.
    pub worker: WorkerId,
    /// What happened.
    pub kind: WorkerEventKind,
    /// The reason given (exit status, start-up error); empty for `Warm`.
    pub detail: String,
}

/// The pool, worker by worker, with its recent history (oldest first).
#[derive(Debug, Clone, Default)]
pub struct PoolInspection {
    /// Live workers, by id.
    pub workers: Vec<WorkerView>,
    /// The last [`EVENTS_KEPT`] worker events.
    pub events: Vec<WorkerEvent>,
}

/// Worker events kept for [`PoolInspection::events`].
pub const EVENTS_KEPT: usize = 100;

/// A bounded history of worker events.
#[derive(Debug, Default)]
pub(crate) struct EventLog(VecDeque<WorkerEvent>);

impl EventLog {
    pub(crate) fn push(&mut self, worker: WorkerId, kind: WorkerEventKind, detail: &str) {
        if self.0.len() == EVENTS_KEPT {
            self.0.pop_front();
        }
        // A reason can be long (a child's stderr): keep its start.
        let detail: String = detail.chars().take(300).collect();
        self.0.push_back(WorkerEvent {
            at: SystemTime::now(),
            worker,
            kind,
            detail,
        });
    }

    pub(crate) fn to_vec(&self) -> Vec<WorkerEvent> {
        self.0.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_keeps_the_newest_events_and_short_reasons() {
        let mut log = EventLog::default();
        for id in 0..(EVENTS_KEPT as u64 + 5) {
            log.push(id, WorkerEventKind::Crashed, &"x".repeat(1000));
        }
        let events = log.to_vec();
        assert_eq!(events.len(), EVENTS_KEPT);
        assert_eq!(events[0].worker, 5);
        assert_eq!(events.last().unwrap().worker, EVENTS_KEPT as u64 + 4);
        assert_eq!(events[0].detail.len(), 300);
        assert_eq!(WorkerEventKind::StartFailed.as_str(), "start_failed");
    }
}
