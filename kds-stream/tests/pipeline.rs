//! A source → sink pipeline (one table read, another written, the source's rows acknowledged
//! once the sink flushed them) aborted at random points and restarted from the file store:
//! every input row reaches the output at least once, and a row written again always comes from
//! after the input position committed before the abort that preceded it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Int64Array, RecordBatch};
use bytes::Bytes;
use kds_client::Client;
use kds_proto::model::{PutRecordsInput, PutRecordsRequestEntry};
use kds_proto::types::{PartitionKey, SequenceNumber};
use kds_stream::{
    Checkpoint, FileLeaseStore, LeaseStore, MemoryLeaseStore, SinkConfig, SourceConfig, TableSink,
    TableSource,
};
use kds_table::{Partitioners, TableDefinition};
use kds_test_support::{Ferrokinesis, client, create_stream, name};

const ROWS: i64 = 20_000;

fn input_table(url: &str) -> TableDefinition {
    TableDefinition::parse(
        &format!(
            "CREATE TABLE input (
               id BIGINT, k STRING,
               shard VARCHAR(128) METADATA FROM 'shard-id' VIRTUAL,
               seq VARCHAR(128) METADATA FROM 'sequence-number' VIRTUAL
             ) WITH (
               'connector' = 'kinesis', 'stream' = 'input', 'aws.region' = 'us-east-1', 'aws.credentials.provider' = 'BASIC',
               'aws.credentials.basic.accesskeyid' = 'test', 'aws.credentials.basic.secretkey' = 'test',
               'aws.endpoint' = '{url}', 'scan.stream.initpos' = 'TRIM_HORIZON',
               'format' = 'json', 'scan.shard.getrecords.maxrecordcount' = '500'
             )"
        ),
        &[],
    )
    .unwrap()
}

fn output_table(url: &str) -> TableDefinition {
    TableDefinition::parse(
        &format!(
            "CREATE TABLE output (
               id BIGINT, k STRING, src_shard STRING, src_seq STRING, run BIGINT
             ) PARTITIONED BY (k) WITH (
               'connector' = 'kinesis', 'stream' = 'output', 'aws.region' = 'us-east-1', 'aws.credentials.provider' = 'BASIC',
               'aws.credentials.basic.accesskeyid' = 'test', 'aws.credentials.basic.secretkey' = 'test',
               'aws.endpoint' = '{url}', 'scan.stream.initpos' = 'TRIM_HORIZON',
               'format' = 'json', 'sink.flush-buffer.timeout' = '100'
             )"
        ),
        &[],
    )
    .unwrap()
}

async fn put_input(client: &Client) {
    let entries: Vec<PutRecordsRequestEntry> = (0..ROWS)
        .map(|n| {
            PutRecordsRequestEntry::new(
                Bytes::from(format!(r#"{{"id":{n},"k":"k{}"}}"#, n % 97)),
                PartitionKey::new(format!("k{}", n % 97)).unwrap(),
            )
        })
        .collect();
    for chunk in entries.chunks(500) {
        let mut request = PutRecordsInput::new(chunk.to_vec());
        request.stream_name = Some(name("input"));
        assert_eq!(client.send(&request).await.unwrap().failures().count(), 0);
    }
}

/// One run of the pipeline: reads the input from the positions in `state`, writes each batch
/// to the output tagged with `run`, and acknowledges batches once the sink flushed them.
/// `bounded`: until the input is read, then closes both ends.
async fn pipeline(url: String, state: PathBuf, run: i64, bounded: bool) {
    let (input, output) = (input_table(&url), output_table(&url));
    let client = kds_stream::client_builder(&input).await.build().unwrap();
    let store = Arc::new(FileLeaseStore::open(&state, "input").unwrap());
    let mut config = SourceConfig::default();
    config.bounded = bounded;
    config.commit_interval = Duration::from_millis(50);
    let mut source = TableSource::open(&input, client.clone(), store, config)
        .await
        .unwrap();
    let mut sink = TableSink::open(&output, client, &Partitioners::new(), SinkConfig::default())
        .await
        .unwrap();
    let mut unflushed = Vec::new();
    let mut flushed_at = Instant::now();
    while let Some(batch) = source.next().await.unwrap() {
        let rows = &batch.rows;
        let count = rows.num_rows();
        let out = RecordBatch::try_from_iter([
            ("id", Arc::clone(rows.column(0))),
            ("k", Arc::clone(rows.column(1))),
            ("src_shard", Arc::clone(rows.column(2))),
            ("src_seq", Arc::clone(rows.column(3))),
            ("run", Arc::new(Int64Array::from(vec![run; count])) as _),
        ])
        .unwrap();
        sink.write(&out).await.unwrap();
        unflushed.push(batch.token);
        if unflushed.len() >= 8 || flushed_at.elapsed() > Duration::from_millis(200) {
            sink.flush().await.unwrap();
            for token in unflushed.drain(..) {
                source.ack(token).unwrap();
            }
            flushed_at = Instant::now();
        }
    }
    sink.flush().await.unwrap();
    for token in unflushed.drain(..) {
        source.ack(token).unwrap();
    }
    sink.close().await.unwrap();
    source.close().await.unwrap();
}

/// The input positions committed in `state`: per shard, the last sequence number (`None`: the
/// shard's end).
async fn committed(state: &Path) -> HashMap<String, Option<SequenceNumber>> {
    let store = FileLeaseStore::open(state, "input").unwrap();
    store
        .list()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|lease| match lease.checkpoint {
            Checkpoint::Record {
                sequence_number, ..
            } => Some((lease.shard_id.as_str().to_owned(), Some(sequence_number))),
            Checkpoint::ShardEnd => Some((lease.shard_id.as_str().to_owned(), None)),
            _ => None,
        })
        .collect()
}

/// An output row.
#[derive(Debug)]
struct Out {
    id: i64,
    src_shard: String,
    src_seq: SequenceNumber,
    run: i64,
}

async fn read_output(url: &str) -> Vec<Out> {
    let definition = output_table(url);
    let client = kds_stream::client_builder(&definition)
        .await
        .build()
        .unwrap();
    let mut config = SourceConfig::default();
    config.bounded = true;
    let mut source = TableSource::open(
        &definition,
        client,
        Arc::new(MemoryLeaseStore::new()),
        config,
    )
    .await
    .unwrap();
    let mut rows = Vec::new();
    while let Some(batch) = source.next().await.unwrap() {
        let b = &batch.rows;
        for i in 0..b.num_rows() {
            rows.push(Out {
                id: b.column(0).as_primitive::<Int64Type>().value(i),
                src_shard: b.column(2).as_string::<i32>().value(i).to_owned(),
                src_seq: SequenceNumber::new(b.column(3).as_string::<i32>().value(i)).unwrap(),
                run: b.column(4).as_primitive::<Int64Type>().value(i),
            });
        }
        source.ack(batch.token).unwrap();
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_pipeline_restarts_from_its_commits_and_loses_nothing() {
    let emulator = Ferrokinesis::start().await;
    let client = client(&emulator.url);
    create_stream(&client, "input", 3).await;
    create_stream(&client, "output", 2).await;
    put_input(&client).await;
    let state = std::env::temp_dir().join(format!(
        "kds-pipeline-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    // Committed input positions at the end of each aborted run.
    let mut commits = Vec::new();
    for run in 0..10 {
        let task = tokio::spawn(pipeline(emulator.url.clone(), state.clone(), run, false));
        tokio::time::sleep(Duration::from_millis(fastrand::u64(100..800))).await;
        task.abort();
        let ended = task.await;
        assert!(
            ended.as_ref().is_err_and(|e| e.is_cancelled()),
            "run {run} was aborted, not ended: {ended:?}"
        );
        commits.push(committed(&state).await);
    }
    tokio::time::timeout(
        Duration::from_secs(120),
        pipeline(emulator.url.clone(), state.clone(), 10, true),
    )
    .await
    .expect("the last run reads the input to its end");
    let output = read_output(&emulator.url).await;
    // Each id's first copy comes from the earliest run that wrote it; a copy from a later run
    // must come from after the position committed when the run before it was aborted.
    let mut first_run: HashMap<i64, i64> = HashMap::new();
    for row in &output {
        let first = first_run.entry(row.id).or_insert(row.run);
        *first = (*first).min(row.run);
    }
    let mut again = 0;
    for row in &output {
        if row.run == first_run[&row.id] {
            continue;
        }
        again += 1;
        let before = &commits[(row.run - 1) as usize];
        match before.get(&row.src_shard) {
            Some(Some(position)) => assert!(
                &row.src_seq > position,
                "run {} wrote {} again from {:?}, at or before {position:?}, committed before it",
                row.run,
                row.id,
                row.src_seq
            ),
            Some(None) => panic!(
                "run {} wrote {} again from a shard read to its end",
                row.run, row.id
            ),
            None => {}
        }
    }
    let ids: HashSet<i64> = output.iter().map(|r| r.id).collect();
    let missing: Vec<i64> = (0..ROWS).filter(|id| !ids.contains(id)).take(10).collect();
    assert!(missing.is_empty(), "not in the output: {missing:?} …");
    assert_eq!(ids.len() as i64, ROWS);
    eprintln!(
        "{ROWS} rows over 11 runs: {} written, {again} again after an abort",
        output.len()
    );
    let _ = std::fs::remove_dir_all(&state);
}
