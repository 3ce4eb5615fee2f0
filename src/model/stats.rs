//! Figures math shared by analytics and the storage queries that compute them (the
//! SQLite path finishes percentiles in Rust), kept at the bottom so neither has to
//! import the other.

/// SQLite buckets timestamps into UTC slots of this many seconds, shifted into local
/// time in Rust. Every zone in use today is a whole number of quarter hours from UTC
/// and changes offset on a quarter hour, so a slot never straddles a local hour or day.
pub const SLOT_SECONDS: i64 = 900;

/// Where percentile `p` (0..=1) of `n` sorted values lies: the 0-based offset of the
/// lower of the two closest ranks and how far towards the next one to interpolate.
/// Matches PostgreSQL's `percentile_cont`, so both backends agree.
pub fn percentile_position(n: i64, p: f64) -> Option<(i64, f64)> {
    if n <= 0 || !(0.0..=1.0).contains(&p) {
        return None;
    }
    let position = p * (n - 1) as f64;
    let lower = position.floor();
    Some((lower as i64, position - lower))
}

/// The percentile from the value at the offset `percentile_position` gave and the one
/// after it (absent at the end of the list).
pub fn interpolate(lower: f64, upper: Option<f64>, fraction: f64) -> f64 {
    match upper {
        Some(upper) if fraction > 0.0 => lower + (upper - lower) * fraction,
        _ => lower,
    }
}
