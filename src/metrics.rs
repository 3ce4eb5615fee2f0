//! Prometheus metrics (the `prometheus` crate): HTTP request counts and latencies,
//! and the dispatcher's own request→offer latency so a load generator's numbers can
//! be checked from the inside.

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_latency: HistogramVec,
    pub dispatch_latency: HistogramVec,
    pub ws_connections: IntGauge,
    pub queue_length: IntGauge,
    /// Stream events handed to subscribers, in order.
    pub events_delivered: IntCounter,
    /// Times the event hub read the stream from storage to fill a gap.
    pub events_caught_up: IntCounter,
    /// Ids the hub gave up waiting for (transactions that rolled back).
    pub events_skipped: IntCounter,
    /// Events that arrived after their id was given up on, delivered late.
    pub events_late: IntCounter,
    /// This process's CPU time, read at each scrape (see [`process_cpu_seconds`]).
    pub cpu_used: Gauge,
}

/// Buckets from 50 µs to 10 s: dispatch decisions live at the bottom, HTTP at the top.
const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("nicehr".into()), None)?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route pattern, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let http_latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "method"],
        )?;
        let dispatch_latency = HistogramVec::new(
            HistogramOpts::new(
                "dispatch_latency_seconds",
                "Time from a dispatch trigger (request stored, consultant freed) to the offer being pushed",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["trigger"],
        )?;
        let ws_connections = IntGauge::new("ws_connections", "Open WebSocket connections")?;
        let queue_length = IntGauge::new("queue_length", "Requests waiting for a consultant")?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_latency.clone()))?;
        registry.register(Box::new(dispatch_latency.clone()))?;
        registry.register(Box::new(ws_connections.clone()))?;
        registry.register(Box::new(queue_length.clone()))?;
        let events_delivered = IntCounter::new(
            "events_delivered_total",
            "Stream events delivered to subscribers",
        )?;
        let events_caught_up = IntCounter::new(
            "events_catch_ups_total",
            "Reads of the event stream from storage to fill a gap",
        )?;
        let events_skipped = IntCounter::new(
            "events_skipped_total",
            "Event ids never committed (rolled back), skipped",
        )?;
        let events_late = IntCounter::new(
            "events_late_total",
            "Events delivered after their id had been skipped",
        )?;
        for counter in [
            &events_delivered,
            &events_caught_up,
            &events_skipped,
            &events_late,
        ] {
            registry.register(Box::new(counter.clone()))?;
        }
        let cpu_used = Gauge::new(
            "process_cpu_used_seconds",
            "User + system CPU time of this process, to the microsecond \
             (process_cpu_seconds_total counts whole seconds)",
        )?;
        registry.register(Box::new(cpu_used.clone()))?;
        // Resident memory, CPU and open descriptors of this process
        // (`nicehr_process_resident_memory_bytes`, …): the load generator reads the
        // server's memory from here when the server runs elsewhere.
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Metrics {
            registry,
            http_requests,
            http_latency,
            dispatch_latency,
            ws_connections,
            queue_length,
            events_delivered,
            events_caught_up,
            events_skipped,
            events_late,
            cpu_used,
        })
    }

    pub fn render(&self) -> String {
        if let Some(seconds) = process_cpu_seconds() {
            self.cpu_used.set(seconds);
        }
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        if encoder
            .encode(&self.registry.gather(), &mut buffer)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// User + system CPU time of this process so far. The load generator divides the
/// server's growth by the calls of a run: at a few milliseconds per call, the whole
/// seconds of `process_cpu_seconds_total` would round a short run to nothing.
pub(crate) fn process_cpu_seconds() -> Option<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes the struct it is given, which lives on this stack.
    let status = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if status != 0 {
        return None;
    }
    // SAFETY: getrusage succeeded, so it filled the struct.
    let usage = unsafe { usage.assume_init() };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}
