//! `kds demo`: the quickstart. An emulator in this process, a stream of four shards, records of
//! mixed sizes (a third of them in KPL aggregates) written and read back by polling and by
//! enhanced fan-out, each reader checked for every record exactly once.

use std::time::{Duration, Instant, SystemTime};

use std::future::pending;
use std::pin::pin;

use bytes::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use kds_client::credentials::Credentials;
use kds_client::{Client, HttpVersion, Protocol};
use kds_proto::model::{CreateStreamInput, DescribeStreamSummaryInput};
use kds_proto::types::{StreamName, StreamStatus};

use crate::cli::{DemoArgs, Start};
use crate::connect::{StreamInfo, find_stream};
use crate::failure::Failure;
use crate::interrupt::interrupted;
use crate::local::Emulator;
use crate::read::{self, FanOutConsumer};
use crate::tail::Unpacker;
use crate::writer::{LINGER, Writer};

const STREAM: &str = "kds-demo";
const SHARDS: i32 = 4;

/// Runs `kds demo`; Ctrl-C stops it (the emulator goes with the process).
pub(crate) async fn run(args: &DemoArgs) -> Result<(), Failure> {
    tokio::select! {
        result = demo(args) => result,
        () = interrupted() => Err(Failure::new("interrupted")),
    }
}

async fn demo(args: &DemoArgs) -> Result<(), Failure> {
    let total = args.records as usize;
    let emulator = Emulator::start(0).await?;
    let client = Client::builder()
        .endpoint(emulator.url())
        .region("us-east-1")
        .protocol(Protocol::Cbor)
        .http_version(HttpVersion::Http2)
        .credentials(Credentials::new("demo", "demo", None, None, "kds demo"))
        .build()?;
    let stream = create_stream(&client).await?;
    println!(
        "kds demo: stream {STREAM} with {SHARDS} shards on the embedded emulator at {}",
        emulator.url()
    );

    let started = Instant::now();
    let written = write(&client, &stream, total).await?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "  {:<16} wrote {total} records ({} bytes; {} in KPL aggregates) as {} Kinesis records in {seconds:.2} s: {:.0} records/s",
        "put",
        written.bytes,
        written.aggregated,
        written.kinesis_records,
        total as f64 / seconds
    );
    if written.failed > 0 {
        return Err(Failure::new(format!(
            "{} records were not written",
            written.failed
        )));
    }

    let mut problems = Vec::new();
    let polled = read_back(&client, &stream, None, total, "polling").await?;
    problems.extend(polled.report("polling"));
    let consumer = FanOutConsumer::ensure(&client, &stream.arn, "kds-demo", pin!(pending()))
        .await?
        .ok_or_else(|| Failure::new("interrupted"))?;
    let fanned = read_back(&client, &stream, Some(&consumer), total, "enhanced fan-out").await;
    consumer.release(&client).await?;
    problems.extend(fanned?.report("fan-out"));
    if problems.is_empty() {
        println!("kds demo: every record arrived exactly once, by polling and by enhanced fan-out");
        Ok(())
    } else {
        Err(Failure::new(problems.join("; ")))
    }
}

async fn create_stream(client: &Client) -> Result<StreamInfo, Failure> {
    let name = StreamName::new(STREAM).map_err(|e| Failure::new(e.to_string()))?;
    let mut create = CreateStreamInput::new(name.clone());
    create.shard_count = Some(SHARDS);
    client.send(&create).await?;
    let mut describe = DescribeStreamSummaryInput::new();
    describe.stream_name = Some(name);
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .send(&describe)
        .await?
        .stream_description_summary
        .stream_status
        != StreamStatus::Active
    {
        if Instant::now() > deadline {
            return Err(Failure::new(
                "the demo stream did not become ACTIVE in 30 s",
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    find_stream(client, STREAM).await
}

/// What was written.
struct Written {
    bytes: u64,
    aggregated: u64,
    kinesis_records: u64,
    failed: u64,
}

/// The data of record `index`: its index, then filler up to a size that varies (60% small,
/// 30% medium, 10% up to 4 KiB).
fn record(index: usize, random: &mut fastrand::Rng) -> Bytes {
    let size = match random.u8(0..10) {
        0..=5 => random.usize(16..64),
        6..=8 => random.usize(256..1024),
        _ => random.usize(1024..4096),
    };
    let mut data = format!("{index:08} ").into_bytes();
    data.resize(size.max(data.len()), b'k' + (index % 16) as u8);
    Bytes::from(data)
}

/// The index a demo record carries.
fn index_of(data: &[u8]) -> Option<usize> {
    std::str::from_utf8(data.get(..8)?).ok()?.parse().ok()
}

async fn write(client: &Client, stream: &StreamInfo, total: usize) -> Result<Written, Failure> {
    let progress = bar(total, "writing");
    let mut writer = Writer::open(client.clone(), stream, true, LINGER, 50).await?;
    let mut random = fastrand::Rng::with_seed(7);
    let (mut bytes, mut aggregated) = (0, 0);
    for index in 0..total {
        let data = record(index, &mut random);
        bytes += data.len() as u64;
        let aggregate = index % 3 == 0;
        aggregated += u64::from(aggregate);
        writer
            .add(&format!("user-{}", index % 997), data, aggregate)
            .await?;
        if index % 1000 == 0 {
            progress.set_position(writer.totals().written);
        }
    }
    let (totals, failure) = writer.finish().await;
    if let Some(failure) = failure {
        return Err(failure);
    }
    progress.finish_and_clear();
    Ok(Written {
        bytes,
        aggregated,
        kinesis_records: totals.kinesis_records,
        failed: totals.failed,
    })
}

/// How often each record was read.
struct ReadBack {
    counts: Vec<u32>,
    foreign: u64,
}

impl ReadBack {
    /// What went wrong, if anything.
    fn report(&self, reader: &str) -> Option<String> {
        let missing = self.counts.iter().filter(|&&c| c == 0).count();
        let repeated = self.counts.iter().filter(|&&c| c > 1).count();
        (missing > 0 || repeated > 0 || self.foreign > 0).then(|| {
            format!(
                "{reader}: {missing} records missing, {repeated} read more than once, {} not written by the demo",
                self.foreign
            )
        })
    }
}

async fn read_back(
    client: &Client,
    stream: &StreamInfo,
    consumer: Option<&FanOutConsumer>,
    total: usize,
    label: &str,
) -> Result<ReadBack, Failure> {
    let progress = bar(total, label);
    let started = Instant::now();
    let everything = Some(SystemTime::now().into());
    let mut reader = read::open(client, stream, &Start::TrimHorizon, consumer, everything).await?;
    let mut unpacker = Unpacker::new(true);
    let mut seen = ReadBack {
        counts: vec![0; total],
        foreign: 0,
    };
    let mut read = 0u64;
    while let Some(batch) = reader.next_batch().await? {
        for record in batch.records {
            for user in unpacker.unpack(record) {
                read += 1;
                match index_of(&user.data).and_then(|i| seen.counts.get_mut(i)) {
                    Some(count) => *count += 1,
                    None => seen.foreign += 1,
                }
            }
        }
        progress.set_position(read);
    }
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "  {label:<16} read {read} records in {seconds:.2} s: {:.0} records/s",
        read as f64 / seconds
    );
    Ok(seen)
}

fn bar(total: usize, label: &str) -> ProgressBar {
    ProgressBar::new(total as u64).with_style(
        ProgressStyle::with_template(&format!(
            "{label:>16} [{{bar:40}}] {{human_pos}}/{{human_len}} ({{per_sec}})"
        ))
        .expect("a valid template")
        .progress_chars("=> "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_carry_their_index_at_every_size() {
        let mut random = fastrand::Rng::with_seed(1);
        for index in [0, 7, 99_999, 12_345_678] {
            let data = record(index, &mut random);
            assert!(data.len() >= 9);
            assert_eq!(index_of(&data), Some(index));
        }
        assert_eq!(index_of(b"short"), None);
        assert_eq!(index_of(b"0000000x "), None);
    }
}
