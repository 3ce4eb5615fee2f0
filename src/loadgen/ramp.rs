//! `loadgen --ramp-to`: the offered rate stepped up, one fresh run per step, until
//! a step breaks, and the knee: the highest rate at which request→offer p99 stayed
//! within [`KNEE_P99_MS`] with no errors and the server kept up with the arrivals.
//! Pure: the steps and the judgement; the runs themselves are `loadgen::run`'s.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::stats::{Percentile, Report};

/// The knee's latency bound (the brief's and issue 17's definition).
pub const KNEE_P99_MS: f64 = 50.0;
/// A step whose measured throughput falls below this share of its rate did not keep
/// up: requests waited in the generator or the server instead of being served.
pub const KEPT_UP_SHARE: f64 = 0.95;
/// A step where more than this share of offers went to requests that had waited for
/// a consultant to become free ran out of consultants: those requests' waits are the
/// consultant pool's, not the server's, and are not request → offer samples at all
/// (a step where every consultant was busy all along has none, and a p99 of 0).
pub const WAITED_SHARE: f64 = 0.01;
/// Most steps one ramp runs; a typo in `--ramp-step` should not mean a day of runs.
pub const MAX_STEPS: usize = 50;

/// Why a step does not count towards the knee.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Break {
    Latency { p99_ms: f64 },
    Errors { count: u64 },
    FellBehind { throughput_per_sec: f64 },
    ConsultantsRanOut { waited: u64, offers: u64 },
}

impl Break {
    fn describe(&self) -> String {
        match self {
            Break::Latency { p99_ms } => format!("p99 {p99_ms:.1} ms > {KNEE_P99_MS} ms"),
            Break::Errors { count } => format!("{count} errors"),
            Break::FellBehind { throughput_per_sec } => {
                format!("served only {throughput_per_sec:.0} req/s")
            }
            Break::ConsultantsRanOut { waited, offers } => {
                format!("{waited} of {offers} offers waited for a free consultant (raise --consultants)")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RampStep {
    pub rate_per_sec: f64,
    pub throughput_per_sec: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub errors: u64,
    /// What the errors were (the run report's `errors`).
    pub error_kinds: BTreeMap<String, u64>,
    pub server_ms_per_call: Option<f64>,
    /// Offers to a request sent before an idle consultant existed for it, and all
    /// offers measured.
    pub waited_offers: u64,
    pub offers_measured: u64,
    pub distribution: Vec<Percentile>,
    /// `None` when the step held.
    pub breaks: Option<Break>,
}

impl RampStep {
    pub fn from_report(report: &Report) -> RampStep {
        let latency = &report.latencies.request_to_offer;
        let mut step = RampStep {
            rate_per_sec: report.rate_per_sec,
            throughput_per_sec: report.throughput_per_sec,
            p50_ms: latency.p50_ms,
            p90_ms: latency.p90_ms,
            p99_ms: latency.p99_ms,
            p999_ms: latency.p999_ms,
            errors: report.error_count(),
            error_kinds: report.errors.clone(),
            server_ms_per_call: report.cpu.as_ref().and_then(|c| c.server_ms_per_call),
            waited_offers: report.latencies.available_to_offer.count,
            offers_measured: latency.count + report.latencies.available_to_offer.count,
            distribution: report.latencies.request_to_offer_distribution.clone(),
            breaks: None,
        };
        step.breaks = judge(&step);
        step
    }
}

/// The first reason a step breaks, in order of how plainly it shows.
pub fn judge(step: &RampStep) -> Option<Break> {
    if step.errors > 0 {
        return Some(Break::Errors { count: step.errors });
    }
    if step.throughput_per_sec < step.rate_per_sec * KEPT_UP_SHARE {
        return Some(Break::FellBehind {
            throughput_per_sec: step.throughput_per_sec,
        });
    }
    if step.waited_offers as f64 > step.offers_measured as f64 * WAITED_SHARE {
        return Some(Break::ConsultantsRanOut {
            waited: step.waited_offers,
            offers: step.offers_measured,
        });
    }
    if step.p99_ms > KNEE_P99_MS {
        return Some(Break::Latency {
            p99_ms: step.p99_ms,
        });
    }
    None
}

/// The rates of a ramp: `from`, `from + step`, … up to and including `to`.
pub fn rates(from: f64, step: f64, to: f64) -> Result<Vec<f64>, String> {
    if !(from.is_finite() && from > 0.0) {
        return Err("--rate (the ramp's first step) must be positive".into());
    }
    if !(step.is_finite() && step > 0.0) {
        return Err("--ramp-step must be positive".into());
    }
    if !(to.is_finite() && to >= from) {
        return Err("--ramp-to must be at least --rate".into());
    }
    let count = ((to - from) / step + 1e-9).floor() as usize + 1;
    if count > MAX_STEPS {
        return Err(format!(
            "the ramp would take {count} steps; at most {MAX_STEPS} (raise --ramp-step)"
        ));
    }
    Ok((0..count).map(|i| from + i as f64 * step).collect())
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RampReport {
    pub target: String,
    pub backend: String,
    pub steps: Vec<RampStep>,
    /// The highest rate that held, every lower step holding too; `None` when the
    /// first step broke.
    pub knee_per_sec: Option<f64>,
}

impl RampReport {
    pub fn new(target: String, backend: String, steps: Vec<RampStep>) -> RampReport {
        let knee_per_sec = steps
            .iter()
            .take_while(|s| s.breaks.is_none())
            .last()
            .map(|s| s.rate_per_sec);
        RampReport {
            target,
            backend,
            steps,
            knee_per_sec,
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "ramp against {} ({})", self.target, self.backend);
        let _ = writeln!(
            out,
            "\n{:>8} {:>10} {:>9} {:>9} {:>9} {:>9} {:>7} {:>12}  verdict",
            "req/s", "served/s", "p50", "p90", "p99", "p99.9", "errors", "CPU ms/call"
        );
        for s in &self.steps {
            let cpu = s
                .server_ms_per_call
                .map(|ms| format!("{ms:.2}"))
                .unwrap_or_else(|| "—".into());
            let verdict = match &s.breaks {
                None => "holds".to_string(),
                Some(b) => format!("breaks: {}", b.describe()),
            };
            let _ = writeln!(
                out,
                "{:>8.0} {:>10.1} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>7} {:>12}  {verdict}",
                s.rate_per_sec,
                s.throughput_per_sec,
                s.p50_ms,
                s.p90_ms,
                s.p99_ms,
                s.p999_ms,
                s.errors,
                cpu
            );
        }
        let _ = match self.knee_per_sec {
            Some(rate) => writeln!(
                out,
                "\nknee: {rate:.0} req/s (highest rate with request→offer p99 ≤ {KNEE_P99_MS} ms, no errors, all served)"
            ),
            None => writeln!(out, "\nknee: none (the first step already broke)"),
        };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(rate: f64, served: f64, p99: f64, errors: u64) -> RampStep {
        let mut s = RampStep {
            rate_per_sec: rate,
            throughput_per_sec: served,
            p50_ms: p99 / 3.0,
            p90_ms: p99 / 2.0,
            p99_ms: p99,
            p999_ms: p99,
            errors,
            error_kinds: BTreeMap::new(),
            server_ms_per_call: Some(3.0),
            waited_offers: 0,
            offers_measured: 1000,
            distribution: Vec::new(),
            breaks: None,
        };
        s.breaks = judge(&s);
        s
    }

    #[test]
    fn the_knee_is_the_last_step_of_the_unbroken_run() {
        let report = RampReport::new(
            "t".into(),
            "sqlite".into(),
            vec![
                step(100.0, 100.0, 4.0, 0),
                step(200.0, 199.0, 12.0, 0),
                step(300.0, 298.0, 80.0, 0),
                // Holding again past a break does not move the knee.
                step(400.0, 400.0, 30.0, 0),
            ],
        );
        assert_eq!(report.knee_per_sec, Some(200.0));
        assert_eq!(
            report.steps[2].breaks,
            Some(Break::Latency { p99_ms: 80.0 })
        );
        assert!(report.render().contains("knee: 200 req/s"));
    }

    /// With every consultant busy, offers go to requests that waited for one: the
    /// step has no request → offer samples (p99 0) and must not count as holding.
    #[test]
    fn a_step_that_ran_out_of_consultants_breaks() {
        let mut s = step(600.0, 594.0, 0.0, 0);
        s.waited_offers = 11_000;
        s.offers_measured = 11_000;
        assert_eq!(
            judge(&s),
            Some(Break::ConsultantsRanOut {
                waited: 11_000,
                offers: 11_000
            })
        );
        s.waited_offers = 5;
        assert_eq!(judge(&s), None, "a few waits at a step's start are noise");
    }

    #[test]
    fn errors_and_falling_behind_break_a_step_whatever_its_latency() {
        assert_eq!(
            step(100.0, 100.0, 1.0, 2).breaks,
            Some(Break::Errors { count: 2 })
        );
        assert_eq!(
            step(500.0, 325.0, 1.0, 0).breaks,
            Some(Break::FellBehind {
                throughput_per_sec: 325.0
            })
        );
        assert_eq!(step(500.0, 480.0, 50.0, 0).breaks, None);
        let report = RampReport::new("t".into(), "pg".into(), vec![step(100.0, 90.0, 1.0, 0)]);
        assert_eq!(report.knee_per_sec, None);
    }

    #[test]
    fn rates_include_both_ends_and_refuse_nonsense() {
        assert_eq!(
            rates(100.0, 100.0, 500.0).unwrap(),
            [100.0, 200.0, 300.0, 400.0, 500.0]
        );
        assert_eq!(rates(150.0, 100.0, 400.0).unwrap(), [150.0, 250.0, 350.0]);
        assert_eq!(rates(100.0, 50.0, 100.0).unwrap(), [100.0]);
        assert!(rates(0.0, 100.0, 500.0).is_err());
        assert!(rates(100.0, 0.0, 500.0).is_err());
        assert!(rates(500.0, 100.0, 100.0).is_err());
        assert!(rates(1.0, 1.0, 1000.0).is_err());
    }
}
