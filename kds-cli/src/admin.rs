//! `kds stream …` and `kds consumer …`: a stream's life (create, list, describe, scale, split,
//! merge, retention, delete) and its enhanced fan-out consumers, printed as aligned text for
//! people or JSON for scripts, with waits that show a spinner on a terminal.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use kds_client::Client;
use kds_proto::ErrorCode;
use kds_proto::model::{
    CreateStreamInput, DecreaseStreamRetentionPeriodInput, DeleteStreamInput,
    DeregisterStreamConsumerInput, DescribeStreamConsumerInput, DescribeStreamSummaryInput,
    IncreaseStreamRetentionPeriodInput, ListShardsInput, ListStreamConsumersInput,
    ListStreamsInput, MergeShardsInput, RegisterStreamConsumerInput, Shard, SplitShardInput,
    StreamDescriptionSummary, StreamModeDetails, UpdateShardCountInput,
};
use kds_proto::types::{
    ConsumerName, ConsumerStatus, HashKey, ScalingType, ShardId, StreamMode, StreamName,
    StreamStatus, Timestamp,
};
use serde_json::{Value, json};

use crate::cli::{
    AdminOutput, Connection, ConsumerArgs, ConsumerCommand, StreamArgs, StreamCommand,
};
use crate::failure::Failure;

/// The longest wait for a stream or consumer to settle.
const WAIT_LIMIT: Duration = Duration::from_secs(600);

/// Runs `kds stream …`.
pub(crate) async fn stream(connection: &Connection, args: &StreamArgs) -> Result<(), Failure> {
    let client = connection.client(false).await?;
    let out = Printer(args.output);
    match &args.command {
        StreamCommand::Create {
            name,
            shards,
            on_demand,
            wait,
        } => {
            let name = stream_name(name)?;
            let mut create = CreateStreamInput::new(name.clone());
            if *on_demand {
                create.stream_mode_details = Some(StreamModeDetails::new(StreamMode::OnDemand));
            } else {
                create.shard_count = Some(i32::try_from(shards.unwrap_or(1)).unwrap_or(i32::MAX));
            }
            client.send(&create).await?;
            let summary = if *wait {
                wait_for_status(&client, &name, "creating", StreamStatus::Active).await?
            } else {
                describe_summary(&client, &name).await?
            };
            out.summary(&summary);
        }
        StreamCommand::List => {
            let mut rows = Vec::new();
            let mut request = ListStreamsInput::new();
            loop {
                let page = client.send(&request).await?;
                match page.stream_summaries {
                    Some(summaries) if !summaries.is_empty() => {
                        for s in summaries {
                            rows.push(stream_row(
                                &s.stream_name,
                                &s.stream_status,
                                s.stream_mode_details.as_ref(),
                                s.stream_creation_timestamp,
                            ));
                        }
                    }
                    // Emulators may give names only: each is described.
                    _ => {
                        for name in &page.stream_names {
                            let s = describe_summary(&client, name).await?;
                            rows.push(stream_row(
                                name,
                                &s.stream_status,
                                s.stream_mode_details.as_ref(),
                                Some(s.stream_creation_timestamp),
                            ));
                        }
                    }
                }
                if !page.has_more_streams {
                    break;
                }
                request = ListStreamsInput::new();
                match (page.next_token, page.stream_names.last()) {
                    (Some(token), _) => request.next_token = Some(token),
                    (None, Some(last)) => request.exclusive_start_stream_name = Some(last.clone()),
                    (None, None) => break,
                }
            }
            out.table(
                &["stream_name", "status", "mode", "created"],
                &["STREAM", "STATUS", "MODE", "CREATED"],
                rows,
            );
        }
        StreamCommand::Describe { name } => {
            let name = stream_name(name)?;
            let summary = describe_summary(&client, &name).await?;
            let shards = list_shards(&client, &name).await?;
            out.description(&summary, &shards);
        }
        StreamCommand::Delete { name, force, wait } => {
            let name = stream_name(name)?;
            let mut delete = DeleteStreamInput::new();
            delete.stream_name = Some(name.clone());
            delete.enforce_consumer_deletion = force.then_some(true);
            client.send(&delete).await?;
            if *wait {
                wait_until_gone(&client, &name).await?;
            }
            out.message(
                json!({ "stream_name": name.as_str(), "deleted": *wait, "deleting": !*wait }),
                &if *wait {
                    format!("deleted {}", name.as_str())
                } else {
                    format!("deleting {}", name.as_str())
                },
            );
        }
        StreamCommand::Scale { name, shards, wait } => {
            let name = stream_name(name)?;
            let mut update = UpdateShardCountInput::new(
                i32::try_from(*shards).unwrap_or(i32::MAX),
                ScalingType::UniformScaling,
            );
            update.stream_name = Some(name.clone());
            let scaled = client.send(&update).await?;
            settle(&client, &name, *wait, &out).await?;
            if !*wait {
                out.message(
                    json!({
                        "stream_name": name.as_str(),
                        "current_shard_count": scaled.current_shard_count,
                        "target_shard_count": scaled.target_shard_count,
                    }),
                    &format!(
                        "scaling {} from {} to {shards} shards",
                        name.as_str(),
                        scaled
                            .current_shard_count
                            .map_or_else(|| "?".to_owned(), |c| c.to_string())
                    ),
                );
            }
        }
        StreamCommand::Split {
            name,
            shard,
            at,
            wait,
        } => {
            let name = stream_name(name)?;
            let shard_id = shard_id(shard)?;
            let at = match at {
                Some(at) => *at,
                None => {
                    let shards = list_shards(&client, &name).await?;
                    let listed =
                        shards
                            .iter()
                            .find(|s| s.shard_id == shard_id)
                            .ok_or_else(|| {
                                Failure::new(format!(
                                    "stream {} has no shard {}",
                                    name.as_str(),
                                    shard_id.as_str()
                                ))
                            })?;
                    let (start, end) = (
                        listed.hash_key_range.starting_hash_key.0,
                        listed.hash_key_range.ending_hash_key.0,
                    );
                    if start == end {
                        return Err(Failure::new(format!(
                            "shard {} holds one hash key and cannot be split",
                            shard_id.as_str()
                        )));
                    }
                    // The middle: the second child gets the upper half.
                    start + (end - start) / 2 + 1
                }
            };
            let mut split = SplitShardInput::new(shard_id.clone(), HashKey(at));
            split.stream_name = Some(name.clone());
            client.send(&split).await?;
            settle(&client, &name, *wait, &out).await?;
            if !*wait {
                out.message(
                    json!({ "stream_name": name.as_str(), "split": shard_id.as_str(), "at": at.to_string() }),
                    &format!("splitting {} at hash key {at}", shard_id.as_str()),
                );
            }
        }
        StreamCommand::Merge {
            name,
            shard,
            adjacent,
            wait,
        } => {
            let name = stream_name(name)?;
            let (shard, adjacent) = (shard_id(shard)?, shard_id(adjacent)?);
            let mut merge = MergeShardsInput::new(shard.clone(), adjacent.clone());
            merge.stream_name = Some(name.clone());
            client.send(&merge).await?;
            settle(&client, &name, *wait, &out).await?;
            if !*wait {
                out.message(
                    json!({ "stream_name": name.as_str(), "merged": [shard.as_str(), adjacent.as_str()] }),
                    &format!("merging {} and {}", shard.as_str(), adjacent.as_str()),
                );
            }
        }
        StreamCommand::Retention { name, hours } => {
            let name = stream_name(name)?;
            let current = describe_summary(&client, &name)
                .await?
                .retention_period_hours;
            let hours = i32::try_from(*hours).unwrap_or(i32::MAX);
            if hours > current {
                let mut increase = IncreaseStreamRetentionPeriodInput::new(hours);
                increase.stream_name = Some(name.clone());
                client.send(&increase).await?;
            } else if hours < current {
                let mut decrease = DecreaseStreamRetentionPeriodInput::new(hours);
                decrease.stream_name = Some(name.clone());
                client.send(&decrease).await?;
            }
            out.message(
                json!({ "stream_name": name.as_str(), "retention_period_hours": hours, "was": current }),
                &format!(
                    "{} keeps records {hours} hours (was {current})",
                    name.as_str()
                ),
            );
        }
    }
    Ok(())
}

/// Runs `kds consumer …`.
pub(crate) async fn consumer(connection: &Connection, args: &ConsumerArgs) -> Result<(), Failure> {
    let client = connection.client(false).await?;
    let out = Printer(args.output);
    match &args.command {
        ConsumerCommand::List { stream } => {
            let name = stream_name(stream)?;
            let arn = describe_summary(&client, &name).await?.stream_arn;
            let mut rows = Vec::new();
            let mut request = ListStreamConsumersInput::new(arn.clone());
            loop {
                let page = client.send(&request).await?;
                for c in page.consumers.unwrap_or_default() {
                    rows.push(json!({
                        "consumer_name": c.consumer_name.as_str(),
                        "status": c.consumer_status.as_str(),
                        "created": rfc3339(c.consumer_creation_timestamp),
                        "consumer_arn": c.consumer_arn.as_str(),
                    }));
                }
                match page.next_token {
                    Some(token) => {
                        request = ListStreamConsumersInput::new(arn.clone());
                        request.next_token = Some(token);
                    }
                    None => break,
                }
            }
            out.table(
                &["consumer_name", "status", "created", "consumer_arn"],
                &["CONSUMER", "STATUS", "CREATED", "ARN"],
                rows,
            );
        }
        ConsumerCommand::Register { stream, name, wait } => {
            let stream = stream_name(stream)?;
            let consumer = consumer_name(name)?;
            let arn = describe_summary(&client, &stream).await?.stream_arn;
            let registered = client
                .send(&RegisterStreamConsumerInput::new(
                    arn.clone(),
                    consumer.clone(),
                ))
                .await?
                .consumer;
            let mut status = registered.consumer_status.clone();
            if *wait {
                let spinner = spinner(&format!("registering {}", consumer.as_str()));
                let started = Instant::now();
                let mut pause = Duration::from_millis(100);
                while status != ConsumerStatus::Active {
                    check_limit(started, "the consumer to become ACTIVE")?;
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                    let mut describe = DescribeStreamConsumerInput::new();
                    describe.consumer_arn = Some(registered.consumer_arn.clone());
                    status = client
                        .send(&describe)
                        .await?
                        .consumer_description
                        .consumer_status;
                }
                spinner.finish_and_clear();
            }
            out.message(
                json!({
                    "consumer_name": consumer.as_str(),
                    "consumer_arn": registered.consumer_arn.as_str(),
                    "status": status.as_str(),
                }),
                &format!(
                    "{} {} ({})",
                    consumer.as_str(),
                    status.as_str(),
                    registered.consumer_arn.as_str()
                ),
            );
        }
        ConsumerCommand::Deregister { stream, name, wait } => {
            let stream = stream_name(stream)?;
            let consumer = consumer_name(name)?;
            let arn = describe_summary(&client, &stream).await?.stream_arn;
            let mut deregister = DeregisterStreamConsumerInput::new();
            deregister.stream_arn = Some(arn.clone());
            deregister.consumer_name = Some(consumer.clone());
            client.send(&deregister).await?;
            if *wait {
                let spinner = spinner(&format!("deregistering {}", consumer.as_str()));
                let started = Instant::now();
                let mut pause = Duration::from_millis(100);
                loop {
                    let mut describe = DescribeStreamConsumerInput::new();
                    describe.stream_arn = Some(arn.clone());
                    describe.consumer_name = Some(consumer.clone());
                    match client.send(&describe).await {
                        Err(e) if e.error_code() == Some(ErrorCode::ResourceNotFound) => break,
                        Err(e) => return Err(e.into()),
                        Ok(_) => {}
                    }
                    check_limit(started, "the consumer to go")?;
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                spinner.finish_and_clear();
            }
            out.message(
                json!({ "consumer_name": consumer.as_str(), "deregistered": *wait, "deleting": !*wait }),
                &if *wait {
                    format!("deregistered {}", consumer.as_str())
                } else {
                    format!("deregistering {}", consumer.as_str())
                },
            );
        }
    }
    Ok(())
}

fn stream_name(name: &str) -> Result<StreamName, Failure> {
    StreamName::new(name).map_err(|e| Failure::usage(format!("bad stream name `{name}`: {e}")))
}

fn consumer_name(name: &str) -> Result<ConsumerName, Failure> {
    ConsumerName::new(name).map_err(|e| Failure::usage(format!("bad consumer name `{name}`: {e}")))
}

fn shard_id(id: &str) -> Result<ShardId, Failure> {
    ShardId::new(id).map_err(|e| Failure::usage(format!("bad shard id `{id}`: {e}")))
}

async fn describe_summary(
    client: &Client,
    name: &StreamName,
) -> Result<StreamDescriptionSummary, Failure> {
    let mut describe = DescribeStreamSummaryInput::new();
    describe.stream_name = Some(name.clone());
    Ok(client.send(&describe).await?.stream_description_summary)
}

async fn list_shards(client: &Client, name: &StreamName) -> Result<Vec<Shard>, Failure> {
    let mut list = ListShardsInput::new();
    list.stream_name = Some(name.clone());
    Ok(client.list_all_shards(&list).await?)
}

fn check_limit(started: Instant, what: &str) -> Result<(), Failure> {
    if started.elapsed() > WAIT_LIMIT {
        return Err(Failure::new(format!(
            "waited {} s for {what}; giving up",
            WAIT_LIMIT.as_secs()
        )));
    }
    Ok(())
}

/// A spinner on standard error while stdout is a terminal; hidden otherwise.
fn spinner(message: &str) -> ProgressBar {
    if !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let spinner = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("a valid template"),
    );
    spinner.set_message(message.to_owned());
    spinner.enable_steady_tick(Duration::from_millis(100));
    spinner
}

/// Polls the stream until it is `status`, with a spinner saying `doing`.
pub(crate) async fn wait_for_status(
    client: &Client,
    name: &StreamName,
    doing: &str,
    status: StreamStatus,
) -> Result<StreamDescriptionSummary, Failure> {
    let spinner = spinner(&format!("{doing} {}", name.as_str()));
    let started = Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        let summary = describe_summary(client, name).await?;
        if summary.stream_status == status {
            spinner.finish_and_clear();
            return Ok(summary);
        }
        check_limit(
            started,
            &format!("{} to become {}", name.as_str(), status.as_str()),
        )?;
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// Polls until the stream is gone.
async fn wait_until_gone(client: &Client, name: &StreamName) -> Result<(), Failure> {
    let spinner = spinner(&format!("deleting {}", name.as_str()));
    let started = Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        let mut describe = DescribeStreamSummaryInput::new();
        describe.stream_name = Some(name.clone());
        match client.send(&describe).await {
            Err(e) if e.error_code() == Some(ErrorCode::ResourceNotFound) => {
                spinner.finish_and_clear();
                return Ok(());
            }
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        check_limit(started, &format!("{} to go", name.as_str()))?;
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// With `wait`, waits until a resharded stream is ACTIVE again and describes it.
async fn settle(
    client: &Client,
    name: &StreamName,
    wait: bool,
    out: &Printer,
) -> Result<(), Failure> {
    if wait {
        let summary = wait_for_status(client, name, "resharding", StreamStatus::Active).await?;
        let shards = list_shards(client, name).await?;
        out.description(&summary, &shards);
    }
    Ok(())
}

/// A row of `kds stream list`.
fn stream_row(
    name: &StreamName,
    status: &StreamStatus,
    mode: Option<&StreamModeDetails>,
    created: Option<Timestamp>,
) -> Value {
    json!({
        "stream_name": name.as_str(),
        "status": status.as_str(),
        "mode": mode.map(|d| d.stream_mode.as_str()),
        "created": created.map(rfc3339),
    })
}

/// A time as RFC 3339 in UTC, to the millisecond.
fn rfc3339(time: Timestamp) -> String {
    DateTime::<Utc>::from_timestamp_millis(time.as_millis()).map_or_else(
        || time.as_millis().to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

/// Prints results as the `--output` flag says.
struct Printer(AdminOutput);

impl Printer {
    /// One result: `value` as JSON, or `text`.
    fn message(&self, value: Value, text: &str) {
        match self.0 {
            AdminOutput::Json => println!("{value}"),
            AdminOutput::Text => println!("{text}"),
        }
    }

    /// Rows: a JSON array, or a table with a header and aligned columns (`-` for nothing).
    fn table(&self, keys: &[&str], headers: &[&str], rows: Vec<Value>) {
        if self.0 == AdminOutput::Json {
            println!("{}", Value::Array(rows));
            return;
        }
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|row| keys.iter().map(|k| cell(&row[*k])).collect())
            .collect();
        print_aligned(headers, &cells);
    }

    fn summary(&self, s: &StreamDescriptionSummary) {
        match self.0 {
            AdminOutput::Json => println!("{}", summary_json(s)),
            AdminOutput::Text => print_pairs(&summary_pairs(s)),
        }
    }

    fn description(&self, s: &StreamDescriptionSummary, shards: &[Shard]) {
        let shard_rows: Vec<Value> = shards.iter().map(shard_json).collect();
        match self.0 {
            AdminOutput::Json => {
                let mut value = summary_json(s);
                value["shards"] = Value::Array(shard_rows);
                println!("{value}");
            }
            AdminOutput::Text => {
                print_pairs(&summary_pairs(s));
                println!();
                let keys = [
                    "shard_id",
                    "state",
                    "parent_shard_id",
                    "adjacent_parent_shard_id",
                    "starting_hash_key",
                    "ending_hash_key",
                ];
                let cells: Vec<Vec<String>> = shard_rows
                    .iter()
                    .map(|row| keys.iter().map(|k| cell(&row[*k])).collect())
                    .collect();
                print_aligned(
                    &[
                        "SHARD",
                        "STATE",
                        "PARENT",
                        "ADJACENT PARENT",
                        "FIRST HASH KEY",
                        "LAST HASH KEY",
                    ],
                    &cells,
                );
            }
        }
    }
}

fn summary_json(s: &StreamDescriptionSummary) -> Value {
    json!({
        "stream_name": s.stream_name.as_str(),
        "stream_arn": s.stream_arn.as_str(),
        "status": s.stream_status.as_str(),
        "mode": s.stream_mode_details.as_ref().map(|d| d.stream_mode.as_str()),
        "open_shard_count": s.open_shard_count,
        "retention_period_hours": s.retention_period_hours,
        "max_record_size_kib": s.max_record_size_in_kib,
        "consumer_count": s.consumer_count,
        "encryption": s.encryption_type.as_ref().map(|e| e.as_str()),
        "created": rfc3339(s.stream_creation_timestamp),
    })
}

fn summary_pairs(s: &StreamDescriptionSummary) -> Vec<(&'static str, String)> {
    let value = summary_json(s);
    [
        ("stream", "stream_name"),
        ("arn", "stream_arn"),
        ("status", "status"),
        ("mode", "mode"),
        ("open shards", "open_shard_count"),
        ("retention (hours)", "retention_period_hours"),
        ("max record (KiB)", "max_record_size_kib"),
        ("consumers", "consumer_count"),
        ("encryption", "encryption"),
        ("created", "created"),
    ]
    .into_iter()
    .map(|(label, key)| (label, cell(&value[key])))
    .collect()
}

fn shard_json(shard: &Shard) -> Value {
    json!({
        "shard_id": shard.shard_id.as_str(),
        "state": if shard.is_closed() { "closed" } else { "open" },
        "parent_shard_id": shard.parent_shard_id.as_ref().map(|p| p.as_str()),
        "adjacent_parent_shard_id": shard.adjacent_parent_shard_id.as_ref().map(|p| p.as_str()),
        // Decimal text: 128-bit keys do not fit a JSON number.
        "starting_hash_key": shard.hash_key_range.starting_hash_key.0.to_string(),
        "ending_hash_key": shard.hash_key_range.ending_hash_key.0.to_string(),
        "starting_sequence_number": shard.sequence_number_range.starting_sequence_number.as_str(),
        "ending_sequence_number": shard
            .sequence_number_range
            .ending_sequence_number
            .as_ref()
            .map(|s| s.as_str()),
    })
}

/// A JSON value as a table cell: text as it is, `-` for null.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn print_pairs(pairs: &[(&str, String)]) {
    let width = pairs
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0);
    for (label, value) in pairs {
        println!("{label:width$}  {value}");
    }
}

fn print_aligned(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:width$}  "));
            }
        }
        println!("{}", text.trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
