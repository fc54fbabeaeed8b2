//! Walking the queue: each queued turn goes to its conversation's worker, an idle fresh one,
//! a new process, or waits while a victim makes room (rules in the parent module's docs and in
//! `victims`).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::victims::FirstQueued;
use super::{Action, Router, SessionSlot};
use crate::child::Conversation;
use crate::pool::WorkerState;
use crate::turn::{Profile, SessionId};
use crate::worker::WorkerId;

/// What [`Router::pump`] knows about the pool while it walks the queue.
struct PumpState {
    /// Sessions with a turn in the queue, with the place of their first one (arrival order).
    queued: FirstQueued,
    /// Sessions whose next turn is blocked this round.
    blocked: HashSet<SessionId>,
    /// Fresh workers on their way (starting or clearing, no conversation), per profile.
    incoming: HashMap<Profile, usize>,
    /// Workers being stopped: each frees a place once gone.
    room_on_the_way: usize,
}
impl Router {
    /// Routes queued turns; see the module docs for the rules.
    pub(crate) fn pump(&mut self, now: Instant, may_spawn: bool, actions: &mut Vec<Action>) {
        let mut ps = PumpState {
            queued: self.first_queued(),
            blocked: HashSet::new(),
            incoming: HashMap::new(),
            room_on_the_way: 0,
        };
        for w in self.workers.values() {
            let on_the_way = w.state == WorkerState::Starting || w.clearing;
            if on_the_way && w.session.is_none() {
                *ps.incoming.entry(w.profile.clone()).or_default() += 1;
            }
            if w.state == WorkerState::Stopping {
                ps.room_on_the_way += 1;
            }
        }
        let mut i = 0;
        while i < self.queue.len() {
            let idle_any = self
                .workers
                .values()
                .any(|w| w.state == WorkerState::Idle && !w.clearing);
            let room = self.live() < self.limits.max_workers;
            if !(idle_any || room && may_spawn) {
                break; // nothing can move until a worker frees up
            }
            if self.queue[i].events.is_closed() {
                self.queue.remove(i); // cancelled while queued
                continue;
            }
            if self.route_one(i, now, may_spawn, &mut ps, actions) {
                continue; // assigned: the queue shrank at `i`
            }
            i += 1;
        }
        self.replenish(now, may_spawn, actions);
    }

    /// Routes the queued turn at `index`; true when it was assigned (removed from the queue).
    fn route_one(
        &mut self,
        index: usize,
        now: Instant,
        may_spawn: bool,
        ps: &mut PumpState,
        actions: &mut Vec<Action>,
    ) -> bool {
        let sid = self.queue[index].turn.session.clone();
        let seq = self.queue[index].seq;
        if ps.blocked.contains(&sid) {
            return false;
        }
        let profile = self.queue[index].turn.profile.clone();
        let session = self
            .sessions
            .entry(sid.clone())
            .or_insert_with(|| SessionSlot {
                worker: None,
                cli_session_id: None,
                cwd: None,
                running: false,
                last_used: now,
                ended: false,
                resume_failures: 0,
            });
        if session.running {
            ps.blocked.insert(sid);
            return false;
        }
        if let Some(w) = session.worker {
            match self.workers.get(&w).map(|s| (s.state, s.clearing)) {
                Some((WorkerState::Idle, false)) => {
                    self.assign(index, w, now, actions);
                    return true;
                }
                Some((WorkerState::Starting | WorkerState::Busy, _)) => {
                    ps.blocked.insert(sid);
                    return false;
                }
                _ => session.worker = None,
            }
        }
        let resume = session.cli_session_id.clone();
        let session_cwd = session.cwd.clone();
        ps.blocked.insert(sid.clone());
        let room = self.live() < self.limits.max_workers;
        if let Some(cli_id) = resume {
            if room {
                if self.can_spawn(may_spawn, &profile, now) {
                    let w = self.new_worker(
                        profile,
                        Some(sid.clone()),
                        session_cwd,
                        Conversation::Resume(cli_id),
                        now,
                        actions,
                    );
                    self.counters.resumes += 1;
                    if let Some(s) = self.sessions.get_mut(&sid) {
                        s.worker = Some(w);
                    }
                }
            } else if ps.room_on_the_way > 0 {
                ps.room_on_the_way -= 1;
            } else if let Some(victim) = self.victim_for(seq, false, now, &ps.queued) {
                // Once gone, the victim's place is this turn's.
                self.evict(victim, actions);
            }
            return false;
        }
        // A new conversation.
        if profile != self.default_profile {
            self.wanted_profiles.insert(profile.clone(), now);
        }
        if let Some(w) = self.idle_lru(|w| w.session.is_none() && w.profile == profile) {
            let slot = self.workers.get_mut(&w).expect("idle worker exists");
            slot.session = Some(sid.clone());
            slot.bound_at = now;
            slot.conversation_turns = 0;
            let cwd = slot.cwd.clone();
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.worker = Some(w);
            }
            self.set_session_cwd(&sid, &cwd, actions);
            ps.blocked.remove(&sid);
            self.assign(index, w, now, actions);
            return true;
        }
        if let Some(n) = ps.incoming.get_mut(&profile).filter(|n| **n > 0) {
            *n -= 1;
        } else if room {
            if self.can_spawn(may_spawn, &profile, now) {
                self.new_worker(profile, None, None, Conversation::Fresh, now, actions);
            }
        } else if ps.room_on_the_way > 0 {
            ps.room_on_the_way -= 1;
        } else if let Some(victim) = self.victim_for(seq, true, now, &ps.queued) {
            self.counters.evictions += 1;
            let same_profile = self.workers[&victim].profile == profile;
            if self.limits.handoff_by_clear && same_profile {
                // Cleared, the worker comes back for this turn (counted as incoming).
                self.release(victim, actions);
            } else {
                // Stopped, it makes room for a fresh worker once it is gone.
                self.stop_worker(victim, actions);
            }
        }
        false
    }

    /// The first queued turn of every conversation with one.
    pub(super) fn first_queued(&self) -> FirstQueued {
        let mut first = FirstQueued::with_capacity(self.queue.len());
        for p in &self.queue {
            first.entry(p.turn.session.clone()).or_insert(p.seq);
        }
        first
    }

    /// Stops a worker to make room, counting an eviction when it held a conversation.
    pub(super) fn evict(&mut self, victim: WorkerId, actions: &mut Vec<Action>) {
        if self.workers[&victim].session.is_some() {
            self.counters.evictions += 1;
        }
        self.stop_worker(victim, actions);
    }

    /// Keeps at least `min_workers` live workers, plus `spare_workers` fresh ones while there
    /// is room (not while draining).
    fn replenish(&mut self, now: Instant, may_spawn: bool, actions: &mut Vec<Action>) {
        if self.draining {
            return;
        }
        let profile = self.default_profile.clone();
        let active = self
            .workers
            .values()
            .filter(|w| w.state != WorkerState::Stopping)
            .count();
        let floor = self.limits.min_workers.min(self.limits.max_workers);
        // Fresh workers of the default profile, started, starting, or being cleared for it.
        let spare = self
            .workers
            .values()
            .filter(|w| {
                w.profile == profile
                    && w.session.is_none()
                    && matches!(w.state, WorkerState::Starting | WorkerState::Idle)
            })
            .count();
        let missing_spares = self.limits.spare_workers.saturating_sub(spare);
        let mut wanted = floor.saturating_sub(active).max(missing_spares);
        while wanted > 0 {
            if self.live() >= self.limits.max_workers || !self.can_spawn(may_spawn, &profile, now) {
                break;
            }
            self.new_worker(
                profile.clone(),
                None,
                None,
                Conversation::Fresh,
                now,
                actions,
            );
            wanted -= 1;
        }
        if wanted > 0
            && missing_spares > 0
            && !self.limits.handoff_by_clear
            && self.can_spawn(may_spawn, &profile, now)
        {
            self.release_for_spare(now, actions);
        }
        self.replenish_wanted_profiles(now, may_spawn, actions);
    }

    /// At `max_workers` with `fresh` handoff, a spare takes the place of the least recently
    /// used idle conversation (its conversation stays resumable): the conversation's worker is
    /// stopped, and once it is gone a fresh process starts in its place, so the next new
    /// conversation finds a warm process instead of waiting for a cold start. Paced: one such
    /// change at a time, none while a process starts or stops (a start costs a CPU core for most
    /// of a second), and none while turns wait for a worker (they take any place that frees
    /// up). With `clear` handoff no spare is needed at the maximum: a newcomer takes an idle
    /// conversation's worker, reset in ~20 ms.
    fn release_for_spare(&mut self, now: Instant, actions: &mut Vec<Action>) {
        let in_flight = self
            .workers
            .values()
            .any(|w| matches!(w.state, WorkerState::Starting | WorkerState::Stopping));
        let waiting = self.queue.iter().any(|p| {
            self.sessions
                .get(&p.turn.session)
                .is_none_or(|s| !s.running && s.worker.is_none())
        });
        if in_flight || waiting {
            return;
        }
        if let Some(victim) = self.victim_ahead_of_need(now, &self.first_queued()) {
            self.counters.spare_releases += 1;
            self.stop_worker(victim, actions);
        }
    }

    /// One fresh spare for each other profile in recent demand, while there is room.
    fn replenish_wanted_profiles(
        &mut self,
        now: Instant,
        may_spawn: bool,
        actions: &mut Vec<Action>,
    ) {
        if self.limits.spare_workers == 0 {
            return;
        }
        self.wanted_profiles
            .retain(|_, at| now.duration_since(*at) < super::PROFILE_SPARE_TTL);
        // The most recently wanted first, and no more than a quarter of the pool: a client
        // that changes its system prompt on every request must not fill the pool with spares.
        let mut wanted: Vec<(Instant, Profile)> = self
            .wanted_profiles
            .iter()
            .map(|(p, at)| (*at, p.clone()))
            .collect();
        wanted.sort_by_key(|w| std::cmp::Reverse(w.0));
        wanted.truncate((self.limits.max_workers / 4).max(1));
        for (_, profile) in wanted {
            let fresh = self
                .workers
                .values()
                .filter(|w| {
                    w.profile == profile
                        && w.session.is_none()
                        && !w.clearing
                        && matches!(w.state, WorkerState::Starting | WorkerState::Idle)
                })
                .count();
            // Fresh workers already promised to queued new conversations are not spares.
            let promised = self
                .queue
                .iter()
                .filter(|p| {
                    p.turn.profile == profile
                        && self
                            .sessions
                            .get(&p.turn.session)
                            .is_none_or(|s| s.worker.is_none() && s.cli_session_id.is_none())
                })
                .count();
            if fresh > promised {
                continue;
            }
            if self.live() >= self.limits.max_workers || !self.can_spawn(may_spawn, &profile, now) {
                break;
            }
            self.new_worker(profile, None, None, Conversation::Fresh, now, actions);
        }
    }
}
