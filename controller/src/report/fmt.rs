//! Durations, offsets and shares as the report writes them.

/// A duration: `850ms`, `12.4s`, `24m 10s`, `1h 5m` (seconds shown below an hour).
pub(crate) fn dur(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if ms < 10_000 {
        let tenths = ms / 100;
        return if tenths.is_multiple_of(10) {
            format!("{}s", tenths / 10)
        } else {
            format!("{}.{}s", tenths / 10, tenths % 10)
        };
    }
    if ms < 60_000 {
        return format!("{}s", ms / 1000);
    }
    let secs = ms / 1000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    match (h, s) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{m}m {s}s"),
        (_, _) if m == 0 && s == 0 => format!("{h}h"),
        (_, 0) => format!("{h}h {m}m"),
        _ => format!("{h}h {m}m {s}s"),
    }
}

/// A signed difference: `+1m 5s`, `-30s`, `0s`.
pub(crate) fn delta(ms: i64) -> String {
    if ms == 0 {
        "0s".into()
    } else if ms > 0 {
        format!("+{}", dur(ms.unsigned_abs()))
    } else {
        format!("-{}", dur(ms.unsigned_abs()))
    }
}

/// `actual - predicted` as a signed difference.
pub(crate) fn diff(actual: u64, predicted: u64) -> String {
    let a = i128::from(actual) - i128::from(predicted);
    delta(i64::try_from(a).unwrap_or(if a > 0 { i64::MAX } else { i64::MIN }))
}

/// An offset from the start: `+1:02:03`.
pub(crate) fn offset(ms: u64) -> String {
    let t = ms / 1000;
    format!("+{}:{:02}:{:02}", t / 3600, (t / 60) % 60, t % 60)
}

/// A share in percent: `96.7%`, or `-` when unknown.
pub(crate) fn pct(p: Option<f64>) -> String {
    match p {
        Some(p) => format!("{p:.1}%"),
        None => "-".into(),
    }
}

/// How a step ended: `0`, `signal KILL`, `unknown: timed out`.
pub(crate) fn exit(e: &crate::journal::ExitRecord) -> String {
    use crate::journal::ExitRecord;
    match e {
        ExitRecord::Code { code } => code.to_string(),
        ExitRecord::Signal { signal } => format!("signal {signal}"),
        ExitRecord::Unknown { reason } => format!("unknown: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(dur(850), "850ms");
        assert_eq!(dur(2_400), "2.4s");
        assert_eq!(dur(2_000), "2s");
        assert_eq!(dur(12_400), "12s");
        assert_eq!(dur(60_000), "1m");
        assert_eq!(dur(24 * 60_000 + 10_999), "24m 10s");
        assert_eq!(dur(3_600_000), "1h");
        assert_eq!(dur(3_900_000), "1h 5m");
        assert_eq!(dur(3_901_000), "1h 5m 1s");
        assert!(!dur(u64::MAX).is_empty());
        assert_eq!(diff(90_000, 30_000), "+1m");
        assert!(diff(0, u64::MAX).starts_with('-'));
        assert_eq!(offset(3_723_000), "+1:02:03");
        assert_eq!(pct(Some(96.66)), "96.7%");
        assert_eq!(pct(None), "-");
    }
}
