//! The acceptance cases of the Flink connector's tests (T*: `KinesisDynamicTableFactoryTest`,
//! S*: `KinesisDynamicTableSinkFactoryTest`, C*: `KinesisConfigUtilTest`, in
//! apache/flink-connector-aws), with our error text, and the generated option reference.

use std::collections::BTreeMap;
use std::time::Duration;

use kds_table::*;

fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The base DDL of the Flink table factory tests (T*).
fn base() -> BTreeMap<String, String> {
    options(&[
        ("connector", "kinesis"),
        ("stream", "myStream"),
        ("format", "json"),
        ("aws.region", "us-west-2"),
        ("aws.credentials.provider", "BASIC"),
        ("aws.credentials.basic.accesskeyid", "ververicka"),
        (
            "aws.credentials.basic.secretkey",
            "SuperSecretSecretSquirrel",
        ),
        ("scan.stream.initpos", "AT_TIMESTAMP"),
        (
            "scan.stream.initpos-timestamp-format",
            "yyyy-MM-dd'T'HH:mm:ss",
        ),
        ("scan.stream.initpos-timestamp", "2014-10-22T12:00:00"),
    ])
}

fn with(mut map: BTreeMap<String, String>, pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    for (k, v) in pairs {
        map.insert((*k).to_owned(), (*v).to_owned());
    }
    map
}

fn without(mut map: BTreeMap<String, String>, keys: &[&str]) -> BTreeMap<String, String> {
    for k in keys {
        map.remove(*k);
    }
    map
}

fn parse(map: &BTreeMap<String, String>) -> Result<TableOptions, Error> {
    TableOptions::parse(map, &[], &[])
}

fn error(map: &BTreeMap<String, String>) -> Error {
    parse(map).unwrap_err()
}

#[test]
fn t1_base_definition() {
    let table = parse(&base()).unwrap();
    assert_eq!(table.stream, "myStream");
    assert_eq!(table.aws.region.as_deref(), Some("us-west-2"));
    assert_eq!(
        table.aws.credentials,
        Credentials::Basic {
            access_key_id: "ververicka".into(),
            secret_key: "SuperSecretSecretSquirrel".into()
        }
    );
    assert_eq!(
        table.source.start,
        StartPosition::AtTimestamp(1_413_979_200_000)
    );
    assert_eq!(table.source.shard_assigner, "default");
    assert_eq!(table.source.reader, ReaderKind::Polling);
    // Defaults from the reference page.
    assert_eq!(table.source.get_records_max_count, 10_000);
    assert_eq!(
        table.source.get_records_interval,
        Duration::from_millis(200)
    );
    assert_eq!(table.source.describe_stream.max_retries, 50);
    assert_eq!(table.source.list_shards.base, Duration::from_millis(1000));
    // The secret never shows in Debug output.
    let debug = format!("{table:?}");
    assert!(!debug.contains("SuperSecretSecretSquirrel"), "{debug}");
    assert!(debug.contains("<redacted>"));
}

#[test]
fn t3_s3_sink_options_alongside_source_options() {
    let map = with(
        base(),
        &[
            ("sink.fail-on-error", "true"),
            ("sink.batch.max-size", "100"),
            ("sink.requests.max-inflight", "100"),
            ("sink.requests.max-buffered", "100"),
            ("sink.flush-buffer.size", "1000"),
            ("sink.flush-buffer.timeout", "1000"),
        ],
    );
    let table = parse(&map).unwrap();
    assert_eq!(
        table.source,
        parse(&base()).unwrap().source,
        "T3: sink options leave the source alone"
    );
    let sink = &table.sink;
    assert!(sink.fail_on_error);
    assert_eq!(
        (
            sink.batch_max_size,
            sink.max_inflight_requests,
            sink.max_buffered_requests
        ),
        (100, 100, 100)
    );
    assert_eq!(sink.flush_buffer_size, 1000);
    assert_eq!(sink.flush_buffer_timeout, Duration::from_millis(1000));
}

#[test]
fn t4_s5_unknown_options_are_listed_with_a_suggestion() {
    let err = error(&with(
        base(),
        &[
            ("invalid.option", "some_value"),
            ("scan.stream.initpos-timestmap", "x"),
        ],
    ));
    assert_eq!(err.kind(), ErrorKind::UnsupportedOption);
    let text = err.to_string();
    assert!(
        text.starts_with("Unsupported options: invalid.option, scan.stream.initpos-timestmap"),
        "{text}"
    );
    assert!(
        text.contains("did you mean `scan.stream.initpos-timestamp`?"),
        "{text}"
    );
}

/// Found by the `table_options` fuzz target, which ran 300 times a second: every unknown key
/// was named in the message and matched against every registered key.
#[test]
fn many_unknown_options_are_counted_past_the_first_ten() {
    let keys: Vec<String> = (0..10_000)
        .map(|i| format!("scan.stream.initpos-timestmap{i:05}"))
        .collect();
    let options: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();
    let err = error(&with(base(), &options));
    assert_eq!(err.kind(), ErrorKind::UnsupportedOption);
    assert_eq!(err.option(), Some("scan.stream.initpos-timestmap00000"));
    let text = err.to_string();
    assert!(
        text.starts_with(
            "Unsupported options: scan.stream.initpos-timestmap00000, \
             scan.stream.initpos-timestmap00001,"
        ),
        "{text}"
    );
    assert!(
        text.contains("scan.stream.initpos-timestmap00009 and 9990 more"),
        "{text}"
    );
    assert!(text.len() < 2000, "{} bytes", text.len());
}

#[test]
fn long_unknown_keys_get_no_suggestion_and_are_cut_in_messages() {
    let keys = [
        "a".repeat(1_000_000),
        // A near miss made long: still no suggestion.
        format!("scan.stream.initpos-timestmap{}", "p".repeat(1_000_000)),
        // Nested role keys are unwound in one pass, not one copy per level.
        format!("aws.credentials.{}x", "role.provider.".repeat(70_000)),
        format!("sink.producer.{}", "a".repeat(1_000_000)),
    ];
    for key in keys {
        let err = error(&with(base(), &[(key.as_str(), "v")]));
        assert_eq!(err.kind(), ErrorKind::UnsupportedOption);
        let text = err.to_string();
        assert!(text.len() < 1000, "{} bytes", text.len());
        assert!(text.starts_with("Unsupported options: "), "{text}");
        assert!(text.contains('…'), "{text}");
        assert!(!text.contains("did you mean"), "{text}");
        // The key the error names, and its Debug, are cut too.
        let option = err.option().expect("one unknown option");
        assert!(
            option.len() < 1000 && option.ends_with('…'),
            "{} bytes",
            option.len()
        );
        assert!(key.starts_with(option.trim_end_matches('…')));
        let debug = format!("{err:?}");
        assert!(debug.len() < 3000, "{} bytes", debug.len());
    }
}

#[test]
fn t5_shard_assigner() {
    let table = parse(&with(base(), &[("scan.shard-assigner", "uniform")])).unwrap();
    assert_eq!(table.source.shard_assigner, "uniform");
    // Flink falls back to the default with a warning; we refuse what we would ignore.
    let err = error(&with(base(), &[("scan.shard-assigner", "unrecognized")]));
    assert_eq!(
        (err.kind(), err.option()),
        (ErrorKind::InvalidValue, Some("scan.shard-assigner"))
    );
    assert_eq!(
        err.to_string(),
        "`scan.shard-assigner` must be one of default, uniform, got `unrecognized`"
    );
}

#[test]
fn s1_s2_s7_s8_partitioners() {
    let keys = ["name".to_owned(), "curr_id".to_owned()];
    let table = TableOptions::parse(&base(), &keys, &[]).unwrap();
    assert_eq!(
        table.sink.partitioner,
        Partitioner::Fields {
            columns: keys.to_vec(),
            delimiter: "|".into()
        }
    );
    assert_eq!(
        parse(&base()).unwrap().sink.partitioner,
        Partitioner::Random
    );
    assert_eq!(
        parse(&with(base(), &[("sink.partitioner", "fixed")]))
            .unwrap()
            .sink
            .partitioner,
        Partitioner::Fixed
    );
    let custom = TableOptions::parse(
        &with(base(), &[("sink.partitioner", "by-tenant")]),
        &[],
        &["by-tenant"],
    )
    .unwrap();
    assert_eq!(
        custom.sink.partitioner,
        Partitioner::Custom("by-tenant".into())
    );
    let delimited = TableOptions::parse(
        &with(base(), &[("sink.partitioner-field-delimiter", "")]),
        &keys,
        &[],
    )
    .unwrap();
    assert!(
        matches!(delimited.sink.partitioner, Partitioner::Fields { ref delimiter, .. } if delimiter.is_empty())
    );

    let err = TableOptions::parse(&with(base(), &[("sink.partitioner", "random")]), &keys, &[])
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.option()),
        (ErrorKind::Conflict, Some("sink.partitioner"))
    );
    assert!(
        err.to_string()
            .contains("cannot be set for a table with PARTITIONED BY")
    );

    let err = error(&with(base(), &[("sink.partitioner", "abc")]));
    assert_eq!(err.kind(), ErrorKind::InvalidValue);
    assert_eq!(
        err.to_string(),
        "`sink.partitioner` must be random, fixed or a registered partitioner (registered: none), got `abc`"
    );
}

#[test]
fn s6_s13_s14_producer_keys_are_mapped() {
    let map = with(
        base(),
        &[
            ("sink.producer.record-max-buffered-time", "1000"),
            ("sink.producer.collection-max-size", "100"),
            ("sink.producer.collection-max-count", "100"),
            ("sink.producer.fail-on-error", "true"),
        ],
    );
    let sink = parse(&map).unwrap().sink;
    assert_eq!(sink.flush_buffer_timeout, Duration::from_millis(1000));
    assert_eq!(
        (sink.batch_max_size, sink.max_inflight_requests),
        (100, 100)
    );
    assert!(sink.fail_on_error);
    // The new key wins over the mapped one.
    let both = with(map, &[("sink.batch.max-size", "7")]);
    assert_eq!(parse(&both).unwrap().sink.batch_max_size, 7);

    let table = parse(&with(
        base(),
        &[("sink.producer.verify-certificate", "false")],
    ))
    .unwrap();
    assert!(table.aws.trust_all_certificates);
    let table = parse(&with(
        base(),
        &[("sink.producer.kinesis-endpoint", "some-end-point.kinesis")],
    ))
    .unwrap();
    assert_eq!(
        table.aws.endpoint.as_deref(),
        Some("https://some-end-point.kinesis")
    );
    let table = parse(&with(
        base(),
        &[
            ("sink.producer.kinesis-endpoint", "some-end-point.kinesis"),
            ("sink.producer.kinesis-port", "1234"),
        ],
    ))
    .unwrap();
    assert_eq!(
        table.aws.endpoint.as_deref(),
        Some("https://some-end-point.kinesis:1234")
    );

    let table = parse(&with(
        base(),
        &[
            ("sink.producer.aggregation-enabled", "true"),
            ("sink.producer.aggregation-max-size", "102400"),
        ],
    ))
    .unwrap();
    let aggregation = table.sink.aggregation.unwrap();
    assert_eq!(
        (aggregation.max_count, aggregation.max_size),
        (usize::MAX, 102_400)
    );
    assert_eq!(parse(&base()).unwrap().sink.aggregation, None);
    // A bad aggregation setting is reported even while aggregation is off.
    let err = error(&with(
        base(),
        &[("sink.producer.aggregation-max-size", "huge")],
    ));
    assert_eq!(
        (err.kind(), err.option()),
        (
            ErrorKind::InvalidValue,
            Some("sink.producer.aggregation-max-size")
        )
    );
    // Flink warns and ignores other KPL keys; we refuse them.
    let err = error(&with(base(), &[("sink.producer.thread-pool-size", "4")]));
    assert_eq!(
        (err.kind(), err.option()),
        (
            ErrorKind::UnsupportedOption,
            Some("sink.producer.thread-pool-size")
        )
    );
}

#[test]
fn s10_c1_c2_region_or_endpoint() {
    let keys_only = without(base(), &["aws.region"]);
    let err = error(&keys_only);
    assert_eq!(
        (err.kind(), err.option()),
        (ErrorKind::MissingOption, Some("aws.region"))
    );
    assert_eq!(
        err.to_string(),
        "Either `aws.region` or `aws.endpoint` must be set"
    );
    assert!(parse(&with(keys_only.clone(), &[("aws.endpoint", "fake")])).is_ok());
    assert!(parse(&with(base(), &[("aws.endpoint", "fake")])).is_ok());
}

#[test]
fn s11_s12_sink_values_must_be_positive() {
    for key in [
        "sink.batch.max-size",
        "sink.requests.max-inflight",
        "sink.requests.max-buffered",
        "sink.flush-buffer.size",
        "sink.flush-buffer.timeout",
        "sink.http-client.max-concurrency",
        "sink.http-client.read-timeout",
    ] {
        let err = error(&with(base(), &[(key, "0")]));
        assert_eq!(
            (err.kind(), err.option()),
            (ErrorKind::InvalidValue, Some(key)),
            "{key}"
        );
        assert!(err.to_string().contains("from 1 to"), "{err}");
    }
    let err = error(&with(base(), &[("sink.http-client.read-timeout", "x")]));
    assert_eq!(err.option(), Some("sink.http-client.read-timeout"));
    let err = error(&with(
        base(),
        &[("sink.http-client.protocol.version", "HTTP3")],
    ));
    assert_eq!(
        err.to_string(),
        "`sink.http-client.protocol.version` must be one of HTTP1_1, HTTP2, got `HTTP3`"
    );
}

#[test]
fn c3_regions() {
    for region in [
        "us-east-1",
        "us-gov-west-1",
        "us-isob-east-1",
        "aws-global",
        "aws-iso-global",
        "aws-iso-b-global",
        "ap-southeast-12",
    ] {
        assert!(
            parse(&with(base(), &[("aws.region", region)])).is_ok(),
            "{region}"
        );
    }
    for region in [
        "unstructured-string",
        "wrongRegionId",
        "invalid-aws-region",
        "us-east-",
    ] {
        let err = error(&with(base(), &[("aws.region", region)]));
        assert_eq!(
            (err.kind(), err.option()),
            (ErrorKind::InvalidValue, Some("aws.region")),
            "{region}"
        );
    }
}

#[test]
fn c4_c5_credentials() {
    let err = error(&without(base(), &["aws.credentials.basic.secretkey"]));
    assert_eq!(err.kind(), ErrorKind::MissingOption);
    assert_eq!(
        err.to_string(),
        "`aws.credentials.basic.accesskeyid` and `aws.credentials.basic.secretkey` are required when `aws.credentials.provider` is BASIC"
    );
    let err = error(&with(
        base(),
        &[("aws.credentials.provider", "wrongProviderType")],
    ));
    assert_eq!(
        err.to_string(),
        "`aws.credentials.provider` must be one of AUTO, BASIC, ENV_VAR, SYS_PROP, PROFILE, ASSUME_ROLE, WEB_IDENTITY_TOKEN, got `wrongProviderType`"
    );
    // Without a provider: BASIC when both keys are given, else AUTO.
    let implicit = without(base(), &["aws.credentials.provider"]);
    assert!(matches!(
        parse(&implicit).unwrap().aws.credentials,
        Credentials::Basic { .. }
    ));
    let auto = without(
        implicit,
        &[
            "aws.credentials.basic.secretkey",
            "aws.credentials.basic.accesskeyid",
        ],
    );
    assert_eq!(parse(&auto).unwrap().aws.credentials, Credentials::Auto);
    // Nested roles.
    let role = with(
        without(
            base(),
            &[
                "aws.credentials.basic.accesskeyid",
                "aws.credentials.basic.secretkey",
            ],
        ),
        &[
            ("aws.credentials.provider", "ASSUME_ROLE"),
            (
                "aws.credentials.role.arn",
                "arn:aws:iam::123456789012:role/reader",
            ),
            ("aws.credentials.role.sessionName", "kds"),
            ("aws.credentials.role.provider", "PROFILE"),
            ("aws.credentials.role.provider.profile.name", "ops"),
        ],
    );
    let Credentials::AssumeRole { source, .. } = parse(&role).unwrap().aws.credentials else {
        panic!()
    };
    assert_eq!(
        *source,
        Credentials::Profile {
            path: None,
            name: Some("ops".into())
        }
    );
    let err = error(&without(role, &["aws.credentials.role.sessionName"]));
    assert_eq!(err.option(), Some("aws.credentials.role.sessionName"));
}

#[test]
fn c6_c7_start_position() {
    let err = error(&with(
        base(),
        &[("scan.stream.initpos", "wrongInitPosition")],
    ));
    assert_eq!(
        err.to_string(),
        "`scan.stream.initpos` must be one of TRIM_HORIZON, LATEST, AT_TIMESTAMP, got `wrongInitPosition`"
    );
    let err = error(&without(base(), &["scan.stream.initpos-timestamp"]));
    assert_eq!(
        (err.kind(), err.option()),
        (
            ErrorKind::MissingOption,
            Some("scan.stream.initpos-timestamp")
        )
    );
    // Timestamp options are not read unless the start is AT_TIMESTAMP.
    let latest = with(
        without(base(), &["scan.stream.initpos"]),
        &[("scan.stream.initpos-timestamp", "garbage")],
    );
    assert_eq!(parse(&latest).unwrap().source.start, StartPosition::Latest);
}

#[test]
fn c8_c9_c19_c20_timestamps() {
    let at = |timestamp: &str, format: Option<&str>| {
        let mut map = with(base(), &[("scan.stream.initpos-timestamp", timestamp)]);
        match format {
            Some(f) => map.insert("scan.stream.initpos-timestamp-format".into(), f.into()),
            None => map.remove("scan.stream.initpos-timestamp-format"),
        };
        parse(&map).map(|t| t.source.start)
    };
    for (timestamp, format) in [
        ("unparsableDate", None),
        ("-1.0", None),
        ("2016-03-14", Some("InvalidPattern")),
        ("stillUnparsable", Some("yyyy-MM-dd")),
    ] {
        assert_eq!(
            at(timestamp, format).unwrap_err().kind(),
            ErrorKind::InvalidValue,
            "{timestamp}"
        );
    }
    let err = at("stillUnparsable", Some("yyyy-MM-dd")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`scan.stream.initpos-timestamp` must be a date in the pattern `yyyy-MM-dd` or non-negative epoch seconds (like 1459799926.480), got `stillUnparsable`"
    );
    let err = at("2016-03-14", Some("InvalidPattern")).unwrap_err();
    assert_eq!(err.option(), Some("scan.stream.initpos-timestamp-format"));
    assert_eq!(
        at("2016-04-04T19:58:46.480-00:00", None).unwrap(),
        StartPosition::AtTimestamp(1_459_799_926_480)
    );
    assert_eq!(
        at("1459799926.480", None).unwrap(),
        StartPosition::AtTimestamp(1_459_799_926_480)
    );
    assert_eq!(
        at("2016-04-04", Some("yyyy-MM-dd")).unwrap(),
        StartPosition::AtTimestamp(1_459_728_000_000)
    );
    assert_eq!(
        at("2020-08-13T09:18:00.0+01:00", None).unwrap(),
        StartPosition::AtTimestamp(1_597_306_680_000)
    );
    assert_eq!(
        at("2020-08-13T09:23", Some("yyyy-MM-dd'T'HH:mm")).unwrap(),
        StartPosition::AtTimestamp(1_597_310_580_000)
    );
}

#[test]
fn c10_c11_numbers() {
    for (key, value) in [
        ("scan.shard.getrecords.maxrecordcount", "unparsableInt"),
        ("scan.shard.getrecords.backoff.base", "unparsableLong"),
        ("scan.list.shards.backoff.expconst", "unparsableDouble"),
        ("scan.stream.efo.http-client.max-concurrency", "abc"),
        ("scan.stream.efo.http-client.max-concurrency", "-1"),
        ("scan.shard.getrecords.intervalmillis", "300000"),
        ("scan.shard.getrecords.maxrecordcount", "10001"),
    ] {
        let err = error(&with(base(), &[(key, value)]));
        assert_eq!(
            (err.kind(), err.option()),
            (ErrorKind::InvalidValue, Some(key)),
            "{key}={value}"
        );
        assert!(err.to_string().contains(value), "{err}");
    }
    assert_eq!(
        error(&with(
            base(),
            &[("scan.shard.getrecords.maxrecordcount", "unparsableInt")]
        ))
        .to_string(),
        "`scan.shard.getrecords.maxrecordcount` must be an integer from 1 to 2147483647, got `unparsableInt`"
    );
    let ok = parse(&with(
        base(),
        &[("scan.stream.efo.http-client.max-concurrency", "55")],
    ))
    .unwrap();
    assert_eq!(ok.source.efo_max_concurrency, 55);
}

fn efo(pairs: &[(&str, &str)]) -> Result<TableOptions, Error> {
    parse(&with(
        with(base(), &[("scan.stream.recordpublisher", "EFO")]),
        pairs,
    ))
}

#[test]
fn c12_to_c17_enhanced_fan_out() {
    let err = error(&with(
        base(),
        &[(
            "scan.stream.recordpublisher",
            "unrecognizableRecordPublisher",
        )],
    ));
    assert_eq!(
        err.to_string(),
        "`scan.stream.recordpublisher` must be one of POLLING, EFO, got `unrecognizableRecordPublisher`"
    );
    assert_eq!(
        efo(&[("scan.stream.efo.consumername", "app")])
            .unwrap()
            .source
            .reader,
        ReaderKind::EnhancedFanOut(EfoConsumer::Lazy("app".into()))
    );
    assert_eq!(
        efo(&[
            ("scan.stream.efo.consumername", "app"),
            ("scan.stream.efo.registration", "EAGER")
        ])
        .unwrap()
        .source
        .reader,
        ReaderKind::EnhancedFanOut(EfoConsumer::Eager("app".into()))
    );
    let err = efo(&[
        ("scan.stream.efo.consumername", "app"),
        (
            "scan.stream.efo.registration",
            "unrecogonizeEforegistrationtype",
        ),
    ])
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`scan.stream.efo.registration` must be one of LAZY, EAGER, NONE, got `unrecogonizeEforegistrationtype`"
    );
    let arn = "arn:aws:kinesis:us-west-2:123456789012:stream/myStream/consumer/app:1";
    assert_eq!(
        efo(&[
            ("scan.stream.efo.registration", "NONE"),
            ("scan.stream.efo.consumerarn.myStream", arn)
        ])
        .unwrap()
        .source
        .reader,
        ReaderKind::EnhancedFanOut(EfoConsumer::None(arn.into()))
    );
    let err = efo(&[("scan.stream.efo.registration", "NONE")]).unwrap_err();
    assert_eq!(
        (err.kind(), err.option()),
        (
            ErrorKind::MissingOption,
            Some("scan.stream.efo.consumerarn.myStream")
        )
    );
    // An ARN for another stream is refused (Flink ignores it).
    let err = efo(&[
        ("scan.stream.efo.registration", "NONE"),
        ("scan.stream.efo.consumerarn.myStream", arn),
        ("scan.stream.efo.consumerarn.stream2", arn),
    ])
    .unwrap_err();
    assert_eq!(
        (err.kind(), err.option()),
        (
            ErrorKind::Conflict,
            Some("scan.stream.efo.consumerarn.stream2")
        )
    );
    // Names and ARNs follow the service's rules.
    let err = efo(&[
        ("scan.stream.efo.registration", "NONE"),
        ("scan.stream.efo.consumerarn.myStream", "not-an-arn"),
    ])
    .unwrap_err();
    assert_eq!(
        (err.kind(), err.option()),
        (
            ErrorKind::InvalidValue,
            Some("scan.stream.efo.consumerarn.myStream")
        )
    );
    let other = "arn:aws:kinesis:us-west-2:123456789012:stream/other/consumer/app:1";
    let err = efo(&[
        ("scan.stream.efo.registration", "NONE"),
        ("scan.stream.efo.consumerarn.myStream", other),
    ])
    .unwrap_err();
    assert_eq!(
        (err.kind(), err.option()),
        (
            ErrorKind::Conflict,
            Some("scan.stream.efo.consumerarn.myStream")
        )
    );
    let err = efo(&[("scan.stream.efo.consumername", "my app")]).unwrap_err();
    assert_eq!(
        (err.kind(), err.option()),
        (
            ErrorKind::InvalidValue,
            Some("scan.stream.efo.consumername")
        )
    );
    let err = efo(&[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`scan.stream.efo.consumername` is required when `scan.stream.efo.registration` is LAZY"
    );
}

#[test]
fn c21_booleans() {
    let err = error(&with(
        base(),
        &[("aws.trust.all.certificates", "invalid-boolean")],
    ));
    assert_eq!(
        err.to_string(),
        "`aws.trust.all.certificates` must be true or false, got `invalid-boolean`"
    );
    assert!(
        parse(&with(base(), &[("aws.trust.all.certificates", "TRUE")]))
            .unwrap()
            .aws
            .trust_all_certificates
    );
}

#[test]
fn required_options_and_formats() {
    let err = error(&without(base(), &["connector", "format"]));
    assert_eq!(
        (err.kind(), err.to_string().as_str()),
        (
            ErrorKind::MissingOption,
            "Missing required options: connector, format"
        )
    );
    let err = error(&with(base(), &[("format", "protobuf")]));
    assert_eq!(
        err.to_string(),
        "`format` must be one of json, csv, avro, raw, got `protobuf`"
    );
    let err = error(&with(base(), &[("csv.field-delimiter", ";")]));
    assert_eq!(
        (err.kind(), err.option()),
        (ErrorKind::Conflict, Some("csv.field-delimiter"))
    );
    let csv = parse(&with(
        base(),
        &[
            ("format", "csv"),
            ("csv.field-delimiter", ";"),
            ("csv.disable-quote-character", "true"),
        ],
    ))
    .unwrap();
    assert!(matches!(
        csv.format,
        FormatOptions::Csv {
            field_delimiter: ';',
            quote_character: None,
            ..
        }
    ));
    let err = error(&with(
        base(),
        &[("format", "csv"), ("csv.field-delimiter", ";;")],
    ));
    assert_eq!(
        err.to_string(),
        "`csv.field-delimiter` must be a single character, got `;;`"
    );
    let err = error(&with(base(), &[("stream", "bad name")]));
    assert_eq!(err.option(), Some("stream"));
}

/// The option reference in `kds-table/OPTIONS.md` is generated from the registry;
/// `KDS_UPDATE_DOCS=1 cargo test -p kds-table` rewrites it.
#[test]
fn option_reference_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("OPTIONS.md");
    let expected = format!(
        "# kds-table options\n\nGenerated from `kds_table::registry::OPTIONS` by the test `option_reference_is_current`; do not edit by hand.\n\n{}",
        registry::reference_table()
    );
    if std::env::var_os("KDS_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "OPTIONS.md is out of date: run KDS_UPDATE_DOCS=1 cargo test -p kds-table"
    );
}

#[test]
fn every_seed_option_is_registered() {
    // The option names of the connector's reference page (apache/flink
    // `docs/content/docs/connectors/table/kinesis.md`), checked in here so the test does not
    // depend on files outside the repository.
    let seed = "connector stream format aws.region aws.endpoint aws.credentials.provider \
        aws.credentials.basic.accesskeyid aws.credentials.basic.secretkey aws.credentials.profile.path \
        aws.credentials.profile.name aws.credentials.role.arn aws.credentials.role.sessionName \
        aws.credentials.role.externalId aws.credentials.role.provider aws.credentials.webIdentityToken.file \
        scan.stream.initpos scan.stream.initpos-timestamp scan.stream.initpos-timestamp-format \
        scan.stream.recordpublisher scan.stream.efo.consumername scan.stream.efo.registration \
        scan.stream.efo.consumerarn.x scan.stream.efo.http-client.max-concurrency scan.stream.describe.maxretries \
        scan.stream.describe.backoff.base scan.stream.describe.backoff.max scan.stream.describe.backoff.expconst \
        scan.list.shards.maxretries scan.list.shards.backoff.base scan.list.shards.backoff.max \
        scan.list.shards.backoff.expconst scan.stream.describestreamconsumer.maxretries \
        scan.stream.describestreamconsumer.backoff.base scan.stream.describestreamconsumer.backoff.max \
        scan.stream.describestreamconsumer.backoff.expconst scan.stream.registerstreamconsumer.maxretries \
        scan.stream.registerstreamconsumer.timeout scan.stream.registerstreamconsumer.backoff.base \
        scan.stream.registerstreamconsumer.backoff.max scan.stream.registerstreamconsumer.backoff.expconst \
        scan.stream.deregisterstreamconsumer.maxretries scan.stream.deregisterstreamconsumer.timeout \
        scan.stream.deregisterstreamconsumer.backoff.base scan.stream.deregisterstreamconsumer.backoff.max \
        scan.stream.deregisterstreamconsumer.backoff.expconst scan.shard.subscribetoshard.maxretries \
        scan.shard.subscribetoshard.backoff.base scan.shard.subscribetoshard.backoff.max \
        scan.shard.subscribetoshard.backoff.expconst scan.shard.getrecords.maxrecordcount \
        scan.shard.getrecords.maxretries scan.shard.getrecords.backoff.base scan.shard.getrecords.backoff.max \
        scan.shard.getrecords.backoff.expconst scan.shard.getrecords.intervalmillis scan.shard.getiterator.maxretries \
        scan.shard.getiterator.backoff.base scan.shard.getiterator.backoff.max scan.shard.getiterator.backoff.expconst \
        scan.shard.discovery.intervalmillis scan.shard.adaptivereads scan.shard.idle.interval \
        scan.watermark.sync.interval scan.watermark.lookahead.millis scan.watermark.sync.queue.capacity \
        sink.partitioner sink.partitioner-field-delimiter sink.producer.x";
    let names: Vec<&str> = seed.split_whitespace().collect();
    assert_eq!(names.len(), 68);
    for name in names {
        assert!(registry::find(name).is_some(), "{name} is not registered");
    }
}

#[test]
fn lease_tables_share_the_shards_and_their_options_need_one() {
    let table = parse(&with(base(), &[("scan.lease.table", "orders-readers")])).unwrap();
    let lease = table.source.lease_table.unwrap();
    assert_eq!(lease.name, "orders-readers");
    assert_eq!(lease.endpoint, None);
    assert_eq!(lease.lease_duration, Duration::from_secs(10));
    let table = parse(&with(
        base(),
        &[
            ("scan.lease.table", "orders-readers"),
            ("scan.lease.dynamodb.endpoint", "http://127.0.0.1:8000"),
            ("scan.lease.duration", "3000"),
        ],
    ))
    .unwrap();
    let lease = table.source.lease_table.unwrap();
    assert_eq!(lease.endpoint.as_deref(), Some("http://127.0.0.1:8000"));
    assert_eq!(lease.lease_duration, Duration::from_secs(3));
    assert_eq!(parse(&base()).unwrap().source.lease_table, None);
    for key in ["scan.lease.dynamodb.endpoint", "scan.lease.duration"] {
        let err = error(&with(base(), &[(key, "3000")]));
        assert_eq!((err.kind(), err.option()), (ErrorKind::Conflict, Some(key)));
        assert!(
            err.to_string().contains("`scan.lease.table` is not"),
            "{err}"
        );
    }
    let err = error(&with(
        base(),
        &[("scan.lease.table", "t-1"), ("scan.lease.duration", "5")],
    ));
    assert_eq!(
        (err.kind(), err.option()),
        (ErrorKind::InvalidValue, Some("scan.lease.duration"))
    );
}
