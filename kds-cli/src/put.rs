//! `kds put`: lines or JSON objects from standard input or a file, written as records.

use std::pin::pin;
use std::time::Instant;

use bytes::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use kds_proto::Limits;
use kds_proto::types::PartitionKey;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};

use crate::cli::{Connection, InputFormat, PutArgs};
use crate::connect::find_stream;
use crate::failure::Failure;
use crate::interrupt::interrupted;
use crate::lines::{Line, LineBuffer};
use crate::writer::Writer;

/// Where a record's partition key comes from.
enum Keys<'a> {
    Fixed(&'a str),
    Field(&'a str),
    Random,
}

impl Keys<'_> {
    /// The key of the record on line `line`, or why it has none.
    fn key_of(&self, data: &[u8], format: InputFormat, line: u64) -> Result<String, String> {
        if format == InputFormat::Jsonl {
            let value: Value =
                serde_json::from_slice(data).map_err(|e| format!("line {line}: not JSON: {e}"))?;
            if let Self::Field(field) = self {
                return match value.get(field) {
                    Some(Value::String(key)) => Ok(key.clone()),
                    Some(Value::Number(key)) => Ok(key.to_string()),
                    Some(Value::Bool(key)) => Ok(key.to_string()),
                    Some(_) => Err(format!(
                        "line {line}: `{field}` is not a string, number or boolean"
                    )),
                    None => Err(format!("line {line}: no member `{field}`")),
                };
            }
        }
        Ok(match self {
            Self::Fixed(key) => (*key).to_owned(),
            Self::Field(_) | Self::Random => format!("{:032x}", fastrand::u128(..)),
        })
    }
}

/// Runs `kds put`.
pub(crate) async fn run(connection: &Connection, args: &PutArgs) -> Result<(), Failure> {
    if args.key_field.is_some() && args.format != InputFormat::Jsonl {
        return Err(Failure::usage("--key-field needs --format jsonl"));
    }
    let input: Box<dyn AsyncBufRead + Unpin + Send> = match &args.file {
        Some(path) if path.as_os_str() != "-" => {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| Failure::new(format!("cannot read {}: {e}", path.display())))?;
            Box::new(BufReader::with_capacity(256 * 1024, file))
        }
        _ => Box::new(BufReader::with_capacity(256 * 1024, tokio::io::stdin())),
    };
    if let Some(key) = &args.partition_key {
        PartitionKey::new(key.as_str())
            .map_err(|e| Failure::usage(format!("bad --partition-key `{key}`: {e}")))?;
    }
    let mut client = connection.client(false).await?;
    let stream = find_stream(&client, &args.stream).await?;
    if stream.limits != Limits::default() {
        // The stream takes larger records than the client checks for by default.
        client = connection.client_with(false, stream.limits).await?;
    }
    let linger = std::time::Duration::from_millis(args.max_buffered_ms);
    // One request at a time: each key's records keep their order unless one is retried.
    let mut writer = Writer::open(client, &stream, args.aggregate, linger, 1).await?;
    let keys = match (&args.partition_key, &args.key_field) {
        (Some(key), _) => Keys::Fixed(key),
        (None, Some(field)) => Keys::Field(field),
        (None, None) => Keys::Random,
    };
    let started = Instant::now();
    let progress = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {human_pos} records read ({per_sec})")
            .expect("a valid template"),
    );
    let read = write_lines(input, &mut writer, &keys, args.format, &progress).await;
    progress.finish_and_clear();
    // Ctrl-C ends the input like its end; an error stops the writing, and what was buffered
    // counts as failed. Either way the counts are printed.
    let (totals, stopped) = match read {
        Ok(()) => writer.finish().await,
        Err(failure) => (writer.abandon(&failure.to_string()), Some(failure)),
    };
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "kds put: {} records written, {} failed ({} Kinesis records, {:.0} records/s)",
        totals.written,
        totals.failed,
        totals.kinesis_records,
        totals.written as f64 / seconds.max(1e-3)
    );
    match (stopped, totals.first_failure) {
        (Some(failure), _) => Err(failure),
        (None, Some(why)) => Err(Failure::new(format!(
            "{} records were not written; the first because {why}",
            totals.failed
        ))),
        (None, None) => Ok(()),
    }
}

/// Reads up to and including the next line break into `line`. Returns the bytes read (0 at
/// the end of the input). Cancel safe: what was read is in `line`, and the next call goes on
/// from there.
async fn read_line(
    input: &mut (dyn AsyncBufRead + Unpin + Send),
    line: &mut LineBuffer,
) -> std::io::Result<usize> {
    let mut read = 0;
    loop {
        let available = input.fill_buf().await?;
        if available.is_empty() {
            return Ok(read);
        }
        let (taken, ended) = line.push(available);
        input.consume(taken);
        read += taken;
        if ended {
            return Ok(read);
        }
    }
}

/// Reads `input` to its end (or Ctrl-C), line by line, and adds each line (without its line
/// break) as a record; a batch goes out when full, or when the input pauses for longer than
/// its linger.
async fn write_lines(
    mut input: Box<dyn AsyncBufRead + Unpin + Send>,
    writer: &mut Writer,
    keys: &Keys<'_>,
    format: InputFormat,
    progress: &ProgressBar,
) -> Result<(), Failure> {
    let mut stop = pin!(interrupted());
    let mut stopping = false;
    let limit = writer.max_record_size();
    let mut line = LineBuffer::new(limit);
    let mut number = 0u64;
    loop {
        // `line` keeps a partial line across pauses: read_line appends to it.
        let deadline = writer.deadline();
        let paused = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
                None => std::future::pending().await,
            }
        };
        let read = tokio::select! {
            // Input that is there is read before a pause or a signal is noticed.
            biased;
            read = read_line(&mut input, &mut line) => {
                read.map_err(|e| Failure::new(format!("reading the input: {e}")))?
            }
            () = paused => {
                writer.flush_due().await?;
                continue;
            }
            // Ctrl-C ends the input; a line read in part is still written.
            () = stop.as_mut() => {
                stopping = true;
                0
            }
        };
        if read == 0 && line.is_empty() {
            break;
        }
        number += 1;
        match line.line() {
            Line::Data(data) => match keys.key_of(data, format, number) {
                Ok(key) => writer.add(&key, Bytes::copy_from_slice(data), true).await?,
                Err(why) => writer.refuse(why),
            },
            Line::Overlong => writer.refuse(format!(
                "line {number} is over the limit of {limit} bytes a record may hold"
            )),
        }
        line.clear();
        progress.set_position(number);
        if stopping || read == 0 {
            break;
        }
    }
    Ok(())
}
