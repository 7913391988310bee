//! The durable job queue's vocabulary and its retry rule.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::priority::text_enum;

text_enum!(/// Where a job is. A claimed job stays `queued` with a lease until it finishes.
    JobState { Queued = "queued", Done = "done", Dead = "dead" });

/// How long to wait before attempt `attempts + 1`: 30 s doubling to at most an hour, so a
/// relay that is down for hours is retried hourly and nothing is given up for a day.
pub fn backoff_seconds(attempts: i64) -> i64 {
    let exp = attempts.clamp(1, 8) - 1;
    (30_i64 << exp).min(3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff_seconds(1), 30);
        assert_eq!(backoff_seconds(2), 60);
        assert_eq!(backoff_seconds(7), 1920);
        assert_eq!(backoff_seconds(8), 3600);
        assert_eq!(backoff_seconds(50), 3600);
        assert_eq!(backoff_seconds(0), 30);
    }
}
