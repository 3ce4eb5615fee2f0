//! Latency recording and the report: HdrHistogram underneath, plain numbers out.
//! No I/O here, so the arithmetic is tested on its own.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency a histogram holds; anything slower is clamped (and shows as max).
const MAX_TRACKABLE_NANOS: u64 = 120_000_000_000;
/// Three significant figures: 1 µs resolution at 1 ms, 1 ms at 1 s.
const SIGNIFICANT_FIGURES: u8 = 3;

/// Where the distribution is read: from the median out to the tail, more densely
/// where tails hide (each step towards 100 % is ten times rarer).
pub const DISTRIBUTION_PERCENTILES: [f64; 10] =
    [0.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99, 100.0];

/// The latency below which `percentile` % of the samples fall.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Percentile {
    pub percentile: f64,
    pub ms: f64,
}

/// One latency distribution, in nanoseconds.
pub struct LatencyRecorder {
    histogram: Histogram<u64>,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyRecorder {
    pub fn new() -> LatencyRecorder {
        // The bounds are constants that HdrHistogram accepts; failure is a programming error.
        let histogram = Histogram::new_with_bounds(1, MAX_TRACKABLE_NANOS, SIGNIFICANT_FIGURES)
            .unwrap_or_else(|e| panic!("histogram bounds are valid constants: {e}"));
        LatencyRecorder { histogram }
    }

    pub fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos())
            .unwrap_or(MAX_TRACKABLE_NANOS)
            .clamp(1, MAX_TRACKABLE_NANOS);
        self.histogram.saturating_record(nanos);
    }

    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The latency at each of [`DISTRIBUTION_PERCENTILES`]: HdrHistogram's percentile
    /// distribution, the curve BENCHMARKS.md charts.
    pub fn distribution(&self) -> Vec<Percentile> {
        if self.histogram.is_empty() {
            return Vec::new();
        }
        DISTRIBUTION_PERCENTILES
            .iter()
            .map(|&percentile| Percentile {
                percentile,
                ms: self.histogram.value_at_percentile(percentile) as f64 / 1e6,
            })
            .collect()
    }

    pub fn summary(&self) -> LatencySummary {
        let h = &self.histogram;
        let ms = |nanos: u64| nanos as f64 / 1e6;
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            mean_ms: h.mean() / 1e6,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// The server's own view: its `dispatch_latency_seconds` histogram over the run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct InternalLatency {
    pub count: u64,
    /// Upper bound of the bucket holding the 50th/99th percentile (bucket resolution).
    pub p50_le_ms: Option<f64>,
    pub p99_le_ms: Option<f64>,
    /// Share of dispatches completed within 1, 2 and 5 ms.
    pub within_1ms: Option<f64>,
    pub within_2ms: Option<f64>,
    pub within_5ms: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MemoryReport {
    /// Resident set before any socket was opened, after all were open, at the end.
    pub rss_before_bytes: Option<u64>,
    pub rss_connected_bytes: Option<u64>,
    pub rss_end_bytes: Option<u64>,
    pub sockets: usize,
    /// (connected − before) / sockets.
    pub bytes_per_idle_socket: Option<u64>,
    /// True when the server runs in this process, so the figures include the
    /// generator's own client sockets too.
    pub includes_generator: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Latencies {
    /// POST /api/support/request intended send → offer frame on the consultant's socket.
    pub request_to_offer: LatencySummary,
    /// A consultant's End (of the previous call) sent → offer of a waiting request.
    pub available_to_offer: LatencySummary,
    /// `accept` frame sent → `support_request_accepted` on the requester's socket.
    pub accept_to_requester: LatencySummary,
    /// POST /api/support/request, intended send → 201 received.
    pub request_post: LatencySummary,
    /// How late the generator itself sent requests (actual − intended send time).
    pub generator_lag: LatencySummary,
    /// request → offer at [`DISTRIBUTION_PERCENTILES`].
    pub request_to_offer_distribution: Vec<Percentile>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub target: String,
    pub backend: String,
    pub consultants: usize,
    pub staff: usize,
    pub rate_per_sec: f64,
    pub duration_secs: f64,
    pub hold_ms: u64,
    pub arrivals: String,
    pub requests_sent: u64,
    pub requests_created: u64,
    pub offers: u64,
    pub calls_completed: u64,
    /// Requests created per second over the measured window.
    pub throughput_per_sec: f64,
    pub errors: BTreeMap<String, u64>,
    pub latencies: Latencies,
    pub server_dispatch: BTreeMap<String, InternalLatency>,
    /// The server's event hub over the run, when its `/metrics` could be read.
    pub server_events: Option<StreamReport>,
    /// Where the CPU went, from the scrape before the first request to the one after
    /// the drain; absent without load or when `/metrics` could not be read.
    pub cpu: Option<CpuReport>,
    /// PostgreSQL's count of the statements the run executed, when it keeps one.
    pub statements: Option<StatementsReport>,
    pub memory: MemoryReport,
}

/// Database statements over the same span as [`CpuReport`]: the round trips one call
/// costs, from `pg_stat_statements`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatementsReport {
    pub executed: u64,
    pub per_call: Option<f64>,
    /// The most executed statements, most first, with their executions per call.
    pub most_executed: Vec<StatementShare>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatementShare {
    pub statement: String,
    pub per_call: Option<f64>,
}

impl StatementsReport {
    pub fn new(executed: u64, calls: u64, most: Vec<(String, u64)>) -> StatementsReport {
        let per_call = |n: u64| (calls > 0).then(|| n as f64 / calls as f64);
        StatementsReport {
            executed,
            per_call: per_call(executed),
            most_executed: most
                .into_iter()
                .map(|(statement, n)| StatementShare {
                    statement,
                    per_call: per_call(n),
                })
                .collect(),
        }
    }
}

/// CPU time over the run: what one call (request, offer, accept, end) costs the
/// server, which latency alone does not show until it is too late.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CpuReport {
    /// The server process's user + system CPU (`process_cpu_used_seconds`).
    pub server_seconds: f64,
    /// `server_seconds` per completed call (the run's calls, warm-up included).
    pub server_ms_per_call: Option<f64>,
    /// This process's own CPU over the same span.
    pub generator_seconds: f64,
    /// True when the server runs in this process: then both figures are the same
    /// process, the server's cost with the generator's in it.
    pub includes_generator: bool,
}

impl CpuReport {
    pub fn new(
        server_seconds: f64,
        generator_seconds: f64,
        calls: u64,
        includes_generator: bool,
    ) -> CpuReport {
        CpuReport {
            server_seconds,
            server_ms_per_call: (calls > 0).then(|| server_seconds * 1000.0 / calls as f64),
            generator_seconds,
            includes_generator,
        }
    }
}

/// What the event hub did during the run (differences of its counters). Catch-ups
/// are reads of storage to fill a gap in the stream; many of them mean publishers are
/// late after their commits, and every event behind a gap waited for it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StreamReport {
    pub delivered: u64,
    pub catch_ups: u64,
    pub skipped: u64,
    pub late: u64,
}

impl Report {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The human-readable table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "target {} ({}), {} consultants, {} staff, {:.0} req/s {} for {:.0} s, calls held {} ms",
            self.target,
            self.backend,
            self.consultants,
            self.staff,
            self.rate_per_sec,
            self.arrivals,
            self.duration_secs,
            self.hold_ms
        );
        let _ = writeln!(
            out,
            "sent {} · created {} · offers {} · calls completed {} · throughput {:.1} req/s · errors {}",
            self.requests_sent,
            self.requests_created,
            self.offers,
            self.calls_completed,
            self.throughput_per_sec,
            self.error_count()
        );
        let _ = writeln!(
            out,
            "\n{:<34} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "latency (ms)", "count", "p50", "p90", "p99", "p99.9", "max"
        );
        let rows = [
            ("request → offer", &self.latencies.request_to_offer),
            (
                "consultant available → offer",
                &self.latencies.available_to_offer,
            ),
            (
                "accept → requester notified",
                &self.latencies.accept_to_requester,
            ),
            ("POST /api/support/request", &self.latencies.request_post),
            ("generator send lag", &self.latencies.generator_lag),
        ];
        for (name, s) in rows {
            let _ = writeln!(
                out,
                "{:<34} {:>8} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                name, s.count, s.p50_ms, s.p90_ms, s.p99_ms, s.p999_ms, s.max_ms
            );
        }
        if !self.server_dispatch.is_empty() {
            let _ = writeln!(
                out,
                "\nserver dispatch_latency_seconds (inside the server, bucket resolution)"
            );
            let _ = writeln!(
                out,
                "{:<22} {:>8} {:>10} {:>10} {:>8} {:>8} {:>8}",
                "trigger", "count", "p50 ≤ ms", "p99 ≤ ms", "≤1 ms", "≤2 ms", "≤5 ms"
            );
            for (trigger, i) in &self.server_dispatch {
                let _ = writeln!(
                    out,
                    "{:<22} {:>8} {:>10} {:>10} {:>8} {:>8} {:>8}",
                    trigger,
                    i.count,
                    opt_ms(i.p50_le_ms),
                    opt_ms(i.p99_le_ms),
                    opt_pct(i.within_1ms),
                    opt_pct(i.within_2ms),
                    opt_pct(i.within_5ms)
                );
            }
        }
        if let Some(e) = &self.server_events {
            let _ = writeln!(
                out,
                "\nserver event stream: {} delivered · {} catch-ups · {} ids skipped · {} late",
                e.delivered, e.catch_ups, e.skipped, e.late
            );
        }
        if let Some(c) = &self.cpu {
            let _ = writeln!(
                out,
                "\nCPU: server {:.2} s ({} per call) · generator {:.2} s{}",
                c.server_seconds,
                c.server_ms_per_call
                    .map_or("n/a".to_string(), |ms| format!("{ms:.2} ms")),
                c.generator_seconds,
                if c.includes_generator {
                    " (in-process: one process, so the server's figure includes the generator)"
                } else {
                    ""
                }
            );
        }
        if let Some(s) = &self.statements {
            let _ = writeln!(
                out,
                "statements: {} executed ({} per call, pg_stat_statements)",
                s.executed,
                s.per_call.map_or("n/a".to_string(), |n| format!("{n:.1}"))
            );
            for share in &s.most_executed {
                let _ = writeln!(
                    out,
                    "  {:>6} × {}",
                    share
                        .per_call
                        .map_or("n/a".to_string(), |n| format!("{n:.2}")),
                    share.statement
                );
            }
        }
        let m = &self.memory;
        let _ = writeln!(
            out,
            "\nserver memory: before {} · {} sockets open {} · end {} · per idle socket {}{}",
            opt_mib(m.rss_before_bytes),
            m.sockets,
            opt_mib(m.rss_connected_bytes),
            opt_mib(m.rss_end_bytes),
            m.bytes_per_idle_socket
                .map_or("n/a".to_string(), |b| format!(
                    "{:.1} KiB",
                    b as f64 / 1024.0
                )),
            if m.includes_generator {
                " (in-process: includes the generator's own sockets)"
            } else {
                ""
            }
        );
        if !self.errors.is_empty() {
            let _ = writeln!(out, "\nerrors:");
            for (kind, count) in &self.errors {
                let _ = writeln!(out, "  {count:>8}  {kind}");
            }
        }
        out
    }
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.3}"))
}

fn opt_pct(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{:.2}%", v * 100.0))
}

fn opt_mib(v: Option<u64>) -> String {
    v.map_or("n/a".into(), |b| {
        format!("{:.1} MiB", b as f64 / 1_048_576.0)
    })
}

/// Memory per socket from two resident-set readings; none when either is missing,
/// no socket was opened, or memory went down (the allocator returned pages).
pub fn bytes_per_socket(before: Option<u64>, after: Option<u64>, sockets: usize) -> Option<u64> {
    let (before, after) = (before?, after?);
    if sockets == 0 || after < before {
        return None;
    }
    Some((after - before) / sockets as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut r = LatencyRecorder::new();
        for ms in 1..=1000u64 {
            r.record(Duration::from_millis(ms));
        }
        let s = r.summary();
        assert_eq!(s.count, 1000);
        // Three significant figures: within 0.1% of the exact order statistic.
        assert!((s.p50_ms - 500.0).abs() <= 0.5, "{s:?}");
        assert!((s.p90_ms - 900.0).abs() <= 0.9, "{s:?}");
        assert!((s.p99_ms - 990.0).abs() <= 1.0, "{s:?}");
        assert!((s.max_ms - 1000.0).abs() <= 1.0, "{s:?}");
        assert!((s.mean_ms - 500.5).abs() <= 0.6, "{s:?}");
    }

    #[test]
    fn sub_millisecond_latencies_keep_microsecond_resolution() {
        let mut r = LatencyRecorder::new();
        r.record(Duration::from_micros(250));
        r.record(Duration::from_micros(1_750));
        let s = r.summary();
        assert!((s.p50_ms - 0.250).abs() < 0.001, "{s:?}");
        assert!((s.max_ms - 1.750).abs() < 0.002, "{s:?}");
    }

    #[test]
    fn empty_and_extreme_values_do_not_panic() {
        let mut r = LatencyRecorder::new();
        assert_eq!(r.summary(), LatencySummary::default());
        r.record(Duration::ZERO);
        r.record(Duration::from_secs(10_000));
        let s = r.summary();
        assert_eq!(s.count, 2);
        assert!(
            s.max_ms >= 119_000.0,
            "clamped to the trackable maximum: {s:?}"
        );
    }

    #[test]
    fn cpu_per_call_is_the_server_time_over_the_calls() {
        let cpu = CpuReport::new(6.2, 3.0, 1000, true);
        assert_eq!(cpu.server_ms_per_call, Some(6.2));
        assert_eq!(CpuReport::new(1.0, 1.0, 0, false).server_ms_per_call, None);
    }

    #[test]
    fn per_socket_memory() {
        assert_eq!(bytes_per_socket(Some(1000), Some(11_000), 10), Some(1000));
        assert_eq!(bytes_per_socket(Some(1000), Some(900), 10), None);
        assert_eq!(bytes_per_socket(None, Some(900), 10), None);
        assert_eq!(bytes_per_socket(Some(1), Some(2), 0), None);
    }

    #[test]
    fn the_table_names_every_figure() {
        let mut report = Report {
            target: "http://127.0.0.1:1".into(),
            backend: "sqlite".into(),
            ..Report::default()
        };
        report.errors.insert("http 503 unavailable".into(), 3);
        report.cpu = Some(CpuReport::new(2.5, 1.0, 1000, false));
        let table = report.render();
        for needle in [
            "request → offer",
            "consultant available → offer",
            "accept → requester notified",
            "POST /api/support/request",
            "server memory",
            "CPU: server 2.50 s (2.50 ms per call)",
            "http 503 unavailable",
        ] {
            assert!(table.contains(needle), "{needle} missing from\n{table}");
        }
        assert_eq!(report.error_count(), 3);
    }
}
