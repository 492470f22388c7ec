//! Validation of a table's `WITH (...)` options into typed configuration.
//!
//! The rules are those of the Flink connector (`AWSGeneralUtil.validateAwsConfiguration` and
//! `KinesisConfigUtil.validateConsumerConfiguration` in apache/flink-connector-aws), with the
//! error text naming the option as the user wrote it. Where Flink only warns or silently ignores
//! (an unknown shard assigner, an unknown `sink.producer.*` key, a consumer ARN for another
//! stream) the definition is refused instead, so nothing set is silently dropped.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use kds_proto::types::{ConsumerArn, ConsumerName, StreamName};

use crate::error::{Error, ErrorKind, clip};
use crate::registry::{self, OptionType, PRODUCER_KEYS, Scope};
use crate::timestamp::{Pattern, epoch_seconds};

/// A table's options, checked and typed.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub struct TableOptions {
    /// The stream behind the table.
    pub stream: String,
    /// How record data is decoded and encoded.
    pub format: FormatOptions,
    /// The AWS connection.
    pub aws: AwsOptions,
    /// Reading.
    pub source: SourceOptions,
    /// Writing.
    pub sink: SinkOptions,
}

/// The AWS connection.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub struct AwsOptions {
    /// `aws.region`.
    pub region: Option<String>,
    /// `aws.endpoint`.
    pub endpoint: Option<String>,
    /// `aws.trust.all.certificates`.
    pub trust_all_certificates: bool,
    /// Where credentials come from.
    pub credentials: Credentials,
}

/// A credentials provider, as `aws.credentials.*` describes it.
#[non_exhaustive]
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// The AWS default chain.
    Auto,
    /// A key pair given in the options.
    Basic {
        /// The access key id.
        access_key_id: String,
        /// The secret key (never printed).
        secret_key: String,
    },
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    EnvVar,
    /// `aws.accessKeyId` and `aws.secretKey` from the process's property map.
    SysProp,
    /// A profile of a credentials file.
    Profile {
        /// The file, or the SDK's default.
        path: Option<String>,
        /// The profile, or `default`.
        name: Option<String>,
    },
    /// A role assumed with other credentials.
    AssumeRole {
        /// The role.
        role_arn: String,
        /// The session name.
        session_name: String,
        /// The external id.
        external_id: Option<String>,
        /// The credentials that assume the role.
        source: Box<Self>,
    },
    /// A role assumed with a web identity token.
    WebIdentityToken {
        /// The role (else `AWS_ROLE_ARN`).
        role_arn: Option<String>,
        /// The session name (else `AWS_ROLE_SESSION_NAME`).
        session_name: Option<String>,
        /// The token file (else `AWS_WEB_IDENTITY_TOKEN_FILE`).
        token_file: Option<String>,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("Auto"),
            Self::Basic { access_key_id, .. } => f
                .debug_struct("Basic")
                .field("access_key_id", access_key_id)
                .field("secret_key", &"<redacted>")
                .finish(),
            Self::EnvVar => f.write_str("EnvVar"),
            Self::SysProp => f.write_str("SysProp"),
            Self::Profile { path, name } => f
                .debug_struct("Profile")
                .field("path", path)
                .field("name", name)
                .finish(),
            Self::AssumeRole {
                role_arn,
                session_name,
                external_id,
                source,
            } => f
                .debug_struct("AssumeRole")
                .field("role_arn", role_arn)
                .field("session_name", session_name)
                .field("external_id", external_id)
                .field("source", source)
                .finish(),
            Self::WebIdentityToken {
                role_arn,
                session_name,
                token_file,
            } => f
                .debug_struct("WebIdentityToken")
                .field("role_arn", role_arn)
                .field("session_name", session_name)
                .field("token_file", token_file)
                .finish(),
        }
    }
}

/// Where reading starts.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartPosition {
    /// After the newest record.
    Latest,
    /// At the oldest record retained.
    TrimHorizon,
    /// At the first record at or after a time, in epoch milliseconds.
    AtTimestamp(i64),
}

/// How records are read.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReaderKind {
    /// GetRecords.
    Polling,
    /// SubscribeToShard with a registered consumer.
    EnhancedFanOut(EfoConsumer),
}

/// The enhanced fan-out consumer, and who registers it.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EfoConsumer {
    /// Registered when reading starts, deregistered on a clean stop.
    Lazy(String),
    /// Registered when the table is defined, never deregistered.
    Eager(String),
    /// Registered elsewhere: its ARN.
    None(String),
}

/// Retries and full-jitter backoff of one operation.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// Attempts after the first.
    pub max_retries: u32,
    /// Base backoff.
    pub base: Duration,
    /// Largest backoff.
    pub max: Duration,
    /// Exponential constant.
    pub exponential_constant: f64,
}

/// Reading.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub struct SourceOptions {
    /// Where reading starts.
    pub start: StartPosition,
    /// Polling or enhanced fan-out.
    pub reader: ReaderKind,
    /// DescribeStream retries.
    pub describe_stream: Backoff,
    /// ListShards retries.
    pub list_shards: Backoff,
    /// DescribeStreamConsumer retries.
    pub describe_consumer: Backoff,
    /// RegisterStreamConsumer retries.
    pub register_consumer: Backoff,
    /// How long to wait for a consumer to become ACTIVE.
    pub register_consumer_timeout: Duration,
    /// DeregisterStreamConsumer retries.
    pub deregister_consumer: Backoff,
    /// How long to wait for a consumer to be deregistered.
    pub deregister_consumer_timeout: Duration,
    /// SubscribeToShard retries.
    pub subscribe_to_shard: Backoff,
    /// Concurrent requests of the enhanced fan-out client.
    pub efo_max_concurrency: u32,
    /// GetRecords retries.
    pub get_records: Backoff,
    /// Records per GetRecords call.
    pub get_records_max_count: u32,
    /// Pause between GetRecords calls.
    pub get_records_interval: Duration,
    /// GetShardIterator retries.
    pub get_iterator: Backoff,
    /// Pause between looks for new shards.
    pub shard_discovery_interval: Duration,
    /// Adaptive GetRecords sizing.
    pub adaptive_reads: bool,
    /// When a silent shard stops holding back watermarks (`None`: never).
    pub shard_idle_interval: Option<Duration>,
    /// `default` or `uniform`.
    pub shard_assigner: String,
    /// Pause between watermark synchronisations.
    pub watermark_sync_interval: Duration,
    /// How far a reader may run ahead of the shared watermark (`None`: no limit).
    pub watermark_lookahead: Option<Duration>,
    /// Records buffered per shard while waiting for the shared watermark.
    pub watermark_sync_queue_capacity: u32,
    /// Where readers share the shards (`scan.lease.*`): `None` when they do not.
    pub lease_table: Option<LeaseTable>,
}

/// A DynamoDB lease table through which readers share a stream's shards (`scan.lease.table`).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseTable {
    /// The table's name.
    pub name: String,
    /// DynamoDB's endpoint URL (`None`: the region's).
    pub endpoint: Option<String>,
    /// How long a lease lasts without a renewal.
    pub lease_duration: Duration,
}

/// How written rows get their partition key.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Partitioner {
    /// The PARTITIONED BY columns' values joined by `delimiter`.
    Fields {
        /// The columns, in PARTITIONED BY order.
        columns: Vec<String>,
        /// The delimiter.
        delimiter: String,
    },
    /// A random key per record.
    Random,
    /// The writer's index.
    Fixed,
    /// A partitioner registered in code under this name.
    Custom(String),
}

/// KPL aggregation of written records.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AggregationOptions {
    /// User records per aggregate.
    pub max_count: usize,
    /// Bytes per aggregate.
    pub max_size: usize,
}

/// Writing.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkOptions {
    /// How partition keys are chosen.
    pub partitioner: Partitioner,
    /// Records per PutRecords call.
    pub batch_max_size: u32,
    /// PutRecords calls in flight.
    pub max_inflight_requests: u32,
    /// Records buffered before writes wait.
    pub max_buffered_requests: u32,
    /// Buffered bytes that trigger a flush.
    pub flush_buffer_size: u64,
    /// Longest time a record waits in the buffer.
    pub flush_buffer_timeout: Duration,
    /// Fail on a rejected record instead of retrying it.
    pub fail_on_error: bool,
    /// Concurrent requests of the writing client.
    pub http_max_concurrency: u32,
    /// Read timeout of the writing client.
    pub http_read_timeout: Duration,
    /// `HTTP1_1` or `HTTP2`.
    pub http_protocol: String,
    /// KPL aggregation, when enabled.
    pub aggregation: Option<AggregationOptions>,
}

/// The format and its options.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormatOptions {
    /// `json`.
    Json {
        /// `json.fail-on-missing-field`.
        fail_on_missing_field: bool,
        /// `json.ignore-parse-errors`.
        ignore_parse_errors: bool,
        /// `json.timestamp-format.standard`.
        timestamp_standard: String,
        /// `json.encode.ignore-null-fields`.
        ignore_null_fields: bool,
    },
    /// `csv`.
    Csv {
        /// `csv.field-delimiter`.
        field_delimiter: char,
        /// `csv.quote-character`, `None` when disabled.
        quote_character: Option<char>,
        /// `csv.allow-comments`.
        allow_comments: bool,
        /// `csv.ignore-parse-errors`.
        ignore_parse_errors: bool,
        /// `csv.array-element-delimiter`.
        array_element_delimiter: String,
        /// `csv.escape-character`.
        escape_character: Option<char>,
        /// `csv.null-literal`.
        null_literal: Option<String>,
    },
    /// `avro`.
    Avro,
    /// `raw`.
    Raw {
        /// `raw.endianness` is big-endian.
        big_endian: bool,
    },
}

/// The options as given, with typed getters that apply the registry's defaults.
struct Given<'a> {
    options: &'a BTreeMap<String, String>,
}

/// An integer option within its registry range.
fn parse_number(key: &str, value: OptionType, text: &str) -> Result<i64, Error> {
    let (min, max) = match value {
        OptionType::Integer { min } => (min, i64::from(i32::MAX)),
        OptionType::Long { min } => (min, i64::MAX),
        _ => (i64::MIN, i64::MAX),
    };
    match text.trim().parse::<i64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(Error::invalid(
            key,
            format!("`{key}` must be an integer from {min} to {max}, got `{text}`"),
        )),
    }
}

fn parse_double(key: &str, text: &str) -> Result<f64, Error> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(Error::invalid(
            key,
            format!("`{key}` must be a non-negative number, got `{text}`"),
        )),
    }
}

fn parse_bool(key: &str, text: &str) -> Result<bool, Error> {
    if text.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if text.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(Error::invalid(
            key,
            format!("`{key}` must be true or false, got `{text}`"),
        ))
    }
}

fn parse_choice(key: &str, value: OptionType, text: &str) -> Result<(), Error> {
    match value {
        OptionType::Choice(values) if !values.contains(&text) => Err(Error::invalid(
            key,
            format!("`{key}` must be one of {}, got `{text}`", values.join(", ")),
        )),
        _ => Ok(()),
    }
}

fn parse_char(key: &str, text: &str) -> Result<char, Error> {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(Error::invalid(
            key,
            format!("`{key}` must be a single character, got `{text}`"),
        )),
    }
}

/// Checks `text` against the type of the option `key` (reported under `key` as written).
fn check_value(key: &str, value: OptionType, text: &str) -> Result<(), Error> {
    match value {
        OptionType::Integer { .. } | OptionType::Long { .. } => {
            parse_number(key, value, text).map(drop)
        }
        OptionType::Double => parse_double(key, text).map(drop),
        OptionType::Boolean => parse_bool(key, text).map(drop),
        OptionType::Choice(_) => parse_choice(key, value, text),
        OptionType::Character => parse_char(key, text).map(drop),
        OptionType::Text => Ok(()),
    }
}

impl<'a> Given<'a> {
    fn raw(&self, key: &str) -> Option<&'a str> {
        self.options.get(key).map(String::as_str)
    }

    fn or_default(&self, key: &str) -> Option<&'a str> {
        self.raw(key)
            .or_else(|| registry::find(key).and_then(|s| s.default))
    }

    fn text(&self, key: &str) -> Option<String> {
        self.or_default(key).map(str::to_owned)
    }

    fn value_type(key: &str) -> OptionType {
        registry::find(key).map_or(OptionType::Text, |spec| spec.value)
    }

    fn number(&self, key: &str) -> Result<i64, Error> {
        parse_number(
            key,
            Self::value_type(key),
            self.or_default(key).unwrap_or("0"),
        )
    }

    fn unsigned(&self, key: &str) -> Result<u32, Error> {
        // Registry minimums are non-negative for these keys, and the maximum is i32::MAX.
        self.number(key)
            .map(|v| u32::try_from(v).unwrap_or(u32::MAX))
    }

    fn millis(&self, key: &str) -> Result<Duration, Error> {
        self.number(key)
            .map(|v| Duration::from_millis(u64::try_from(v).unwrap_or(0)))
    }

    fn double(&self, key: &str) -> Result<f64, Error> {
        parse_double(key, self.or_default(key).unwrap_or("0"))
    }

    fn boolean(&self, key: &str) -> Result<bool, Error> {
        parse_bool(key, self.or_default(key).unwrap_or("false"))
    }

    fn choice(&self, key: &str) -> Result<String, Error> {
        let text = self.or_default(key).unwrap_or_default();
        parse_choice(key, Self::value_type(key), text)?;
        Ok(text.to_owned())
    }

    fn character(&self, key: &str) -> Result<Option<char>, Error> {
        self.or_default(key)
            .map(|text| parse_char(key, text))
            .transpose()
    }

    fn backoff(&self, prefix: &str) -> Result<Backoff, Error> {
        Ok(Backoff {
            max_retries: self.unsigned(&format!("{prefix}.maxretries"))?,
            base: self.millis(&format!("{prefix}.backoff.base"))?,
            max: self.millis(&format!("{prefix}.backoff.max"))?,
            exponential_constant: self.double(&format!("{prefix}.backoff.expconst"))?,
        })
    }
}

const ROLE_PROVIDER: &str = "aws.credentials.role.provider";

/// The registry spec that `key` is checked against: nested role providers
/// (`aws.credentials.role.provider.basic.accesskeyid`, …) use the top-level credential keys.
fn spec_of(key: &str) -> Option<&'static registry::OptionSpec> {
    let Some(mut rest) = key
        .strip_prefix(ROLE_PROVIDER)
        .and_then(|tail| tail.strip_prefix('.'))
    else {
        return registry::find(key);
    };
    // Each further level is one more `role.provider.`: skipped in place, so a long key costs
    // one pass.
    while let Some(inner) = rest.strip_prefix("role.provider.") {
        rest = inner;
    }
    if rest == "provider" {
        registry::find(ROLE_PROVIDER)
    } else {
        registry::find(&format!("aws.credentials.{rest}"))
    }
}

/// `^[a-z]+-([a-z]+-?[a-z]+-([0-9]+|global)|global)$`: the shape of AWS region names (any
/// number of trailing digits, where Flink's pattern takes one).
fn is_region(text: &str) -> bool {
    let lower = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    let parts: Vec<&str> = text.split('-').collect();
    let Some((last, init)) = parts.split_last() else {
        return false;
    };
    let last_ok =
        *last == "global" || (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()));
    match init {
        [area] => lower(area) && *last == "global",
        [area, middle @ ..] if middle.len() <= 2 => {
            lower(area) && middle.iter().all(lower) && last_ok
        }
        _ => false,
    }
}

/// Keys longer than this (in bytes) get no suggestion: the edit distance takes time in the
/// product of the lengths, and no option key is nearly this long.
const MAX_SUGGESTED_KEY: usize = 100;

/// Unknown keys past this many are counted in the error, not named or matched: a statement
/// with thousands of them gets a short message, and no edit distance for each.
const MAX_NAMED_UNKNOWN: usize = 10;

/// The registered key closest to the unknown `key`, when one is close enough.
fn closest(key: &str) -> Option<&'static str> {
    if key.len() > MAX_SUGGESTED_KEY {
        return None;
    }
    let close_enough = |candidate: &str| 3.max(candidate.len() / 4);
    // A bound below the distance that takes no table: one edit adds a character, removes one,
    // or both. Counting characters, the key's surplus over a candidate and its shortfall are
    // each at most the distance. Non-ASCII characters share a count (registered keys are
    // ASCII), which only lowers the bound. Most candidates fail it, so few distances are
    // computed.
    let mut key_counts = [0u32; 129];
    let mut key_length = 0;
    for c in key.chars() {
        key_counts[usize::try_from(u32::from(c)).map_or(128, |c| c.min(128))] += 1;
        key_length += 1;
    }
    let may_be_close = |candidate: &str| {
        // Characters of the candidate matched by one of the key's.
        let mut counts = key_counts;
        let mut matched = 0;
        for b in candidate.bytes() {
            let count = &mut counts[usize::from(b.min(128))];
            if *count > 0 {
                *count -= 1;
                matched += 1;
            }
        }
        let (surplus, shortfall) = (key_length - matched, candidate.len() - matched);
        surplus.max(shortfall) <= close_enough(candidate)
    };
    registry::OPTIONS
        .iter()
        .filter(|spec| may_be_close(spec.key))
        .map(|spec| (strsim::levenshtein(key, spec.key), spec.key))
        .filter(|(distance, candidate)| *distance <= close_enough(candidate))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn credentials(
    given: &Given<'_>,
    prefix: &str,
    provider_key: &str,
    depth: usize,
) -> Result<Credentials, Error> {
    let key = |suffix: &str| format!("{prefix}.{suffix}");
    let access = key("basic.accesskeyid");
    let secret = key("basic.secretkey");
    let provider = match given.raw(provider_key) {
        Some(p) => {
            if !registry::CREDENTIAL_PROVIDERS.contains(&p) {
                return Err(Error::invalid(
                    provider_key,
                    format!(
                        "`{provider_key}` must be one of {}, got `{p}`",
                        registry::CREDENTIAL_PROVIDERS.join(", ")
                    ),
                ));
            }
            p
        }
        None if given.raw(&access).is_some() && given.raw(&secret).is_some() => "BASIC",
        None => "AUTO",
    };
    let require = |k: String| {
        given.raw(&k).map(str::to_owned).ok_or_else(|| {
            Error::new(
                ErrorKind::MissingOption,
                Some(&k),
                format!("`{k}` is required when `{provider_key}` is {provider}"),
            )
        })
    };
    Ok(match provider {
        "BASIC" => {
            if given.raw(&access).is_none() || given.raw(&secret).is_none() {
                return Err(Error::new(
                    ErrorKind::MissingOption,
                    Some(&access),
                    format!(
                        "`{access}` and `{secret}` are required when `{provider_key}` is BASIC"
                    ),
                ));
            }
            Credentials::Basic {
                access_key_id: require(access)?,
                secret_key: require(secret)?,
            }
        }
        "ENV_VAR" => Credentials::EnvVar,
        "SYS_PROP" => Credentials::SysProp,
        "PROFILE" => Credentials::Profile {
            path: given.raw(&key("profile.path")).map(str::to_owned),
            name: given.raw(&key("profile.name")).map(str::to_owned),
        },
        "ASSUME_ROLE" => {
            if depth >= 4 {
                return Err(Error::invalid(provider_key, "roles nest at most four deep"));
            }
            let nested = format!("{prefix}.role.provider");
            Credentials::AssumeRole {
                role_arn: require(key("role.arn"))?,
                session_name: require(key("role.sessionName"))?,
                external_id: given.raw(&key("role.externalId")).map(str::to_owned),
                source: Box::new(credentials(given, &nested, &nested, depth + 1)?),
            }
        }
        "WEB_IDENTITY_TOKEN" => Credentials::WebIdentityToken {
            role_arn: given.raw(&key("role.arn")).map(str::to_owned),
            session_name: given.raw(&key("role.sessionName")).map(str::to_owned),
            token_file: given.raw(&key("webIdentityToken.file")).map(str::to_owned),
        },
        _ => Credentials::Auto,
    })
}

impl TableOptions {
    /// Checks `options` (the `WITH (...)` pairs) for a table whose PARTITIONED BY columns are
    /// `partition_keys`, with custom partitioners registered under `partitioners`.
    ///
    /// # Errors
    ///
    /// An [`Error`] naming the option, its value and what is allowed; unknown keys are listed
    /// together, with the closest valid key.
    pub fn parse(
        options: &BTreeMap<String, String>,
        partition_keys: &[String],
        partitioners: &[&str],
    ) -> Result<Self, Error> {
        let given = Given { options };
        // 1. Every key is known.
        let unknown: Vec<&str> = options
            .keys()
            .map(String::as_str)
            .filter(|k| spec_of(k).is_none() && !k.starts_with("sink.producer."))
            .collect();
        if !unknown.is_empty() {
            // The first few are named and matched; the rest are counted.
            let named = &unknown[..unknown.len().min(MAX_NAMED_UNKNOWN)];
            let hint = named
                .iter()
                .filter_map(|k| closest(k).map(|c| format!("`{}`: did you mean `{c}`?", clip(k))))
                .collect::<Vec<_>>();
            let listed: Vec<String> = named.iter().map(|k| clip(k).into_owned()).collect();
            let mut message = format!("Unsupported options: {}", listed.join(", "));
            if unknown.len() > named.len() {
                message.push_str(&format!(" and {} more", unknown.len() - named.len()));
            }
            if !hint.is_empty() {
                message.push_str(&format!(" ({})", hint.join("; ")));
            }
            return Err(Error::new(
                ErrorKind::UnsupportedOption,
                unknown.first().copied(),
                message,
            ));
        }
        // 2. Required options.
        let missing: Vec<&str> = registry::OPTIONS
            .iter()
            .filter(|s| s.required && given.raw(s.key).is_none())
            .map(|s| s.key)
            .collect();
        if !missing.is_empty() {
            return Err(Error::new(
                ErrorKind::MissingOption,
                missing.first().copied(),
                format!("Missing required options: {}", missing.join(", ")),
            ));
        }
        given.choice("connector")?;
        let stream = given.text("stream").unwrap_or_default();
        if StreamName::new(stream.as_str()).is_err() {
            return Err(Error::invalid(
                "stream",
                format!("`stream` must be 1 to 128 characters of [a-zA-Z0-9_.-], got `{stream}`"),
            ));
        }
        // 3. Every value has its type (families and nested keys included).
        for (key, value) in options {
            if let Some(spec) = spec_of(key) {
                check_value(key, spec.value, value)?;
            }
        }
        let format = given.choice("format")?;
        for key in options.keys() {
            if let Some(spec) = spec_of(key)
                && let Scope::Format(owner) = spec.scope
                && owner != format
            {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    Some(key),
                    format!(
                        "`{key}` applies to format `{owner}`, but the table's format is `{format}`"
                    ),
                ));
            }
        }
        let sink_producer = producer_options(&given)?;
        let merged: BTreeMap<String, String> = sink_producer
            .into_iter()
            .filter(|(k, _)| !options.contains_key(k))
            .chain(options.iter().map(|(k, v)| (k.clone(), v.clone())))
            .collect();
        let given = Given { options: &merged };
        let aws = aws_options(&given)?;
        let source = source_options(&given, &stream)?;
        let sink = sink_options(&given, partition_keys, partitioners)?;
        let format = format_options(&given, &format)?;
        Ok(Self {
            stream,
            format,
            aws,
            source,
            sink,
        })
    }
}

/// `sink.producer.*` keys, mapped to the options they stand for.
fn producer_options(given: &Given<'_>) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for (key, value) in given.options.range("sink.producer.".to_owned()..) {
        let Some(name) = key.strip_prefix("sink.producer.") else {
            break;
        };
        let known = PRODUCER_KEYS.iter().any(|(k, _)| *k == name);
        if !known {
            let supported: Vec<String> = PRODUCER_KEYS
                .iter()
                .map(|(k, _)| format!("sink.producer.{k}"))
                .collect();
            return Err(Error::new(
                ErrorKind::UnsupportedOption,
                Some(key),
                format!(
                    "Unsupported options: {} (the supported sink.producer keys are {})",
                    clip(key),
                    supported.join(", ")
                ),
            ));
        }
        let (target, mapped) = match name {
            "record-max-buffered-time" => ("sink.flush-buffer.timeout", value.clone()),
            "collection-max-size" => ("sink.batch.max-size", value.clone()),
            "collection-max-count" => ("sink.requests.max-inflight", value.clone()),
            "fail-on-error" => ("sink.fail-on-error", value.clone()),
            "kinesis-endpoint" => {
                let port = given
                    .raw("sink.producer.kinesis-port")
                    .map(|p| format!(":{p}"))
                    .unwrap_or_default();
                ("aws.endpoint", format!("https://{value}{port}"))
            }
            "verify-certificate" => (
                "aws.trust.all.certificates",
                (!parse_bool(key, value)?).to_string(),
            ),
            // Read where they apply: the port with the endpoint, aggregation by the sink.
            _ => continue,
        };
        out.insert(target.to_owned(), mapped);
    }
    Ok(out)
}

fn aws_options(given: &Given<'_>) -> Result<AwsOptions, Error> {
    let region = given.raw("aws.region").map(str::to_owned);
    if let Some(region) = &region
        && !is_region(region)
    {
        return Err(Error::invalid(
            "aws.region",
            format!(
                "`aws.region` must be an AWS region name such as us-east-1 or us-gov-west-1, got `{region}`"
            ),
        ));
    }
    let endpoint = given.raw("aws.endpoint").map(str::to_owned);
    if region.is_none() && endpoint.is_none() {
        return Err(Error::new(
            ErrorKind::MissingOption,
            Some("aws.region"),
            "Either `aws.region` or `aws.endpoint` must be set",
        ));
    }
    Ok(AwsOptions {
        region,
        endpoint,
        trust_all_certificates: given.boolean("aws.trust.all.certificates")?,
        credentials: credentials(given, "aws.credentials", "aws.credentials.provider", 0)?,
    })
}

fn start_position(given: &Given<'_>) -> Result<StartPosition, Error> {
    Ok(match given.choice("scan.stream.initpos")?.as_str() {
        "TRIM_HORIZON" => StartPosition::TrimHorizon,
        "AT_TIMESTAMP" => {
            let key = "scan.stream.initpos-timestamp";
            let Some(text) = given.raw(key) else {
                return Err(Error::new(
                    ErrorKind::MissingOption,
                    Some(key),
                    format!("`{key}` is required when `scan.stream.initpos` is AT_TIMESTAMP"),
                ));
            };
            let format_key = "scan.stream.initpos-timestamp-format";
            let pattern_text = given.or_default(format_key).unwrap_or_default();
            let pattern = Pattern::compile(pattern_text).map_err(|problem| {
                Error::invalid(
                    format_key,
                    format!("`{format_key}` `{pattern_text}` has {problem}"),
                )
            })?;
            let millis = pattern.parse(text).or_else(|| epoch_seconds(text)).ok_or_else(|| {
                Error::invalid(
                    key,
                    format!(
                        "`{key}` must be a date in the pattern `{pattern_text}` or non-negative epoch seconds (like 1459799926.480), got `{text}`"
                    ),
                )
            })?;
            StartPosition::AtTimestamp(millis)
        }
        _ => StartPosition::Latest,
    })
}

fn source_options(given: &Given<'_>, stream: &str) -> Result<SourceOptions, Error> {
    let start = start_position(given)?;
    let arn_key = format!("scan.stream.efo.consumerarn.{stream}");
    for key in given.options.keys() {
        if key.starts_with("scan.stream.efo.consumerarn.") && *key != arn_key {
            return Err(Error::new(
                ErrorKind::Conflict,
                Some(key),
                format!(
                    "`{}` names another stream than the table's `{stream}` (expected `{arn_key}`)",
                    clip(key)
                ),
            ));
        }
    }
    let reader = if given.choice("scan.stream.recordpublisher")? == "EFO" {
        let registration = given.choice("scan.stream.efo.registration")?;
        let name_key = "scan.stream.efo.consumername";
        let name = given.raw(name_key).map(str::to_owned);
        let consumer = match (registration.as_str(), name) {
            ("NONE", _) => {
                let arn = given.raw(&arn_key).map(str::to_owned).ok_or_else(|| {
                    Error::new(
                        ErrorKind::MissingOption,
                        Some(&arn_key),
                        format!(
                            "`{arn_key}` is required when `scan.stream.efo.registration` is NONE"
                        ),
                    )
                })?;
                let parsed = ConsumerArn::new(arn.as_str()).map_err(|e| {
                    Error::invalid(
                        &arn_key,
                        format!("`{arn_key}` must be a consumer ARN, got `{arn}`: {e}"),
                    )
                })?;
                if parsed.stream_arn().stream_name() != stream {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        Some(&arn_key),
                        format!(
                            "`{arn_key}` is a consumer of another stream than `{stream}`: `{arn}`"
                        ),
                    ));
                }
                EfoConsumer::None(arn)
            }
            (_, None) => {
                return Err(Error::new(
                    ErrorKind::MissingOption,
                    Some(name_key),
                    format!(
                        "`{name_key}` is required when `scan.stream.efo.registration` is {registration}"
                    ),
                ));
            }
            (_, Some(name)) if ConsumerName::new(name.as_str()).is_err() => {
                return Err(Error::invalid(
                    name_key,
                    format!(
                        "`{name_key}` must be 1 to 128 characters of [a-zA-Z0-9_.-], got `{name}`"
                    ),
                ));
            }
            ("EAGER", Some(name)) => EfoConsumer::Eager(name),
            (_, Some(name)) => EfoConsumer::Lazy(name),
        };
        ReaderKind::EnhancedFanOut(consumer)
    } else {
        ReaderKind::Polling
    };
    let interval_key = "scan.shard.getrecords.intervalmillis";
    let get_records_interval = given.millis(interval_key)?;
    if get_records_interval >= Duration::from_secs(300) {
        return Err(Error::invalid(
            interval_key,
            format!(
                "`{interval_key}` must be under 300000 (shard iterators expire after five minutes), got {}",
                get_records_interval.as_millis()
            ),
        ));
    }
    let count_key = "scan.shard.getrecords.maxrecordcount";
    let get_records_max_count = given.unsigned(count_key)?;
    if get_records_max_count > 10_000 {
        return Err(Error::invalid(
            count_key,
            format!("`{count_key}` must be at most 10000, got {get_records_max_count}"),
        ));
    }
    let idle = given.number("scan.shard.idle.interval")?;
    let lookahead = given.millis("scan.watermark.lookahead.millis")?;
    Ok(SourceOptions {
        start,
        reader,
        describe_stream: given.backoff("scan.stream.describe")?,
        list_shards: given.backoff("scan.list.shards")?,
        describe_consumer: given.backoff("scan.stream.describestreamconsumer")?,
        register_consumer: given.backoff("scan.stream.registerstreamconsumer")?,
        register_consumer_timeout: Duration::from_secs(u64::from(
            given.unsigned("scan.stream.registerstreamconsumer.timeout")?,
        )),
        deregister_consumer: given.backoff("scan.stream.deregisterstreamconsumer")?,
        deregister_consumer_timeout: Duration::from_secs(u64::from(
            given.unsigned("scan.stream.deregisterstreamconsumer.timeout")?,
        )),
        subscribe_to_shard: given.backoff("scan.shard.subscribetoshard")?,
        efo_max_concurrency: given.unsigned("scan.stream.efo.http-client.max-concurrency")?,
        get_records: given.backoff("scan.shard.getrecords")?,
        get_records_max_count,
        get_records_interval,
        get_iterator: given.backoff("scan.shard.getiterator")?,
        shard_discovery_interval: given.millis("scan.shard.discovery.intervalmillis")?,
        adaptive_reads: given.boolean("scan.shard.adaptivereads")?,
        shard_idle_interval: u64::try_from(idle).ok().map(Duration::from_millis),
        shard_assigner: given.choice("scan.shard-assigner")?,
        watermark_sync_interval: given.millis("scan.watermark.sync.interval")?,
        watermark_lookahead: (!lookahead.is_zero()).then_some(lookahead),
        watermark_sync_queue_capacity: given.unsigned("scan.watermark.sync.queue.capacity")?,
        lease_table: match given.text("scan.lease.table") {
            None => {
                for key in ["scan.lease.dynamodb.endpoint", "scan.lease.duration"] {
                    if given.raw(key).is_some() {
                        return Err(Error::new(
                            ErrorKind::Conflict,
                            Some(key),
                            format!("`{key}` is set, but `scan.lease.table` is not"),
                        ));
                    }
                }
                None
            }
            Some(name) => Some(LeaseTable {
                name,
                endpoint: given.text("scan.lease.dynamodb.endpoint"),
                lease_duration: given.millis("scan.lease.duration")?,
            }),
        },
    })
}

fn sink_options(
    given: &Given<'_>,
    partition_keys: &[String],
    partitioners: &[&str],
) -> Result<SinkOptions, Error> {
    let key = "sink.partitioner";
    let partitioner = match (given.raw(key), partition_keys.is_empty()) {
        (Some(_), false) => {
            return Err(Error::new(
                ErrorKind::Conflict,
                Some(key),
                "`sink.partitioner` cannot be set for a table with PARTITIONED BY: the partition key is built from the PARTITIONED BY columns",
            ));
        }
        (None, false) => Partitioner::Fields {
            columns: partition_keys.to_vec(),
            delimiter: given
                .text("sink.partitioner-field-delimiter")
                .unwrap_or_default(),
        },
        (None, true) | (Some("random"), true) => Partitioner::Random,
        (Some("fixed"), true) => Partitioner::Fixed,
        (Some(name), true) if partitioners.contains(&name) => Partitioner::Custom(name.to_owned()),
        (Some(name), true) => {
            let registered = if partitioners.is_empty() {
                "none".to_owned()
            } else {
                partitioners.join(", ")
            };
            return Err(Error::invalid(
                key,
                format!(
                    "`{key}` must be random, fixed or a registered partitioner (registered: {registered}), got `{name}`"
                ),
            ));
        }
    };
    // The aggregation settings are checked even while aggregation is off.
    let enabled_key = "sink.producer.aggregation-enabled";
    let enabled = given
        .raw(enabled_key)
        .map(|v| parse_bool(enabled_key, v))
        .transpose()?;
    let count_key = "sink.producer.aggregation-max-count";
    let max_count = match given.raw(count_key) {
        None => usize::MAX,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                Error::invalid(
                    count_key,
                    format!("`{count_key}` must be a positive integer, got `{v}`"),
                )
            })?,
    };
    let size_key = "sink.producer.aggregation-max-size";
    let max_size = match given.raw(size_key) {
        None => 51_200,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (64..=10_485_760).contains(n))
            .ok_or_else(|| {
                Error::invalid(
                    size_key,
                    format!("`{size_key}` must be an integer from 64 to 10485760, got `{v}`"),
                )
            })?,
    };
    let aggregation = (enabled == Some(true)).then_some(AggregationOptions {
        max_count,
        max_size,
    });
    Ok(SinkOptions {
        partitioner,
        batch_max_size: given.unsigned("sink.batch.max-size")?,
        max_inflight_requests: given.unsigned("sink.requests.max-inflight")?,
        max_buffered_requests: given.unsigned("sink.requests.max-buffered")?,
        flush_buffer_size: u64::try_from(given.number("sink.flush-buffer.size")?).unwrap_or(0),
        flush_buffer_timeout: given.millis("sink.flush-buffer.timeout")?,
        fail_on_error: given.boolean("sink.fail-on-error")?,
        http_max_concurrency: given.unsigned("sink.http-client.max-concurrency")?,
        http_read_timeout: given.millis("sink.http-client.read-timeout")?,
        http_protocol: given.choice("sink.http-client.protocol.version")?,
        aggregation,
    })
}

fn format_options(given: &Given<'_>, format: &str) -> Result<FormatOptions, Error> {
    Ok(match format {
        "json" => {
            let fail_on_missing_field = given.boolean("json.fail-on-missing-field")?;
            let ignore_parse_errors = given.boolean("json.ignore-parse-errors")?;
            if fail_on_missing_field && ignore_parse_errors {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    Some("json.fail-on-missing-field"),
                    "`json.fail-on-missing-field` and `json.ignore-parse-errors` cannot both be true",
                ));
            }
            // Checked, though decimals are always written plain.
            given.boolean("json.encode.decimal-as-plain-number")?;
            FormatOptions::Json {
                fail_on_missing_field,
                ignore_parse_errors,
                timestamp_standard: given.choice("json.timestamp-format.standard")?,
                ignore_null_fields: given.boolean("json.encode.ignore-null-fields")?,
            }
        }
        "csv" => {
            // The CSV reader and writer take single-byte delimiters, quotes and escapes.
            let ascii = |key: &str| -> Result<Option<char>, Error> {
                match given.character(key)? {
                    Some(c) if !c.is_ascii() => Err(Error::invalid(
                        key,
                        format!("`{key}` must be an ASCII character, got `{c}`"),
                    )),
                    c => Ok(c),
                }
            };
            let field_delimiter = ascii("csv.field-delimiter")?.unwrap_or(',');
            let quote_character = if given.boolean("csv.disable-quote-character")? {
                None
            } else {
                ascii("csv.quote-character")?
            };
            let escape_character = ascii("csv.escape-character")?;
            if Some(field_delimiter) == quote_character || Some(field_delimiter) == escape_character
            {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    Some("csv.field-delimiter"),
                    format!(
                        "`csv.field-delimiter` `{field_delimiter}` is also the quote or escape character"
                    ),
                ));
            }
            let array_element_delimiter = given
                .text("csv.array-element-delimiter")
                .unwrap_or_default();
            if array_element_delimiter.is_empty() {
                return Err(Error::invalid(
                    "csv.array-element-delimiter",
                    "`csv.array-element-delimiter` must not be empty: array elements would run together",
                ));
            }
            FormatOptions::Csv {
                field_delimiter,
                quote_character,
                allow_comments: given.boolean("csv.allow-comments")?,
                ignore_parse_errors: given.boolean("csv.ignore-parse-errors")?,
                array_element_delimiter,
                escape_character,
                null_literal: given.raw("csv.null-literal").map(str::to_owned),
            }
        }
        "raw" => FormatOptions::Raw {
            big_endian: given.choice("raw.endianness")? == "big-endian",
        },
        "avro" => FormatOptions::Avro,
        other => {
            return Err(Error::invalid(
                "format",
                format!("`format` must be one of json, csv, avro, raw, got `{other}`"),
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// `closest` without the counting bound: the distance to every registered key.
    fn closest_by_distance_alone(key: &str) -> Option<&'static str> {
        registry::OPTIONS
            .iter()
            .map(|spec| (strsim::levenshtein(key, spec.key), spec.key))
            .filter(|(distance, candidate)| *distance <= 3.max(candidate.len() / 4))
            .min_by_key(|(distance, _)| *distance)
            .map(|(_, candidate)| candidate)
    }

    proptest! {
        /// The bound only skips work: the suggestion is the same.
        #[test]
        fn the_counting_bound_keeps_the_suggestion(
            pick in 0..registry::OPTIONS.len(),
            edits in proptest::collection::vec((any::<u8>(), "[a-z.é-]"), 0..8),
            random in "[a-z.é-]{0,40}",
        ) {
            // Near misses of a registered key, and random keys.
            let mut near: Vec<char> = registry::OPTIONS[pick].key.chars().collect();
            for (at, c) in edits {
                let at = usize::from(at) % (near.len() + 1);
                let c = c.chars().next().unwrap();
                match at % 3 {
                    0 if at < near.len() => near[at] = c,
                    1 if at < near.len() => { near.remove(at); }
                    _ => near.insert(at, c),
                }
            }
            let near: String = near.into_iter().collect();
            prop_assert_eq!(closest(&near), closest_by_distance_alone(&near));
            prop_assert_eq!(closest(&random), closest_by_distance_alone(&random));
        }
    }
}
