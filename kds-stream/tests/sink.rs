//! TableSink against ferrokinesis behind a fault proxy: rows written through throttling,
//! partial failures, server errors, resets, lost responses, GOAWAY and stalls are all read back
//! by the table's source, duplicates no more than the sink counted as possible; per-key order in ordered
//! mode; aggregates that land on a shard they were not packed for (a split, a merge) have
//! their other user records sent again, so no reader drops them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Int64Array, RecordBatch, StringArray};
use kds_stream::{MemoryLeaseStore, SinkConfig, SourceConfig, TableSink, TableSource, WriterStats};
use kds_table::{Partitioners, TableDefinition};
use kds_test_support::proxy::{Fault, Proxy, throttle};
use kds_test_support::{create_stream, merge_shards, shards, split_shard};

/// The table over `stream` at `url`, keyed by `k`, with extra `WITH` options.
fn table(url: &str, stream: &str, extra: &str) -> TableDefinition {
    TableDefinition::parse(
        &format!(
            "CREATE TABLE events (
               id BIGINT,
               k STRING,
               shard VARCHAR(128) METADATA FROM 'shard-id' VIRTUAL
             ) PARTITIONED BY (k) WITH (
               'connector' = 'kinesis', 'stream' = '{stream}', 'aws.region' = 'us-east-1', 'aws.credentials.provider' = 'BASIC',
               'aws.credentials.basic.accesskeyid' = 'test', 'aws.credentials.basic.secretkey' = 'test',
               'aws.endpoint' = '{url}', 'scan.stream.initpos' = 'TRIM_HORIZON',
               'format' = 'json' {extra}
             )"
        ),
        &[],
    )
    .unwrap()
}

/// Rows `first..first + count`, key `k{id % keys}`.
fn rows(first: i64, count: i64, keys: i64) -> RecordBatch {
    let ids: Vec<i64> = (first..first + count).collect();
    let keys: Vec<String> = ids.iter().map(|id| format!("k{}", id % keys)).collect();
    RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from(ids)) as _),
        ("k", Arc::new(StringArray::from(keys)) as _),
    ])
    .unwrap()
}

/// Every row of the table, in the order read (shard by shard, in each shard's order): id,
/// key.
async fn read_back(definition: &TableDefinition) -> (Vec<(i64, String)>, u64) {
    let client = kds_stream::client_builder(definition)
        .await
        .build()
        .unwrap();
    let mut config = SourceConfig::default();
    config.bounded = true;
    let mut source = TableSource::open(
        definition,
        client,
        Arc::new(MemoryLeaseStore::new()),
        config,
    )
    .await
    .unwrap();
    let mut read = Vec::new();
    tokio::time::timeout(Duration::from_secs(240), async {
        while let Some(batch) = source.next().await.unwrap() {
            let ids = batch.rows.column(0).as_primitive::<Int64Type>();
            let keys = batch.rows.column(1).as_string::<i32>();
            for i in 0..batch.rows.num_rows() {
                read.push((ids.value(i), keys.value(i).to_owned()));
            }
            source.ack(batch.token).unwrap();
        }
    })
    .await
    .expect("the table is read within four minutes");
    let filtered = source.stats().filtered;
    (read, filtered)
}

/// Checks that every id in `0..count` was read, that repeats are at most what the sink
/// counted, and (`ordered`) that each key's first deliveries come in id order; returns the
/// repeats.
fn check(read: &[(i64, String)], count: i64, stats: &WriterStats, ordered: bool) -> u64 {
    let mut seen = HashSet::new();
    let mut last_of_key: HashMap<&str, i64> = HashMap::new();
    let mut repeats = 0;
    for (id, key) in read {
        if !seen.insert(*id) {
            repeats += 1;
            continue;
        }
        if ordered && let Some(previous) = last_of_key.insert(key, *id) {
            assert!(previous < *id, "key {key}: {id} after {previous}");
        }
    }
    let missing: Vec<i64> = (0..count)
        .filter(|id| !seen.contains(id))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "not read back: {missing:?} … ({stats:?})"
    );
    assert_eq!(seen.len() as i64, count, "nothing else");
    assert!(
        repeats <= stats.maybe_duplicated,
        "{repeats} rows twice, the sink counted {} that may be",
        stats.maybe_duplicated
    );
    eprintln!("{count} rows, {repeats} read twice; {stats:?}");
    repeats
}

/// A round of faults for PutRecords: each kind the sink must survive.
fn faults() -> Vec<Fault> {
    vec![
        throttle((0..500).step_by(3).collect()),
        Fault::Error(500, "InternalFailure"),
        Fault::Error(400, "ProvisionedThroughputExceededException"),
        Fault::Reset,
        Fault::FailEntries((0..500).step_by(7).collect(), "InternalFailure"),
        Fault::Stall(Duration::from_millis(300)),
        Fault::Error(503, "ServiceUnavailable"),
        Fault::GoAway,
        Fault::LoseResponse,
    ]
}

async fn through_faults(ordered: bool, count: i64) {
    let proxy = Proxy::start().await;
    create_stream(&proxy.upstream, "out", 4).await;
    let definition = table(&proxy.url, "out", "");
    let client = kds_stream::client_builder(&definition)
        .await
        .build()
        .unwrap();
    let mut config = SinkConfig::default();
    config.ordered = ordered;
    let mut sink = TableSink::open(&definition, client, &Partitioners::new(), config)
        .await
        .unwrap();
    let chunk = 10_000;
    for first in (0..count).step_by(chunk as usize) {
        // Faults spread over the whole write.
        proxy.script_for("PutRecords", faults());
        sink.write(&rows(first, chunk.min(count - first), 1000))
            .await
            .unwrap();
    }
    sink.flush().await.unwrap();
    let stats = sink.close().await.unwrap();
    assert_eq!(stats.rows, count as u64, "every row acknowledged once");
    assert!(stats.retries > 0, "the faults were met: {stats:?}");
    assert_eq!(stats.failed, 0);
    let (read, _) = read_back(&definition).await;
    let repeats = check(&read, count, &stats, ordered);
    assert!(
        repeats > 0,
        "lost responses wrote rows twice, and the sink counted them"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_written_through_faults_are_all_read_back() {
    through_faults(false, 1_000_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_writes_keep_each_keys_order_through_faults() {
    through_faults(true, 1_000_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregates_split_by_a_reshard_send_their_strays_again() {
    let proxy = Proxy::start().await;
    let upstream = &proxy.upstream;
    create_stream(upstream, "agg", 2).await;
    let definition = table(
        &proxy.url,
        "agg",
        ", 'sink.producer.aggregation-enabled' = 'true', \
         'sink.producer.aggregation-max-count' = '100'",
    );
    let client = kds_stream::client_builder(&definition)
        .await
        .build()
        .unwrap();
    let mut sink = TableSink::open(
        &definition,
        client,
        &Partitioners::new(),
        SinkConfig::default(),
    )
    .await
    .unwrap();
    sink.write(&rows(0, 20_000, 5_000)).await.unwrap();
    sink.flush().await.unwrap();
    // The sink's map still has the two first shards: its aggregates for the split one
    // land on either child.
    let first = shards(upstream, "agg").await.remove(0).shard_id;
    let (low, high) = split_shard(upstream, "agg", &first).await;
    sink.write(&rows(20_000, 20_000, 5_000)).await.unwrap();
    sink.flush().await.unwrap();
    let after_split = sink.stats();
    assert!(
        after_split.rerouted > 0,
        "aggregates packed for the parent mix both children's records: {after_split:?}"
    );
    merge_shards(upstream, "agg", &low, &high).await;
    sink.write(&rows(40_000, 20_000, 5_000)).await.unwrap();
    let stats = sink.close().await.unwrap();
    assert!(
        stats.aggregates > 0 && stats.map_refreshes >= 3,
        "{stats:?}"
    );
    // ferrokinesis dates a new child shard's records up to a second ahead: a bounded read
    // started at once would end before them.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (read, filtered) = read_back(&definition).await;
    assert_eq!(check(&read, 60_000, &stats, false), 0);
    assert_eq!(
        filtered, stats.rerouted,
        "what readers dropped from misplaced aggregates is what the sink sent again"
    );
}
