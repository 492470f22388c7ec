//! The `kds` binary end to end: `kds local` serving, `kds put` and `kds tail` by polling and by
//! enhanced fan-out with and without aggregation, records written by boto3 and aws-kinesis-agg
//! into kinesis-local read back, and one-line errors with their exit statuses.

use kds_test_support as support;
use kds_test_support::KdsLocal;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use kds_client::{Client, Protocol};
use kds_proto::model::{DescribeStreamSummaryInput, UpdateMaxRecordSizeInput};
use kds_proto::types::StreamName;
use serde_json::Value;

const KDS: &str = env!("CARGO_BIN_EXE_kds");

/// Runs `kds` with `args` and `stdin`, killed after `limit`.
fn kds(args: &[&str], stdin: &[u8], limit: Duration) -> Output {
    let mut child = Command::new(KDS)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    // Kills the process if it runs past `limit`; told to stand down as soon as it has ended.
    let (finished, watched) = std::sync::mpsc::channel::<()>();
    let watchdog = {
        let id = child.id();
        std::thread::spawn(move || {
            if watched.recv_timeout(limit).is_err() {
                let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
            }
        })
    };
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    let _ = finished.send(());
    watchdog.join().unwrap();
    assert!(
        started.elapsed() < limit,
        "kds {args:?} ran past {limit:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    feeder.join().unwrap();
    output
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn client(url: &str) -> Client {
    support::client_builder(url)
        .protocol(Protocol::Json)
        .build()
        .unwrap()
}

fn create_stream(url: &str, name: &str, shards: i32) {
    runtime().block_on(support::create_stream(&client(url), name, shards));
}

/// The JSON lines of a `kds tail --output jsonl` run.
fn json_lines(output: &Output) -> Vec<Value> {
    assert!(
        output.status.success(),
        "kds tail failed: {}",
        stderr(output)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const MINUTE: Duration = Duration::from_secs(60);

/// 10 000 lines: ten users, each with a counter, some wide characters and some long lines.
fn input_lines() -> Vec<String> {
    (0..10_000)
        .map(|i| {
            let pad = "é".repeat(i % 7 * 40);
            format!(
                r#"{{"user":"u{}","n":{},"text":"line {i} {pad}"}}"#,
                i % 10,
                i / 10
            )
        })
        .collect()
}

#[test]
fn put_then_tail_by_polling_and_fan_out_with_and_without_aggregation() {
    let local = KdsLocal::start(KDS);
    let lines = input_lines();
    let stdin = lines.join("\n") + "\n";
    for (stream, put_flags) in [
        ("plain", &[][..]),
        (
            "aggregated",
            &["--aggregate", "--format", "jsonl", "--key-field", "user"][..],
        ),
    ] {
        create_stream(&local.url, stream, 3);
        let mut args = vec!["--endpoint", &local.url, "put", stream];
        args.extend_from_slice(put_flags);
        let put = kds(&args, stdin.as_bytes(), MINUTE);
        assert!(put.status.success(), "kds put: {}", stderr(&put));
        assert!(
            stderr(&put).contains("10000 records written, 0 failed"),
            "{}",
            stderr(&put)
        );

        for efo in [None, Some("tail-test")] {
            let mut args = vec![
                "--endpoint",
                &local.url,
                "tail",
                stream,
                "--from",
                "trim-horizon",
                "--no-follow",
                "--output",
                "jsonl",
            ];
            if let Some(consumer) = efo {
                args.extend(["--efo", consumer]);
            }
            let records = json_lines(&kds(&args, b"", MINUTE));
            let mut read: Vec<&str> = records
                .iter()
                .map(|r| r["data"].as_str().unwrap())
                .collect();
            assert_eq!(read.len(), lines.len(), "{stream} {efo:?}");
            // Each user's lines in the order written (one key, one shard).
            if put_flags.contains(&"--aggregate") {
                let mut next: HashMap<String, u64> = HashMap::new();
                for record in &records {
                    let line: Value =
                        serde_json::from_str(record["data"].as_str().unwrap()).unwrap();
                    let user = line["user"].as_str().unwrap().to_owned();
                    assert_eq!(record["partition_key"], user.as_str());
                    let expected = next.entry(user).or_default();
                    assert_eq!(line["n"].as_u64(), Some(*expected), "{stream} {efo:?}");
                    *expected += 1;
                }
                assert!(
                    records
                        .iter()
                        .any(|r| r["sub_sequence_number"].as_u64() > Some(0))
                );
            } else {
                assert!(records.iter().all(|r| r["sub_sequence_number"].is_null()));
            }
            read.sort_unstable();
            let mut written: Vec<&str> = lines.iter().map(String::as_str).collect();
            written.sort_unstable();
            assert!(
                read == written,
                "{stream} {efo:?}: other lines read than written"
            );
        }
    }
}

#[test]
fn text_output_limit_and_latest() {
    let local = KdsLocal::start(KDS);
    create_stream(&local.url, "small", 1);
    let put = kds(
        &[
            "--endpoint",
            &local.url,
            "put",
            "small",
            "--partition-key",
            "k",
        ],
        b"one\ntwo\r\nthree",
        MINUTE,
    );
    assert!(put.status.success(), "{}", stderr(&put));
    let tail = |from: &str, limit: Option<&str>| {
        let mut args = vec![
            "--endpoint",
            &local.url,
            "tail",
            "small",
            "--from",
            from,
            "--no-follow",
        ];
        if let Some(limit) = limit {
            args.extend(["--limit", limit]);
        }
        let output = kds(&args, b"", MINUTE);
        assert!(output.status.success(), "{}", stderr(&output));
        String::from_utf8(output.stdout).unwrap()
    };
    assert_eq!(tail("trim-horizon", None), "one\ntwo\nthree\n");
    assert_eq!(tail("trim-horizon", Some("2")), "one\ntwo\n");
    assert_eq!(tail("latest", None), "");
    assert_eq!(
        tail("at-timestamp:2000-01-01T00:00:00Z", None),
        "one\ntwo\nthree\n"
    );

    // A time between two writes: only the later records. (ferrokinesis keeps arrival times
    // in whole seconds: the time is the next second, and the second write comes after it.)
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let between = now.as_secs() + 1;
    std::thread::sleep(Duration::from_secs(between) - now + Duration::from_millis(100));
    let put = kds(
        &[
            "--endpoint",
            &local.url,
            "put",
            "small",
            "--partition-key",
            "k",
        ],
        b"four\n",
        MINUTE,
    );
    assert!(put.status.success(), "{}", stderr(&put));
    assert_eq!(tail(&format!("at-timestamp:{between}"), None), "four\n");
}

/// Runs `kds put` into `stream` on a pipe that stays open until the returned stdin is dropped.
fn put_from_pipe(url: &str, stream: &str, extra: &[&str]) -> (Child, std::process::ChildStdin) {
    let mut child = Command::new(KDS)
        .args(["--endpoint", url, "put", stream])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    (child, stdin)
}

fn read_all(url: &str, stream: &str) -> String {
    let output = kds(
        &[
            "--endpoint",
            url,
            "tail",
            stream,
            "--from",
            "trim-horizon",
            "--no-follow",
        ],
        b"",
        MINUTE,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8(output.stdout).unwrap()
}

/// Waits (at most 10 s) until `tail` shows `expected`.
fn wait_for(url: &str, stream: &str, expected: &str) {
    let started = Instant::now();
    loop {
        let read = read_all(url, stream);
        if read == expected {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still {read:?} instead of {expected:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn write(stdin: &mut std::process::ChildStdin, text: &[u8]) {
    stdin.write_all(text).unwrap();
    stdin.flush().unwrap();
}

#[test]
fn a_pausing_input_is_written_without_waiting_for_more() {
    let local = KdsLocal::start(KDS);
    create_stream(&local.url, "piped", 2);
    // Aggregated, with one key: each aggregate waits for its buffering time (100 ms), then
    // goes out although the input stays open.
    let (put, mut stdin) = put_from_pipe(
        &local.url,
        "piped",
        &["--aggregate", "--partition-key", "k"],
    );
    write(&mut stdin, b"a\nb\n");
    wait_for(&local.url, "piped", "a\nb\n");
    // `x` falls due while `c-` is read in part: the pause sends `x`, and the line read in
    // part survives it.
    write(&mut stdin, b"x\nc-");
    wait_for(&local.url, "piped", "a\nb\nx\n");
    write(&mut stdin, b"continued\n");
    wait_for(&local.url, "piped", "a\nb\nx\nc-continued\n");
    drop(stdin);
    let output = put.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("4 records written, 0 failed"));
}

#[test]
fn ctrl_c_ends_put_and_what_was_buffered_is_written_and_counted() {
    let local = KdsLocal::start(KDS);
    create_stream(&local.url, "interrupted", 1);
    // Records wait up to a minute for their batch: only the stop can send them in time.
    let (mut put, mut stdin) =
        put_from_pipe(&local.url, "interrupted", &["--max-buffered-ms", "60000"]);
    // The last line is cut short by the interruption; it is written as it is.
    write(&mut stdin, b"d\ne\nf");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(read_all(&local.url, "interrupted"), "", "still buffered");
    let status = Command::new("kill")
        .args(["-INT", &put.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = put.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "put did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut text = String::new();
    std::io::Read::read_to_string(&mut put.stderr.take().unwrap(), &mut text).unwrap();
    assert!(exit.success(), "{text}");
    assert!(text.contains("3 records written, 0 failed"), "{text}");
    drop(stdin);
    assert_eq!(read_all(&local.url, "interrupted"), "d\ne\nf\n");
}

/// Python with boto3 and aws-kinesis-agg: `$KDS_PYTHON` (CI sets it), else `python3` when it
/// has both; `None` prints a notice.
fn python_with_boto3() -> Option<String> {
    let python = std::env::var("KDS_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import boto3, aws_kinesis_agg.aggregator"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(python)
    } else if std::env::var_os("KDS_PYTHON").is_some() {
        panic!("$KDS_PYTHON cannot import boto3 and aws_kinesis_agg");
    } else {
        eprintln!(
            "notice: no python with boto3 and aws-kinesis-agg (set KDS_PYTHON), so the boto3 test is skipped"
        );
        None
    }
}

#[test]
fn records_written_by_boto3_and_aws_kinesis_agg_are_read_back() {
    let (Some(local), Some(python)) = (support::KinesisLocal::get(), python_with_boto3()) else {
        return;
    };
    create_stream(&local.plain_url, "from-boto3", 2);
    let script: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "boto3_writer.py"]
        .iter()
        .collect();
    let written = Command::new(python)
        .arg(script)
        .args([&local.plain_url, "from-boto3"])
        .output()
        .unwrap();
    assert!(written.status.success(), "{}", stderr(&written));
    let expected: Vec<Value> = String::from_utf8(written.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    for protocol in ["json", "cbor"] {
        let records = json_lines(&kds(
            &[
                "--endpoint",
                &local.plain_url,
                "--protocol",
                protocol,
                "tail",
                "from-boto3",
                "--from",
                "trim-horizon",
                "--no-follow",
                "--output",
                "jsonl",
            ],
            b"",
            MINUTE,
        ));
        assert_eq!(records.len(), expected.len());
        let by_data: HashMap<&str, &Value> = records
            .iter()
            .map(|r| (r["data"].as_str().unwrap(), r))
            .collect();
        let mut aggregates: HashMap<u64, &str> = HashMap::new();
        for want in &expected {
            let got = by_data[want["data"].as_str().unwrap()];
            for field in ["partition_key", "sub_sequence_number", "explicit_hash_key"] {
                assert_eq!(got[field], want[field], "{field} of {want}");
            }
            // The user records of one aggregate share its sequence number.
            if let Some(group) = want["group"].as_u64() {
                let sequence = got["sequence_number"].as_str().unwrap();
                assert_eq!(*aggregates.entry(group).or_insert(sequence), sequence);
            }
            assert!(got["approximate_arrival_timestamp"].is_string());
        }
        assert_eq!(aggregates.len(), 10);
    }
}

#[test]
fn bad_input_gives_one_line_and_the_exit_status() {
    let local = KdsLocal::start(KDS);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = format!("http://127.0.0.1:{closed}");
    let refused = format!("cannot connect to 127.0.0.1:{closed}");
    for (args, status, message) in [
        (
            vec!["--endpoint", &local.url, "tail", "nope", "--no-follow"],
            1,
            "stream `nope` not found",
        ),
        (
            vec!["--endpoint", &local.url, "put", "nope"],
            1,
            "stream `nope` not found",
        ),
        (
            vec!["--endpoint", &unreachable, "tail", "s"],
            1,
            refused.as_str(),
        ),
        (
            vec!["tail", "s", "--from", "at-timestamp:yesterday"],
            2,
            "bad timestamp `yesterday`",
        ),
        (
            vec!["tail", "s", "--bogus"],
            2,
            "unexpected argument '--bogus'",
        ),
        (
            vec!["--endpoint", &local.url, "put", "s", "--key-field", "id"],
            2,
            "--key-field needs --format jsonl",
        ),
        (
            vec!["--endpoint", &local.url, "put", "s", "/nonexistent/input"],
            1,
            "cannot read /nonexistent/input",
        ),
    ] {
        let output = kds(&args, b"", MINUTE);
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(status), "{args:?}: {text}");
        assert_eq!(text.lines().count(), 1, "{args:?}: {text}");
        assert!(text.starts_with("kds: "), "{args:?}: {text}");
        assert!(text.contains(message), "{args:?}: {text}");
    }
}

/// On kinesis-local: ferrokinesis 0.7 does not report a stream's MaxRecordSizeInKiB.
#[test]
fn records_up_to_the_streams_own_limit_are_written() {
    let Some(local) = support::KinesisLocal::get() else {
        return;
    };
    let url = &local.plain_url;
    let big = "x".repeat(1536 * 1024);
    for (stream, raise) in [("one-mib", false), ("two-mib", true)] {
        create_stream(url, stream, 1);
        if raise {
            runtime().block_on(async {
                let client = client(url);
                let mut describe = DescribeStreamSummaryInput::new();
                describe.stream_name = Some(StreamName::new(stream).unwrap());
                let arn = client
                    .send(&describe)
                    .await
                    .unwrap()
                    .stream_description_summary
                    .stream_arn;
                let mut raise = UpdateMaxRecordSizeInput::new(2048);
                raise.stream_arn = Some(arn);
                client.send(&raise).await.unwrap();
            });
        }
        let put = kds(
            &["--endpoint", url, "put", stream, "--partition-key", "k"],
            format!("{big}\nsmall\n").as_bytes(),
            MINUTE,
        );
        let text = stderr(&put);
        if raise {
            assert!(put.status.success(), "{text}");
            assert!(text.contains("2 records written, 0 failed"), "{text}");
        } else {
            assert_eq!(put.status.code(), Some(1), "{text}");
            assert!(text.contains("1 records written, 1 failed"), "{text}");
            assert!(text.contains("over the limit of 1048576 bytes"), "{text}");
        }
    }
}

#[test]
fn an_invalid_partition_key_is_refused_also_inside_an_aggregate() {
    let local = KdsLocal::start(KDS);
    // One shard: all three records would share one aggregate.
    create_stream(&local.url, "keys", 1);
    let put = kds(
        &[
            "--endpoint",
            &local.url,
            "put",
            "keys",
            "--aggregate",
            "--format",
            "jsonl",
            "--key-field",
            "user",
        ],
        b"{\"user\":\"a\"}\n{\"user\":\"\"}\n{\"user\":\"b\"}\n",
        MINUTE,
    );
    let text = stderr(&put);
    assert_eq!(put.status.code(), Some(1), "{text}");
    assert!(text.contains("2 records written, 1 failed"), "{text}");
    assert!(text.contains("partition key ``"), "{text}");
}

#[test]
fn aggregates_put_across_a_split_are_all_read_by_a_filtering_reader() {
    let local = KdsLocal::start(KDS);
    create_stream(&local.url, "resharded", 1);
    // Random keys: the aggregates of the one shard hold records of both its future children.
    let (put, mut stdin) = put_from_pipe(
        &local.url,
        "resharded",
        &["--aggregate", "--max-buffered-ms", "20"],
    );
    let lines: Vec<String> = (0..4000).map(|n| format!("r{n:04}")).collect();
    write(&mut stdin, (lines[..2000].join("\n") + "\n").as_bytes());
    let expected = lines[..2000].join("\n") + "\n";
    wait_for(&local.url, "resharded", &expected);
    // The writer's shard map still has the parent only.
    let runtime = runtime();
    let client = client(&local.url);
    runtime.block_on(async {
        let parent = support::shards(&client, "resharded")
            .await
            .remove(0)
            .shard_id;
        support::split_shard(&client, "resharded", &parent).await;
    });
    write(&mut stdin, (lines[2000..].join("\n") + "\n").as_bytes());
    drop(stdin);
    let output = put.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("4000 records written, 0 failed"),
        "{}",
        stderr(&output)
    );
    // ferrokinesis dates a new child shard's records up to a second ahead: a bounded read
    // started at once would end before them.
    std::thread::sleep(Duration::from_millis(2100));
    // A reader that keeps only the user records of each shard's hash key range (the KCL's
    // rule, and the table source's) must see every line.
    let dir = std::env::temp_dir().join(format!("kds-cli-resharded-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let table = dir.join("lines.sql");
    std::fs::write(
        &table,
        format!(
            "CREATE TABLE lines (line STRING) WITH ('connector' = 'kinesis', \
             'stream' = 'resharded', 'aws.region' = 'us-east-1', 'aws.endpoint' = '{}', \
             'scan.stream.initpos' = 'TRIM_HORIZON', 'format' = 'raw')",
            local.url
        ),
    )
    .unwrap();
    let output = kds(
        &[
            "tail",
            "--table",
            table.to_str().unwrap(),
            "--state-dir",
            dir.join("state").to_str().unwrap(),
            "--output",
            "jsonl",
            "--no-follow",
        ],
        b"",
        MINUTE,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let mut read: Vec<String> = json_lines(&output)
        .iter()
        .map(|row| row["line"].as_str().unwrap().to_owned())
        .collect();
    read.sort_unstable();
    let missing: Vec<&String> = lines
        .iter()
        .filter(|l| read.binary_search(l).is_err())
        .collect();
    assert!(
        missing.is_empty(),
        "{} lines dropped by the reader, as filtered ({}): {:?} …",
        missing.len(),
        stderr(&output),
        &missing[..missing.len().min(5)]
    );
    read.dedup();
    assert_eq!(read.len(), lines.len());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_line_longer_than_a_record_is_refused_without_holding_it() {
    let local = KdsLocal::start(KDS);
    create_stream(&local.url, "long-lines", 1);
    // A line of 1.5 GiB under a 1 GiB address-space limit: held whole, it cannot fit.
    let mut child = Command::new("sh")
        .args([
            "-c",
            "ulimit -v 1048576 && exec \"$0\" --endpoint \"$1\" put long-lines --partition-key k",
            KDS,
            &local.url,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        stdin.write_all(b"first\n")?;
        let chunk = vec![b'x'; 1024 * 1024];
        for _ in 0..1536 {
            stdin.write_all(&chunk)?;
        }
        stdin.write_all(b"\nlast\n")
    });
    let output = child.wait_with_output().unwrap();
    let fed = feeder.join().unwrap();
    let text = stderr(&output);
    assert!(fed.is_ok(), "kds stopped reading: {text}");
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("2 records written, 1 failed"), "{text}");
    assert!(
        text.contains("line 2 is over the limit of 1048576 bytes a record may hold"),
        "{text}"
    );
    assert_eq!(read_all(&local.url, "long-lines"), "first\nlast\n");
}

#[test]
fn a_linger_past_an_hour_is_refused() {
    let output = kds(
        &["put", "s", "--max-buffered-ms", "18446744073709551615"],
        b"",
        MINUTE,
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("max-buffered-ms"),
        "{}",
        stderr(&output)
    );
}
