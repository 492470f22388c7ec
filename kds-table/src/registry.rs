//! Every option a Kinesis table accepts: key, type, default and what it does. The validator reads
//! its types and defaults from here, and the reference table in the docs is generated from it,
//! so the two cannot drift.

/// The type of an option's value.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionType {
    /// Any text.
    Text,
    /// A 32-bit integer at least `min`.
    Integer {
        /// The smallest value allowed.
        min: i64,
    },
    /// A 64-bit integer at least `min`.
    Long {
        /// The smallest value allowed.
        min: i64,
    },
    /// A non-negative floating-point number.
    Double,
    /// `true` or `false` (any case).
    Boolean,
    /// One of a fixed set of values (exact case).
    Choice(&'static [&'static str]),
    /// A single character.
    Character,
}

impl OptionType {
    /// How the docs name the type.
    pub fn describe(self) -> String {
        match self {
            Self::Text => "String".to_owned(),
            Self::Integer { min } => format!("Integer ≥ {min}"),
            Self::Long { min } => format!("Long ≥ {min}"),
            Self::Double => "Double ≥ 0".to_owned(),
            Self::Boolean => "Boolean".to_owned(),
            Self::Choice(values) => values.join(" \\| "),
            Self::Character => "Character".to_owned(),
        }
    }
}

/// Which part of the table an option configures.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The table itself, and the AWS connection (source and sink).
    Table,
    /// Reading.
    Source,
    /// Writing.
    Sink,
    /// The named format's decoding and encoding.
    Format(&'static str),
}

/// One option.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionSpec {
    /// The key as written in `WITH (...)`; a key ending in `.<stream>` or `.*` is a family.
    pub key: &'static str,
    /// The value's type.
    pub value: OptionType,
    /// The default, if any.
    pub default: Option<&'static str>,
    /// Whether the table cannot be defined without it.
    pub required: bool,
    /// What it configures.
    pub scope: Scope,
    /// What it does.
    pub description: &'static str,
}

const fn spec(
    key: &'static str,
    value: OptionType,
    default: Option<&'static str>,
    scope: Scope,
    description: &'static str,
) -> OptionSpec {
    OptionSpec {
        key,
        value,
        default,
        required: false,
        scope,
        description,
    }
}

const fn required(key: &'static str, value: OptionType, description: &'static str) -> OptionSpec {
    OptionSpec {
        key,
        value,
        default: None,
        required: true,
        scope: Table,
        description,
    }
}

use OptionType::{Boolean, Character, Choice, Double, Integer, Long, Text};
use Scope::{Sink, Source, Table};

/// The credential providers of `aws.credentials.provider`.
pub const CREDENTIAL_PROVIDERS: &[&str] = &[
    "AUTO",
    "BASIC",
    "ENV_VAR",
    "SYS_PROP",
    "PROFILE",
    "ASSUME_ROLE",
    "WEB_IDENTITY_TOKEN",
];

/// The formats of `format`.
pub const FORMATS: &[&str] = &["json", "csv", "avro", "raw"];

/// The `sink.producer.*` keys (the KPL's settings, hyphenated) and the option each becomes.
pub const PRODUCER_KEYS: &[(&str, &str)] = &[
    ("record-max-buffered-time", "sink.flush-buffer.timeout"),
    ("collection-max-size", "sink.batch.max-size"),
    ("collection-max-count", "sink.requests.max-inflight"),
    ("fail-on-error", "sink.fail-on-error"),
    ("kinesis-endpoint", "aws.endpoint (https://<value>)"),
    ("kinesis-port", "the port of aws.endpoint"),
    ("verify-certificate", "aws.trust.all.certificates (negated)"),
    (
        "aggregation-enabled",
        "KPL aggregation of written records (default false)",
    ),
    (
        "aggregation-max-count",
        "user records per aggregate (default unlimited)",
    ),
    (
        "aggregation-max-size",
        "bytes per aggregate, 64 to 10485760 (default 51200)",
    ),
];

/// Every option, in the order the docs list them.
pub static OPTIONS: &[OptionSpec] = &[
    required(
        "connector",
        Choice(&["kinesis"]),
        "The connector: `kinesis`.",
    ),
    required(
        "stream",
        Text,
        "The name of the Kinesis stream behind the table.",
    ),
    required(
        "format",
        Choice(FORMATS),
        "How record data is decoded and encoded.",
    ),
    spec(
        "aws.region",
        Text,
        None,
        Table,
        "The stream's AWS region, like `us-east-1`. This or `aws.endpoint` is required.",
    ),
    spec(
        "aws.endpoint",
        Text,
        None,
        Table,
        "The Kinesis endpoint URL; derived from `aws.region` when absent (set it for emulators).",
    ),
    spec(
        "aws.trust.all.certificates",
        Boolean,
        Some("false"),
        Table,
        "Accept any TLS certificate from the endpoint. Only for testing.",
    ),
    spec(
        "aws.credentials.provider",
        Choice(CREDENTIAL_PROVIDERS),
        Some("AUTO"),
        Table,
        "Where credentials come from; BASIC when both basic keys are set and this is absent.",
    ),
    spec(
        "aws.credentials.basic.accesskeyid",
        Text,
        None,
        Table,
        "The access key id for BASIC credentials.",
    ),
    spec(
        "aws.credentials.basic.secretkey",
        Text,
        None,
        Table,
        "The secret key for BASIC credentials.",
    ),
    spec(
        "aws.credentials.profile.path",
        Text,
        None,
        Table,
        "The credentials file for PROFILE (the SDK's default file when absent).",
    ),
    spec(
        "aws.credentials.profile.name",
        Text,
        None,
        Table,
        "The profile for PROFILE (`default` when absent).",
    ),
    spec(
        "aws.credentials.role.arn",
        Text,
        None,
        Table,
        "The role to assume, for ASSUME_ROLE and WEB_IDENTITY_TOKEN.",
    ),
    spec(
        "aws.credentials.role.sessionName",
        Text,
        None,
        Table,
        "The role session name, for ASSUME_ROLE and WEB_IDENTITY_TOKEN.",
    ),
    spec(
        "aws.credentials.role.externalId",
        Text,
        None,
        Table,
        "The external id, for ASSUME_ROLE.",
    ),
    spec(
        "aws.credentials.role.provider",
        Choice(CREDENTIAL_PROVIDERS),
        Some("AUTO"),
        Table,
        "The provider of the credentials that assume the role; its options live under `aws.credentials.role.provider.` (roles nest).",
    ),
    spec(
        "aws.credentials.webIdentityToken.file",
        Text,
        None,
        Table,
        "The web identity token file, for WEB_IDENTITY_TOKEN.",
    ),
    spec(
        "scan.stream.initpos",
        Choice(&["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"]),
        Some("LATEST"),
        Source,
        "Where reading starts.",
    ),
    spec(
        "scan.stream.initpos-timestamp",
        Text,
        None,
        Source,
        "For AT_TIMESTAMP: a date in `scan.stream.initpos-timestamp-format`, or epoch seconds like `1459799926.480`.",
    ),
    spec(
        "scan.stream.initpos-timestamp-format",
        Text,
        Some("yyyy-MM-dd'T'HH:mm:ss.SSSXXX"),
        Source,
        "The `SimpleDateFormat` pattern of `scan.stream.initpos-timestamp` (letters y M d H h k K m s S a X Z).",
    ),
    spec(
        "scan.stream.recordpublisher",
        Choice(&["POLLING", "EFO"]),
        Some("POLLING"),
        Source,
        "Read by polling (GetRecords) or by enhanced fan-out (SubscribeToShard).",
    ),
    spec(
        "scan.stream.efo.consumername",
        Text,
        None,
        Source,
        "The enhanced fan-out consumer to register (LAZY, EAGER).",
    ),
    spec(
        "scan.stream.efo.registration",
        Choice(&["LAZY", "EAGER", "NONE"]),
        Some("LAZY"),
        Source,
        "When the consumer is registered and deregistered: LAZY on start, EAGER at definition, NONE never.",
    ),
    spec(
        "scan.stream.efo.consumerarn.<stream>",
        Text,
        None,
        Source,
        "The ARN of a consumer registered elsewhere, for NONE; `<stream>` is the table's stream.",
    ),
    spec(
        "scan.stream.efo.http-client.max-concurrency",
        Integer { min: 1 },
        Some("10000"),
        Source,
        "Concurrent requests of the enhanced fan-out client.",
    ),
    spec(
        "scan.stream.describe.maxretries",
        Integer { min: 0 },
        Some("50"),
        Source,
        "DescribeStream attempts after a recoverable error.",
    ),
    spec(
        "scan.stream.describe.backoff.base",
        Long { min: 0 },
        Some("2000"),
        Source,
        "Base backoff between DescribeStream attempts, ms.",
    ),
    spec(
        "scan.stream.describe.backoff.max",
        Long { min: 0 },
        Some("5000"),
        Source,
        "Largest backoff between DescribeStream attempts, ms.",
    ),
    spec(
        "scan.stream.describe.backoff.expconst",
        Double,
        Some("1.5"),
        Source,
        "Exponential constant of the DescribeStream backoff.",
    ),
    spec(
        "scan.list.shards.maxretries",
        Integer { min: 0 },
        Some("10"),
        Source,
        "ListShards attempts after a recoverable error.",
    ),
    spec(
        "scan.list.shards.backoff.base",
        Long { min: 0 },
        Some("1000"),
        Source,
        "Base backoff between ListShards attempts, ms.",
    ),
    spec(
        "scan.list.shards.backoff.max",
        Long { min: 0 },
        Some("5000"),
        Source,
        "Largest backoff between ListShards attempts, ms.",
    ),
    spec(
        "scan.list.shards.backoff.expconst",
        Double,
        Some("1.5"),
        Source,
        "Exponential constant of the ListShards backoff.",
    ),
    spec(
        "scan.stream.describestreamconsumer.maxretries",
        Integer { min: 0 },
        Some("50"),
        Source,
        "DescribeStreamConsumer attempts after a recoverable error.",
    ),
    spec(
        "scan.stream.describestreamconsumer.backoff.base",
        Long { min: 0 },
        Some("2000"),
        Source,
        "Base backoff between DescribeStreamConsumer attempts, ms.",
    ),
    spec(
        "scan.stream.describestreamconsumer.backoff.max",
        Long { min: 0 },
        Some("5000"),
        Source,
        "Largest backoff between DescribeStreamConsumer attempts, ms.",
    ),
    spec(
        "scan.stream.describestreamconsumer.backoff.expconst",
        Double,
        Some("1.5"),
        Source,
        "Exponential constant of the DescribeStreamConsumer backoff.",
    ),
    spec(
        "scan.stream.registerstreamconsumer.maxretries",
        Integer { min: 0 },
        Some("10"),
        Source,
        "RegisterStreamConsumer attempts after a recoverable error.",
    ),
    spec(
        "scan.stream.registerstreamconsumer.timeout",
        Integer { min: 0 },
        Some("60"),
        Source,
        "How long to wait for a registered consumer to become ACTIVE, seconds.",
    ),
    spec(
        "scan.stream.registerstreamconsumer.backoff.base",
        Long { min: 0 },
        Some("500"),
        Source,
        "Base backoff between RegisterStreamConsumer attempts, ms.",
    ),
    spec(
        "scan.stream.registerstreamconsumer.backoff.max",
        Long { min: 0 },
        Some("2000"),
        Source,
        "Largest backoff between RegisterStreamConsumer attempts, ms.",
    ),
    spec(
        "scan.stream.registerstreamconsumer.backoff.expconst",
        Double,
        Some("1.5"),
        Source,
        "Exponential constant of the RegisterStreamConsumer backoff.",
    ),
    spec(
        "scan.stream.deregisterstreamconsumer.maxretries",
        Integer { min: 0 },
        Some("10"),
        Source,
        "DeregisterStreamConsumer attempts after a recoverable error.",
    ),
    spec(
        "scan.stream.deregisterstreamconsumer.timeout",
        Integer { min: 0 },
        Some("60"),
        Source,
        "How long to wait for a consumer to be deregistered, seconds.",
    ),
    spec(
        "scan.stream.deregisterstreamconsumer.backoff.base",
        Long { min: 0 },
        Some("500"),
        Source,
        "Base backoff between DeregisterStreamConsumer attempts, ms.",
    ),
    spec(
        "scan.stream.deregisterstreamconsumer.backoff.max",
        Long { min: 0 },
        Some("2000"),
        Source,
        "Largest backoff between DeregisterStreamConsumer attempts, ms.",
    ),
    spec(
        "scan.stream.deregisterstreamconsumer.backoff.expconst",
        Double,
        Some("1.5"),
        Source,
        "Exponential constant of the DeregisterStreamConsumer backoff.",
    ),
    spec(
        "scan.shard.subscribetoshard.maxretries",
        Integer { min: 0 },
        Some("10"),
        Source,
        "SubscribeToShard attempts after a recoverable error.",
    ),
    spec(
        "scan.shard.subscribetoshard.backoff.base",
        Long { min: 0 },
        Some("1000"),
        Source,
        "Base backoff between SubscribeToShard attempts, ms.",
    ),
    spec(
        "scan.shard.subscribetoshard.backoff.max",
        Long { min: 0 },
        Some("2000"),
        Source,
        "Largest backoff between SubscribeToShard attempts, ms.",
    ),
    spec(
        "scan.shard.subscribetoshard.backoff.expconst",
        Double,
        Some("1.5"),
        Source,
        "Exponential constant of the SubscribeToShard backoff.",
    ),
    spec(
        "scan.shard.getrecords.maxrecordcount",
        Integer { min: 1 },
        Some("10000"),
        Source,
        "Records asked for per GetRecords call, 1 to 10000.",
    ),
    spec(
        "scan.shard.getrecords.maxretries",
        Integer { min: 0 },
        Some("3"),
        Source,
        "GetRecords attempts after a throttling error.",
    ),
    spec(
        "scan.shard.getrecords.backoff.base",
        Long { min: 0 },
        Some("300"),
        Source,
        "Base backoff between GetRecords attempts, ms.",
    ),
    spec(
        "scan.shard.getrecords.backoff.max",
        Long { min: 0 },
        Some("1000"),
        Source,
        "Largest backoff between GetRecords attempts, ms.",
    ),
    spec(
        "scan.shard.getrecords.backoff.expconst",
        Double,
        Some("1.5"),
        Source,
        "Exponential constant of the GetRecords backoff.",
    ),
    spec(
        "scan.shard.getrecords.intervalmillis",
        Long { min: 0 },
        Some("200"),
        Source,
        "Pause between GetRecords calls on a shard, ms (under 300000: iterators expire).",
    ),
    spec(
        "scan.shard.getiterator.maxretries",
        Integer { min: 0 },
        Some("3"),
        Source,
        "GetShardIterator attempts after a throttling error.",
    ),
    spec(
        "scan.shard.getiterator.backoff.base",
        Long { min: 0 },
        Some("300"),
        Source,
        "Base backoff between GetShardIterator attempts, ms.",
    ),
    spec(
        "scan.shard.getiterator.backoff.max",
        Long { min: 0 },
        Some("1000"),
        Source,
        "Largest backoff between GetShardIterator attempts, ms.",
    ),
    spec(
        "scan.shard.getiterator.backoff.expconst",
        Double,
        Some("1.5"),
        Source,
        "Exponential constant of the GetShardIterator backoff.",
    ),
    spec(
        "scan.shard.discovery.intervalmillis",
        Long { min: 0 },
        Some("10000"),
        Source,
        "Pause between looks for new shards, ms.",
    ),
    spec(
        "scan.shard.adaptivereads",
        Boolean,
        Some("false"),
        Source,
        "Size GetRecords calls to stay within the shard's read throughput.",
    ),
    spec(
        "scan.shard.idle.interval",
        Long { min: -1 },
        Some("-1"),
        Source,
        "After this long without records a shard no longer holds back watermarks, ms (-1: never).",
    ),
    spec(
        "scan.shard-assigner",
        Choice(&["default", "uniform"]),
        Some("default"),
        Source,
        "How shards are spread over readers.",
    ),
    spec(
        "scan.lease.table",
        Text,
        None,
        Source,
        "A DynamoDB lease table (created if missing) through which readers in any number of processes share the stream's shards, as KCL consumers do; not in Flink.",
    ),
    spec(
        "scan.lease.dynamodb.endpoint",
        Text,
        None,
        Source,
        "DynamoDB's endpoint URL for `scan.lease.table` (default: the region's); not in Flink.",
    ),
    spec(
        "scan.lease.duration",
        Long { min: 10 },
        Some("10000"),
        Source,
        "How long a lease in `scan.lease.table` lasts without a renewal, ms; not in Flink.",
    ),
    spec(
        "scan.watermark.sync.interval",
        Long { min: 0 },
        Some("30000"),
        Source,
        "Pause between synchronisations of the shared watermark, ms.",
    ),
    spec(
        "scan.watermark.lookahead.millis",
        Long { min: 0 },
        Some("0"),
        Source,
        "How far a reader may run ahead of the shared watermark, ms (0: no limit).",
    ),
    spec(
        "scan.watermark.sync.queue.capacity",
        Integer { min: 1 },
        Some("100"),
        Source,
        "Records buffered per shard while a reader waits for the shared watermark.",
    ),
    spec(
        "sink.partitioner",
        Text,
        None,
        Sink,
        "`random` (default without PARTITIONED BY), `fixed` (the writer's index), or the name of a partitioner registered in code. Not allowed with PARTITIONED BY.",
    ),
    spec(
        "sink.partitioner-field-delimiter",
        Text,
        Some("|"),
        Sink,
        "Joins the PARTITIONED BY values into the partition key (may be empty).",
    ),
    spec(
        "sink.batch.max-size",
        Integer { min: 1 },
        Some("500"),
        Sink,
        "Records per PutRecords call.",
    ),
    spec(
        "sink.requests.max-inflight",
        Integer { min: 1 },
        Some("50"),
        Sink,
        "PutRecords calls in flight.",
    ),
    spec(
        "sink.requests.max-buffered",
        Integer { min: 1 },
        Some("10000"),
        Sink,
        "Records buffered before writes wait.",
    ),
    spec(
        "sink.flush-buffer.size",
        Long { min: 1 },
        Some("5242880"),
        Sink,
        "Buffered bytes that trigger a flush.",
    ),
    spec(
        "sink.flush-buffer.timeout",
        Long { min: 1 },
        Some("5000"),
        Sink,
        "Longest time a record waits in the buffer, ms.",
    ),
    spec(
        "sink.fail-on-error",
        Boolean,
        Some("false"),
        Sink,
        "Fail on a record the service rejects instead of retrying it.",
    ),
    spec(
        "sink.http-client.max-concurrency",
        Integer { min: 1 },
        Some("10000"),
        Sink,
        "Concurrent requests of the writing client.",
    ),
    spec(
        "sink.http-client.read-timeout",
        Integer { min: 1 },
        Some("360000"),
        Sink,
        "Read timeout of the writing client, ms.",
    ),
    spec(
        "sink.http-client.protocol.version",
        Choice(&["HTTP1_1", "HTTP2"]),
        Some("HTTP2"),
        Sink,
        "HTTP version of the writing client.",
    ),
    spec(
        "sink.producer.*",
        Text,
        None,
        Sink,
        "KPL settings, mapped to the options above (see the mapping table).",
    ),
    spec(
        "json.fail-on-missing-field",
        Boolean,
        Some("false"),
        Scope::Format("json"),
        "Fail on a record that lacks a column instead of reading NULL.",
    ),
    spec(
        "json.ignore-parse-errors",
        Boolean,
        Some("false"),
        Scope::Format("json"),
        "Skip (and count) records that do not parse instead of failing.",
    ),
    spec(
        "json.timestamp-format.standard",
        Choice(&["SQL", "ISO-8601"]),
        Some("SQL"),
        Scope::Format("json"),
        "How timestamps are written in JSON.",
    ),
    spec(
        "json.encode.decimal-as-plain-number",
        Boolean,
        Some("false"),
        Scope::Format("json"),
        "Write decimals without exponents. Decimals are always written plain here; readers take both forms.",
    ),
    spec(
        "json.encode.ignore-null-fields",
        Boolean,
        Some("false"),
        Scope::Format("json"),
        "Leave NULL fields out of written objects instead of writing `null`.",
    ),
    spec(
        "json.map-null-key.mode",
        Choice(&["FAIL", "DROP", "LITERAL"]),
        Some("FAIL"),
        Scope::Format("json"),
        "What to write for a NULL map key. Map keys are NOT NULL in kds tables (Arrow's rule), so no row has one; accepted for Flink DDL.",
    ),
    spec(
        "json.map-null-key.literal",
        Text,
        Some("null"),
        Scope::Format("json"),
        "The key written for a NULL map key in LITERAL mode (see `json.map-null-key.mode`).",
    ),
    spec(
        "csv.field-delimiter",
        Character,
        Some(","),
        Scope::Format("csv"),
        "Separates fields.",
    ),
    spec(
        "csv.quote-character",
        Character,
        Some("\""),
        Scope::Format("csv"),
        "Quotes fields.",
    ),
    spec(
        "csv.disable-quote-character",
        Boolean,
        Some("false"),
        Scope::Format("csv"),
        "Read and write fields without quoting.",
    ),
    spec(
        "csv.allow-comments",
        Boolean,
        Some("false"),
        Scope::Format("csv"),
        "Skip lines that start with `#`.",
    ),
    spec(
        "csv.ignore-parse-errors",
        Boolean,
        Some("false"),
        Scope::Format("csv"),
        "Skip (and count) records that do not parse instead of failing.",
    ),
    spec(
        "csv.array-element-delimiter",
        Text,
        Some(";"),
        Scope::Format("csv"),
        "Separates array elements inside a field.",
    ),
    spec(
        "csv.escape-character",
        Character,
        None,
        Scope::Format("csv"),
        "Escapes the next character (none by default).",
    ),
    spec(
        "csv.null-literal",
        Text,
        None,
        Scope::Format("csv"),
        "Text that reads as NULL (none by default).",
    ),
    spec(
        "raw.charset",
        Choice(&["UTF-8"]),
        Some("UTF-8"),
        Scope::Format("raw"),
        "Character set of a raw STRING column.",
    ),
    spec(
        "raw.endianness",
        Choice(&["big-endian", "little-endian"]),
        Some("big-endian"),
        Scope::Format("raw"),
        "Byte order of a raw numeric column.",
    ),
];

/// The spec of `key`, including the families (`scan.stream.efo.consumerarn.<stream>`,
/// `sink.producer.*`).
pub fn find(key: &str) -> Option<&'static OptionSpec> {
    OPTIONS.iter().find(|spec| {
        spec.key == key
            || spec
                .key
                .strip_suffix("<stream>")
                .or_else(|| spec.key.strip_suffix('*'))
                .is_some_and(|prefix| key.len() > prefix.len() && key.starts_with(prefix))
    })
}

/// Whether the value of the option `key` is a secret, which Debug output prints as
/// `<redacted>`: the BASIC secret key at any role nesting, and any key naming a secret, a
/// password or a session token (in any case, known to the registry or not).
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "secret",
        "password",
        "sessiontoken",
        "session-token",
        "session_token",
    ]
    .iter()
    .any(|word| key.contains(*word))
}

/// The reference table of every option, as Markdown.
pub fn reference_table() -> String {
    let mut out =
        String::from("| option | scope | type | default | description |\n|---|---|---|---|---|\n");
    for spec in OPTIONS {
        let scope = match spec.scope {
            Table => "table".to_owned(),
            Source => "source".to_owned(),
            Sink => "sink".to_owned(),
            Scope::Format(format) => format!("format `{format}`"),
        };
        let default = match (spec.required, spec.default) {
            (true, _) => "required".to_owned(),
            (false, Some("")) => "(empty)".to_owned(),
            (false, Some(d)) => format!("`{}`", d.replace('|', "\\|")),
            (false, None) => "(none)".to_owned(),
        };
        out.push_str(&format!(
            "| `{}` | {scope} | {} | {default} | {} |\n",
            spec.key,
            spec.value.describe(),
            spec.description.replace('|', "\\|")
        ));
    }
    out.push_str("\n`sink.producer.*` keys:\n\n| key | becomes |\n|---|---|\n");
    for (key, target) in PRODUCER_KEYS {
        out.push_str(&format!("| `sink.producer.{key}` | {target} |\n"));
    }
    out
}
