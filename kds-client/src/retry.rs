//! Retry policies: how often an operation is retried and how long to wait between attempts
//! (full-jitter exponential backoff, the connector's knobs and defaults).

use std::time::Duration;

/// How an operation is retried: at most `max_retries` retries after the first attempt, waiting
/// a uniformly random time in `[0, min(max, base × exponential_constant^retry))` before each
/// (full jitter, as Flink's `FullJitterBackoff`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The backoff cap of the first retry.
    pub base: Duration,
    /// The largest backoff cap.
    pub max: Duration,
    /// The factor by which the cap grows per retry.
    pub exponential_constant: f64,
}

impl RetryPolicy {
    /// No retries.
    pub const NONE: Self = Self {
        max_retries: 0,
        base: Duration::ZERO,
        max: Duration::ZERO,
        exponential_constant: 1.0,
    };

    /// The connector's defaults for `operation` (Flink's `ConsumerConfigConstants`): GetRecords and
    /// GetShardIterator 3 retries from 300 ms to 1 s; ListShards 10 from 1 s to 5 s;
    /// DescribeStream(Summary) and DescribeStreamConsumer 50 from 2 s to 5 s;
    /// (De)RegisterStreamConsumer 10 from 500 ms to 2 s; SubscribeToShard 10 from 1 s to 2 s;
    /// all growing 1.5× per retry. Other operations take 3 retries from 300 ms to 1 s, and
    /// PutRecords 3 from 100 ms to 1 s (the sink retries failed entries itself).
    pub fn default_for(operation: &str) -> Self {
        let (max_retries, base, max) = match operation {
            "ListShards" => (10, 1000, 5000),
            "DescribeStream" | "DescribeStreamSummary" | "DescribeStreamConsumer" => {
                (50, 2000, 5000)
            }
            "RegisterStreamConsumer" | "DeregisterStreamConsumer" => (10, 500, 2000),
            "SubscribeToShard" => (10, 1000, 2000),
            "PutRecords" | "PutRecord" => (3, 100, 1000),
            _ => (3, 300, 1000),
        };
        Self {
            max_retries,
            base: Duration::from_millis(base),
            max: Duration::from_millis(max),
            exponential_constant: 1.5,
        }
    }

    /// The wait before retry number `retry` (0 for the first retry), given a uniform random
    /// number in `[0, 1)`.
    pub fn backoff(&self, retry: u32, random: f64) -> Duration {
        let growth = self
            .exponential_constant
            .powi(i32::try_from(retry).unwrap_or(i32::MAX));
        let cap = (self.base.as_secs_f64() * growth).min(self.max.as_secs_f64());
        // `min` keeps `max` when the product is NaN (a NaN constant); negatives wait nothing,
        // waits too long for a Duration wait the longest.
        let wait = cap * random.clamp(0.0, 1.0);
        Duration::try_from_secs_f64(wait).unwrap_or(if wait > 0.0 {
            Duration::MAX
        } else {
            Duration::ZERO
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_caps_grow_to_the_maximum() {
        let policy = RetryPolicy::default_for("GetRecords");
        let cap = |retry| policy.backoff(retry, 1.0).as_millis();
        assert_eq!(
            [cap(0), cap(1), cap(2), cap(3), cap(30)],
            [300, 450, 675, 1000, 1000]
        );
        assert_eq!(policy.backoff(1, 0.5), Duration::from_millis(225));
        assert_eq!(policy.backoff(2, 0.0), Duration::ZERO);
        assert_eq!(policy.backoff(u32::MAX, 0.99).as_millis(), 990);
        let odd = RetryPolicy {
            exponential_constant: f64::NAN,
            ..policy
        };
        assert_eq!(odd.backoff(1, 0.5), Duration::from_millis(500));
        let endless = RetryPolicy {
            base: Duration::MAX,
            max: Duration::MAX,
            ..policy
        };
        assert!(endless.backoff(3, 0.9) > Duration::from_secs(1 << 60));
    }

    #[test]
    fn defaults_per_operation() {
        assert_eq!(RetryPolicy::default_for("ListShards").max_retries, 10);
        assert_eq!(
            RetryPolicy::default_for("DescribeStreamSummary").base,
            Duration::from_secs(2)
        );
        assert_eq!(RetryPolicy::default_for("CreateStream").max_retries, 3);
    }
}
