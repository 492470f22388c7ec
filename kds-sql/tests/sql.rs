//! SQL over Kinesis tables on ferrokinesis (and kinesis-local where it runs): the seed's DDL
//! verbatim, metadata column types, partition keys of inserted rows, streaming and snapshot
//! queries, the timestamp start, LIMIT, stopping, and a pipeline killed and run again.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use futures_util::{StreamExt, TryStreamExt};
use kds_client::Client;
use kds_client::credentials::Credentials;
use kds_sql::{ClientFactory, ErrorKind, Outcome, SqlSession, split_statements};
use kds_table::TableDefinition;
use kds_test_support::{Ferrokinesis, KinesisLocal, create_stream};

/// Clients of the tables' own options, sent to a test endpoint with test credentials (the
/// seed's DDL names neither).
struct At(String);

impl ClientFactory for At {
    fn client<'a>(
        &'a self,
        table: &'a TableDefinition,
    ) -> Pin<Box<dyn Future<Output = Result<Client, kds_sql::Error>> + Send + 'a>> {
        Box::pin(async move {
            Ok(kds_stream::client_builder(table)
                .await
                .endpoint(self.0.clone())
                .trust_all_certificates(self.0.starts_with("https:"))
                .credentials(Credentials::new("test", "test", None, None, "test"))
                // ferrokinesis 0.7 answers AT_TIMESTAMP iterators wrongly over CBOR.
                .protocol(kds_client::Protocol::Json)
                .build()
                .expect("a client"))
        })
    }
}

fn session(url: &str) -> SqlSession {
    SqlSession::builder().clients(At(url.to_owned())).build()
}

/// Runs a statement and collects its rows.
async fn rows(session: &SqlSession, sql: &str) -> Vec<RecordBatch> {
    match session.execute(sql).await.unwrap() {
        Outcome::Rows(rows) => rows.try_collect().await.unwrap(),
        other => panic!("{sql}: {other:?}"),
    }
}

async fn run(session: &SqlSession, script: &str) {
    for statement in split_statements(script).unwrap() {
        match session.execute(&statement.text).await.unwrap() {
            Outcome::Rows(rows) => {
                let _: Vec<RecordBatch> = rows.try_collect().await.unwrap();
            }
            Outcome::Created(_) => {}
            other => panic!("{}: {other:?}", statement.text),
        }
    }
}

fn int64(batches: &[RecordBatch], column: usize) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            let column = arrow_cast::cast(b.column(column), &DataType::Int64).unwrap();
            column.as_primitive::<Int64Type>().values().to_vec()
        })
        .collect()
}

fn strings(batches: &[RecordBatch], column: usize) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let column = arrow_cast::cast(b.column(column), &DataType::Utf8).unwrap();
            (0..column.len())
                .map(|i| column.as_string::<i32>().value(i).to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The seed's first DDL, verbatim.
const SEED_DDL: &str = "CREATE TABLE KinesisTable (
  `user_id` BIGINT,
  `item_id` BIGINT,
  `category_id` BIGINT,
  `behavior` STRING,
  `ts` TIMESTAMP(3)
)
PARTITIONED BY (user_id, item_id)
WITH (
  'connector' = 'kinesis',
  'stream' = 'user_behavior',
  'aws.region' = 'us-east-2',
  'scan.stream.initpos' = 'LATEST',
  'format' = 'csv'
)";

/// The seed's DDL with metadata columns, verbatim.
const SEED_METADATA_DDL: &str = "CREATE TABLE KinesisTable (
  `user_id` BIGINT,
  `item_id` BIGINT,
  `category_id` BIGINT,
  `behavior` STRING,
  `ts` TIMESTAMP(3),
  `arrival_time` TIMESTAMP(3) METADATA FROM 'timestamp' VIRTUAL,
  `shard_id` VARCHAR(128) NOT NULL METADATA FROM 'shard-id' VIRTUAL,
  `sequence_number` VARCHAR(128) NOT NULL METADATA FROM 'sequence-number' VIRTUAL
)
PARTITIONED BY (user_id, item_id)
WITH (
  'connector' = 'kinesis',
  'stream' = 'user_behavior',
  'aws.region' = 'us-east-2',
  'scan.stream.initpos' = 'LATEST',
  'format' = 'csv'
)";

/// `INSERT INTO KinesisTable VALUES …` of `count` rows: user `i % 7`, item `i`.
fn insert_values(count: usize) -> String {
    let values: Vec<String> = (0..count)
        .map(|i| {
            format!(
                "({}, {i}, {}, '{}', TIMESTAMP '2026-12-07 10:00:{:02}.{:03}')",
                i % 7,
                i % 3,
                ["pv", "buy", "cart"][i % 3],
                i % 60,
                i % 1000
            )
        })
        .collect();
    format!("INSERT INTO KinesisTable VALUES {}", values.join(", "))
}

/// A raw view of a stream: each record's data as text and its partition key.
fn raw_table(name: &str, stream: &str) -> String {
    format!(
        "CREATE TABLE {name} (
           data STRING,
           pk VARCHAR(256) NOT NULL METADATA FROM 'partition-key' VIRTUAL
         ) WITH ('connector' = 'kinesis', 'stream' = '{stream}', 'aws.region' = 'us-east-1',
                 'scan.stream.initpos' = 'TRIM_HORIZON', 'format' = 'raw')"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_ddl_runs_verbatim_and_partitioned_by_keys_the_records() {
    let kinesis = Ferrokinesis::start().await;
    let client = kds_test_support::client(&kinesis.url);
    create_stream(&client, "user_behavior", 3).await;
    let session = session(&kinesis.url);
    assert!(matches!(
        session.execute(SEED_DDL).await.unwrap(),
        Outcome::Created(table) if table.table.name == "KinesisTable"
    ));
    let count = rows(&session, &insert_values(300)).await;
    assert_eq!(int64(&count, 0), [300], "the INSERT reports its rows");

    run(&session, &raw_table("raw", "user_behavior")).await;
    run(&session, "SET kds.bounded = true").await;
    let raw = rows(&session, "SELECT data, pk FROM raw").await;
    let data = strings(&raw, 0);
    let keys = strings(&raw, 1);
    assert_eq!(data.len(), 300);
    let mut seen = vec![false; 300];
    for (data, key) in data.iter().zip(&keys) {
        // CSV in the table's column order; the key is user_id|item_id (Flink's delimiter).
        let fields: Vec<&str> = data.trim_end().split(',').collect();
        assert_eq!(fields.len(), 5, "{data}");
        let item: usize = fields[1].parse().unwrap();
        assert_eq!(fields[0], (item % 7).to_string());
        assert_eq!(*key, format!("{}|{item}", item % 7), "{data}");
        assert!(!seen[item], "item {item} twice");
        seen[item] = true;
    }

    // Every metadata key, with its type.
    run(
        &session,
        "CREATE TABLE every_key (
           data STRING,
           arrival TIMESTAMP_LTZ(3) NOT NULL METADATA FROM 'timestamp' VIRTUAL,
           shard VARCHAR(128) NOT NULL METADATA FROM 'shard-id' VIRTUAL,
           seq VARCHAR(128) NOT NULL METADATA FROM 'sequence-number' VIRTUAL,
           pk VARCHAR(256) NOT NULL METADATA FROM 'partition-key' VIRTUAL,
           sub BIGINT NOT NULL METADATA FROM 'sub-sequence-number' VIRTUAL
         ) WITH ('connector' = 'kinesis', 'stream' = 'user_behavior', 'aws.region' = 'us-east-1',
                 'scan.stream.initpos' = 'TRIM_HORIZON', 'format' = 'raw')",
    )
    .await;
    let table = session.context().table("every_key").await.unwrap();
    let types: Vec<(String, DataType, bool)> = table
        .schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone(), f.is_nullable()))
        .collect();
    let utc = DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into()));
    assert_eq!(
        types,
        [
            ("data".into(), DataType::Utf8, true),
            ("arrival".into(), utc, false),
            ("shard".into(), DataType::Utf8, false),
            ("seq".into(), DataType::Utf8, false),
            ("pk".into(), DataType::Utf8, false),
            ("sub".into(), DataType::Int64, false),
        ]
    );
    let batches = rows(
        &session,
        "SELECT count(*), count(DISTINCT shard), count(DISTINCT seq), sum(sub), min(arrival) > TIMESTAMP '2026-01-01T00:00:00Z'
         FROM every_key WHERE pk LIKE '%|%'",
    )
    .await;
    let row: Vec<String> = (0..5).map(|c| strings(&batches, c).remove(0)).collect();
    assert_eq!(row, ["300", "3", "300", "0", "true"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_columns_come_out_with_their_declared_types() {
    let kinesis = Ferrokinesis::start().await;
    let client = kds_test_support::client(&kinesis.url);
    create_stream(&client, "user_behavior", 2).await;
    let reader = session(&kinesis.url);
    reader.execute(SEED_METADATA_DDL).await.unwrap();
    let table = reader.context().table("KinesisTable").await.unwrap();
    let schema = table.schema().as_arrow().clone();
    let types: Vec<(&str, &DataType, bool)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type(), f.is_nullable()))
        .collect();
    assert_eq!(
        types,
        [
            ("user_id", &DataType::Int64, true),
            ("item_id", &DataType::Int64, true),
            ("category_id", &DataType::Int64, true),
            ("behavior", &DataType::Utf8, true),
            (
                "ts",
                &DataType::Timestamp(TimeUnit::Millisecond, None),
                true
            ),
            (
                "arrival_time",
                &DataType::Timestamp(TimeUnit::Millisecond, None),
                true
            ),
            ("shard_id", &DataType::Utf8, false),
            ("sequence_number", &DataType::Utf8, false),
        ]
    );
    // Records written before the query: LATEST skips them, in every partition.
    let writer = session(&kinesis.url);
    writer.execute(SEED_METADATA_DDL).await.unwrap();
    rows(
        &writer,
        "INSERT INTO KinesisTable SELECT value % 7, value, 0, 'old', now() FROM generate_series(1000, 1099)",
    )
    .await;
    // ferrokinesis keeps arrival times in whole seconds, up to one ahead.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // LATEST: a streaming query sees what is written after it started.
    let Outcome::Rows(mut stream) = reader
        .execute("SELECT user_id, item_id, arrival_time, shard_id, sequence_number FROM KinesisTable LIMIT 50")
        .await
        .unwrap()
    else {
        panic!("rows expected")
    };
    let first = tokio::spawn(async move {
        let mut batches = Vec::new();
        while let Some(batch) = stream.next().await {
            batches.push(batch.unwrap());
        }
        batches
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = chrono_now_millis();
    // Metadata columns are read-only: the INSERT names the others, as in Flink.
    rows(&writer, &insert_values(50)).await;
    let after = chrono_now_millis();
    let batches = tokio::time::timeout(Duration::from_secs(30), first)
        .await
        .expect("the LIMIT ends the query")
        .unwrap();
    let items = int64(&batches, 1);
    assert_eq!(items.len(), 50);
    let mut sorted = items.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..50).collect::<Vec<i64>>());
    let shards = strings(&batches, 3);
    let sequences = strings(&batches, 4);
    let mut distinct = sequences.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 50, "one sequence number per record");
    assert!(
        shards.iter().all(|s| s.starts_with("shardId-")),
        "{shards:?}"
    );
    for batch in &batches {
        let arrival = batch
            .column(2)
            .as_primitive::<arrow_array::types::TimestampMillisecondType>();
        for i in 0..arrival.len() {
            let at = arrival.value(i);
            // ferrokinesis dates records at most a second ahead of our clock.
            assert!(
                at >= before - 1000 && at <= after + 1000,
                "{at} not in {before}..{after}"
            );
        }
    }
}

fn chrono_now_millis() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// A JSON table over `stream` reading from the start, with the arrival time.
fn events_table(name: &str, stream: &str, extra: &str) -> String {
    format!(
        "CREATE TABLE {name} (
           id BIGINT,
           user_id BIGINT,
           arrival TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL
         ) WITH ('connector' = 'kinesis', 'stream' = '{stream}', 'aws.region' = 'us-east-1',
                 'format' = 'json' {extra})"
    )
}

/// ferrokinesis with a stream of `shards` shards, and a session whose table `events` reads it
/// from the start.
async fn events_from_start(stream: &str, shards: i32) -> (Ferrokinesis, SqlSession) {
    let kinesis = Ferrokinesis::start().await;
    create_stream(&kds_test_support::client(&kinesis.url), stream, shards).await;
    let session = session(&kinesis.url);
    run(
        &session,
        &events_table("events", stream, ", 'scan.stream.initpos' = 'TRIM_HORIZON'"),
    )
    .await;
    (kinesis, session)
}

/// Writes ids `first..first + count` with user `id % 13`.
async fn write_events(session: &SqlSession, table: &str, first: u64, count: u64) {
    let sql = format!(
        "INSERT INTO {table} (id, user_id) SELECT value, value % 13 FROM generate_series({first}, {})",
        first + count - 1
    );
    let written = rows(session, &sql).await;
    assert_eq!(int64(&written, 0), [i64::try_from(count).unwrap()]);
}

/// Streams `SELECT id … WHERE id % 7 = 0` over `count` records and checks every match comes
/// once: reads until all arrived, then a second more, then stops the session.
async fn streaming_where(url: &str, stream: &str, count: u64) {
    let session = session(url);
    run(
        &session,
        &events_table("events", stream, ", 'scan.stream.initpos' = 'TRIM_HORIZON'"),
    )
    .await;
    write_events(&session, "events", 0, count).await;
    let Outcome::Rows(mut stream) = session
        .execute("SELECT id, user_id FROM events WHERE id % 7 = 0")
        .await
        .unwrap()
    else {
        panic!("rows expected")
    };
    let expected = count.div_ceil(7) as usize;
    let mut ids = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while ids.len() < expected {
        let batch = tokio::time::timeout_at(deadline.into(), stream.next())
            .await
            .unwrap_or_else(|_| panic!("{} of {expected} rows in time", ids.len()))
            .expect("an unbounded query goes on")
            .unwrap();
        ids.extend(int64(&[batch], 0));
    }
    // Nothing more comes: no row twice.
    let more = tokio::time::timeout(Duration::from_secs(1), stream.next()).await;
    assert!(more.is_err(), "a row after all matches: {more:?}");
    session.stopper().stop();
    let end = tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .expect("stopping ends the query");
    assert!(end.is_none(), "{end:?}");
    ids.sort_unstable();
    let want: Vec<i64> = (0..i64::try_from(count).unwrap())
        .filter(|i| i % 7 == 0)
        .collect();
    assert_eq!(ids, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_where_returns_each_match_once_on_ferrokinesis() {
    let kinesis = Ferrokinesis::start().await;
    create_stream(&kds_test_support::client(&kinesis.url), "events", 4).await;
    streaming_where(&kinesis.url, "events", 100_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_where_returns_each_match_once_on_kinesis_local() {
    let Some(kinesis) = KinesisLocal::get() else {
        return;
    };
    let stream = format!("sql-where-{:08x}", fastrand::u32(..));
    create_stream(&kds_test_support::client(&kinesis.plain_url), &stream, 2).await;
    // kinesis-local writes about 170 records a second.
    streaming_where(&kinesis.plain_url, &stream, 3_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_groups_by_user_and_unbounded_aggregates_are_refused() {
    let (_kinesis, session) = events_from_start("groups", 3).await;
    write_events(&session, "events", 1, 5_000).await;
    let sql = "SELECT count(*), user_id FROM events GROUP BY user_id";
    let refused = session.execute(sql).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Unbounded, "{refused}");
    assert!(
        refused.to_string().contains("SET kds.bounded = true"),
        "{refused}"
    );

    run(&session, "SET kds.bounded = true").await;
    let batches = rows(&session, sql).await;
    let counts: BTreeMap<i64, i64> = int64(&batches, 1)
        .into_iter()
        .zip(int64(&batches, 0))
        .collect();
    let mut expected = BTreeMap::new();
    for id in 1..=5_000i64 {
        *expected.entry(id % 13).or_insert(0) += 1;
    }
    assert_eq!(counts, expected);
    let total = rows(&session, "SELECT count(*) FROM events").await;
    assert_eq!(int64(&total, 0), [5_000]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timestamp_filter_starts_reading_there_when_the_table_sets_no_start() {
    let kinesis = Ferrokinesis::start().await;
    create_stream(&kds_test_support::client(&kinesis.url), "late", 2).await;
    let session = session(&kinesis.url);
    // No `scan.stream.initpos`: LATEST, unless a filter says where to start.
    run(&session, &events_table("events", "late", "")).await;
    write_events(&session, "events", 0, 200).await;
    // ferrokinesis dates records up to a second ahead.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let from = chrono_now_millis();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    write_events(&session, "events", 1_000, 100).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    run(&session, "SET kds.bounded = true").await;
    let sql =
        format!("SELECT id FROM events WHERE arrival >= to_timestamp_millis({from}) ORDER BY id");
    session.take_report();
    let ids = int64(&rows(&session, &sql).await, 0);
    assert_eq!(ids, (1_000..1_100).collect::<Vec<i64>>());
    // Reading started near the filter's time (ferrokinesis positions AT_TIMESTAMP roughly):
    // not at the first of the 200 records before it.
    let read = session.take_report().kinesis_records;
    assert_eq!(read, 100, "records read");
    // The filter, not the data, says where reading starts.
    let plan = rows(&session, &format!("EXPLAIN {sql}")).await;
    let plan = strings(&plan, 1).join("\n");
    assert!(
        plan.contains(&format!("start=AT_TIMESTAMP({from})")),
        "{plan}"
    );
    let plan = rows(
        &session,
        "EXPLAIN SELECT id FROM events WHERE arrival < now()",
    )
    .await;
    let plan = strings(&plan, 1).join("\n");
    assert!(!plan.contains("AT_TIMESTAMP"), "{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_ends_an_unbounded_query_and_stop_ends_another() {
    let (kinesis, session) = events_from_start("limited", 2).await;
    write_events(&session, "events", 0, 1_000).await;
    create_stream(&kds_test_support::client(&kinesis.url), "one-shard", 1).await;
    run(
        &session,
        &events_table(
            "one",
            "one-shard",
            ", 'scan.stream.initpos' = 'TRIM_HORIZON'",
        ),
    )
    .await;
    write_events(&session, "one", 0, 10).await;
    let limited = tokio::time::timeout(
        Duration::from_secs(30),
        rows(&session, "SELECT id FROM events LIMIT 10"),
    )
    .await
    .expect("LIMIT ends the query");
    assert_eq!(int64(&limited, 0).len(), 10);
    // A filter with a LIMIT ends once it has the rows, without waiting for more records, also
    // where nothing above it counts them (one partition: the filter is the plan's root).
    let single = SqlSession::builder()
        .clients(At(kinesis.url.clone()))
        .build();
    run(
        &single,
        &events_table(
            "one",
            "one-shard",
            ", 'scan.stream.initpos' = 'TRIM_HORIZON'",
        ),
    )
    .await;
    run(&single, "SET datafusion.execution.target_partitions = 1").await;
    let sql = "SELECT id FROM one WHERE id % 2 = 1 LIMIT 5";
    let explained = rows(&single, &format!("EXPLAIN {sql}")).await;
    let kinds = strings(&explained, 0);
    let plans = strings(&explained, 1);
    let plan = &plans[kinds.iter().position(|k| k == "physical_plan").unwrap()];
    assert!(
        plan.starts_with("PassingFilterExec") && plan.contains("fetch=5"),
        "{plan}"
    );
    let filtered = tokio::time::timeout(Duration::from_secs(30), rows(&single, sql))
        .await
        .expect("LIMIT over a filter ends the query");
    assert_eq!(int64(&filtered, 0), [1, 3, 5, 7, 9]);

    let Outcome::Rows(stream) = session.execute("SELECT id FROM events").await.unwrap() else {
        panic!("rows expected")
    };
    let stopper = session.stopper();
    let reading = tokio::spawn(async move { stream.try_collect::<Vec<_>>().await });
    tokio::time::sleep(Duration::from_secs(2)).await;
    stopper.stop();
    let batches = tokio::time::timeout(Duration::from_secs(30), reading)
        .await
        .expect("stopping ends the query")
        .unwrap()
        .unwrap();
    assert_eq!(int64(&batches, 0).len(), 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datafusions_external_table_syntax_declares_a_kinesis_table() {
    let kinesis = Ferrokinesis::start().await;
    create_stream(&kds_test_support::client(&kinesis.url), "external", 1).await;
    let session = session(&kinesis.url);
    run(
        &session,
        "CREATE EXTERNAL TABLE ext (id BIGINT, name VARCHAR) STORED AS KINESIS
         PARTITIONED BY (name)
         OPTIONS ('aws.region' 'us-east-1', 'format' 'json', 'scan.stream.initpos' 'TRIM_HORIZON')
         LOCATION 'kinesis://external'",
    )
    .await;
    let written = rows(
        &session,
        "INSERT INTO ext VALUES (1, 'a'), (2, 'b'), (3, 'a')",
    )
    .await;
    assert_eq!(int64(&written, 0), [3]);
    run(&session, &raw_table("raw", "external")).await;
    run(&session, "SET kds.bounded = true").await;
    let raw = rows(&session, "SELECT data, pk FROM raw ORDER BY data").await;
    assert_eq!(
        strings(&raw, 0),
        [
            r#"{"id":1,"name":"a"}"#,
            r#"{"id":2,"name":"b"}"#,
            r#"{"id":3,"name":"a"}"#
        ]
    );
    assert_eq!(strings(&raw, 1), ["a", "b", "a"]);
    let error = session
        .execute(
            "CREATE EXTERNAL TABLE bad (id BIGINT) STORED AS KINESIS
             OPTIONS ('aws.region' 'us-east-1', 'format' 'jsn') LOCATION 'kinesis://external'",
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("format"), "{error}");
}

/// `INSERT INTO sink SELECT … FROM source` aborted at random points and run again from the
/// state directory: every matching source row reaches the sink.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_killed_and_run_again_writes_every_row() {
    let kinesis = Ferrokinesis::start().await;
    let client = kds_test_support::client(&kinesis.url);
    create_stream(&client, "source", 3).await;
    create_stream(&client, "sink", 2).await;
    let state = std::env::temp_dir().join(format!("kds-sql-pipeline-{}", fastrand::u32(..)));
    std::fs::create_dir_all(&state).unwrap();
    let tables = format!(
        "{};\n{}",
        events_table("src", "source", ", 'scan.stream.initpos' = 'TRIM_HORIZON'"),
        "CREATE TABLE dst (id BIGINT, doubled BIGINT) PARTITIONED BY (id)
         WITH ('connector' = 'kinesis', 'stream' = 'sink', 'aws.region' = 'us-east-1',
               'scan.stream.initpos' = 'TRIM_HORIZON', 'format' = 'json')"
    );
    let writer = session(&kinesis.url);
    run(&writer, &tables).await;
    let total = 20_000u64;
    write_events(&writer, "src", 0, total / 2).await;
    let pipeline = "INSERT INTO dst SELECT id, id * 2 FROM src WHERE id % 2 = 0";
    let mut duplicates_reported = 0u64;
    for run_number in 0..6u64 {
        if run_number == 3 {
            // The rest is written while the pipeline runs.
            write_events(&writer, "src", total / 2, total / 2).await;
        }
        let session = SqlSession::builder()
            .clients(At(kinesis.url.clone()))
            .state_dir(&state)
            .build();
        run(&session, &tables).await;
        let stopper = session.stopper();
        let task = tokio::spawn(async move { session.execute(pipeline).await });
        if run_number < 5 {
            let at = 300 + (fastrand::u32(..1500));
            tokio::time::sleep(Duration::from_millis(u64::from(at))).await;
            task.abort();
            let _ = task.await;
        } else {
            // Let the last run catch up, then stop it cleanly.
            tokio::time::sleep(Duration::from_secs(8)).await;
            stopper.stop();
            let Outcome::Pipeline(report) = task.await.unwrap().unwrap() else {
                panic!("a pipeline")
            };
            assert!(report.commits > 0, "{report:?}");
            duplicates_reported += report.sink.maybe_duplicated;
        }
    }
    let reader = session(&kinesis.url);
    run(&reader, &tables).await;
    run(&reader, "SET kds.bounded = true").await;
    let batches = rows(&reader, "SELECT id, doubled FROM dst").await;
    let ids = int64(&batches, 0);
    let doubled = int64(&batches, 1);
    let mut seen: HashMap<i64, u32> = HashMap::new();
    for (id, twice) in ids.iter().zip(&doubled) {
        assert_eq!(*twice, id * 2);
        *seen.entry(*id).or_default() += 1;
    }
    let want: Vec<i64> = (0..i64::try_from(total).unwrap())
        .filter(|i| i % 2 == 0)
        .collect();
    let mut got: Vec<i64> = seen.keys().copied().collect();
    got.sort_unstable();
    assert_eq!(got, want, "every matching row reaches the sink");
    let repeats: u32 = seen.values().map(|n| n - 1).sum();
    eprintln!(
        "pipeline: {} rows in the sink for {} matches, {repeats} written again after aborts \
         ({duplicates_reported} counted as possibly duplicated by the last run's sink)",
        ids.len(),
        want.len()
    );
    let _ = std::fs::remove_dir_all(&state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateful_pipelines_over_an_unbounded_source_are_refused() {
    let (_kinesis, session) = events_from_start("refused", 1).await;
    run(
        &session,
        "CREATE TABLE counts (user_id BIGINT, n BIGINT) WITH ('connector' = 'kinesis',
           'stream' = 'refused', 'aws.region' = 'us-east-1', 'format' = 'json')",
    )
    .await;
    let error = session
        .execute("INSERT INTO counts SELECT user_id, count(*) FROM events GROUP BY user_id")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unbounded, "{error}");
    assert!(error.to_string().contains("kds.bounded"), "{error}");
    // A second Kinesis table in a subquery is no stateless pipeline either.
    let error = session
        .execute(
            "INSERT INTO counts SELECT user_id, id FROM events
             WHERE user_id IN (SELECT user_id FROM counts)",
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unbounded, "{error}");
}

/// A query that ends early (its LIMIT reached) releases the enhanced fan-out consumer its
/// scan registered, once the session is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_end_releases_the_consumer_the_scan_registered() {
    let kinesis = Ferrokinesis::with_subscriptions_of(Duration::from_secs(5)).await;
    let client = kds_test_support::client(&kinesis.url);
    let arn = create_stream(&client, "fanned", 2).await;
    let session = session(&kinesis.url);
    run(
        &session,
        &events_table(
            "events",
            "fanned",
            ", 'scan.stream.initpos' = 'TRIM_HORIZON', 'scan.stream.recordpublisher' = 'EFO',
               'scan.stream.efo.consumername' = 'sql-reader'",
        ),
    )
    .await;
    write_events(&session, "events", 0, 100).await;
    let limited = tokio::time::timeout(
        Duration::from_secs(60),
        rows(&session, "SELECT id FROM events LIMIT 3"),
    )
    .await
    .expect("LIMIT ends the query");
    assert_eq!(int64(&limited, 0).len(), 3);
    tokio::time::timeout(Duration::from_secs(60), session.close())
        .await
        .expect("the reads close");
    let consumers = client
        .send(&kds_proto::model::ListStreamConsumersInput::new(arn))
        .await
        .unwrap()
        .consumers
        .unwrap_or_default();
    assert!(consumers.is_empty(), "still registered: {consumers:?}");
}

/// Two sessions (as two processes would) read a table with `scan.lease.table`: their
/// partitions share the shards through the DynamoDB lease table, together they return every
/// row, and stopping gives the leases up. A snapshot of the same table takes no lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_share_a_table_through_its_lease_table() {
    let kinesis = Ferrokinesis::start().await;
    let dynamo = kds_test_support::Dynoxide::start().await;
    create_stream(&kds_test_support::client(&kinesis.url), "shared", 4).await;
    let extra = format!(
        ", 'scan.stream.initpos' = 'TRIM_HORIZON', 'scan.lease.table' = 'sql-readers',
         'scan.lease.dynamodb.endpoint' = '{}', 'scan.lease.duration' = '1500'",
        dynamo.url
    );
    let sessions = [session(&kinesis.url), session(&kinesis.url)];
    for session in &sessions {
        run(session, &events_table("events", "shared", &extra)).await;
    }
    write_events(&sessions[0], "events", 0, 2000).await;
    let mut streams = Vec::new();
    for session in &sessions {
        let Outcome::Rows(stream) = session.execute("SELECT id FROM events").await.unwrap() else {
            panic!("rows expected")
        };
        streams.push(stream);
    }
    let mut ids: [Vec<i64>; 2] = [Vec::new(), Vec::new()];
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut all: Vec<i64> = ids.concat();
        all.sort_unstable();
        all.dedup();
        if all.len() == 2000 {
            break;
        }
        assert!(Instant::now() < deadline, "{} of 2000 rows", all.len());
        for (stream, ids) in streams.iter_mut().zip(&mut ids) {
            if let Ok(Some(batch)) =
                tokio::time::timeout(Duration::from_millis(100), stream.next()).await
            {
                ids.extend(int64(&[batch.unwrap()], 0));
            }
        }
    }
    let store = kds_stream::DynamoDbLeaseStore::open(
        kds_test_support::client(&kinesis.url)
            .dynamodb(Some(&dynamo.url))
            .unwrap(),
        "sql-readers",
    )
    .await
    .unwrap();
    let leases = kds_stream::LeaseStore::list(&store).await.unwrap();
    assert_eq!(leases.len(), 4);
    let owners: std::collections::HashSet<_> =
        leases.iter().filter_map(|l| l.owner.clone()).collect();
    assert!(owners.len() >= 2, "{leases:?}");
    assert!(
        ids.iter().all(|ids| !ids.is_empty()),
        "both sessions read some shards: {} and {} rows",
        ids[0].len(),
        ids[1].len()
    );
    for (session, mut stream) in sessions.iter().zip(streams) {
        session.stopper().stop();
        let end = tokio::time::timeout(Duration::from_secs(30), async {
            while stream.next().await.is_some() {}
        })
        .await;
        assert!(end.is_ok(), "stopping ends the query");
    }
    // The readers closed in their own tasks: give them a moment to write.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let leases = kds_stream::LeaseStore::list(&store).await.unwrap();
        if leases.iter().all(|l| l.owner.is_none()) {
            break;
        }
        assert!(Instant::now() < deadline, "leases still owned: {leases:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A snapshot reads every shard itself, with no lease.
    let snapshot = session(&kinesis.url);
    run(&snapshot, &events_table("events", "shared", &extra)).await;
    run(&snapshot, "SET kds.bounded = true").await;
    let count = rows(&snapshot, "SELECT count(*) FROM events").await;
    assert_eq!(int64(&count, 0), [2000]);
}
