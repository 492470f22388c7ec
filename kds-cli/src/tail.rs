//! `kds tail`: prints the records of every shard, deaggregated, as text or JSON lines.

use std::future::Future;
use std::io::{self, IsTerminal, Write};
use std::pin::{Pin, pin};
use std::time::SystemTime;

use chrono::{DateTime, SecondsFormat};
use kds_agg::{Deaggregator, KinesisRecord, PlainReason, UserRecord};
use kds_client::Batch;
use kds_proto::model::Record;
use kds_proto::types::Timestamp;
use serde_json::{Map, Value};

use crate::cli::{Connection, OutputFormat, TailArgs};
use crate::connect::{StreamInfo, find_stream};
use crate::failure::Failure;
use crate::interrupt::interrupted;
use crate::read::{self, FanOutConsumer};
use crate::terminal::escape_bytes;

/// Turns Kinesis records into the user records to print, counting what was odd about them.
#[derive(Debug, Default)]
pub(crate) struct Unpacker {
    deaggregator: Deaggregator,
    deaggregate: bool,
    /// Records that looked like KPL aggregates but were printed whole (bad digest, bad
    /// protobuf, or an aggregate that holds nothing deliverable).
    pub(crate) malformed_aggregates: u64,
}

impl Unpacker {
    pub(crate) fn new(deaggregate: bool) -> Self {
        Self {
            deaggregate,
            ..Self::default()
        }
    }

    /// The user records of `record`, in order (its data and partition key are moved, not
    /// copied).
    pub(crate) fn unpack(&mut self, record: Record) -> Vec<UserRecord> {
        let kinesis = KinesisRecord {
            data: record.data,
            partition_key: record.partition_key.into_bytes(),
            sequence_number: record.sequence_number.as_str().into(),
            approximate_arrival_timestamp: record
                .approximate_arrival_timestamp
                .map(|t| t.as_millis()),
        };
        if !self.deaggregate {
            return vec![whole(kinesis)];
        }
        match self.deaggregator.deaggregate(kinesis) {
            Ok(out) => {
                if matches!(
                    out.plain,
                    Some(PlainReason::DigestMismatch | PlainReason::InvalidProtobuf)
                ) {
                    self.malformed_aggregates += 1;
                }
                out.records
            }
            Err(error) => {
                self.malformed_aggregates += 1;
                match error.into_record() {
                    Some(kinesis) => vec![whole(kinesis)],
                    None => Vec::new(),
                }
            }
        }
    }
}

/// A Kinesis record as one user record.
fn whole(record: KinesisRecord) -> UserRecord {
    UserRecord {
        data: record.data,
        partition_key: record.partition_key,
        explicit_hash_key: None,
        sequence_number: record.sequence_number,
        sub_sequence_number: 0,
        aggregated: false,
        approximate_arrival_timestamp: record.approximate_arrival_timestamp,
        tags: Vec::new(),
    }
}

/// One JSON object per user record: shard, sequence and sub-sequence numbers (null for records
/// that were not aggregated), keys, arrival time (ISO-8601, UTC) and the data as text when it is
/// UTF-8, else `data_base64`.
pub(crate) fn json_line(shard_id: &str, record: &UserRecord) -> Value {
    let mut object = Map::new();
    object.insert("shard_id".into(), shard_id.into());
    object.insert(
        "sequence_number".into(),
        record.sequence_number.as_ref().into(),
    );
    object.insert(
        "sub_sequence_number".into(),
        if record.aggregated {
            record.sub_sequence_number.into()
        } else {
            Value::Null
        },
    );
    object.insert(
        "partition_key".into(),
        record.partition_key_lossy().into_owned().into(),
    );
    object.insert(
        "explicit_hash_key".into(),
        record
            .explicit_hash_key
            .map_or(Value::Null, |k| k.to_string().into()),
    );
    object.insert(
        "approximate_arrival_timestamp".into(),
        record
            .approximate_arrival_timestamp
            .and_then(DateTime::from_timestamp_millis)
            .map_or(Value::Null, |t| {
                t.to_rfc3339_opts(SecondsFormat::Millis, true).into()
            }),
    );
    match std::str::from_utf8(&record.data) {
        Ok(text) => object.insert("data".into(), text.into()),
        Err(_) => object.insert(
            "data_base64".into(),
            base64_simd::STANDARD.encode_to_string(&record.data).into(),
        ),
    };
    Value::Object(object)
}

/// Prints records; remembers a closed output (a pipe whose reader left) as the end.
struct Printer {
    out: io::BufWriter<io::Stdout>,
    format: OutputFormat,
    /// Standard output is a terminal: record data is written with its control characters
    /// escaped, so that no record can drive the terminal.
    escape: bool,
    printed: u64,
    limit: u64,
}

impl Printer {
    /// Prints `record`; `false` once no more should be printed (the limit, or a closed pipe).
    fn print(&mut self, shard_id: &str, record: &UserRecord) -> io::Result<bool> {
        if self.printed >= self.limit {
            return Ok(false);
        }
        match self.format {
            OutputFormat::Text if self.escape => {
                self.out.write_all(&escape_bytes(&record.data))?;
                self.out.write_all(b"\n")?;
            }
            OutputFormat::Text => {
                self.out.write_all(&record.data)?;
                self.out.write_all(b"\n")?;
            }
            OutputFormat::Jsonl => {
                serde_json::to_writer(&mut self.out, &json_line(shard_id, record))?;
                self.out.write_all(b"\n")?;
            }
        }
        self.printed += 1;
        Ok(self.printed < self.limit)
    }
}

/// Runs `kds tail`.
pub(crate) async fn run(connection: &Connection, args: &TailArgs) -> Result<(), Failure> {
    if args.limit == Some(0) {
        return Ok(());
    }
    if let Some(table) = &args.table {
        return crate::table::tail(connection, args, table).await;
    }
    let Some(stream) = &args.stream else {
        return Err(Failure::usage("name a stream, or a table with --table"));
    };
    // Records that arrive after this moment are not read with --no-follow.
    let started = Timestamp::from(SystemTime::now());
    let client = connection.client(args.efo.is_some()).await?;
    let stream = find_stream(&client, stream).await?;
    let mut stop = pin!(interrupted());
    let consumer = match &args.efo {
        Some(name) => {
            match FanOutConsumer::ensure(&client, &stream.arn, name, stop.as_mut()).await? {
                Some(consumer) => Some(consumer),
                None => return Ok(()),
            }
        }
        None => None,
    };
    let end_at = args.no_follow.then_some(started);
    let result = tail(&client, &stream, consumer.as_ref(), end_at, args, stop).await;
    match consumer {
        Some(consumer) => {
            let released = consumer.release(&client).await;
            result.and(released)
        }
        None => result,
    }
}

async fn tail(
    client: &kds_client::Client,
    stream: &StreamInfo,
    consumer: Option<&FanOutConsumer>,
    end_at: Option<Timestamp>,
    args: &TailArgs,
    mut stop: Pin<&mut impl Future<Output = ()>>,
) -> Result<(), Failure> {
    let mut reader = read::open(client, stream, &args.from, consumer, end_at).await?;
    let mut unpacker = Unpacker::new(!args.no_deaggregate);
    let mut printer = Printer {
        out: io::BufWriter::with_capacity(64 * 1024, io::stdout()),
        format: args.output,
        escape: io::stdout().is_terminal(),
        printed: 0,
        limit: args.limit.unwrap_or(u64::MAX),
    };
    let stopped = loop {
        let batch: Batch = tokio::select! {
            batch = reader.next_batch() => match batch {
                Ok(Some(batch)) => batch,
                Ok(None) => break Ok(()),
                Err(failure) => break Err(failure),
            },
            () = stop.as_mut() => break Ok(()),
        };
        match print_batch(&mut printer, &mut unpacker, batch) {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break Ok(()),
            Err(e) => break Err(Failure::new(format!("writing to standard output: {e}"))),
        }
    };
    let flushed = match printer.out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(Failure::new(format!("writing to standard output: {e}")))
        }
        _ => Ok(()),
    };
    if unpacker.malformed_aggregates > 0 {
        eprintln!(
            "kds tail: {} records looked like KPL aggregates but did not decode; printed whole",
            unpacker.malformed_aggregates
        );
    }
    let mended = reader.mended();
    if mended.repeats_dropped > 0 {
        eprintln!(
            "kds tail: {} records the service sent again after a resubscription were printed once",
            mended.repeats_dropped
        );
    }
    if mended.protocol_breaks + mended.empty_subscriptions > 0 {
        eprintln!(
            "kds tail: resubscribed after {} events without a continuation on open shards and {} \
             subscriptions that ended without any event",
            mended.protocol_breaks, mended.empty_subscriptions
        );
    }
    stopped.and(flushed)
}

fn print_batch(printer: &mut Printer, unpacker: &mut Unpacker, batch: Batch) -> io::Result<bool> {
    let shard = batch.shard_id.as_str();
    for record in batch.records {
        for user in unpacker.unpack(record) {
            if !printer.print(shard, &user)? {
                return Ok(false);
            }
        }
    }
    printer.out.flush()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_carry_every_field() {
        let record = UserRecord {
            data: bytes::Bytes::from_static(b"hello"),
            partition_key: bytes::Bytes::from_static(b"pk"),
            explicit_hash_key: Some(42),
            sequence_number: "4959".into(),
            sub_sequence_number: 2,
            aggregated: true,
            approximate_arrival_timestamp: Some(1_700_000_000_123),
            tags: Vec::new(),
        };
        assert_eq!(
            json_line("shardId-000000000001", &record).to_string(),
            r#"{"approximate_arrival_timestamp":"2023-11-14T22:13:20.123Z","data":"hello","explicit_hash_key":"42","partition_key":"pk","sequence_number":"4959","shard_id":"shardId-000000000001","sub_sequence_number":2}"#
        );
        let plain = UserRecord {
            data: bytes::Bytes::from_static(&[0xff, 0x00]),
            explicit_hash_key: None,
            aggregated: false,
            sub_sequence_number: 0,
            approximate_arrival_timestamp: None,
            ..record
        };
        let line = json_line("s", &plain);
        assert_eq!(line["data_base64"], "/wA=");
        assert!(line.get("data").is_none());
        assert_eq!(line["sub_sequence_number"], Value::Null);
        assert_eq!(line["explicit_hash_key"], Value::Null);
        assert_eq!(line["approximate_arrival_timestamp"], Value::Null);
    }
}
