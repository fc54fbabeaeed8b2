//! Prometheus metrics (`prometheus-client`): HTTP requests and latency, time to first token,
//! tokens and cost by key label, and the pool's snapshot (workers by state, queue depth,
//! sessions, restarts, evictions, ...) read at scrape time.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use claude_pool_actors::PoolSnapshot;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyDirection {
    key: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Key {
    key: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProfileLabel {
    profile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct State {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Event {
    event: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// All metrics of the server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RouteStatus, Counter>,
    latency: Family<Route, Histogram, fn() -> Histogram>,
    ttft: Histogram,
    queue_wait: Histogram,
    tokens: Family<KeyDirection, Counter>,
    key_turns: Family<Key, Counter>,
    cost: Family<Key, Counter<f64, AtomicU64>>,
    workers: Family<State, Gauge>,
    queue_depth: Gauge,
    sessions: Gauge,
    ready: Gauge,
    serving: Gauge,
    parked_turns: Gauge,
    spare_workers: Gauge,
    parked_set_aside: Gauge,
    parked_releases: Family<Event, Counter>,
    last_releases: Mutex<std::collections::HashMap<&'static str, u64>>,
    start_failures: Family<ProfileLabel, Gauge>,
    pool_events: Family<Event, Counter>,
    last: Mutex<PoolSnapshot>,
    /// Conversations kept in the store, by outcome (`kept`, `failed`, `too_large`), and bytes.
    kept: Family<Event, Counter>,
    kept_bytes: Counter,
    last_kept: Mutex<[u64; 4]>,
    /// The latest times to first token (seconds), for percentiles on the dashboard.
    recent_ttft: Mutex<std::collections::VecDeque<f64>>,
}

/// Times to first token kept for [`Metrics::ttft_percentiles`].
const RECENT_TTFT: usize = 1000;

/// Percentiles of the latest times to first token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TtftPercentiles {
    /// Median (seconds).
    pub p50: f64,
    /// 99th percentile (seconds).
    pub p99: f64,
    /// Turns they are taken from (at most 1000, the latest).
    pub samples: usize,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("claude_pool");
        let requests = Family::<RouteStatus, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        let latency: Family<Route, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to the response head (streams: to the first event)",
            latency.clone(),
        );
        registry.register(
            "store_call_seconds",
            "Store (SQLite or PostgreSQL) calls by operation and outcome, through the breaker",
            crate::store::timing::STORE_CALLS.clone(),
        );
        let queue_wait = latency_histogram();
        registry.register(
            "queue_wait_seconds",
            "Time a turn waited in the pool's queue for a worker (including a worker started or resumed for it)",
            queue_wait.clone(),
        );
        let ttft = latency_histogram();
        registry.register(
            "time_to_first_token_seconds",
            "Request start to the first text delta",
            ttft.clone(),
        );
        let tokens = Family::<KeyDirection, Counter>::default();
        registry.register(
            "tokens",
            "Tokens by key label and direction",
            tokens.clone(),
        );
        let key_turns = Family::<Key, Counter>::default();
        registry.register(
            "key_turns",
            "Turns that reached a worker, by key label",
            key_turns.clone(),
        );
        let cost = Family::<Key, Counter<f64, AtomicU64>>::default();
        registry.register(
            "cost_usd",
            "Reported cost in USD by key label",
            cost.clone(),
        );
        let workers = Family::<State, Gauge>::default();
        registry.register("workers", "Workers by state", workers.clone());
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Turns waiting for a worker",
            queue_depth.clone(),
        );
        let sessions = Gauge::default();
        registry.register(
            "sessions",
            "Conversations known to the pool",
            sessions.clone(),
        );
        let ready = Gauge::default();
        registry.register("ready", "1 when min_workers are warm", ready.clone());
        let serving = Gauge::default();
        registry.register(
            "serving",
            "1 while the pool can take traffic (readiness, store aside)",
            serving.clone(),
        );
        let spare_workers = Gauge::default();
        registry.register(
            "spare_workers",
            "Fresh workers (no conversation) warm or starting, ready for new conversations",
            spare_workers.clone(),
        );
        let parked_turns = Gauge::default();
        registry.register(
            "parked_turns",
            "Turns waiting for their client's tool results that hold their worker",
            parked_turns.clone(),
        );
        let parked_set_aside = Gauge::default();
        registry.register(
            "parked_turns_set_aside",
            "Turns waiting for their client's tool results that gave their worker up (the results continue their conversation with a new turn)",
            parked_set_aside.clone(),
        );
        let parked_releases = Family::<Event, Counter>::default();
        registry.register(
            "parked_turn_releases",
            "Parked turns that gave their worker up, by cause: pool_full (turns waited for a worker), key_limit (limits.max_parked_turns_per_key), session_moved_on (a new message came instead of the results), cli_moved_on (the CLI stopped waiting)",
            parked_releases.clone(),
        );
        let start_failures = Family::<ProfileLabel, Gauge>::default();
        registry.register(
            "worker_start_failures",
            "Failed worker starts in a row per profile (0 once a worker of it is warm)",
            start_failures.clone(),
        );
        let pool_events = Family::<Event, Counter>::default();
        registry.register(
            "pool_events",
            "Pool events: turns, failures, rejections, timeouts, restarts, evictions, resumes, conversations taken up from the store, conversations lost, recycles, interrupts, spare releases (an idle conversation's worker taken ahead of need for a spare at max_workers)",
            pool_events.clone(),
        );
        let kept = Family::<Event, Counter>::default();
        registry.register(
            "conversation_turns_kept",
            "Completed turns whose transcript was kept in the store, by outcome: kept, failed (store error), too_large (past store.max_conversation_bytes)",
            kept.clone(),
        );
        let kept_bytes = Counter::default();
        registry.register(
            "conversation_bytes_kept",
            "Bytes of conversation transcripts written to the store",
            kept_bytes.clone(),
        );
        Self {
            kept,
            kept_bytes,
            last_kept: Mutex::new([0; 4]),
            registry,
            requests,
            latency,
            ttft,
            queue_wait,
            tokens,
            key_turns,
            cost,
            workers,
            queue_depth,
            sessions,
            ready,
            serving,
            parked_turns,
            spare_workers,
            parked_set_aside,
            parked_releases,
            last_releases: Mutex::default(),
            start_failures,
            pool_events,
            last: Mutex::new(PoolSnapshot::default()),
            recent_ttft: Mutex::new(std::collections::VecDeque::with_capacity(RECENT_TTFT)),
        }
    }

    /// Records one HTTP response.
    pub fn observe_request(&self, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RouteStatus {
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&Route {
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// Folds in what the conversation keeper did since the last call.
    pub fn observe_keeper(&self, stats: &crate::transcripts::KeeperStats) {
        use std::sync::atomic::Ordering::Relaxed;
        let now = [
            stats.kept.load(Relaxed),
            stats.failures.load(Relaxed),
            stats.too_large.load(Relaxed),
            stats.bytes.load(Relaxed),
        ];
        let mut last = self.last_kept.lock().unwrap_or_else(|e| e.into_inner());
        for (i, event) in ["kept", "failed", "too_large"].into_iter().enumerate() {
            self.kept
                .get_or_create(&Event { event })
                .inc_by(now[i].saturating_sub(last[i]));
        }
        self.kept_bytes.inc_by(now[3].saturating_sub(last[3]));
        *last = now;
    }

    /// Sets the turns parked for tool results (holding their worker, set aside) and the
    /// releases so far by cause.
    pub fn set_parked_turns(
        &self,
        holding: usize,
        set_aside: usize,
        releases: &[(&'static str, u64)],
    ) {
        self.parked_turns
            .set(i64::try_from(holding).unwrap_or(i64::MAX));
        self.parked_set_aside
            .set(i64::try_from(set_aside).unwrap_or(i64::MAX));
        let mut last = self.last_releases.lock().unwrap_or_else(|e| e.into_inner());
        for &(event, total) in releases {
            let before = last.insert(event, total).unwrap_or_default();
            self.parked_releases
                .get_or_create(&Event { event })
                .inc_by(total.saturating_sub(before));
        }
    }

    /// Records how long a turn waited for a worker.
    pub fn observe_queue_wait(&self, seconds: f64) {
        self.queue_wait.observe(seconds);
    }

    /// Records a time to first token.
    pub fn observe_ttft(&self, seconds: f64) {
        self.ttft.observe(seconds);
        let mut recent = self.recent_ttft.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == RECENT_TTFT {
            recent.pop_front();
        }
        recent.push_back(seconds);
    }

    /// p50 and p99 of the latest 1000 times to first token (none before the first turn).
    pub fn ttft_percentiles(&self) -> Option<TtftPercentiles> {
        let mut v: Vec<f64> = {
            let recent = self.recent_ttft.lock().unwrap_or_else(|e| e.into_inner());
            recent.iter().copied().collect()
        };
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        // Nearest rank.
        let at = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Some(TtftPercentiles {
            p50: at(0.50),
            p99: at(0.99),
            samples: v.len(),
        })
    }

    /// Records a finished turn's tokens and cost under a key label.
    pub fn observe_turn(&self, key: &str, input: u64, output: u64, cost_usd: f64) {
        for (direction, n) in [("input", input), ("output", output)] {
            self.tokens
                .get_or_create(&KeyDirection {
                    key: key.to_owned(),
                    direction,
                })
                .inc_by(n);
        }
        self.key_turns
            .get_or_create(&Key {
                key: key.to_owned(),
            })
            .inc();
        self.cost
            .get_or_create(&Key {
                key: key.to_owned(),
            })
            .inc_by(cost_usd);
    }

    /// Renders the text exposition, folding in the pool's current snapshot.
    pub fn render(&self, snap: &PoolSnapshot) -> String {
        for (state, n) in [
            ("starting", snap.workers_starting),
            ("idle", snap.workers_idle),
            ("busy", snap.workers_busy),
            ("stopping", snap.workers_stopping),
        ] {
            self.workers.get_or_create(&State { state }).set(n as i64);
        }
        self.queue_depth.set(snap.queue_depth as i64);
        self.spare_workers.set(snap.workers_spare as i64);
        self.sessions.set(snap.sessions as i64);
        self.ready.set(i64::from(snap.ready));
        self.serving.set(i64::from(snap.serving));
        {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            // Profiles that recovered go back to 0; failing ones show their count.
            for t in &last.spawn_troubles {
                self.start_failures
                    .get_or_create(&ProfileLabel {
                        profile: t.profile.clone(),
                    })
                    .set(0);
            }
            for t in &snap.spawn_troubles {
                self.start_failures
                    .get_or_create(&ProfileLabel {
                        profile: t.profile.clone(),
                    })
                    .set(i64::from(t.failures));
            }
            for (event, now, before) in [
                ("turns_started", snap.turns_started, last.turns_started),
                ("turns_failed", snap.turns_failed, last.turns_failed),
                (
                    "queue_rejections",
                    snap.queue_rejections,
                    last.queue_rejections,
                ),
                ("queue_timeouts", snap.queue_timeouts, last.queue_timeouts),
                ("restarts", snap.restarts, last.restarts),
                ("spawn_failures", snap.spawn_failures, last.spawn_failures),
                ("evictions", snap.evictions, last.evictions),
                ("resumes", snap.resumes, last.resumes),
                (
                    "conversations_adopted",
                    snap.conversations_adopted,
                    last.conversations_adopted,
                ),
                (
                    "conversations_lost",
                    snap.conversations_lost,
                    last.conversations_lost,
                ),
                ("recycles", snap.recycles, last.recycles),
                ("spare_releases", snap.spare_releases, last.spare_releases),
                ("interrupts", snap.interrupts, last.interrupts),
            ] {
                self.pool_events
                    .get_or_create(&Event { event })
                    .inc_by(now.saturating_sub(before));
            }
            *last = snap.clone();
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("metrics encoding failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttft_percentiles_come_from_the_latest_thousand_turns() {
        let m = Metrics::new();
        assert_eq!(m.ttft_percentiles(), None);
        for i in 1..=100 {
            m.observe_ttft(f64::from(i) / 1000.0);
        }
        let p = m.ttft_percentiles().unwrap();
        assert_eq!((p.p50, p.p99, p.samples), (0.050, 0.099, 100));
        for _ in 0..RECENT_TTFT {
            m.observe_ttft(2.0);
        }
        let p = m.ttft_percentiles().unwrap();
        assert_eq!((p.p50, p.p99, p.samples), (2.0, 2.0, RECENT_TTFT));
    }

    #[test]
    fn renders_pool_state_and_requests() {
        let m = Metrics::new();
        m.observe_request("/v1/chat/completions", 200, 0.01);
        m.observe_turn("key-abcd", 10, 5, 0.25);
        let snap = PoolSnapshot {
            workers_idle: 3,
            restarts: 2,
            ready: true,
            ..PoolSnapshot::default()
        };
        let text = m.render(&snap);
        assert!(
            text.contains(r#"claude_pool_workers{state="idle"} 3"#),
            "{text}"
        );
        assert!(text.contains(r#"claude_pool_pool_events_total{event="restarts"} 2"#));
        assert!(text.contains(
            r#"claude_pool_http_requests_total{route="/v1/chat/completions",status="200"} 1"#
        ));
        assert!(text.contains(r#"claude_pool_tokens_total{key="key-abcd",direction="output"} 5"#));
        assert!(text.contains(r#"claude_pool_key_turns_total{key="key-abcd"} 1"#));
        assert!(text.contains("claude_pool_ready 1"));
        // Counters only grow: a second render with the same snapshot adds nothing.
        let again = m.render(&snap);
        assert!(again.contains(r#"claude_pool_pool_events_total{event="restarts"} 2"#));
    }
}
