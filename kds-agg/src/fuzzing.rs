//! Fuzz harness bodies (built only with `--cfg fuzzing`); the targets in `fuzz/` call these.

use std::time::Instant;

use bytes::Bytes;
use md5::{Digest, Md5};

use crate::{
    Added, Aggregator, AggregatorConfig, Deaggregator, HashRangeFilter, KinesisRecord, MAGIC,
    ProducerRecord,
};

fn check(data: Bytes) {
    let record = KinesisRecord::new(data.clone(), "pk", "1");
    let plain = Deaggregator::new().deaggregate(record.clone());
    let mut visited = Vec::new();
    let visit = Deaggregator::new().visit(&record, |r| visited.push(r.to_user_record()));
    match (&plain, visit) {
        (Ok(all), Ok(v)) => {
            assert_eq!(all.records, visited);
            assert_eq!(
                (v.delivered, v.plain, v.filtered),
                (all.records.len(), all.plain, all.filtered)
            );
        }
        (Err(a), Err(b)) => assert_eq!(a.kind(), b.kind()),
        _ => panic!("visit and deaggregate disagree"),
    }
    let filtered = Deaggregator::new()
        .with_hash_range(0..=u128::MAX / 2, HashRangeFilter::PerRecord)
        .deaggregate(record.clone());
    let whole = Deaggregator::new()
        .with_hash_range(0..=u128::MAX / 2, HashRangeFilter::WholeAggregate)
        .deaggregate(record);
    match (&plain, &filtered, &whole) {
        (Ok(all), Ok(some), Ok(none_or_all)) => {
            assert_eq!(some.records.len() + some.filtered, all.records.len());
            assert!(
                none_or_all.records.is_empty() || none_or_all.records.len() == all.records.len()
            );
            for r in &all.records {
                // Zero copy: user data lies inside the Kinesis record.
                if r.aggregated && !r.data.is_empty() {
                    let start = r.data.as_ptr() as usize;
                    let base = data.as_ptr() as usize;
                    assert!(start >= base && start + r.data.len() <= base + data.len());
                }
            }
        }
        (Err(a), Err(b), Err(c)) => assert!(a.kind() == b.kind() && b.kind() == c.kind()),
        _ => panic!("filters disagree on validity"),
    }
}

/// Raw bytes as Kinesis record data.
pub fn raw(data: &[u8]) {
    check(Bytes::copy_from_slice(data));
}

/// Bytes framed as an aggregate with the magic and a correct MD5, so the protobuf is reached.
pub fn fixed_digest(data: &[u8]) {
    let mut framed = MAGIC.to_vec();
    framed.extend_from_slice(data);
    framed.extend_from_slice(&Md5::digest(data));
    check(Bytes::from(framed));
}

/// Bytes as user records (split by the input), aggregated then deaggregated.
pub fn round_trip(data: &[u8]) {
    let Some((&max_kib, rest)) = data.split_first() else {
        return;
    };
    let config = AggregatorConfig::default().with_max_size(64 + usize::from(max_kib) * 16);
    let mut aggregator = Aggregator::new(config).expect("valid config");
    let now = Instant::now();
    let mut expected = Vec::new();
    let mut produced = Vec::new();
    for (i, chunk) in rest.chunks(7).enumerate() {
        let key = format!("k{}", chunk.first().copied().unwrap_or(0) % 5);
        let mut record = ProducerRecord::new(key, Bytes::copy_from_slice(chunk));
        if i % 3 == 0 {
            record = record.with_explicit_hash_key(u128::from(chunk.len() as u64) << 100);
        }
        match aggregator.add(&record, now) {
            Added::Buffered => {}
            Added::Ready(a) => produced.push(a),
            Added::TooLarge { flushed } => {
                produced.extend(flushed);
                produced.push(crate::Aggregate {
                    partition_key: record.partition_key.clone(),
                    explicit_hash_key: record.explicit_hash_key,
                    data: record.data.clone(),
                    user_records: 1,
                });
            }
        }
        expected.push(record);
    }
    produced.extend(aggregator.flush());
    let mut seen = Vec::new();
    for aggregate in produced {
        assert!(aggregate.user_records == 1 || aggregate.data.len() <= config.max_size);
        if aggregate.user_records == 1 {
            // Sent raw. Chunks of at most 7 bytes can never look like an aggregate.
            seen.push((aggregate.partition_key, aggregate.data));
            continue;
        }
        let out = Deaggregator::new()
            .deaggregate(KinesisRecord::new(
                aggregate.data.clone(),
                aggregate.partition_key.clone(),
                "1",
            ))
            .expect("our aggregates deaggregate");
        assert_eq!(out.plain, None);
        for r in out.records {
            seen.push((r.partition_key_lossy().into_owned(), r.data));
        }
    }
    let expected: Vec<(String, Bytes)> = expected
        .into_iter()
        .map(|r| (r.partition_key, r.data))
        .collect();
    assert_eq!(seen, expected);
}
