//! The aggregation format against the reference (awslabs/amazon-kinesis-producer
//! `aggregation-format.md`): the golden vector, the deaggregation edge cases, and the
//! aggregator's limits.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kds_agg::*;
use md5::{Digest, Md5};

/// (pk-a, "hello"), (pk-b, "world", EHK 42), (pk-a, "!"), as the aggregators of
/// awslabs/kinesis-aggregation (Python, Node.js) encode it.
const GOLDEN: &str = "f3899ac20a04706b2d610a04706b2d62120234321a0908001a0568656c6c6f1a0b080110001a05776f726c641a0508001a0121cc58be436761fa6b8500be9a596a819a";

fn golden_records() -> Vec<ProducerRecord> {
    vec![
        ProducerRecord::new("pk-a", &b"hello"[..]),
        ProducerRecord::new("pk-b", &b"world"[..]).with_explicit_hash_key(42),
        ProducerRecord::new("pk-a", &b"!"[..]),
    ]
}

fn aggregate_all(records: Vec<ProducerRecord>, config: AggregatorConfig) -> Vec<Aggregate> {
    let mut aggregator = Aggregator::new(config).unwrap();
    let now = Instant::now();
    let mut out = Vec::new();
    for record in records {
        match aggregator.add(&record, now) {
            Added::Buffered => {}
            Added::Ready(a) => out.push(a),
            Added::TooLarge { .. } => panic!("unexpectedly too large: {} bytes", record.data.len()),
        }
    }
    out.extend(aggregator.flush());
    out
}

fn deagg(data: &[u8]) -> Result<Deaggregated, Error> {
    Deaggregator::new().deaggregate(KinesisRecord::new(data.to_vec(), "a", "100"))
}

/// Frames a protobuf body with the magic and its MD5.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(body);
    out.extend_from_slice(&Md5::digest(body));
    out
}

fn hex_frame(body: &str) -> Vec<u8> {
    frame(&hex::decode(body.replace(' ', "")).unwrap())
}

#[test]
fn golden_vector_decodes_and_reencodes_byte_for_byte() {
    let golden = hex::decode(GOLDEN).unwrap();
    assert_eq!(golden.len(), 67);
    let out = deagg(&golden).unwrap();
    assert_eq!(out.plain, None);
    let got: Vec<(String, Option<u128>, &[u8], u64)> = out
        .records
        .iter()
        .map(|r| {
            (
                r.partition_key_lossy().into_owned(),
                r.explicit_hash_key,
                &r.data[..],
                r.sub_sequence_number,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("pk-a".to_owned(), None, &b"hello"[..], 0),
            ("pk-b".to_owned(), Some(42), &b"world"[..], 1),
            ("pk-a".to_owned(), None, &b"!"[..], 2),
        ]
    );
    assert!(
        out.records
            .iter()
            .all(|r| r.aggregated && &*r.sequence_number == "100")
    );

    let aggregates = aggregate_all(golden_records(), AggregatorConfig::default());
    assert_eq!(aggregates.len(), 1);
    assert_eq!(hex::encode(&aggregates[0].data), GOLDEN);
    assert_eq!(aggregates[0].partition_key, "a");
    assert_eq!(aggregates[0].explicit_hash_key, Some(hash_key_of(b"pk-a")));
    assert_eq!(aggregates[0].user_records, 3);
}

#[test]
fn user_data_is_sliced_not_copied() {
    let golden = Bytes::from(hex::decode(GOLDEN).unwrap());
    let out = Deaggregator::new()
        .deaggregate(KinesisRecord::new(golden.clone(), "a", "1"))
        .unwrap();
    let base = golden.as_ptr() as usize;
    for r in &out.records {
        let at = r.data.as_ptr() as usize;
        assert!(at > base && at + r.data.len() <= base + golden.len());
    }
}

// ---- deaggregation edge cases, row by row ------------------------------------------------------

#[test]
fn row_01_magic_and_digest_of_nothing_is_plain() {
    let data = frame(&[]);
    assert_eq!(data.len(), 20);
    assert_eq!(
        deagg(&data).unwrap().plain,
        Some(PlainReason::NotAggregated)
    );
}

#[test]
fn row_02_aggregate_without_records_is_reported() {
    let data = hex_frame("0a 01 61");
    let err = deagg(&data).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::EmptyAggregate);
    assert_eq!(err.record().unwrap().data, Bytes::from(data.clone()));
    assert!(err.to_string().contains("sequence number 100"), "{err}");
}

#[test]
fn row_03_no_explicit_index_means_no_explicit_key() {
    // Table has an EHK, but the record does not point at it (the Python/Node bug returns it).
    let out = deagg(&hex_frame("0a 01 61 12 02 3432 1a 05 0800 1a01 78")).unwrap();
    assert_eq!(out.records[0].explicit_hash_key, None);
    assert_eq!(out.records[0].effective_hash_key(), hash_key_of(b"a"));
}

#[test]
fn row_04_explicit_index_out_of_range_is_reported() {
    let err = deagg(&hex_frame("0a 01 61 1a 07 0800 1005 1a01 78")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ExplicitHashKeyIndexOutOfRange);
}

#[test]
fn row_05_partition_key_index_out_of_range_emits_nothing() {
    // The first record is fine, the second points past the table: nothing is emitted.
    let err = deagg(&hex_frame("0a 01 61 1a 05 0800 1a01 78 1a 05 0801 1a01 79")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PartitionKeyIndexOutOfRange);
    assert!(err.into_record().is_some());
}

#[test]
fn row_06_index_beyond_32_bits_is_out_of_range_not_truncated() {
    // partition_key_index = 2^32 (varint 80 80 80 80 10); the KCL's (int) cast would read 0.
    let err = deagg(&hex_frame("0a 01 61 1a 09 08 8080808010 1a01 78")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PartitionKeyIndexOutOfRange);
}

#[test]
fn row_07_duplicate_table_keys_are_allowed() {
    let out = deagg(&hex_frame("0a 01 61 0a 01 61 1a 05 0801 1a01 78")).unwrap();
    assert_eq!(out.records[0].partition_key_lossy(), "a");
}

#[test]
fn row_08_empty_data_is_fine_missing_data_is_not_an_aggregate() {
    let out = deagg(&hex_frame("0a 01 61 1a 04 0800 1a00")).unwrap();
    assert!(out.records[0].data.is_empty());
    // Missing required `data`: the KCL fails the parse and passes the record through.
    let out = deagg(&hex_frame("0a 01 61 1a 02 0800")).unwrap();
    assert_eq!(out.plain, Some(PlainReason::InvalidProtobuf));
}

#[test]
fn row_09_missing_partition_key_index_is_not_an_aggregate() {
    let out = deagg(&hex_frame("0a 01 61 1a 03 1a01 78")).unwrap();
    assert_eq!(out.plain, Some(PlainReason::InvalidProtobuf));
}

#[test]
fn row_10_digest_mismatch_truncation_or_extra_byte_is_plain() {
    let golden = hex::decode(GOLDEN).unwrap();
    let mut bad = golden.clone();
    bad[66] ^= 1;
    assert_eq!(
        deagg(&bad).unwrap().plain,
        Some(PlainReason::DigestMismatch)
    );
    assert_eq!(
        deagg(&golden[..66]).unwrap().plain,
        Some(PlainReason::DigestMismatch)
    );
    let mut extra = golden.clone();
    extra.push(0);
    let out = deagg(&extra).unwrap();
    assert_eq!(out.plain, Some(PlainReason::DigestMismatch));
    assert_eq!(out.records[0].data.len(), 68, "passed through whole");
    // Trusting digests skips the check (and a mismatch then goes unnoticed).
    let out = Deaggregator::new()
        .trust_digests()
        .deaggregate(KinesisRecord::new(bad, "a", "1"))
        .unwrap();
    assert_eq!(out.records.len(), 3);
}

#[test]
fn row_11_binary_record_with_the_magic_is_plain() {
    let mut data = MAGIC.to_vec();
    data.extend_from_slice(&[7u8; 40]);
    let out = deagg(&data).unwrap();
    assert_eq!(out.plain, Some(PlainReason::DigestMismatch));
    assert!(!out.records[0].aggregated);
    assert_eq!(out.records[0].sub_sequence_number, 0);
}

#[test]
fn row_12_13_garbage_protobuf_with_valid_digest_is_plain() {
    assert_eq!(
        deagg(&frame(&[0xFF; 8])).unwrap().plain,
        Some(PlainReason::InvalidProtobuf)
    );
    let mut body = hex::decode("0a01611a0508001a0178").unwrap();
    body.push(0xFF);
    assert_eq!(
        deagg(&frame(&body)).unwrap().plain,
        Some(PlainReason::InvalidProtobuf)
    );
}

#[test]
fn row_14_unknown_fields_groups_and_tags_are_handled() {
    // Unknown field 9 (varint), a group (field 9, start 4b / end 4c), and a tag on the record.
    let out = deagg(&hex_frame(
        "48 01 4b 4c 0a 01 61 1a 0e 0800 1a01 78 22 07 0a 01 6b 12 02 7676",
    ))
    .unwrap();
    let record = &out.records[0];
    assert_eq!(&record.data[..], b"x");
    assert_eq!(record.tags.len(), 1);
    assert_eq!(&record.tags[0].key[..], b"k");
    assert_eq!(record.tags[0].value.as_deref(), Some(&b"vv"[..]));
}

#[test]
fn row_15_tag_without_key_is_not_an_aggregate() {
    // proto2 `required string key` missing: the KCL's parse fails, so the record passes through.
    let out = deagg(&hex_frame("0a 01 61 1a 0b 0800 1a01 78 22 04 12 02 7676")).unwrap();
    assert_eq!(out.plain, Some(PlainReason::InvalidProtobuf));
}

#[test]
fn row_16_repeated_scalar_last_wins() {
    let out = deagg(&hex_frame("0a 01 61 1a 08 0800 1a01 78 1a01 79")).unwrap();
    assert_eq!(&out.records[0].data[..], b"y");
}

#[test]
fn row_17_records_before_tables() {
    let out = deagg(&hex_frame("1a 05 0800 1a01 78 0a 01 61")).unwrap();
    assert_eq!(out.records[0].partition_key_lossy(), "a");
}

#[test]
fn row_18_invalid_utf8_key_is_kept_as_bytes() {
    let out = deagg(&hex_frame("0a 02 ff61 1a 05 0800 1a01 78")).unwrap();
    let record = &out.records[0];
    assert_eq!(&record.partition_key[..], [0xFF, 0x61]);
    assert_eq!(record.partition_key_lossy(), "\u{FFFD}a");
    assert_eq!(record.effective_hash_key(), hash_key_of(&[0xFF, 0x61]));
}

#[test]
fn row_19_explicit_hash_key_must_be_a_128_bit_decimal() {
    for ehk in [
        "2d31",
        "3432a0",
        "",
        "333430323832333636393230393338343633343633333734363037343331373638323131343536",
    ] {
        // "-1", "42 ", "" and 2^128.
        let len = ehk.len() / 2;
        let body = format!("0a 01 61 12 {len:02x} {ehk} 1a 07 0800 1000 1a01 78");
        let err = deagg(&hex_frame(&body)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidExplicitHashKey, "{ehk}");
    }
    let max = "340282366920938463463374607431768211455";
    let body = format!(
        "0a 01 61 12 27 {} 1a 07 0800 1000 1a01 78",
        hex::encode(max)
    );
    assert_eq!(
        deagg(&hex_frame(&body)).unwrap().records[0].explicit_hash_key,
        Some(u128::MAX)
    );
}

#[test]
fn row_20_hash_range_filter_modes() {
    // Two records: EHK 10 (in range 0..=100) and EHK 1000 (out of it).
    let body = "0a 01 61 12 02 3130 12 04 31303030 1a 07 0800 1000 1a01 78 1a 07 0800 1001 1a01 79";
    let data = Bytes::from(hex_frame(body));
    let record = KinesisRecord::new(data, "a", "7");
    let per_record = Deaggregator::new()
        .with_hash_range(0..=100, HashRangeFilter::PerRecord)
        .deaggregate(record.clone())
        .unwrap();
    assert_eq!(per_record.records.len(), 1);
    assert_eq!(&per_record.records[0].data[..], b"x");
    assert_eq!(per_record.filtered, 1);
    let whole = Deaggregator::new()
        .with_hash_range(0..=100, HashRangeFilter::WholeAggregate)
        .deaggregate(record.clone())
        .unwrap();
    assert!(whole.records.is_empty());
    assert_eq!(whole.filtered, 2);
    // Sub-sequence numbers stay the position in the aggregate.
    let high = Deaggregator::new()
        .with_hash_range(101..=u128::MAX, HashRangeFilter::PerRecord)
        .deaggregate(record)
        .unwrap();
    assert_eq!(high.records[0].sub_sequence_number, 1);
}

#[test]
fn row_21_many_records_and_varint_growth() {
    // 20,000 records over 16,500 distinct keys: key indexes need three-byte varints.
    let records: Vec<ProducerRecord> = (0..20_000)
        .map(|i| ProducerRecord::new(format!("{}", i % 16_500), vec![(i % 251) as u8; i % 3]))
        .collect();
    let config = AggregatorConfig::default().with_max_size(MAX_SIZE_LIMIT);
    let aggregates = aggregate_all(records.clone(), config);
    assert_eq!(aggregates.len(), 1);
    let out = deagg(&aggregates[0].data).unwrap();
    assert_eq!(out.records.len(), 20_000);
    for (i, (got, want)) in out.records.iter().zip(&records).enumerate() {
        assert_eq!(got.partition_key_lossy(), want.partition_key);
        assert_eq!(got.data, want.data);
        assert_eq!(got.sub_sequence_number, i as u64);
    }
}

#[test]
fn row_22_size_limit_is_exact() {
    // Find the data length that makes a two-record aggregate exactly max_size.
    let max_size = 1000;
    let config = AggregatorConfig::default().with_max_size(max_size);
    // Whether a second record of `len` bytes joins the first one's aggregate.
    let fits = |len: usize| {
        let mut aggregator = Aggregator::new(config).unwrap();
        let now = Instant::now();
        assert_eq!(
            aggregator.add(&ProducerRecord::new("k", vec![1u8; 10]), now),
            Added::Buffered
        );
        aggregator.add(&ProducerRecord::new("k", vec![2u8; len]), now) == Added::Buffered
    };
    let largest = (0..max_size).rev().find(|&len| fits(len)).unwrap();
    let aggregates = aggregate_all(
        vec![
            ProducerRecord::new("k", vec![1u8; 10]),
            ProducerRecord::new("k", vec![2u8; largest]),
        ],
        config,
    );
    assert_eq!(
        aggregates[0].data.len(),
        max_size,
        "accurate == max is accepted"
    );
    assert!(!fits(largest + 1), "max + 1 starts a new aggregate");

    // A record too large to aggregate is sent alone, after what was buffered before it.
    let mut aggregator = Aggregator::new(config).unwrap();
    let big = ProducerRecord::new("k", vec![0u8; max_size]);
    assert_eq!(
        aggregator.add(&big, Instant::now()),
        Added::TooLarge { flushed: None }
    );
    let small = ProducerRecord::new("k", &b"first"[..]);
    aggregator.add(&small, Instant::now());
    let Added::TooLarge {
        flushed: Some(before),
    } = aggregator.add(&big, Instant::now())
    else {
        panic!("the buffered record must be flushed first")
    };
    assert_eq!(before.data, small.data);
    assert!(aggregator.is_empty());
}

#[test]
fn row_23_single_record_is_sent_raw_with_its_own_key() {
    let aggregates = aggregate_all(
        vec![ProducerRecord::new("solo", &b"payload"[..]).with_explicit_hash_key(7)],
        AggregatorConfig::default(),
    );
    assert_eq!(
        aggregates,
        [Aggregate {
            partition_key: "solo".into(),
            explicit_hash_key: Some(7),
            data: Bytes::from_static(b"payload"),
            user_records: 1,
        }]
    );
}

#[test]
fn row_24_other_magic_is_plain() {
    let mut data = frame(&hex::decode("0a01611a0508001a0178").unwrap());
    data[0] = 0x00;
    assert_eq!(
        deagg(&data).unwrap().plain,
        Some(PlainReason::NotAggregated)
    );
}

// ---- aggregator behaviour ----------------------------------------------------------------------

#[test]
fn max_count_closes_aggregates() {
    let config = AggregatorConfig::default().with_max_count(3);
    let records: Vec<_> = (0..7)
        .map(|i| ProducerRecord::new("k", vec![i as u8]))
        .collect();
    let aggregates = aggregate_all(records, config);
    let counts: Vec<usize> = aggregates.iter().map(|a| a.user_records).collect();
    assert_eq!(counts, [3, 3, 1]);
}

#[test]
fn deadlines_are_driven_by_the_caller() {
    let config = AggregatorConfig::default().with_max_buffered_time(Duration::from_millis(100));
    let mut aggregator = Aggregator::new(config).unwrap();
    let t0 = Instant::now();
    assert_eq!(aggregator.deadline(), None);
    aggregator.add(&ProducerRecord::new("k", &b"1"[..]), t0);
    aggregator.add(
        &ProducerRecord::new("k", &b"2"[..]),
        t0 + Duration::from_millis(60),
    );
    assert_eq!(aggregator.deadline(), Some(t0 + Duration::from_millis(100)));
    assert_eq!(
        aggregator.poll_deadline(t0 + Duration::from_millis(99)),
        None
    );
    let aggregate = aggregator
        .poll_deadline(t0 + Duration::from_millis(100))
        .unwrap();
    assert_eq!(aggregate.user_records, 2);
    assert_eq!(aggregator.deadline(), None);
}

#[test]
fn config_ranges_are_checked() {
    for (max_size, max_count) in [(63, 1), (MAX_SIZE_LIMIT + 1, 1), (1000, 0)] {
        let config = AggregatorConfig::default()
            .with_max_size(max_size)
            .with_max_count(max_count);
        assert_eq!(
            Aggregator::new(config).unwrap_err().kind(),
            ErrorKind::InvalidConfig
        );
    }
}

#[test]
fn size_accounting_matches_the_encoding() {
    let mut aggregator =
        Aggregator::new(AggregatorConfig::default().with_max_size(MAX_SIZE_LIMIT)).unwrap();
    let now = Instant::now();
    for i in 0..300u32 {
        let mut record = ProducerRecord::new(
            format!("key-{}", i % 130),
            vec![0u8; (i as usize * 37) % 300],
        );
        if i % 4 == 0 {
            record = record.with_explicit_hash_key(u128::from(i) << 90);
        }
        aggregator.add(&record, now);
    }
    let expected = aggregator.size();
    assert_eq!(aggregator.flush().unwrap().data.len(), expected);
}

// ---- shard-aware aggregation ------------------------------------------------------------------

fn thirds() -> ShardMap<&'static str> {
    let third = u128::MAX / 3;
    ShardMap::new([
        ("shard-2", 2 * third + 1..=u128::MAX),
        ("shard-0", 0..=third),
        ("shard-1", third + 1..=2 * third),
    ])
    .unwrap()
}

#[test]
fn shard_map_lookup_and_validation() {
    let map = thirds();
    let third = u128::MAX / 3;
    assert_eq!(map.shard_for(0), Some(&"shard-0"));
    assert_eq!(map.shard_for(third), Some(&"shard-0"));
    assert_eq!(map.shard_for(third + 1), Some(&"shard-1"));
    assert_eq!(map.shard_for(u128::MAX), Some(&"shard-2"));
    let gap = ShardMap::new([("a", 0..=10), ("b", 20..=30)]).unwrap();
    assert_eq!(gap.shard_for(15), None);
    assert_eq!(gap.shard_for(31), None);
    let overlap = ShardMap::new([("a", 0..=10), ("b", 10..=30)]).unwrap_err();
    assert_eq!(overlap.kind(), ErrorKind::InvalidShardMap);
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = ShardMap::new([("a", 10..=0)]).unwrap_err();
    assert_eq!(reversed.kind(), ErrorKind::InvalidShardMap);
}

#[test]
fn aggregates_never_straddle_shards() {
    let map = thirds();
    let mut aggregator = ShardAggregator::new(map.clone(), AggregatorConfig::default()).unwrap();
    let now = Instant::now();
    for i in 0..3000 {
        match aggregator.add(
            &ProducerRecord::new(format!("user-{i}"), vec![1u8; 40]),
            now,
        ) {
            Routed::Buffered => {}
            Routed::Ready { shard, aggregate } => check_one_shard(&map, shard, &aggregate),
            other => panic!("{other:?}"),
        }
    }
    for (shard, aggregate) in aggregator.flush_all() {
        check_one_shard(&map, shard, &aggregate);
    }
}

fn check_one_shard(map: &ShardMap<&'static str>, shard: &'static str, aggregate: &Aggregate) {
    assert!(aggregate.data.len() <= DEFAULT_MAX_SIZE);
    assert_eq!(
        map.shard_for(aggregate.explicit_hash_key.unwrap()),
        Some(&shard)
    );
    let out = Deaggregator::new()
        .deaggregate(KinesisRecord::new(
            aggregate.data.clone(),
            aggregate.partition_key.clone(),
            "1",
        ))
        .unwrap();
    for r in &out.records {
        assert_eq!(map.shard_for(r.effective_hash_key()), Some(&shard));
    }
}

#[test]
fn replacing_the_map_reroutes_buffered_records() {
    let half = u128::MAX / 2;
    let before = ShardMap::new([("parent", 0..=u128::MAX)]).unwrap();
    let mut aggregator = ShardAggregator::new(before, AggregatorConfig::default()).unwrap();
    let t0 = Instant::now();
    let records: Vec<_> = (0..10)
        .map(|i| {
            ProducerRecord::new("k", vec![i as u8]).with_explicit_hash_key(if i % 2 == 0 {
                5
            } else {
                half + 5
            })
        })
        .collect();
    for r in &records {
        assert_eq!(aggregator.add(r, t0), Routed::Buffered);
    }
    let after = ShardMap::new([("left", 0..=half), ("right", half + 1..=u128::MAX)]).unwrap();
    let rerouted = aggregator.replace_map(after);
    assert!(rerouted.ready.is_empty() && rerouted.unsent.is_empty());
    assert_eq!(
        aggregator.deadline(),
        Some(t0 + Duration::from_millis(100)),
        "first-arrival deadline kept"
    );
    let mut flushed = aggregator.flush_all();
    flushed.sort_by_key(|(shard, _)| *shard);
    let shards: Vec<(&str, usize)> = flushed.iter().map(|(s, a)| (*s, a.user_records)).collect();
    assert_eq!(shards, [("left", 5), ("right", 5)]);
    // Records that no shard owns are handed back.
    let mut gappy = ShardAggregator::new(
        ShardMap::new([("only", 0..=10)]).unwrap(),
        AggregatorConfig::default(),
    )
    .unwrap();
    let stray = ProducerRecord::new("k", &b"x"[..]).with_explicit_hash_key(11);
    assert_eq!(gappy.add(&stray, t0), Routed::Unmapped);
    // A map that leaves a buffered record without a shard hands it back.
    assert_eq!(
        gappy.add(
            &ProducerRecord::new("k", &b"y"[..]).with_explicit_hash_key(3),
            t0
        ),
        Routed::Buffered
    );
    let rerouted = gappy.replace_map(ShardMap::new([("other", 100..=200)]).unwrap());
    assert_eq!(
        rerouted.unsent,
        [ProducerRecord::new("k", &b"y"[..]).with_explicit_hash_key(3)]
    );
}

// ---- the borrowed path -------------------------------------------------------------------------

#[test]
fn visit_borrows_and_matches_deaggregate() {
    let golden = KinesisRecord::new(hex::decode(GOLDEN).unwrap(), "a", "9");
    let mut seen = Vec::new();
    let visited = Deaggregator::new()
        .visit(&golden, |r| {
            seen.push(r.to_user_record());
            assert!(std::ptr::eq(r.record, &golden));
        })
        .unwrap();
    assert_eq!(
        visited,
        Visited {
            delivered: 3,
            plain: None,
            filtered: 0
        }
    );
    assert_eq!(
        seen,
        Deaggregator::new()
            .deaggregate(golden.clone())
            .unwrap()
            .records
    );

    // Tags are read from the borrowed record too.
    let tagged = KinesisRecord::new(
        hex_frame("0a 01 61 1a 0e 0800 1a01 78 22 07 0a 01 6b 12 02 7676"),
        "a",
        "1",
    );
    let mut tags = Vec::new();
    Deaggregator::new()
        .visit(&tagged, |r| {
            tags.extend(r.tags().map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec))));
        })
        .unwrap();
    assert_eq!(tags, [(b"k".to_vec(), Some(b"vv".to_vec()))]);

    // A bad aggregate is reported before anything is visited.
    let bad = KinesisRecord::new(
        hex_frame("0a 01 61 1a 05 0800 1a01 78 1a 05 0801 1a01 79"),
        "a",
        "1",
    );
    let mut calls = 0;
    let err = Deaggregator::new().visit(&bad, |_| calls += 1).unwrap_err();
    assert_eq!(
        (err.kind(), calls),
        (ErrorKind::PartitionKeyIndexOutOfRange, 0)
    );
}
