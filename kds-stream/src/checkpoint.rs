//! Where a shard's reading stands, as a lease stores it: never LATEST (a LATEST start is pinned
//! to the time reading began), a record with its sub-sequence number, or the shard's end.

use kds_proto::model::StartingPosition;
use kds_proto::types::{SequenceNumber, ShardIteratorType, Timestamp};
use serde::{Deserialize, Serialize};

/// A shard's committed position.
///
/// Restoring reads on from it without a gap and without repeating what was committed: after a
/// plain record with AFTER_SEQUENCE_NUMBER; inside (or at the end of) a KPL aggregate with
/// AT_SEQUENCE_NUMBER, skipping the user records up to the stored sub-sequence number (as the
/// KCL and Flink's `ShardConsumer` do).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "kebab-case")]
pub enum Checkpoint {
    /// Nothing read yet: from the oldest record retained.
    TrimHorizon,
    /// Nothing read yet: from the first record at or after this time (epoch milliseconds). A
    /// LATEST start is stored this way, at the time reading first began, so a restore never
    /// skips what was written in between.
    AtTimestamp {
        /// Epoch milliseconds.
        millis: i64,
    },
    /// Every user record up to this one was handed out and acknowledged.
    Record {
        /// The Kinesis record's sequence number.
        #[serde(with = "sequence_text")]
        sequence_number: SequenceNumber,
        /// The user record's place in its KPL aggregate; `None` for a plain record.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sub_sequence_number: Option<u64>,
    },
    /// The shard is closed and every record was acknowledged: its children may be read.
    ShardEnd,
}

/// Where to read a shard from, and which user records of the first Kinesis record to skip.
#[derive(Clone, Debug, PartialEq)]
pub struct Resume {
    /// The request's starting position.
    pub position: StartingPosition,
    /// Skip the user records of this Kinesis record up to this sub-sequence number (they were
    /// delivered before).
    pub skip: Option<(SequenceNumber, u64)>,
}

impl Checkpoint {
    /// The checkpoint of a start position (LATEST must be pinned first: `None`).
    pub fn of_start(position: &StartingPosition) -> Option<Self> {
        match position.r#type {
            ShardIteratorType::TrimHorizon => Some(Self::TrimHorizon),
            ShardIteratorType::AtTimestamp => position.timestamp.map(|t| Self::AtTimestamp {
                millis: t.as_millis(),
            }),
            _ => None,
        }
    }

    /// Where reading resumes; `None` at the shard's end (nothing left to read).
    pub fn resume(&self) -> Option<Resume> {
        Some(match self {
            Self::TrimHorizon => Resume {
                position: StartingPosition::new(ShardIteratorType::TrimHorizon),
                skip: None,
            },
            Self::AtTimestamp { millis } => Resume {
                position: StartingPosition::at_timestamp(Timestamp::from_millis(*millis)),
                skip: None,
            },
            Self::Record {
                sequence_number,
                sub_sequence_number: None,
            } => Resume {
                position: StartingPosition::after_sequence_number(sequence_number.clone()),
                skip: None,
            },
            Self::Record {
                sequence_number,
                sub_sequence_number: Some(sub),
            } => Resume {
                position: StartingPosition::at_sequence_number(sequence_number.clone()),
                skip: Some((sequence_number.clone(), *sub)),
            },
            Self::ShardEnd => return None,
        })
    }

    /// Whether the shard was read to its end.
    pub fn is_shard_end(&self) -> bool {
        matches!(self, Self::ShardEnd)
    }
}

/// Sequence numbers as their decimal text, checked when read back.
mod sequence_text {
    use kds_proto::types::SequenceNumber;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &SequenceNumber,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(value.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SequenceNumber, D::Error> {
        let text = String::deserialize(d)?;
        SequenceNumber::new(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(text: &str) -> SequenceNumber {
        SequenceNumber::new(text).unwrap()
    }

    #[test]
    fn checkpoints_resume_without_gap_or_repeat() {
        let plain = Checkpoint::Record {
            sequence_number: seq("49590"),
            sub_sequence_number: None,
        };
        let resume = plain.resume().unwrap();
        assert_eq!(
            resume.position.r#type,
            ShardIteratorType::AfterSequenceNumber
        );
        assert_eq!(resume.skip, None);
        let inside = Checkpoint::Record {
            sequence_number: seq("49590"),
            sub_sequence_number: Some(3),
        };
        let resume = inside.resume().unwrap();
        assert_eq!(resume.position.r#type, ShardIteratorType::AtSequenceNumber);
        assert_eq!(resume.position.sequence_number, Some(seq("49590")));
        assert_eq!(resume.skip, Some((seq("49590"), 3)));
        assert_eq!(Checkpoint::ShardEnd.resume(), None);
        let at = Checkpoint::AtTimestamp {
            millis: 1_700_000_000_123,
        };
        assert_eq!(
            at.resume().unwrap().position.timestamp,
            Some(Timestamp::from_millis(1_700_000_000_123))
        );
        assert_eq!(
            Checkpoint::of_start(&StartingPosition::new(ShardIteratorType::Latest)),
            None,
            "LATEST is never stored"
        );
    }

    #[test]
    fn checkpoints_round_trip_through_json_and_bad_numbers_are_refused() {
        for checkpoint in [
            Checkpoint::TrimHorizon,
            Checkpoint::AtTimestamp { millis: -5 },
            Checkpoint::Record {
                sequence_number: seq("1"),
                sub_sequence_number: None,
            },
            Checkpoint::Record {
                sequence_number: seq("49590338271490256608559692538361571095921575989136588898"),
                sub_sequence_number: Some(u64::MAX),
            },
            Checkpoint::ShardEnd,
        ] {
            let text = serde_json::to_string(&checkpoint).unwrap();
            assert_eq!(
                serde_json::from_str::<Checkpoint>(&text).unwrap(),
                checkpoint
            );
        }
        let bad = r#"{"at":"record","sequence_number":"007"}"#;
        let error = serde_json::from_str::<Checkpoint>(bad).unwrap_err();
        assert!(error.to_string().contains("SequenceNumber"), "{error}");
    }
}
