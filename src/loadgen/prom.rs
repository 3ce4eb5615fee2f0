//! Just enough of the Prometheus text format to read the server's own figures back:
//! a gauge, and one histogram's cumulative buckets per label value.

use std::collections::BTreeMap;

use super::stats::InternalLatency;

/// The value of an unlabelled gauge or counter.
pub fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (metric, value) = line.rsplit_once(' ')?;
            (metric == name).then(|| value.parse().ok())?
        })
}

/// Cumulative buckets of histogram `name`, keyed by the value of `label`:
/// `label value → [(le, count)]` in ascending `le` (`+Inf` last).
pub fn histogram_buckets(text: &str, name: &str, label: &str) -> BTreeMap<String, Vec<(f64, u64)>> {
    let prefix = format!("{name}_bucket{{");
    let mut out: BTreeMap<String, Vec<(f64, u64)>> = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Ok(count) = value.trim().parse::<f64>() else {
            continue;
        };
        let mut key = None;
        let mut le = None;
        for pair in labels.split(',') {
            let Some((k, v)) = pair.split_once('=') else {
                continue;
            };
            let v = v.trim_matches('"');
            if k == label {
                key = Some(v.to_string());
            } else if k == "le" {
                le = if v == "+Inf" {
                    Some(f64::INFINITY)
                } else {
                    v.parse().ok()
                };
            }
        }
        if let (Some(key), Some(le)) = (key, le) {
            out.entry(key).or_default().push((le, count as u64));
        }
    }
    for buckets in out.values_mut() {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// What happened between two scrapes: `after − before`, bucket by bucket.
pub fn delta(before: &[(f64, u64)], after: &[(f64, u64)]) -> Vec<(f64, u64)> {
    after
        .iter()
        .map(|(le, count)| {
            let earlier = before.iter().find(|(b, _)| b == le).map_or(0, |(_, c)| *c);
            (*le, count.saturating_sub(earlier))
        })
        .collect()
}

/// Summarises cumulative buckets whose bounds are in seconds.
pub fn summarise(buckets: &[(f64, u64)]) -> InternalLatency {
    let total = buckets.last().map_or(0, |(_, c)| *c);
    if total == 0 {
        return InternalLatency::default();
    }
    let quantile_le = |q: f64| {
        let rank = (q * total as f64).ceil() as u64;
        buckets
            .iter()
            .find(|(_, c)| *c >= rank)
            .map(|(le, _)| le * 1000.0)
            .filter(|ms| ms.is_finite())
    };
    let within = |seconds: f64| {
        buckets
            .iter()
            .rfind(|(le, _)| *le <= seconds + 1e-12)
            .map(|(_, c)| *c as f64 / total as f64)
    };
    InternalLatency {
        count: total,
        p50_le_ms: quantile_le(0.50),
        p99_le_ms: quantile_le(0.99),
        within_1ms: within(0.001),
        within_2ms: within(0.002),
        within_5ms: within(0.005),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = r#"# HELP nicehr_dispatch_latency_seconds Time from a dispatch trigger
# TYPE nicehr_dispatch_latency_seconds histogram
nicehr_dispatch_latency_seconds_bucket{trigger="new_request",le="0.0005"} 60
nicehr_dispatch_latency_seconds_bucket{trigger="new_request",le="0.001"} 90
nicehr_dispatch_latency_seconds_bucket{trigger="new_request",le="0.002"} 99
nicehr_dispatch_latency_seconds_bucket{trigger="new_request",le="0.005"} 100
nicehr_dispatch_latency_seconds_bucket{trigger="new_request",le="+Inf"} 100
nicehr_dispatch_latency_seconds_sum{trigger="new_request"} 0.05
nicehr_dispatch_latency_seconds_count{trigger="new_request"} 100
nicehr_dispatch_latency_seconds_bucket{trigger="consultant_available",le="0.0005"} 1
nicehr_dispatch_latency_seconds_bucket{trigger="consultant_available",le="+Inf"} 2
nicehr_process_resident_memory_bytes 123456
"#;

    #[test]
    fn reads_a_gauge() {
        assert_eq!(
            gauge(SCRAPE, "nicehr_process_resident_memory_bytes"),
            Some(123456.0)
        );
        assert_eq!(gauge(SCRAPE, "nicehr_missing"), None);
    }

    #[test]
    fn reads_histograms_per_label_and_summarises() {
        let all = histogram_buckets(SCRAPE, "nicehr_dispatch_latency_seconds", "trigger");
        assert_eq!(all.len(), 2);
        let new = &all["new_request"];
        assert_eq!(new.len(), 5);
        let s = summarise(new);
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_le_ms, Some(0.5));
        assert_eq!(s.p99_le_ms, Some(2.0));
        assert_eq!(s.within_1ms, Some(0.9));
        assert_eq!(s.within_2ms, Some(0.99));
        assert_eq!(s.within_5ms, Some(1.0));
        // The p99 falls in +Inf: no finite bound to report.
        let freed = summarise(&all["consultant_available"]);
        assert_eq!(freed.p99_le_ms, None);
    }

    #[test]
    fn delta_subtracts_the_earlier_scrape() {
        let before = vec![(0.001, 10), (f64::INFINITY, 12)];
        let after = vec![(0.001, 15), (f64::INFINITY, 20)];
        assert_eq!(delta(&before, &after), vec![(0.001, 5), (f64::INFINITY, 8)]);
        assert_eq!(delta(&[], &after), after);
        assert_eq!(summarise(&[]), InternalLatency::default());
    }
}
