//! Random shapes for the round-trip property tests (test builds only).

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::types::{
    ConsumerArn, ConsumerName, ConsumerStatus, EncryptionType, HashKey, MetricsName, PartitionKey,
    ScalingType, SequenceNumber, ShardFilterType, ShardId, ShardIterator, ShardIteratorType,
    StreamArn, StreamMode, StreamName, StreamStatus, Timestamp,
};

/// splitmix64: small, seedable, good enough to spread test inputs.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub(crate) fn chance(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    fn pick_chars(&mut self, charset: &[char], min: usize, max: usize) -> String {
        let len = min + self.below(max - min + 1);
        (0..len)
            .map(|_| charset[self.below(charset.len())])
            .collect()
    }

    fn name(&mut self) -> String {
        const NAME: &[char] = &['a', 'z', 'A', 'Q', '0', '9', '_', '.', '-'];
        self.pick_chars(NAME, 1, 20)
    }
}

/// Produces random valid values.
pub(crate) trait Generate {
    fn generate(rng: &mut Rng) -> Self;
}

const TEXT: &[char] = &[
    'a',
    'Z',
    '0',
    ' ',
    '"',
    '\\',
    '/',
    '\n',
    '\t',
    '\u{1}',
    '\u{7f}',
    'é',
    '€',
    '\u{1F600}',
];

impl Generate for String {
    fn generate(rng: &mut Rng) -> Self {
        rng.pick_chars(TEXT, 0, 12)
    }
}

impl Generate for Bytes {
    fn generate(rng: &mut Rng) -> Self {
        let len = rng.below(48);
        (0..len)
            .map(|_| rng.next_u64() as u8)
            .collect::<Vec<u8>>()
            .into()
    }
}

impl Generate for bool {
    fn generate(rng: &mut Rng) -> Self {
        rng.chance()
    }
}

impl Generate for i64 {
    fn generate(rng: &mut Rng) -> Self {
        match rng.below(4) {
            0 => Self::MIN,
            1 => Self::MAX,
            2 => (rng.next_u64() % 2000) as Self - 1000,
            _ => rng.next_u64() as Self,
        }
    }
}

impl Generate for i32 {
    fn generate(rng: &mut Rng) -> Self {
        rng.next_u64() as Self
    }
}

impl Generate for Timestamp {
    fn generate(rng: &mut Rng) -> Self {
        Self::from_millis(i64::generate(rng))
    }
}

impl Generate for HashKey {
    fn generate(rng: &mut Rng) -> Self {
        Self(u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64()))
    }
}

impl<T: Generate> Generate for Vec<T> {
    fn generate(rng: &mut Rng) -> Self {
        let len = rng.below(4);
        (0..len).map(|_| T::generate(rng)).collect()
    }
}

impl Generate for BTreeMap<String, String> {
    fn generate(rng: &mut Rng) -> Self {
        let len = rng.below(3);
        (0..len)
            .map(|_| (String::generate(rng), String::generate(rng)))
            .collect()
    }
}

macro_rules! generate_name {
    ($($ty:ty),+) => {$(
        impl Generate for $ty {
            fn generate(rng: &mut Rng) -> Self {
                Self::new(rng.name()).expect("generated names are valid")
            }
        }
    )+};
}

generate_name!(StreamName, ConsumerName, ShardId);

impl Generate for StreamArn {
    fn generate(rng: &mut Rng) -> Self {
        Self::new(format!(
            "arn:aws:kinesis:us-east-1:123456789012:stream/{}",
            rng.name()
        ))
        .expect("generated ARNs are valid")
    }
}

impl Generate for ConsumerArn {
    fn generate(rng: &mut Rng) -> Self {
        Self::new(format!(
            "arn:aws:kinesis:eu-west-1:000000000000:stream/{}/consumer/{}:{}",
            rng.name(),
            rng.name(),
            rng.next_u64() % 10_000_000_000
        ))
        .expect("generated ARNs are valid")
    }
}

impl Generate for PartitionKey {
    fn generate(rng: &mut Rng) -> Self {
        Self::new(rng.pick_chars(TEXT, 1, 20)).expect("generated keys are valid")
    }
}

impl Generate for ShardIterator {
    fn generate(rng: &mut Rng) -> Self {
        Self::new(rng.pick_chars(TEXT, 1, 40)).expect("generated iterators are valid")
    }
}

impl Generate for SequenceNumber {
    fn generate(rng: &mut Rng) -> Self {
        const DIGITS: &[char] = &['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
        let first = DIGITS[1 + rng.below(9)];
        let rest = rng.pick_chars(DIGITS, 0, 60);
        Self::new(format!("{first}{rest}")).expect("generated sequence numbers are valid")
    }
}

macro_rules! generate_enum {
    ($($ty:ty),+) => {$(
        impl Generate for $ty {
            fn generate(rng: &mut Rng) -> Self {
                if rng.below(8) == 0 {
                    Self::Unknown(format!("FUTURE_{}", rng.name()))
                } else {
                    Self::KNOWN[rng.below(Self::KNOWN.len())].clone()
                }
            }
        }
    )+};
}

generate_enum!(
    StreamStatus,
    ConsumerStatus,
    EncryptionType,
    StreamMode,
    ShardIteratorType,
    ScalingType,
    ShardFilterType,
    MetricsName
);
