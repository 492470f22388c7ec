//! One core drains 500 shards: a `StreamReader` (enhanced fan-out, CBOR, h2c) and then a
//! `PollingReader` (GetRecords every 200 ms, CBOR, h2c) read 500 shards that the paced endpoint
//! (`paced_kinesis`, a process of its own) serves at each shard's read limit: 1 KiB records at
//! 2 MiB/s a shard, 1 GiB/s in all. Each reader runs in a child process of this benchmark on a
//! current-thread runtime, so its CPU time, peak RSS and connections are its own.
//!
//! In this process, in the same run, the same events are decoded in memory: kds-proto's lent
//! and owned CBOR decoders, and the anchor (`aws-smithy-eventstream` + serde_json + base64 on
//! the JSON form of the same events).
//!
//! `cargo bench -p kds-benches --bench readers_500` (`KDS_BENCH_SECONDS`, default 10, sets how
//! long each reader is measured, after 3 s of warm-up).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cpu_time::ThreadTime;
use kds_benches::anchor::smithy_serde_events;
use kds_benches::paced::{self, PER_EVENT, PER_PAGE};
use kds_client::credentials::Credentials;
use kds_client::{Client, HttpVersion, PollConfig, PollingReader, StreamId};
use kds_efo::{ReaderConfig, StreamReader};
use kds_proto::Protocol;
use kds_proto::eventstream::{
    SubscribeToShardDecoder, SubscribeToShardItem, SubscribeToShardVisit,
};
use kds_proto::model::{
    GetRecordsOutput, HashKeyRange, SequenceNumberRange, Shard, StartingPosition,
};
use kds_proto::types::{ConsumerArn, HashKey, ShardId, ShardIteratorType, StreamName};

const SHARDS: u64 = 500;
const WARM_UP: Duration = Duration::from_secs(3);

/// The paced endpoint in a process of its own.
struct Server {
    url: String,
    stdin: Option<ChildStdin>,
    child: Child,
}

impl Server {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_paced_kinesis"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the paced server starts");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        stdout.read_line(&mut line).expect("the port");
        child.stdout = Some(stdout.into_inner());
        Self {
            url: format!("http://127.0.0.1:{}", line.trim()),
            stdin: child.stdin.take(),
            child,
        }
    }

    /// Stops the server; what it reported (`busiest-second N`, `connections N`).
    fn stop(mut self) -> String {
        drop(self.stdin.take());
        let mut report = String::new();
        let _ =
            std::io::Read::read_to_string(self.child.stdout.as_mut().expect("piped"), &mut report);
        let _ = self.child.wait();
        report
    }
}

/// This process's CPU time so far, user and system, from `/proc/self/stat`.
fn process_cpu() -> (Duration, Duration) {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("procfs");
    // The fields after the command name, which ends with the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("a name") + 2..]
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields[i].parse::<u64>().expect("a number");
    // utime and stime are fields 14 and 15 of the line, in clock ticks (100 a second).
    let tick = Duration::from_millis(10);
    (tick * ticks(11) as u32, tick * ticks(12) as u32)
}

/// A `/proc/self/status` value in KiB (`VmRSS`, `VmHWM`).
fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("procfs")
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a status line")
}

fn shards() -> Vec<Shard> {
    let width = u128::MAX / u128::from(SHARDS);
    (0..SHARDS)
        .map(|n| {
            let low = width * u128::from(n);
            let high = if n + 1 == SHARDS {
                u128::MAX
            } else {
                low + width - 1
            };
            Shard::new(
                ShardId::new(format!("shardId-{n:012}")).expect("valid"),
                HashKeyRange::new(HashKey(low), HashKey(high)),
                SequenceNumberRange::new(paced::sequence(0)),
            )
        })
        .collect()
}

/// What a child process measured, as one line of `key=value` pairs.
fn measure_reader(mode: &str, url: &str, seconds: u64) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let client = Client::builder()
            .region("us-east-1")
            .endpoint(url)
            .protocol(Protocol::Cbor)
            .http_version(HttpVersion::Http2)
            .credentials(Credentials::new("AKID", "secret", None, None, "bench"))
            .build()
            .expect("a client");
        let stream = StreamId::Name(StreamName::new("bench").expect("valid"));
        let start = StartingPosition::new(ShardIteratorType::TrimHorizon);
        let rss_before = status_kib("VmRSS");
        let mut reader: Box<dyn Reader> = match mode {
            "efo" => Box::new(StreamReader::new(
                client,
                stream,
                ConsumerArn::new(
                    "arn:aws:kinesis:us-east-1:123456789012:stream/bench/consumer/c:1",
                )
                .expect("valid"),
                &shards(),
                &start,
                ReaderConfig::default(),
            )),
            _ => Box::new(PollingReader::new(
                client,
                stream,
                &shards(),
                &start,
                PollConfig::default(),
            )),
        };
        read(reader.as_mut(), Instant::now() + WARM_UP).await;
        let (user0, system0) = process_cpu();
        let started = Instant::now();
        let records = read(reader.as_mut(), started + Duration::from_secs(seconds)).await;
        let wall = started.elapsed();
        let (user1, system1) = process_cpu();
        format!(
            "records={records} wall_ns={} user_ns={} system_ns={} rss_before_kib={rss_before} \
             peak_rss_kib={} connections={}",
            wall.as_nanos(),
            (user1 - user0).as_nanos(),
            (system1 - system0).as_nanos(),
            status_kib("VmHWM"),
            reader.connections(),
        )
    })
}

/// Records read until `until`.
async fn read(reader: &mut dyn Reader, until: Instant) -> u64 {
    let mut records = 0;
    while Instant::now() < until {
        records += reader.next().await;
    }
    records
}

/// The two readers behind one face.
trait Reader {
    /// Records in the next batch.
    fn next(&mut self) -> std::pin::Pin<Box<dyn Future<Output = u64> + '_>>;
    /// Connections used, where the reader knows.
    fn connections(&self) -> String;
}

impl Reader for StreamReader {
    fn next(&mut self) -> std::pin::Pin<Box<dyn Future<Output = u64> + '_>> {
        Box::pin(async move {
            let batch = self.next_batch().await.expect("no error").expect("no end");
            batch.records.len() as u64
        })
    }

    fn connections(&self) -> String {
        Self::connections(self).to_string()
    }
}

impl Reader for PollingReader {
    fn next(&mut self) -> std::pin::Pin<Box<dyn Future<Output = u64> + '_>> {
        Box::pin(async move {
            let batch = self.next_batch().await.expect("no error").expect("no end");
            batch.records.len() as u64
        })
    }

    fn connections(&self) -> String {
        // One h2c connection: the client's pool multiplexes every call over it.
        "1".to_owned()
    }
}

/// Thread CPU time per record of `decode` over `body`, repeated for about a second.
fn per_record(body: &Bytes, decode: impl Fn(&Bytes) -> usize) -> Duration {
    let mut records = 0;
    let started = ThreadTime::now();
    let wall = Instant::now();
    while wall.elapsed() < Duration::from_secs(1) {
        records += decode(body);
    }
    started.elapsed() / u32::try_from(records).expect("fits")
}

fn lent_events(protocol: Protocol, body: &Bytes) -> usize {
    let mut decoder = SubscribeToShardDecoder::new(protocol);
    decoder.feed(body.clone());
    let mut records = 0;
    while let Some(SubscribeToShardVisit::Event(_)) = decoder
        .next_visit(|r| {
            records += 1;
            std::hint::black_box(r.data);
        })
        .expect("valid")
    {}
    records
}

fn owned_events(protocol: Protocol, body: &Bytes) -> usize {
    let mut decoder = SubscribeToShardDecoder::new(protocol);
    decoder.feed(body.clone());
    let mut records = 0;
    while let Some(SubscribeToShardItem::Event(event)) = decoder.next_item().expect("valid") {
        records += std::hint::black_box(event.records).len();
    }
    records
}

fn value(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

fn nanos_per(total_ns: u64, records: u64) -> f64 {
    total_ns as f64 / records as f64 / 1000.0
}

fn main() {
    let seconds: u64 = std::env::var("KDS_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    if let Ok(mode) = std::env::var("KDS_READERS_MODE") {
        let url = std::env::var("KDS_READERS_URL").expect("the server's URL");
        println!("{}", measure_reader(&mode, &url, seconds));
        return;
    }
    // 200 distinct events (20 000 records, about 21 MB of CBOR): more than the caches hold.
    let body = |protocol| -> Bytes {
        (0..200u64)
            .flat_map(|e| paced::event(e * PER_EVENT, protocol))
            .collect::<Vec<u8>>()
            .into()
    };
    let (cbor, json) = (body(Protocol::Cbor), body(Protocol::Json));
    // 50 distinct pages (20 000 records), for the same reason.
    let pages: Vec<Bytes> = (0..50u64)
        .map(|p| paced::page("shardId-000000000000", p * PER_PAGE, Protocol::Cbor))
        .collect();

    println!("readers_500: 500 shards at 2 MiB/s each, 1 KiB records, CBOR over h2c, one core");
    let mut rows = Vec::new();
    for mode in ["efo", "polling"] {
        let server = Server::start();
        let output = Command::new(std::env::current_exe().expect("this benchmark"))
            .env("KDS_READERS_MODE", mode)
            .env("KDS_READERS_URL", &server.url)
            .env("KDS_BENCH_SECONDS", seconds.to_string())
            .stderr(Stdio::inherit())
            .output()
            .expect("the reader runs");
        let served = server.stop();
        assert!(output.status.success(), "the {mode} reader failed");
        let line = String::from_utf8(output.stdout).expect("text");
        let line = line.trim().to_owned();
        rows.push((mode, line, served));
    }

    let lent = per_record(&cbor, |b| lent_events(Protocol::Cbor, b));
    let owned = per_record(&cbor, |b| owned_events(Protocol::Cbor, b));
    let lent_json = per_record(&json, |b| lent_events(Protocol::Json, b));
    let anchor = per_record(&json, smithy_serde_events);
    let lent_page = per_record(&Bytes::new(), |_| {
        let mut n = 0;
        for page in &pages {
            GetRecordsOutput::visit_records(page.clone(), Protocol::Cbor, |r| {
                n += 1;
                std::hint::black_box(r.data);
            })
            .expect("valid");
        }
        n
    });
    let us = |d: Duration| d.as_nanos() as f64 / 1000.0;
    println!();
    println!("in memory, this process, same run (µs per record):");
    println!(
        "  events, kds lent CBOR                         {:.3}",
        us(lent)
    );
    println!(
        "  events, kds owned CBOR                        {:.3}",
        us(owned)
    );
    println!(
        "  events, kds lent JSON                         {:.3}",
        us(lent_json)
    );
    println!(
        "  events, anchor: smithy + serde_json + base64  {:.3}",
        us(anchor)
    );
    println!(
        "  GetRecords pages of 400, kds lent CBOR        {:.3}",
        us(lent_page)
    );
    println!();
    println!(
        "| reader | records/s | of 1 024 000 | CPU µs/record (user + sys) | user ÷ lent in memory | \
         peak RSS | RSS growth per shard | connections | server |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (mode, line, served) in &rows {
        let records = value(line, "records");
        let wall = Duration::from_nanos(value(line, "wall_ns"));
        let rate = records as f64 / wall.as_secs_f64();
        let user = nanos_per(value(line, "user_ns"), records);
        let system = nanos_per(value(line, "system_ns"), records);
        let reference = if *mode == "efo" { lent } else { lent_page };
        let peak = value(line, "peak_rss_kib");
        let growth = peak.saturating_sub(value(line, "rss_before_kib"));
        println!(
            "| {mode} | {rate:.0} | {:.0}% | {:.3} + {:.3} = {:.3} | {:.2} | {:.1} MiB | {:.1} KiB | {} | {} |",
            rate / 1_024_000.0 * 100.0,
            user,
            system,
            user + system,
            user / us(reference),
            peak as f64 / 1024.0,
            growth as f64 / SHARDS as f64,
            line.split("connections=").nth(1).unwrap_or("?"),
            served.split_whitespace().collect::<Vec<_>>().join(" "),
        );
    }
    let _ = std::io::stdout().flush();
}
