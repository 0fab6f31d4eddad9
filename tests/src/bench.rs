//! What the benchmarks share: figures from samples, in units that suit them.
//! (The benchmarks are plain programs in each lesson's `benches/`; they use
//! the test kit as a dev-dependency.)

use std::time::Duration;

/// The duration that `percent` % of the `sorted` ones do not exceed.
pub fn percentile(sorted: &[Duration], percent: f64) -> Duration {
    let last = sorted.len().saturating_sub(1);
    let at = ((percent / 100.0) * last as f64).round() as usize;
    sorted.get(at).copied().unwrap_or_default()
}

/// A duration in the unit that suits it: `0.150 ms`, `38 ms`, `12.5 s`.
pub fn show(d: Duration) -> String {
    if d < Duration::from_millis(10) {
        format!("{:.3} ms", d.as_secs_f64() * 1e3)
    } else if d < Duration::from_secs(10) {
        format!("{:.0} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}
