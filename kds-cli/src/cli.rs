//! The command line: subcommands, flags and the parsing of their values.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use kds_proto::types::{SequenceNumber, Timestamp};

/// Write to, read from and emulate Amazon Kinesis Data Streams.
#[derive(Debug, Parser)]
#[command(name = "kds", version, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) connection: Connection,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Where the stream is and who asks.
#[derive(Args, Clone)]
pub(crate) struct Connection {
    /// The Kinesis endpoint, e.g. http://127.0.0.1:4567 for `kds local` (default: the region's
    /// AWS endpoint).
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) endpoint: Option<String>,
    /// The AWS region (default: AWS_REGION or AWS_DEFAULT_REGION; us-east-1 with --endpoint).
    #[arg(long, global = true)]
    pub(crate) region: Option<String>,
    /// The profile of the shared AWS config files to take credentials from.
    #[arg(long, global = true)]
    pub(crate) profile: Option<String>,
    /// The wire protocol. CBOR saves base64 and is what the AWS Java SDK speaks; JSON is
    /// understood by every emulator (ferrokinesis misreads CBOR timestamps).
    #[arg(long, global = true, value_enum, default_value_t = Protocol::Json)]
    pub(crate) protocol: Protocol,
    /// Accept any TLS certificate (for emulators with self-signed certificates).
    #[arg(long, global = true)]
    pub(crate) no_verify_tls: bool,
    /// A system property, e.g. -D aws.accessKeyId=… -D aws.secretKey=… (credentials taken from
    /// the properties instead of the AWS default chain).
    #[arg(short = 'D', global = true, value_name = "KEY=VALUE", value_parser = parse_property)]
    pub(crate) properties: Vec<(String, String)>,
}

impl std::fmt::Debug for Connection {
    /// Without the property values: `-D aws.secretKey=…` is a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("profile", &self.profile)
            .field("protocol", &self.protocol)
            .field("no_verify_tls", &self.no_verify_tls)
            .field(
                "properties",
                &self.properties.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The wire protocol of a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Protocol {
    /// JSON 1.1.
    Json,
    /// CBOR 1.1 (no base64: cheaper).
    Cbor,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Runs a Kinesis emulator in this process, writes records, reads them back by polling and
    /// by enhanced fan-out, and checks that every record arrived exactly once.
    Demo(DemoArgs),
    /// Serves a Kinesis emulator on loopback until Ctrl-C.
    Local(LocalArgs),
    /// Writes lines (or JSON objects) from standard input or a file as records.
    Put(PutArgs),
    /// Prints the records of every shard of a stream.
    Tail(TailArgs),
    /// Creates, lists, describes, reshards and deletes streams.
    Stream(StreamArgs),
    /// Lists, registers and deregisters a stream's enhanced fan-out consumers.
    Consumer(ConsumerArgs),
    /// Prints a shell completion script (e.g. `kds completions bash > /etc/bash_completion.d/kds`).
    Completions(CompletionsArgs),
    /// Runs SQL over Kinesis tables: Flink's `CREATE TABLE … WITH ('connector' = 'kinesis', …)`,
    /// then queries (streamed as rows arrive), inserts, and `INSERT INTO … SELECT` pipelines.
    Sql(SqlArgs),
}

/// How `kds stream` and `kds consumer` print results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum AdminOutput {
    /// Aligned text, for people.
    Text,
    /// JSON, for scripts.
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct StreamArgs {
    #[command(subcommand)]
    pub(crate) command: StreamCommand,
    /// How results are printed.
    #[arg(long, global = true, value_enum, default_value_t = AdminOutput::Text)]
    pub(crate) output: AdminOutput,
}

#[derive(Debug, Subcommand)]
pub(crate) enum StreamCommand {
    /// Creates a stream (one shard unless told otherwise) and describes it.
    Create {
        /// The stream's name.
        name: String,
        /// Provisioned, with this many shards.
        #[arg(long, value_name = "N", conflicts_with = "on_demand",
              value_parser = clap::value_parser!(u32).range(1..=100_000))]
        shards: Option<u32>,
        /// On-demand capacity: the service adds shards as needed.
        #[arg(long)]
        on_demand: bool,
        /// Waits until the stream is ACTIVE.
        #[arg(long)]
        wait: bool,
    },
    /// Lists the streams of the account and region.
    List,
    /// Describes a stream and its shards (hash key ranges, parents, open or closed).
    Describe {
        /// The stream's name.
        name: String,
    },
    /// Deletes a stream.
    Delete {
        /// The stream's name.
        name: String,
        /// Also when enhanced fan-out consumers are registered (they go with it).
        #[arg(long)]
        force: bool,
        /// Waits until the stream is gone.
        #[arg(long)]
        wait: bool,
    },
    /// Scales a provisioned stream to a number of open shards (uniform scaling).
    Scale {
        /// The stream's name.
        name: String,
        /// The number of open shards wanted.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
        shards: u32,
        /// Waits until the stream is ACTIVE again, and describes it.
        #[arg(long)]
        wait: bool,
    },
    /// Splits a shard in two (at the middle of its hash key range unless told where).
    Split {
        /// The stream's name.
        name: String,
        /// The shard to split, e.g. shardId-000000000000.
        shard: String,
        /// The first hash key of the second child (decimal).
        #[arg(long, value_name = "HASH")]
        at: Option<u128>,
        /// Waits until the stream is ACTIVE again, and describes it.
        #[arg(long)]
        wait: bool,
    },
    /// Merges two shards with adjacent hash key ranges.
    Merge {
        /// The stream's name.
        name: String,
        /// One shard.
        shard: String,
        /// The shard whose range adjoins the first one's.
        adjacent: String,
        /// Waits until the stream is ACTIVE again, and describes it.
        #[arg(long)]
        wait: bool,
    },
    /// Sets how long records are kept.
    Retention {
        /// The stream's name.
        name: String,
        /// Hours, 24 to 8760.
        #[arg(value_parser = clap::value_parser!(u32).range(24..=8760))]
        hours: u32,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ConsumerArgs {
    #[command(subcommand)]
    pub(crate) command: ConsumerCommand,
    /// How results are printed.
    #[arg(long, global = true, value_enum, default_value_t = AdminOutput::Text)]
    pub(crate) output: AdminOutput,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConsumerCommand {
    /// Lists a stream's consumers.
    List {
        /// The stream's name.
        stream: String,
    },
    /// Registers a consumer.
    Register {
        /// The stream's name.
        stream: String,
        /// The consumer's name.
        name: String,
        /// Waits until the consumer is ACTIVE.
        #[arg(long)]
        wait: bool,
    },
    /// Deregisters a consumer.
    Deregister {
        /// The stream's name.
        stream: String,
        /// The consumer's name.
        name: String,
        /// Waits until the consumer is gone.
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct SqlArgs {
    /// Runs the statements of FILE (separated by semicolons); repeatable, before any -e.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub(crate) files: Vec<PathBuf>,
    /// Runs these statements; repeatable. Without -f or -e, statements are read from standard
    /// input.
    #[arg(short = 'e', long = "execute", value_name = "SQL")]
    pub(crate) statements: Vec<String>,
    /// Serves the embedded Kinesis emulator on 127.0.0.1 (--port) for the run, points every
    /// table at it, and creates each declared table's stream there: SQL with no AWS account.
    #[arg(long)]
    pub(crate) local: bool,
    /// The port of --local (0: any free port).
    #[arg(long, default_value_t = 4567, requires = "local")]
    pub(crate) port: u16,
    /// How rows are printed: values separated by tabs under a header line, or one JSON object
    /// per row.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub(crate) output: OutputFormat,
    /// Keeps the source positions of `INSERT INTO … SELECT` pipelines in DIR, so a pipeline run
    /// again goes on where the last one committed (without it, from the table's start).
    #[arg(long, value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// How many records to write.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub(crate) records: u32,
}

#[derive(Debug, Args)]
pub(crate) struct LocalArgs {
    /// The port to listen on, on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 4567)]
    pub(crate) port: u16,
}

#[derive(Debug, Args)]
pub(crate) struct PutArgs {
    /// The stream to write to.
    pub(crate) stream: String,
    /// The file to read (default: standard input).
    pub(crate) file: Option<PathBuf>,
    /// How the input is read: one record per line, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = InputFormat::Lines)]
    pub(crate) format: InputFormat,
    /// The JSON member whose value is the partition key (with --format jsonl).
    #[arg(long, value_name = "NAME", conflicts_with = "partition_key")]
    pub(crate) key_field: Option<String>,
    /// One partition key for every record (default: a random key per record).
    #[arg(long, value_name = "KEY")]
    pub(crate) partition_key: Option<String>,
    /// Packs records into KPL aggregates, one per shard.
    #[arg(long)]
    pub(crate) aggregate: bool,
    /// How long a record may wait for its batch (and aggregate) to fill before it is sent,
    /// at most an hour.
    #[arg(long, value_name = "MS", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub(crate) max_buffered_ms: u64,
}

/// How `kds put` reads its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum InputFormat {
    /// Each line is a record.
    Lines,
    /// Each line is a JSON value, written as it is.
    Jsonl,
}

#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    /// The stream to read (not with --table, whose stream it is).
    #[arg(required_unless_present = "table", conflicts_with = "table")]
    pub(crate) stream: Option<String>,
    /// Prints rows of the table a Flink `CREATE TABLE … WITH ('connector' = 'kinesis', …)`
    /// statement in FILE declares, decoded with its format; its options say where and how to
    /// read (the connection flags override its endpoint and region).
    #[arg(long, value_name = "FILE")]
    pub(crate) table: Option<PathBuf>,
    /// With --table: keeps the table's read positions in DIR (a lease file per table and
    /// subtask, one process at a time), so a later run goes on where this one stopped, every
    /// printed row committed. Without it, positions are kept in memory.
    #[arg(long, value_name = "DIR", requires = "table")]
    pub(crate) state_dir: Option<PathBuf>,
    /// With --table: reads as subtask I of N (the shards the table's `scan.shard-assigner`
    /// gives it).
    #[arg(long, value_name = "I/N", requires = "table", value_parser = parse_subtask)]
    pub(crate) subtask: Option<(usize, usize)>,
    /// With --table: reads as one worker of the group NAME, sharing the stream's shards with
    /// the group's other workers (processes on any machine) through a DynamoDB lease table, as
    /// KCL consumers do. Shards are balanced between the workers; a worker that stops gives its
    /// shards up, and one that dies has them taken over once its leases expire.
    #[arg(
        long,
        value_name = "NAME",
        requires = "table",
        conflicts_with_all = ["state_dir", "subtask", "no_follow"]
    )]
    pub(crate) group: Option<String>,
    /// With --group: the DynamoDB lease table, created if missing (default: the group's name).
    #[arg(long, value_name = "TABLE", requires = "group")]
    pub(crate) lease_table: Option<String>,
    /// With --group: DynamoDB's endpoint URL (default: the table's
    /// `scan.lease.dynamodb.endpoint`, else the region's).
    #[arg(long, value_name = "URL", requires = "group")]
    pub(crate) dynamodb_endpoint: Option<String>,
    /// With --group: how long a lease lasts without a renewal, in seconds (default 10, as in
    /// the KCL); a dead worker's shards are taken over after about this long.
    #[arg(long, value_name = "SECONDS", requires = "group", value_parser = parse_lease_duration)]
    pub(crate) lease_duration: Option<Duration>,
    /// Where to start: trim-horizon, latest, at-timestamp:TIME (ISO-8601 or epoch seconds), or
    /// at-sequence:NUMBER (that record's shard only, from that record on).
    #[arg(
        long,
        value_name = "POSITION",
        default_value = "latest",
        value_parser = parse_start,
        conflicts_with = "table"
    )]
    pub(crate) from: Start,
    /// Reads by enhanced fan-out as this consumer (registered if missing and then deregistered
    /// when kds stops), instead of polling.
    #[arg(long, value_name = "CONSUMER", conflicts_with = "table")]
    pub(crate) efo: Option<String>,
    /// Stops after this many records.
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<u64>,
    /// Stops once every shard is read up to its tip instead of waiting for new records.
    #[arg(long)]
    pub(crate) no_follow: bool,
    /// How records are printed: their data, one per line, or one JSON object per record.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub(crate) output: OutputFormat,
    /// Prints KPL aggregates as they are instead of their user records.
    #[arg(long, conflicts_with = "table")]
    pub(crate) no_deaggregate: bool,
}

fn parse_lease_duration(text: &str) -> Result<Duration, String> {
    match text
        .parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
    {
        Some(duration)
            if duration >= Duration::from_millis(10) && duration <= Duration::from_secs(86_400) =>
        {
            Ok(duration)
        }
        _ => Err(format!(
            "expected seconds from 0.01 to 86400, got `{}`",
            text.chars().take(40).collect::<String>()
        )),
    }
}

fn parse_subtask(text: &str) -> Result<(usize, usize), String> {
    let parsed = text
        .split_once('/')
        .and_then(|(i, n)| Some((i.parse().ok()?, n.parse().ok()?)));
    match parsed {
        Some((i, n)) if i < n => Ok((i, n)),
        _ => Err(format!("expected I/N with I below N, got `{text}`")),
    }
}

/// How `kds tail` prints records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// The record's data, then a line break.
    Text,
    /// One JSON object per record, with its shard, sequence numbers, keys and arrival time.
    Jsonl,
}

/// Where `kds tail` starts reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Start {
    TrimHorizon,
    Latest,
    AtTimestamp(Timestamp),
    AtSequence(SequenceNumber),
}

fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got `{text}`")),
    }
}

fn parse_start(text: &str) -> Result<Start, String> {
    match text {
        "trim-horizon" => return Ok(Start::TrimHorizon),
        "latest" => return Ok(Start::Latest),
        _ => {}
    }
    if let Some(time) = text.strip_prefix("at-timestamp:") {
        return parse_timestamp(time).map(Start::AtTimestamp);
    }
    if let Some(sequence) = text.strip_prefix("at-sequence:") {
        return SequenceNumber::new(sequence)
            .map(Start::AtSequence)
            .map_err(|_| format!("bad sequence number `{sequence}`: expected decimal digits"));
    }
    Err(format!(
        "unknown position `{text}`: expected trim-horizon, latest, at-timestamp:<time> or at-sequence:<number>"
    ))
}

/// An ISO-8601 time (with an offset, or UTC without one; a date alone is its midnight UTC), or
/// seconds since the epoch (fractions allowed).
fn parse_timestamp(text: &str) -> Result<Timestamp, String> {
    let bad = || {
        format!("bad timestamp `{text}`: expected ISO-8601 (2026-11-26T10:00:00Z) or epoch seconds")
    };
    let time = if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        time.with_timezone(&Utc)
    } else if let Ok(time) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        time.and_utc()
    } else if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        date.and_hms_opt(0, 0, 0).ok_or_else(bad)?.and_utc()
    } else if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let seconds: f64 = text.parse().map_err(|_| bad())?;
        let millis = (seconds * 1000.0).round();
        // Up to the year 10000.
        if !(0.0..=253_402_300_800_000.0).contains(&millis) {
            return Err(bad());
        }
        #[allow(clippy::cast_possible_truncation)]
        return Ok(Timestamp::from_millis(millis as i64));
    } else {
        return Err(bad());
    };
    Ok(Timestamp::from_millis(time.timestamp_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starting_positions_parse() {
        assert_eq!(parse_start("trim-horizon"), Ok(Start::TrimHorizon));
        assert_eq!(parse_start("latest"), Ok(Start::Latest));
        let at = |millis| Ok(Start::AtTimestamp(Timestamp::from_millis(millis)));
        assert_eq!(
            parse_start("at-timestamp:1700000000"),
            at(1_700_000_000_000)
        );
        assert_eq!(
            parse_start("at-timestamp:1700000000.25"),
            at(1_700_000_000_250)
        );
        assert_eq!(
            parse_start("at-timestamp:2023-11-14T22:13:20Z"),
            at(1_700_000_000_000)
        );
        assert_eq!(
            parse_start("at-timestamp:2023-11-14T23:13:20.5+01:00"),
            at(1_700_000_000_500)
        );
        assert_eq!(
            parse_start("at-timestamp:2023-11-14T22:13:20"),
            at(1_700_000_000_000)
        );
        assert_eq!(parse_start("at-timestamp:1970-01-02"), at(86_400_000));
        assert_eq!(
            parse_start("at-sequence:4959"),
            Ok(Start::AtSequence(SequenceNumber::new("4959").unwrap()))
        );
    }

    #[test]
    fn bad_positions_name_the_problem() {
        for (text, expected) in [
            ("at-timestamp:yesterday", "bad timestamp `yesterday`"),
            ("at-timestamp:2023-13-01T00:00:00Z", "bad timestamp"),
            ("at-timestamp:", "bad timestamp ``"),
            ("at-timestamp:1.2.3", "bad timestamp `1.2.3`"),
            ("at-timestamp:99999999999999999", "bad timestamp"),
            ("at-sequence:12a", "bad sequence number `12a`"),
            ("earliest", "unknown position `earliest`"),
        ] {
            let error = parse_start(text).unwrap_err();
            assert!(error.starts_with(expected), "{text}: {error}");
        }
    }

    #[test]
    fn properties_need_a_key() {
        assert_eq!(
            parse_property("aws.accessKeyId=a=b"),
            Ok(("aws.accessKeyId".into(), "a=b".into()))
        );
        assert!(parse_property("=x").is_err());
        assert!(parse_property("novalue").is_err());
    }

    #[test]
    fn property_values_stay_out_of_debug_output() {
        let cli = Cli::try_parse_from(["kds", "-D", "aws.secretKey=hunter2", "local"]).unwrap();
        let debug = format!("{cli:?}");
        assert!(debug.contains("aws.secretKey"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
