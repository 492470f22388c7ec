//! Peak heap memory of deaggregation on adversarial input, measured by dhat's heap profiler:
//! an aggregate packed with empty user records (the most user records per byte) costs a
//! bounded multiple of its size, and the lent path less than the owned one.
//!
//! One test function: dhat profiles one thing at a time in a process.

use std::time::Instant;

use bytes::Bytes;
use kds_agg::{Added, Aggregator, AggregatorConfig, Deaggregator, KinesisRecord, ProducerRecord};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const MIB: u64 = 1024 * 1024;

/// The most heap bytes live at once while `run` runs (what was live before it not counted).
fn peak(run: impl FnOnce()) -> u64 {
    let profiler = dhat::Profiler::builder().testing().build();
    run();
    let stats = dhat::HeapStats::get();
    drop(profiler);
    stats.max_bytes as u64
}

#[test]
fn deaggregation_holds_a_bounded_multiple_of_its_input() {
    // One aggregate of 1 MiB at most, as many empty records of one key as fit.
    let config = AggregatorConfig::default().with_max_size(MIB as usize);
    let mut aggregator = Aggregator::new(config).unwrap();
    let now = Instant::now();
    let record = ProducerRecord::new("k", Bytes::new());
    let aggregate = loop {
        if let Added::Ready(aggregate) = aggregator.add(&record, now) {
            break aggregate;
        }
    };
    let users = aggregate.user_records;
    let input = aggregate.data.len() as u64;
    assert!(users > 100_000, "{users} user records in {input} bytes");
    let kinesis = KinesisRecord::new(aggregate.data, "a", "1");
    let deaggregator = Deaggregator::new();
    let owned = peak(|| {
        let out = deaggregator.deaggregate(kinesis.clone()).unwrap();
        assert_eq!(out.records.len(), users);
    });
    let lent = peak(|| {
        let mut n = 0;
        deaggregator.visit(&kinesis, |_| n += 1).unwrap();
        assert_eq!(n, users);
    });
    eprintln!("{users} user records in {input} bytes: {owned} bytes owned, {lent} bytes lent");
    // prost parses the whole aggregate (about 96 bytes per user record), and owned user
    // records add about 260 more: an aggregate of empty records is the worst case per byte.
    assert!(
        owned <= 72 * input + MIB,
        "owned: {owned} bytes for {users} user records in {input} bytes"
    );
    assert!(
        lent <= 20 * input + MIB,
        "lent: {lent} bytes for {users} user records in {input} bytes"
    );
}
