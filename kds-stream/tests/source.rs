//! TableSource against ferrokinesis in process: every row once with its metadata, by polling and
//! by enhanced fan-out; restores from the lease store without gaps; LATEST pinned; resumption
//! inside KPL aggregates; parents before children across a split; subtasks that share a table;
//! projection and watermarks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, RecordBatch};
use bytes::Bytes;
use kds_agg::{Added, Aggregator, AggregatorConfig, ProducerRecord};
use kds_client::Client;
use kds_proto::model::{PutRecordsInput, PutRecordsRequestEntry};
use kds_proto::types::{HashKey, PartitionKey, SequenceNumber, ShardId};
use kds_stream::{
    Checkpoint, Lease, LeaseStore, MemoryLeaseStore, SourceConfig, SourceStats, TableSource,
};
use kds_table::TableDefinition;
use kds_test_support::{Ferrokinesis, client, create_stream, name, shards, split_shard};

/// The table over `stream` at `url`, read from `initpos`, with extra `WITH` options.
fn table(url: &str, stream: &str, initpos: &str, extra: &str) -> TableDefinition {
    TableDefinition::parse(
        &format!(
            "CREATE TABLE events (
               id BIGINT,
               k STRING,
               shard VARCHAR(128) METADATA FROM 'shard-id' VIRTUAL,
               seq VARCHAR(128) METADATA FROM 'sequence-number' VIRTUAL,
               sub BIGINT METADATA FROM 'sub-sequence-number' VIRTUAL,
               arrival TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
               WATERMARK FOR arrival AS arrival - INTERVAL '1' SECOND
             ) WITH (
               'connector' = 'kinesis', 'stream' = '{stream}', 'aws.region' = 'us-east-1',
               'aws.endpoint' = '{url}', 'scan.stream.initpos' = '{initpos}', 'format' = 'json'
               {extra}
             )"
        ),
        &[],
    )
    .unwrap()
}

/// Writes rows `first..first + count` (`{"id": n, "k": key}`): one Kinesis record each, or KPL
/// aggregates of `per_aggregate` rows that share a key (so each lands on one shard).
async fn put_rows(client: &Client, stream: &str, first: u64, count: u64, per_aggregate: usize) {
    let key = |n: u64| format!("k{}", n / per_aggregate.max(1) as u64);
    let row = |n: u64| Bytes::from(format!(r#"{{"id":{n},"k":"{}"}}"#, key(n)));
    let mut entries = Vec::new();
    if per_aggregate <= 1 {
        for n in first..first + count {
            entries.push(PutRecordsRequestEntry::new(
                row(n),
                PartitionKey::new(key(n)).unwrap(),
            ));
        }
    } else {
        let mut aggregator =
            Aggregator::new(AggregatorConfig::default().with_max_count(per_aggregate)).unwrap();
        let mut aggregates = Vec::new();
        let now = Instant::now();
        for n in first..first + count {
            // Each aggregate holds the rows of one key.
            if n % per_aggregate as u64 == 0
                && let Some(aggregate) = aggregator.flush()
            {
                aggregates.push(aggregate);
            }
            if let Added::Ready(aggregate) =
                aggregator.add(&ProducerRecord::new(key(n), row(n)), now)
            {
                aggregates.push(aggregate);
            }
        }
        aggregates.extend(aggregator.flush());
        for aggregate in aggregates {
            let mut entry = PutRecordsRequestEntry::new(
                aggregate.data,
                PartitionKey::new(aggregate.partition_key).unwrap(),
            );
            entry.explicit_hash_key = aggregate.explicit_hash_key.map(HashKey);
            entries.push(entry);
        }
    }
    for chunk in entries.chunks(500) {
        let mut request = PutRecordsInput::new(chunk.to_vec());
        request.stream_name = Some(name(stream));
        let output = client.send(&request).await.unwrap();
        assert_eq!(output.failures().count(), 0);
    }
}

/// A row as read back.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    id: i64,
    shard: String,
    seq: String,
    sub: i64,
}

fn rows_of(batch: &RecordBatch) -> Vec<Row> {
    let column = |name: &str| batch.column(batch.schema().index_of(name).unwrap()).clone();
    let (ids, shards, seqs, subs) = (column("id"), column("shard"), column("seq"), column("sub"));
    (0..batch.num_rows())
        .map(|i| Row {
            id: ids.as_primitive::<Int64Type>().value(i),
            shard: shards.as_string::<i32>().value(i).to_owned(),
            seq: seqs.as_string::<i32>().value(i).to_owned(),
            sub: subs.as_primitive::<Int64Type>().value(i),
        })
        .collect()
}

/// Reads until the source ends (bounded) or `limit` rows came, acknowledging every batch;
/// the rows in the order they came.
async fn read(source: &mut TableSource, limit: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while rows.len() < limit {
            let Some(batch) = source.next().await.unwrap() else {
                break;
            };
            rows.extend(rows_of(&batch.rows));
            source.ack(batch.token).unwrap();
        }
    })
    .await
    .expect("the source ends within a minute");
    rows
}

fn config(bounded: bool) -> SourceConfig {
    let mut config = SourceConfig::default();
    config.bounded = bounded;
    config.commit_interval = Duration::from_millis(100);
    config
}

fn ids(rows: &[Row]) -> Vec<i64> {
    let mut ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    ids
}

fn all(range: std::ops::Range<i64>) -> Vec<i64> {
    range.collect()
}

async fn every_row_once(extra: &str) {
    let emulator = Ferrokinesis::start().await;
    let client = client(&emulator.url);
    create_stream(&client, "events", 3).await;
    put_rows(&client, "events", 0, 300, 1).await;
    put_rows(&client, "events", 300, 300, 5).await;
    let table = table(&emulator.url, "events", "TRIM_HORIZON", extra);
    let store = Arc::new(MemoryLeaseStore::new());
    let mut source = TableSource::open(&table, client.clone(), store.clone(), config(true))
        .await
        .unwrap();
    let rows = read(&mut source, usize::MAX).await;
    assert_eq!(ids(&rows), all(0..600), "every row once");
    // Metadata: aggregated rows carry their place in the aggregate; plain ones 0.
    for row in &rows {
        assert!(row.shard.starts_with("shardId-"), "{row:?}");
        SequenceNumber::new(row.seq.clone()).unwrap();
        if row.id >= 300 {
            assert_eq!(row.sub, row.id % 5, "{row:?}");
        } else {
            assert_eq!(row.sub, 0, "{row:?}");
        }
    }
    // Per shard, rows come in sequence order.
    let mut last: HashMap<&str, (SequenceNumber, i64)> = HashMap::new();
    for row in &rows {
        let position = (SequenceNumber::new(row.seq.clone()).unwrap(), row.sub);
        if let Some(before) = last.get(row.shard.as_str()) {
            assert!(&position > before, "{row:?} after {before:?}");
        }
        last.insert(&row.shard, position);
    }
    let stats = source.close().await.unwrap();
    assert_eq!(stats.rows, 600);
    assert_eq!(stats.kinesis_records, 300 + 60);
    assert_eq!(stats.filtered, 0);
    // Every lease holds the last record of its shard.
    let leases = store.list().await.unwrap();
    assert_eq!(leases.len(), 3);
    for lease in leases {
        let Checkpoint::Record {
            sequence_number, ..
        } = &lease.checkpoint
        else {
            panic!("{lease:?}");
        };
        assert_eq!(&last[lease.shard_id.as_str()].0, sequence_number);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_reads_every_row_once_with_its_metadata() {
    every_row_once("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_reads_every_row_once_with_its_metadata() {
    every_row_once(
        ", 'scan.stream.recordpublisher' = 'EFO', 'scan.stream.efo.consumername' = 'reader'",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_repeats_only_what_was_not_committed() {
    let emulator = Ferrokinesis::start().await;
    let client = client(&emulator.url);
    create_stream(&client, "events", 1).await;
    put_rows(&client, "events", 0, 200, 1).await;
    // Batches of 50 rows: one acknowledged, three not.
    let table = table(
        &emulator.url,
        "events",
        "TRIM_HORIZON",
        ", 'scan.shard.getrecords.maxrecordcount' = '50'",
    );
    let store = Arc::new(MemoryLeaseStore::new());
    let mut config = config(false);
    // Commits only when told.
    config.commit_interval = Duration::from_secs(3600);
    let mut source = TableSource::open(&table, client.clone(), store.clone(), config.clone())
        .await
        .unwrap();
    // Two batches come; only the first is acknowledged before the commit.
    let mut first = Vec::new();
    let mut unacked = Vec::new();
    while first.len() + unacked.len() < 200 {
        let batch = source.next().await.unwrap().unwrap();
        if first.is_empty() {
            first.extend(rows_of(&batch.rows));
            source.ack(batch.token).unwrap();
        } else {
            unacked.extend(rows_of(&batch.rows));
        }
    }
    assert_eq!((first.len(), unacked.len()), (50, 150));
    source.commit().await.unwrap();
    drop(source); // a crash: nothing more is written
    put_rows(&client, "events", 200, 50, 1).await;
    let mut source = TableSource::open(&table, client.clone(), store, {
        let mut config = config.clone();
        config.bounded = true;
        config
    })
    .await
    .unwrap();
    let again = read(&mut source, usize::MAX).await;
    assert_eq!(
        ids(&again),
        ids(&[unacked.clone(), rows_of_ids(200..250)].concat()),
        "what was not acknowledged comes again, then the new rows"
    );
    let mut seen: Vec<i64> = ids(&first);
    seen.extend(ids(&again));
    seen.sort_unstable();
    assert_eq!(
        seen,
        all(0..250),
        "nothing lost, nothing committed repeated"
    );
}

fn rows_of_ids(range: std::ops::Range<i64>) -> Vec<Row> {
    range
        .map(|id| Row {
            id,
            shard: String::new(),
            seq: String::new(),
            sub: 0,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_is_pinned_so_rows_written_before_the_first_commit_are_read() {
    let emulator = Ferrokinesis::start().await;
    let client = client(&emulator.url);
    create_stream(&client, "events", 2).await;
    put_rows(&client, "events", 0, 20, 1).await;
    let table = table(&emulator.url, "events", "LATEST", "");
    let store = Arc::new(MemoryLeaseStore::new());
    // ferrokinesis keeps arrival times in whole seconds: LATEST starts a second after the old
    // rows.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let source = TableSource::open(&table, client.clone(), store.clone(), config(false))
        .await
        .unwrap();
    let leases = store.list().await.unwrap();
    assert!(
        leases
            .iter()
            .all(|l| matches!(l.checkpoint, Checkpoint::AtTimestamp { .. })),
        "LATEST is stored as the time reading began: {leases:?}"
    );
    drop(source); // a crash before anything was read or committed
    tokio::time::sleep(Duration::from_millis(1100)).await;
    put_rows(&client, "events", 20, 30, 1).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut source = TableSource::open(&table, client, store, config(true))
        .await
        .unwrap();
    let rows = read(&mut source, usize::MAX).await;
    assert_eq!(
        ids(&rows),
        all(20..50),
        "only what came after the first start, all of it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_inside_an_aggregate_skips_the_user_records_delivered() {
    let emulator = Ferrokinesis::start().await;
    let client = client(&emulator.url);
    create_stream(&client, "events", 1).await;
    put_rows(&client, "events", 0, 12, 4).await;
    let table = table(&emulator.url, "events", "TRIM_HORIZON", "");
    // Read once to learn the aggregates' sequence numbers.
    let store = Arc::new(MemoryLeaseStore::new());
    let mut source = TableSource::open(&table, client.clone(), store, config(true))
        .await
        .unwrap();
    let rows = read(&mut source, usize::MAX).await;
    assert_eq!(ids(&rows), all(0..12));
    // A checkpoint inside the second aggregate (rows 4..8), after its second user record.
    let second = rows.iter().find(|r| r.id == 5).unwrap();
    let store = Arc::new(MemoryLeaseStore::new());
    let shard = ShardId::new(second.shard.clone()).unwrap();
    let mut lease = Lease::new(
        shard,
        Checkpoint::Record {
            sequence_number: SequenceNumber::new(second.seq.clone()).unwrap(),
            sub_sequence_number: Some(1),
        },
        Vec::new(),
    );
    lease.owner = None;
    store.create(lease).await.unwrap();
    let mut source = TableSource::open(&table, client, store, config(true))
        .await
        .unwrap();
    let rows = read(&mut source, usize::MAX).await;
    assert_eq!(
        ids(&rows),
        all(6..12),
        "the rest of the aggregate, then the next"
    );
    let stats: SourceStats = source.close().await.unwrap();
    assert_eq!(stats.redelivery_skipped, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parents_are_read_before_children_and_end_before_them_in_the_store() {
    let emulator = Ferrokinesis::start().await;
    let client = client(&emulator.url);
    create_stream(&client, "events", 1).await;
    put_rows(&client, "events", 0, 100, 1).await;
    let parent = shards(&client, "events").await.remove(0).shard_id;
    let (low, high) = split_shard(&client, "events", &parent).await;
    put_rows(&client, "events", 100, 100, 1).await;
    // ferrokinesis dates a new child's records up to a second ahead.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let table = table(&emulator.url, "events", "TRIM_HORIZON", "");
    let store = Arc::new(MemoryLeaseStore::new());
    let mut source = TableSource::open(&table, client, store.clone(), config(true))
        .await
        .unwrap();
    let rows = read(&mut source, usize::MAX).await;
    assert_eq!(ids(&rows), all(0..200));
    // Every row of the parent came before any row of a child.
    let last_parent = rows
        .iter()
        .rposition(|r| r.shard == parent.as_str())
        .unwrap();
    let first_child = rows
        .iter()
        .position(|r| r.shard != parent.as_str())
        .unwrap();
    assert!(last_parent < first_child, "{last_parent} < {first_child}");
    source.close().await.unwrap();
    let leases: BTreeMap<String, Lease> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.shard_id.as_str().to_owned(), l))
        .collect();
    assert_eq!(leases[parent.as_str()].checkpoint, Checkpoint::ShardEnd);
    for child in [&low, &high] {
        assert_eq!(leases[child.as_str()].parents, vec![parent.clone()]);
        assert!(
            matches!(leases[child.as_str()].checkpoint, Checkpoint::Record { .. }),
            "{:?}",
            leases[child.as_str()]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_subtasks_read_disjoint_shards_that_cover_the_stream() {
    let emulator = Ferrokinesis::start().await;
    let client = client(&emulator.url);
    create_stream(&client, "events", 6).await;
    put_rows(&client, "events", 0, 300, 1).await;
    let mut read_by = Vec::new();
    for assigner in ["default", "uniform"] {
        let table = table(
            &emulator.url,
            "events",
            "TRIM_HORIZON",
            &format!(", 'scan.shard-assigner' = '{assigner}'"),
        );
        let mut seen: Vec<HashSet<String>> = Vec::new();
        let mut every = Vec::new();
        for subtask in 0..2 {
            let mut config = config(true);
            config.subtask = subtask;
            config.subtasks = 2;
            let mut source = TableSource::open(
                &table,
                client.clone(),
                Arc::new(MemoryLeaseStore::new()),
                config,
            )
            .await
            .unwrap();
            let rows = read(&mut source, usize::MAX).await;
            seen.push(rows.iter().map(|r| r.shard.clone()).collect());
            every.extend(rows);
        }
        assert!(seen[0].is_disjoint(&seen[1]), "{assigner}: {seen:?}");
        assert_eq!(seen[0].len() + seen[1].len(), 6, "{assigner}: {seen:?}");
        assert_eq!(ids(&every), all(0..300), "{assigner}");
        read_by.push(seen);
    }
    assert_ne!(
        read_by[0], read_by[1],
        "the two assigners place shards differently"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_decode_only_their_columns_and_watermarks_follow_arrival() {
    let emulator = Ferrokinesis::start().await;
    let client = client(&emulator.url);
    create_stream(&client, "events", 2).await;
    put_rows(&client, "events", 0, 50, 1).await;
    let table = table(&emulator.url, "events", "TRIM_HORIZON", "");
    let mut config = config(true);
    // `k` and `shard`: the watermark's `arrival` is decoded too, but not handed out.
    config.projection = Some(vec![1, 2]);
    let mut source = TableSource::open(&table, client, Arc::new(MemoryLeaseStore::new()), config)
        .await
        .unwrap();
    let names: Vec<String> = source
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["k", "shard"]);
    let mut rows = 0;
    let mut watermark = None;
    let started = kds_proto::types::Timestamp::from(std::time::SystemTime::now()).as_millis();
    while let Some(batch) = source.next().await.unwrap() {
        assert_eq!(batch.rows.num_columns(), 2);
        assert!(batch.rows.column(0).null_count() == 0);
        rows += batch.rows.num_rows();
        assert!(
            batch.watermark >= watermark,
            "the watermark never goes back"
        );
        watermark = batch.watermark;
        source.ack(batch.token).unwrap();
    }
    assert_eq!(rows, 50);
    let watermark = watermark.expect("rows with arrival times give a watermark");
    assert!(
        watermark <= started && watermark > started - 60_000,
        "{watermark} is a second behind the arrivals, before {started}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_of_a_split_between_runs_are_read_from_their_start() {
    let emulator = Ferrokinesis::start().await;
    let client = client(&emulator.url);
    create_stream(&client, "events", 1).await;
    let table = table(&emulator.url, "events", "LATEST", "");
    let store = Arc::new(MemoryLeaseStore::new());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut source = TableSource::open(&table, client.clone(), store.clone(), config(false))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    put_rows(&client, "events", 0, 20, 1).await;
    let rows = read(&mut source, 20).await;
    assert_eq!(ids(&rows), all(0..20));
    source.commit().await.unwrap();
    drop(source);
    // Between the runs: a split, and rows written to the children before the next run opens.
    let parent = shards(&client, "events").await.remove(0).shard_id;
    split_shard(&client, "events", &parent).await;
    put_rows(&client, "events", 20, 60, 1).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut source = TableSource::open(&table, client, store, config(true))
        .await
        .unwrap();
    let rows = read(&mut source, usize::MAX).await;
    assert_eq!(
        ids(&rows),
        all(20..80),
        "the children's rows written before this run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_does_not_decode_stops_its_shard_before_it() {
    let emulator = Ferrokinesis::start().await;
    let client = client(&emulator.url);
    create_stream(&client, "events", 1).await;
    put_rows(&client, "events", 0, 10, 1).await;
    let mut bad = PutRecordsInput::new(vec![PutRecordsRequestEntry::new(
        Bytes::from_static(b"not json"),
        PartitionKey::new("k").unwrap(),
    )]);
    bad.stream_name = Some(name("events"));
    client.send(&bad).await.unwrap();
    put_rows(&client, "events", 10, 10, 1).await;
    let table = table(
        &emulator.url,
        "events",
        "TRIM_HORIZON",
        ", 'scan.shard.getrecords.maxrecordcount' = '5'",
    );
    let store = Arc::new(MemoryLeaseStore::new());
    let mut last_good = String::new();
    for run in 0..2 {
        let mut source = TableSource::open(&table, client.clone(), store.clone(), config(true))
            .await
            .unwrap();
        let mut rows = Vec::new();
        let error = loop {
            match source.next().await {
                Ok(Some(batch)) => {
                    rows.extend(rows_of(&batch.rows));
                    source.ack(batch.token).unwrap();
                }
                Ok(None) => panic!("the bad record was passed over"),
                Err(error) => break error,
            }
        };
        assert_eq!(error.kind(), kds_stream::ErrorKind::Decode, "{error}");
        assert!(
            error.to_string().contains("shardId-000000000000"),
            "{error}"
        );
        // The restored run meets the same record first.
        if run == 0 {
            assert_eq!(ids(&rows), all(0..10));
            last_good = rows[9].seq.clone();
        } else {
            assert!(rows.is_empty(), "{rows:?}");
        }
        // Reading on: nothing more of that shard, and its position stays before the record.
        assert!(source.next().await.unwrap().is_none());
        source.commit().await.unwrap();
        let lease = store.list().await.unwrap().remove(0);
        let Checkpoint::Record {
            sequence_number, ..
        } = lease.checkpoint
        else {
            panic!("{lease:?}");
        };
        assert_eq!(sequence_number.as_str(), last_good);
    }
}

/// Writes `count` rows with event times `ts(i)` to the shard of `hash_key`.
async fn put_timed(client: &Client, stream: &str, first: u64, hash_key: u128, ts: &[String]) {
    let entries: Vec<PutRecordsRequestEntry> = ts
        .iter()
        .enumerate()
        .map(|(i, ts)| {
            let n = first + i as u64;
            let mut entry = PutRecordsRequestEntry::new(
                Bytes::from(format!(r#"{{"id":{n},"k":"k{n}","ts":"{ts}"}}"#)),
                PartitionKey::new(format!("k{n}")).unwrap(),
            );
            entry.explicit_hash_key = Some(HashKey(hash_key));
            entry
        })
        .collect();
    let mut request = PutRecordsInput::new(entries);
    request.stream_name = Some(name(stream));
    assert_eq!(client.send(&request).await.unwrap().failures().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subtask_ahead_in_event_time_waits_for_the_slowest() {
    let emulator = Ferrokinesis::start().await;
    let client = client(&emulator.url);
    create_stream(&client, "timed", 2).await;
    let listed = shards(&client, "timed").await;
    // Rows of shard 0 are a day behind those of shard 1.
    let slow_ts: Vec<String> = (0..100)
        .map(|i| format!("2024-01-01 00:00:{:02}.{:03}", 10 + i / 100, (i % 100) * 10))
        .collect();
    let fast_ts: Vec<String> = (0..100)
        .map(|i| format!("2024-01-02 00:00:00.{i:03}"))
        .collect();
    let low = listed[0].hash_key_range.starting_hash_key.0;
    let high = listed[1].hash_key_range.starting_hash_key.0;
    put_timed(&client, "timed", 0, low, &slow_ts).await;
    put_timed(&client, "timed", 100, high, &fast_ts).await;
    let table = TableDefinition::parse(
        &format!(
            "CREATE TABLE timed (
               id BIGINT, k STRING, ts TIMESTAMP(3),
               shard VARCHAR(128) METADATA FROM 'shard-id' VIRTUAL,
               seq VARCHAR(128) METADATA FROM 'sequence-number' VIRTUAL,
               sub BIGINT METADATA FROM 'sub-sequence-number' VIRTUAL,
               WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
             ) WITH (
               'connector' = 'kinesis', 'stream' = 'timed', 'aws.region' = 'us-east-1',
               'aws.endpoint' = '{}', 'scan.stream.initpos' = 'TRIM_HORIZON', 'format' = 'json',
               'scan.watermark.lookahead.millis' = '1000',
               'scan.watermark.sync.interval' = '1000',
               'scan.watermark.sync.queue.capacity' = '20',
               'scan.shard.getrecords.maxrecordcount' = '10',
               'scan.shard.getrecords.intervalmillis' = '20'
             )",
            emulator.url
        ),
        &[],
    )
    .unwrap();
    // Both subtasks align through the store they share.
    let store: Arc<MemoryLeaseStore> = Arc::new(MemoryLeaseStore::new());
    let owner = |shard: &kds_proto::model::Shard| {
        let range = &shard.hash_key_range;
        kds_stream::ShardAssigner::named("default")
            .unwrap()
            .subtask(
                "timed",
                shard.shard_id.as_str(),
                (range.starting_hash_key.0, range.ending_hash_key.0),
                2,
            )
    };
    let (slow_subtask, fast_subtask) = (owner(&listed[0]), owner(&listed[1]));
    assert_ne!(
        slow_subtask, fast_subtask,
        "the default assigner splits two shards over two subtasks"
    );
    let open = |subtask: usize| {
        let mut config = config(false);
        config.subtask = subtask;
        config.subtasks = 2;
        TableSource::open(&table, client.clone(), store.clone(), config)
    };
    let mut slow = open(slow_subtask).await.unwrap();
    let mut fast = open(fast_subtask).await.unwrap();
    // The slow subtask reads, and publishes its watermark at its next synchronisation (it
    // stays fresh for three intervals).
    let mut slow_rows = read(&mut slow, 30).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    slow_rows.extend(read(&mut slow, 10).await);
    // The fast one holds its rows, and stops reading once it holds its capacity.
    let waited = tokio::time::timeout(Duration::from_millis(1500), fast.next()).await;
    assert!(
        waited.is_err(),
        "a day ahead, the fast subtask waits: {waited:?}"
    );
    let held = fast.stats().held_batches;
    assert!(
        (2..=4).contains(&held),
        "20 rows (two batches of 10) pause the shard, a batch or two may be on the way: {held}"
    );
    // The slow subtask reads the rest and goes away: its watermark is no longer fresh, and
    // the fast one reads everything.
    slow_rows.extend(read(&mut slow, 60).await);
    assert_eq!(ids(&slow_rows), all(0..100));
    drop(slow);
    let fast_rows = read(&mut fast, 100).await;
    assert_eq!(ids(&fast_rows), all(100..200));
    assert_eq!(fast.stats().held_batches, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookahead_without_a_watermark_is_refused() {
    let emulator = Ferrokinesis::start().await;
    let client = client(&emulator.url);
    create_stream(&client, "events", 1).await;
    let table = TableDefinition::parse(
        &format!(
            "CREATE TABLE events (id BIGINT) WITH (
               'connector' = 'kinesis', 'stream' = 'events', 'aws.region' = 'us-east-1',
               'aws.endpoint' = '{}', 'format' = 'json',
               'scan.watermark.lookahead.millis' = '1000'
             )",
            emulator.url
        ),
        &[],
    )
    .unwrap();
    let error = TableSource::open(
        &table,
        client,
        Arc::new(MemoryLeaseStore::new()),
        config(true),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), kds_stream::ErrorKind::Definition);
    assert!(error.to_string().contains("WATERMARK"), "{error}");
}

/// A lease another worker took: the commit says so, naming the shard, the source hands out no
/// more of that shard's rows and commits it no more, and reads the other shards on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_stops_its_shard_and_only_it() {
    let emulator = Ferrokinesis::start().await;
    let client = client(&emulator.url);
    create_stream(&client, "events", 2).await;
    put_rows(&client, "events", 0, 400, 1).await;
    let table = table(
        &emulator.url,
        "events",
        "TRIM_HORIZON",
        ", 'scan.shard.getrecords.maxrecordcount' = '10'",
    );
    let store = Arc::new(MemoryLeaseStore::new());
    let mut config = config(false);
    config.commit_interval = Duration::from_secs(3600);
    let mut source = TableSource::open(&table, client.clone(), store.clone(), config)
        .await
        .unwrap();
    let batch = source.next().await.unwrap().unwrap();
    let lost = batch.shard_id.clone();
    let mut before = rows_of(&batch.rows);
    source.ack(batch.token).unwrap();
    // Another worker takes the shard's lease.
    let mut stolen = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.shard_id == lost)
        .unwrap();
    stolen.owner = Some("thief".into());
    let stolen = store.update(vec![stolen]).await.unwrap().remove(0);
    let error = source.commit().await.unwrap_err();
    assert_eq!(error.kind(), kds_stream::ErrorKind::LeaseLost);
    assert_eq!(error.shard(), Some(&lost));
    assert_eq!(source.open_shards(), 1);
    // The other shard reads to its end; nothing more of the lost one comes.
    let mut after = Vec::new();
    let quiet = Instant::now() + Duration::from_secs(3);
    while Instant::now() < quiet {
        if let Ok(batch) = tokio::time::timeout(Duration::from_millis(300), source.next()).await {
            let batch = batch.unwrap().unwrap();
            assert_ne!(
                batch.shard_id, lost,
                "a row of a shard whose lease was lost"
            );
            after.extend(rows_of(&batch.rows));
            source.ack(batch.token).unwrap();
        }
    }
    source.commit().await.unwrap();
    let leases = store.list().await.unwrap();
    let thief = leases.iter().find(|l| l.shard_id == lost).unwrap();
    assert_eq!(thief, &stolen, "the thief's lease is untouched");
    // The other shard was read whole: with the rows of the lost shard that came before the
    // loss, some but not all of the 400.
    before.append(&mut after);
    let other = before.iter().filter(|r| r.shard != lost.as_str()).count();
    assert!(
        other > 0 && before.len() < 400,
        "{other} of {}",
        before.len()
    );
    let kept = leases.iter().find(|l| l.shard_id != lost).unwrap();
    assert!(
        matches!(kept.checkpoint, Checkpoint::Record { .. }),
        "{kept:?}"
    );
}
