//! Property: whatever is aggregated comes back out, same records, keys and order, and no
//! aggregate exceeds `max_size`.

use std::time::Instant;

use bytes::Bytes;
use kds_agg::*;
use proptest::prelude::*;

fn record() -> impl Strategy<Value = ProducerRecord> {
    (
        prop_oneof!["[a-c]{1,3}", "\\PC{1,12}"],
        proptest::option::weighted(0.3, any::<u128>()),
        proptest::collection::vec(any::<u8>(), 0..400),
    )
        .prop_map(|(key, hash, data)| {
            let record = ProducerRecord::new(key, data);
            match hash {
                Some(h) => record.with_explicit_hash_key(h),
                None => record,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn aggregate_then_deaggregate_is_identity(
        records in proptest::collection::vec(record(), 0..200),
        max_size in 64usize..8192,
        max_count in 1usize..50,
    ) {
        let config = AggregatorConfig::default().with_max_size(max_size).with_max_count(max_count);
        let mut aggregator = Aggregator::new(config).unwrap();
        let now = Instant::now();
        let mut sent = Vec::new();
        for r in &records {
            match aggregator.add(r, now) {
                Added::Buffered => {}
                Added::Ready(a) => sent.push(a),
                Added::TooLarge { flushed } => {
                    sent.extend(flushed);
                    sent.push(Aggregate {
                    partition_key: r.partition_key.clone(),
                    explicit_hash_key: r.explicit_hash_key,
                    data: r.data.clone(),
                    user_records: 1,
                });
                }
            }
        }
        sent.extend(aggregator.flush());

        let mut received: Vec<(String, Option<u128>, Bytes)> = Vec::new();
        for (n, aggregate) in sent.iter().enumerate() {
            prop_assert!(aggregate.user_records <= max_count);
            if aggregate.user_records == 1 {
                // Sent raw, with the record's own key.
                received.push((aggregate.partition_key.clone(), aggregate.explicit_hash_key, aggregate.data.clone()));
                continue;
            }
            prop_assert!(aggregate.data.len() <= max_size, "{} > {max_size}", aggregate.data.len());
            let out = Deaggregator::new()
                .deaggregate(KinesisRecord::new(aggregate.data.clone(), aggregate.partition_key.clone(), n.to_string()))
                .unwrap();
            prop_assert_eq!(out.plain, None);
            prop_assert_eq!(out.records.len(), aggregate.user_records);
            prop_assert_eq!(aggregate.explicit_hash_key, Some(out.records[0].effective_hash_key()));
            for (i, r) in out.records.into_iter().enumerate() {
                prop_assert_eq!(r.sub_sequence_number, i as u64);
                received.push((r.partition_key_lossy().into_owned(), r.explicit_hash_key, r.data));
            }
        }
        let expected: Vec<(String, Option<u128>, Bytes)> = records
            .into_iter()
            .map(|r| (r.partition_key, r.explicit_hash_key, r.data))
            .collect();
        prop_assert_eq!(received, expected);
    }

    #[test]
    fn per_record_filter_partitions_the_aggregate(
        records in proptest::collection::vec(record(), 2..60),
        split in any::<u128>(),
    ) {
        let mut aggregator = Aggregator::new(AggregatorConfig::default().with_max_size(MAX_SIZE_LIMIT)).unwrap();
        for r in &records {
            aggregator.add(r, Instant::now());
        }
        let aggregate = aggregator.flush().unwrap();
        let record = KinesisRecord::new(aggregate.data, "a", "1");
        let low = Deaggregator::new().with_hash_range(0..=split, HashRangeFilter::PerRecord).deaggregate(record.clone()).unwrap();
        let high = match split.checked_add(1) {
            Some(start) => Deaggregator::new().with_hash_range(start..=u128::MAX, HashRangeFilter::PerRecord).deaggregate(record).unwrap().records,
            None => Vec::new(),
        };
        prop_assert_eq!(low.records.len() + high.len(), records.len());
        prop_assert_eq!(low.filtered, high.len());
        let mut subs: Vec<u64> = low.records.iter().chain(&high).map(|r| r.sub_sequence_number).collect();
        subs.sort_unstable();
        prop_assert_eq!(subs, (0..records.len() as u64).collect::<Vec<_>>());
        for r in &low.records {
            prop_assert!(r.effective_hash_key() <= split);
        }
    }
}
