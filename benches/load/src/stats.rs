//! Latency histograms, error counts and the report of one run.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Measurements of one run, merged from every client.
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    ttft: Histogram<u64>,
    total: Histogram<u64>,
    /// Errors by kind (HTTP status, error code, transport).
    pub(crate) errors: BTreeMap<String, u64>,
    /// Turns that completed.
    pub(crate) ok: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            ttft: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
            total: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
            errors: BTreeMap::new(),
            ok: 0,
        }
    }
}

impl Recorder {
    /// One completed turn.
    pub(crate) fn record(&mut self, ttft: Duration, total: Duration) {
        self.ok += 1;
        let _ = self.ttft.record((ttft.as_micros() as u64).max(1));
        let _ = self.total.record((total.as_micros() as u64).max(1));
    }

    /// One failed turn.
    pub(crate) fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_default() += 1;
    }

    /// Adds another recorder's data.
    pub(crate) fn merge(&mut self, other: &Recorder) {
        let _ = self.ttft.add(&other.ttft);
        let _ = self.total.add(&other.total);
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        self.ok += other.ok;
    }

    /// The summary.
    pub(crate) fn summary(&self) -> (Percentiles, Percentiles) {
        (Percentiles::of(&self.ttft), Percentiles::of(&self.total))
    }
}

/// Percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub(crate) max: f64,
    /// Mean.
    pub(crate) mean: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// Memory and descriptors of a process, from /proc.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct ProcSample {
    /// Resident memory in MiB.
    pub(crate) rss_mb: f64,
    /// Open file descriptors.
    pub(crate) fds: u64,
}

impl ProcSample {
    /// Reads /proc/<pid>; `None` if the process is gone.
    pub(crate) fn read(pid: u32) -> Option<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let rss_kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_default();
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
        Some(Self {
            rss_mb: rss_kb / 1024.0,
            fds,
        })
    }
}

/// The report of one run (printed as a table and written as JSON).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    /// A free-form label (e.g. "fake/gateway").
    pub(crate) label: String,
    /// gateway, direct or spawn-per-request.
    pub(crate) mode: String,
    /// Concurrent clients.
    pub(crate) concurrency: usize,
    /// Turns attempted.
    pub(crate) requests: u64,
    /// Turns completed.
    pub(crate) ok: u64,
    /// Errors by kind.
    pub(crate) errors: BTreeMap<String, u64>,
    /// Wall time of the run, seconds.
    pub(crate) seconds: f64,
    /// Completed turns per second.
    pub(crate) turns_per_sec: f64,
    /// Time to first token, ms.
    pub(crate) ttft_ms: Percentiles,
    /// Total latency, ms.
    pub(crate) total_ms: Percentiles,
    /// Server before the run.
    pub(crate) server_before: Option<ProcSample>,
    /// Server peak during the run.
    pub(crate) server_peak: Option<ProcSample>,
    /// Server after the run.
    pub(crate) server_after: Option<ProcSample>,
}

impl Report {
    /// A human-readable table.
    pub(crate) fn table(&self) -> String {
        let mut s = format!(
            "{} ({}, concurrency {}): {} ok / {} requests in {:.2}s = {:.1} turns/s\n",
            self.label,
            self.mode,
            self.concurrency,
            self.ok,
            self.requests,
            self.seconds,
            self.turns_per_sec
        );
        s.push_str("            p50 ms    p90 ms    p99 ms    max ms\n");
        for (name, p) in [("ttft", self.ttft_ms), ("total", self.total_ms)] {
            s.push_str(&format!(
                "  {name:<7} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n",
                p.p50, p.p90, p.p99, p.max
            ));
        }
        if !self.errors.is_empty() {
            s.push_str(&format!("  errors: {:?}\n", self.errors));
        }
        if let (Some(b), Some(p), Some(a)) =
            (self.server_before, self.server_peak, self.server_after)
        {
            s.push_str(&format!(
                "  server rss MiB {:.1} -> peak {:.1} -> {:.1}; fds {} -> peak {} -> {}\n",
                b.rss_mb, p.rss_mb, a.rss_mb, b.fds, p.fds, a.fds
            ));
        }
        s
    }
}
