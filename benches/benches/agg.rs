//! kds-agg beside its floor, MD5 over the same bytes, in the same run.
//!
//! Input: 100 000 user records of 100 bytes over 1000 partition keys, aggregated into about
//! 50 KB aggregates (the KPL's 51200-byte default). Throughput is bytes of aggregates.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kds_agg::{
    Added, Aggregate, Aggregator, AggregatorConfig, Deaggregator, KinesisRecord, ProducerRecord,
};
use kds_benches::data;
use md5::{Digest, Md5};

fn user_records() -> Vec<ProducerRecord> {
    (0..100_000u64)
        .map(|i| ProducerRecord::new(format!("partition-{}", i % 1000), data(100, i + 1)))
        .collect()
}

/// Aggregates `records`, handing each aggregate to `put` as a producer would.
fn aggregate(records: &[ProducerRecord], mut put: impl FnMut(Aggregate)) {
    let mut aggregator = Aggregator::new(AggregatorConfig::default()).expect("valid");
    let now = Instant::now();
    for record in records {
        if let Added::Ready(a) = aggregator.add(record, now) {
            put(a);
        }
    }
    if let Some(a) = aggregator.flush() {
        put(a);
    }
}

fn agg(c: &mut Criterion) {
    let records = user_records();
    let mut aggregates = Vec::new();
    aggregate(&records, |a| aggregates.push(a));
    let kinesis: Vec<KinesisRecord> = aggregates
        .iter()
        .enumerate()
        .map(|(i, a)| KinesisRecord::new(a.data.clone(), a.partition_key.clone(), i.to_string()))
        .collect();
    let bytes: usize = aggregates.iter().map(|a| a.data.len()).sum();
    eprintln!(
        "{} aggregates, {bytes} bytes, {} user records",
        aggregates.len(),
        records.len()
    );

    let mut group = c.benchmark_group("agg");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sample_size(20);
    group.bench_function("md5_only", |b| {
        b.iter(|| {
            for a in &aggregates {
                black_box(Md5::digest(&a.data[4..a.data.len() - 16]));
            }
        });
    });
    let checked = Deaggregator::new();
    let trusted = Deaggregator::new().trust_digests();
    for (suffix, deaggregator) in [("", &checked), ("_without_md5", &trusted)] {
        group.bench_function(format!("deaggregate{suffix}"), |b| {
            b.iter(|| {
                let mut n = 0;
                for k in &kinesis {
                    n += deaggregator
                        .deaggregate(k.clone())
                        .expect("valid")
                        .records
                        .len();
                }
                assert_eq!(n, 100_000);
            });
        });
        group.bench_function(format!("visit{suffix}"), |b| {
            b.iter(|| {
                let mut n = 0;
                for k in &kinesis {
                    deaggregator
                        .visit(k, |r| n += black_box(r.data).len())
                        .expect("valid");
                }
                n
            });
        });
    }
    group.bench_function("aggregate", |b| {
        // Each aggregate is dropped once "put", as a producer does after sending it.
        b.iter(|| {
            let mut bytes = 0;
            aggregate(black_box(&records), |a| bytes += a.data.len());
            bytes
        });
    });
    group.finish();
}

criterion_group!(benches, agg);
criterion_main!(benches);
