//! Which subtask of a parallel source reads a shard: Flink's `default` and `uniform` shard
//! assigners, bit for bit, so that a table read by n kds subtasks places its shards as the Flink
//! connector (`flink-connector-kinesis`) would.
//!
//! Java arithmetic throughout: `int` wraps at 32 bits, `%` truncates toward zero, and strings
//! hash by `String.hashCode` over UTF-16 code units. The owner of a shard is
//! `abs(h % n)` (`KinesisDataFetcher.isThisSubtaskShouldSubscribeTo`), where `h` is the assigner's
//! value:
//!
//! - `default` (`DefaultShardAssignerFactory`, `StreamShardHandle`'s cached hash):
//!   `h = 37 * (37 * 17 + hash(stream)) + hash(shard id)`;
//! - `uniform` (`UniformShardAssigner`): `mid = (start + end) / 2` of the shard's hash key
//!   range, `h = (int) floor(mid * n / 2^128) + hash(stream)`.

use crate::error::{Error, ErrorKind};

/// Java's `String.hashCode`: `s[0]*31^(n-1) + … + s[n-1]` over UTF-16 code units, wrapping.
pub fn java_string_hash(text: &str) -> i32 {
    text.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// A shard assigner (`scan.shard-assigner`).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardAssigner {
    /// By the hash of the stream name and shard id.
    Default,
    /// By where the middle of the shard's hash key range lies.
    Uniform,
}

impl ShardAssigner {
    /// The assigner called `name` (`default`, `uniform`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Definition`] for any other name.
    pub fn named(name: &str) -> Result<Self, Error> {
        match name {
            "default" => Ok(Self::Default),
            "uniform" => Ok(Self::Uniform),
            other => Err(Error::new(
                ErrorKind::Definition,
                format!("shard assigner `{other}` is not `default` or `uniform`"),
            )),
        }
    }

    /// The assigner's value for a shard (before `% subtasks`).
    pub fn hash(
        self,
        stream: &str,
        shard_id: &str,
        hash_range: (u128, u128),
        subtasks: usize,
    ) -> i32 {
        match self {
            Self::Default => 37i32
                .wrapping_mul(
                    37i32
                        .wrapping_mul(17)
                        .wrapping_add(java_string_hash(stream)),
                )
                .wrapping_add(java_string_hash(shard_id)),
            Self::Uniform => {
                let (start, end) = hash_range;
                // (start + end) / 2 without overflowing 128 bits.
                let mid = start / 2 + end / 2 + (start % 2 + end % 2) / 2;
                // floor(mid * n / 2^128), exactly: split mid into 64-bit halves.
                let n = subtasks as u128;
                let high = (mid >> 64) * n;
                let low = (mid & u128::from(u64::MAX)) * n;
                let index = (high + (low >> 64)) >> 64;
                // Java's intValue() keeps the low 32 bits.
                (index as u32 as i32).wrapping_add(java_string_hash(stream))
            }
        }
    }

    /// The subtask (of `subtasks`) that reads the shard.
    pub fn subtask(
        self,
        stream: &str,
        shard_id: &str,
        hash_range: (u128, u128),
        subtasks: usize,
    ) -> usize {
        let n = i32::try_from(subtasks.max(1)).unwrap_or(i32::MAX);
        // Java's % truncates toward zero, as Rust's does; abs of the remainder.
        (self.hash(stream, shard_id, hash_range, subtasks) % n).unsigned_abs() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u128 = u128::MAX;

    #[test]
    fn java_string_hashes() {
        // Values of String.hashCode, worked out by hand from s[0]*31^(n-1) + ... + s[n-1].
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("ab"), 97 * 31 + 98);
        assert_eq!(java_string_hash("user_behavior"), 1_561_463_878);
        assert_eq!(java_string_hash("orders"), -1_008_770_331);
        assert_eq!(java_string_hash("shardId-000000000000"), -1_763_766_348);
        // Outside the BMP: a surrogate pair counts as two units (0xD83D, 0xDE00).
        assert_eq!(java_string_hash("\u{1F600}"), 0xD83D * 31 + 0xDE00);
    }

    #[test]
    fn the_default_assigner_places_shards_as_flink_does() {
        // h = 37 * (37 * 17 + 1_561_463_878) + hash(shard id), in wrapping 32-bit arithmetic.
        let h = ShardAssigner::Default.hash("user_behavior", "shardId-000000000000", (0, 0), 2);
        assert_eq!(h, 175_845_563);
        let owners = |shard: &str| -> Vec<usize> {
            [2, 3, 4]
                .iter()
                .map(|&n| ShardAssigner::Default.subtask("user_behavior", shard, (0, 0), n))
                .collect()
        };
        assert_eq!(owners("shardId-000000000000"), [1, 2, 3]);
        assert_eq!(owners("shardId-000000000001"), [0, 0, 0]);
        assert_eq!(owners("shardId-000000000002"), [1, 1, 1]);
        assert_eq!(owners("shardId-000000000003"), [0, 2, 2]);
    }

    #[test]
    fn the_uniform_assigner_splits_the_hash_key_space() {
        // Stream "" (hash 0), three subtasks: the thirds of the key space go to 0, 1, 2.
        let third = MAX / 3;
        for (range, owner) in [
            ((0, 0), 0),
            ((0, third), 0),
            ((third + 1, 2 * third + 1), 1),
            ((2 * third + 2, MAX), 2),
            ((MAX, MAX), 2),
        ] {
            assert_eq!(
                ShardAssigner::Uniform.subtask("", "any", range, 3),
                owner,
                "{range:?}"
            );
        }
        // The stream's hash shifts the index: the lower half of the key space has mid = MAX / 4,
        // floor(mid * 4 / 2^128) = 0, so h = 0 + 1_561_463_878, and 1_561_463_878 % 4 = 2.
        let h = ShardAssigner::Uniform.hash("user_behavior", "any", (0, MAX / 2), 4);
        assert_eq!(h, 1_561_463_878);
        assert_eq!(
            ShardAssigner::Uniform.subtask("user_behavior", "any", (0, MAX / 2), 4),
            2
        );
    }

    #[test]
    fn ownership_follows_java_remainders_of_negative_values() {
        // Flink's own cases for abs(h % n) == i: (0,2) -> 0, (1,2) -> 1, (2,2) -> 0; and a
        // negative hash: -7 % 3 == -1 in Java, so the owner is 1.
        for (h, n, owner) in [(0i32, 2i32, 0u32), (1, 2, 1), (2, 2, 0), (-7, 3, 1)] {
            assert_eq!((h % n).unsigned_abs(), owner);
        }
        assert!(ShardAssigner::named("round-robin").is_err());
        assert_eq!(
            ShardAssigner::named("uniform").unwrap(),
            ShardAssigner::Uniform
        );
    }
}
