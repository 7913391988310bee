//! Instants. Stored with microsecond precision in both dialects, so everything that produces
//! "now" rounds to that first; a value read back then equals the value written.

use jiff::Timestamp;

/// Truncates to whole microseconds (the storage precision).
pub fn to_storage_precision(t: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(t.as_microsecond()).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_to_microseconds() {
        let t = Timestamp::from_nanosecond(1_700_000_000_123_456_789).unwrap_or(Timestamp::UNIX_EPOCH);
        assert_eq!(to_storage_precision(t).as_nanosecond(), 1_700_000_000_123_456_000);
    }
}
