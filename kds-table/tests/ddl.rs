//! Flink DDL: the reference page's statements as printed, every type and clause, and errors with
//! their position.

use kds_table::ddl::{
    Column, ColumnKind, CreateTable, DataType, Field, MAX_TYPE_DEPTH, parse_create_table,
};
use kds_table::{ErrorKind, MetadataKey, Partitioner, TableDefinition};

/// The reference page's first statement, exactly as printed.
const SEED_BASIC: &str = "CREATE TABLE KinesisTable (
  `user_id` BIGINT,
  `item_id` BIGINT,
  `category_id` BIGINT,
  `behavior` STRING,
  `ts` TIMESTAMP(3)
)
PARTITIONED BY (user_id, item_id)
WITH (
  'connector' = 'kinesis',
  'stream' = 'user_behavior',
  'aws.region' = 'us-east-2',
  'scan.stream.initpos' = 'LATEST',
  'format' = 'csv'
);";

/// The reference page's statement with metadata columns, exactly as printed.
const SEED_METADATA: &str = "CREATE TABLE KinesisTable (
  `user_id` BIGINT,
  `item_id` BIGINT,
  `category_id` BIGINT,
  `behavior` STRING,
  `ts` TIMESTAMP(3),
  `arrival_time` TIMESTAMP(3) METADATA FROM 'timestamp' VIRTUAL,
  `shard_id` VARCHAR(128) NOT NULL METADATA FROM 'shard-id' VIRTUAL,
  `sequence_number` VARCHAR(128) NOT NULL METADATA FROM 'sequence-number' VIRTUAL
)
PARTITIONED BY (user_id, item_id)
WITH (
  'connector' = 'kinesis',
  'stream' = 'user_behavior',
  'aws.region' = 'us-east-2',
  'scan.stream.initpos' = 'LATEST',
  'format' = 'csv'
);";

fn field(data_type: DataType, nullable: bool) -> Option<Field> {
    Some(Field {
        data_type,
        nullable,
    })
}

#[test]
fn seed_statements_parse() {
    let basic = TableDefinition::parse(SEED_BASIC, &[]).unwrap();
    assert_eq!(basic.table.name, "KinesisTable");
    assert_eq!(basic.table.columns.len(), 5);
    assert_eq!(
        basic.table.columns[4].field,
        field(DataType::Timestamp(3), true)
    );
    assert_eq!(basic.options.stream, "user_behavior");
    assert_eq!(
        basic.options.sink.partitioner,
        Partitioner::Fields {
            columns: vec!["user_id".into(), "item_id".into()],
            delimiter: "|".into()
        }
    );

    let with_metadata = TableDefinition::parse(SEED_METADATA, &[]).unwrap();
    assert_eq!(
        with_metadata.metadata,
        [
            (5, MetadataKey::Timestamp),
            (6, MetadataKey::ShardId),
            (7, MetadataKey::SequenceNumber)
        ]
    );
    let shard = &with_metadata.table.columns[6];
    assert_eq!(shard.field, field(DataType::Varchar(128), false));
    assert_eq!(
        shard.kind,
        ColumnKind::Metadata {
            key: "shard-id".into(),
            is_virtual: true
        }
    );
}

#[test]
fn every_type_and_clause() {
    let table = parse_create_table(
        "CREATE TEMPORARY TABLE IF NOT EXISTS cat.db.`all types` (
          b BOOLEAN NOT NULL, t TINYINT, s SMALLINT, i INT, i2 INTEGER, l BIGINT, f FLOAT,
          d DOUBLE, dp DOUBLE PRECISION, dec DECIMAL(20, 4), dec0 DECIMAL, c CHAR(3), v VARCHAR(10),
          st STRING, by BYTES, bin BINARY(4), vb VARBINARY(8), dt DATE, tm TIME(3),
          ts TIMESTAMP(9) WITHOUT TIME ZONE, ltz TIMESTAMP_LTZ(3), ltz2 TIMESTAMP(3) WITH LOCAL TIME ZONE,
          arr ARRAY<INT NOT NULL>, m MAP<STRING, ARRAY<BIGINT>>,
          r ROW<x INT, `y z` STRING NOT NULL COMMENT 'inner'>, r2 ROW(a INT, b DOUBLE),
          pk STRING METADATA FROM 'partition-key' VIRTUAL,
          `sub-sequence-number` BIGINT NOT NULL METADATA VIRTUAL COMMENT 'position in the aggregate',
          ts_plus AS ts + INTERVAL '1' SECOND,
          WATERMARK FOR ts AS ts - INTERVAL '5' SECOND,
          CONSTRAINT pk_name PRIMARY KEY (i, l) NOT ENFORCED
        ) COMMENT 'a table' PARTITIONED BY (st) WITH ();",
    )
    .unwrap();
    assert_eq!(table.name, "all types");
    let types: Vec<Option<DataType>> = table
        .columns
        .iter()
        .map(|c| c.field.clone().map(|f| f.data_type))
        .collect();
    assert_eq!(types[9], Some(DataType::Decimal(20, 4)));
    assert_eq!(types[10], Some(DataType::Decimal(10, 0)));
    assert_eq!(types[13], Some(DataType::Varchar(2_147_483_647)));
    assert_eq!(types[14], Some(DataType::Varbinary(2_147_483_647)));
    assert_eq!(types[19], Some(DataType::Timestamp(9)));
    assert_eq!(types[20], Some(DataType::TimestampLtz(3)));
    assert_eq!(types[21], Some(DataType::TimestampLtz(3)));
    assert_eq!(
        types[22],
        Some(DataType::Array(Box::new(Field {
            data_type: DataType::Int,
            nullable: false
        })))
    );
    let Some(DataType::Row(fields)) = &types[24] else {
        panic!("{:?}", types[24])
    };
    assert_eq!(fields[1].0, "y z");
    assert!(!fields[1].1.nullable);
    assert_eq!(
        table.columns[27].kind,
        ColumnKind::Metadata {
            key: "sub-sequence-number".into(),
            is_virtual: true
        }
    );
    assert_eq!(
        table.columns[28].kind,
        ColumnKind::Computed {
            expression: "ts + INTERVAL '1' SECOND".into()
        }
    );
    let watermark = table.watermark.unwrap();
    assert_eq!(
        (watermark.column.as_str(), watermark.expression.as_str()),
        ("ts", "ts - INTERVAL '5' SECOND")
    );
    assert_eq!(table.primary_key, Some(vec!["i".into(), "l".into()]));
    assert_eq!(table.comment.as_deref(), Some("a table"));
    assert_eq!(table.partitioned_by, ["st"]);
}

#[test]
fn syntax_errors_point_at_the_token() {
    let cases = [
        (
            "CREATE TABLE t (\n  a INT,\n  b NOTATYPE\n) WITH ()",
            (3, 5),
            "unknown type `NOTATYPE`",
        ),
        (
            "CREATE TABLE t (a INT b INT) WITH ()",
            (1, 23),
            "expected `,`, found `b`",
        ),
        (
            "CREATE TABLE t (a INT) WITH ('k' 'v')",
            (1, 34),
            "expected `=`",
        ),
        (
            "CREATE TABLE t (a INT)",
            (1, 23),
            "expected WITH, found the end of the statement",
        ),
        (
            "CREATE TABLE t (a VARCHAR(3, 4)) WITH ()",
            (1, 32),
            "VARCHAR takes one parameter",
        ),
        (
            "CREATE TABLE t (a INT) WITH ('k' = 'v) ",
            (1, 36),
            "unterminated string",
        ),
        (
            "CREATE TABLE t (a INT) WITH () extra",
            (1, 32),
            "expected the end of the statement",
        ),
    ];
    for (sql, (line, column), message) in cases {
        let err = parse_create_table(sql).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Syntax, "{sql}");
        assert_eq!(err.location(), Some((line, column)), "{sql}: {err}");
        assert!(err.to_string().contains(message), "{sql}: {err}");
    }
}

fn definition_error(columns: &str, partitioned: &str) -> String {
    let sql = format!(
        "CREATE TABLE t ({columns}) {partitioned} WITH ('connector'='kinesis','stream'='s','format'='json','aws.region'='us-east-1')"
    );
    let err = TableDefinition::parse(&sql, &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidDefinition, "{sql}");
    err.to_string()
}

#[test]
fn definitions_are_checked_against_kinesis() {
    assert!(
        definition_error("a INT, m STRING METADATA FROM 'offset' VIRTUAL", "")
            .contains("metadata `offset`")
    );
    assert!(
        definition_error("a INT, m INT METADATA FROM 'shard-id'", "")
            .contains("cannot hold metadata `shard-id`")
    );
    assert!(
        definition_error("a INT, ts TIMESTAMP(3)", "PARTITIONED BY (ts)")
            .contains("without a single string form")
    );
    assert!(definition_error("a INT", "PARTITIONED BY (b)").contains("`b` is not a column"));
    assert!(definition_error("a INT, a BIGINT", "").contains("declared twice"));
    assert!(definition_error("a INT", "PARTITIONED BY (a, a)").contains("twice"));
    assert!(definition_error("a INT, WATERMARK FOR ts AS ts", "").contains("WATERMARK FOR `ts`"));
    assert!(
        definition_error("a INT, PRIMARY KEY (b) NOT ENFORCED", "")
            .contains("PRIMARY KEY column `b`")
    );
    assert!(
        definition_error(
            "a INT, m STRING METADATA FROM 'shard-id'",
            "PARTITIONED BY (m)"
        )
        .contains("must be a physical column")
    );
    let err = TableDefinition::parse(
        "CREATE TABLE t (a INT) WITH ('connector'='kinesis','stream'='s','stream'='t','format'='json','aws.region'='us-east-1')",
        &[],
    )
    .unwrap_err();
    assert_eq!(
        (err.kind(), err.option()),
        (ErrorKind::Conflict, Some("stream"))
    );
    // Option errors come through unchanged.
    let err = TableDefinition::parse(
        "CREATE TABLE t (a INT) WITH ('connector'='kinesis','stream'='s','format'='json')",
        &[],
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MissingOption);
}

#[test]
fn arrow_schema_of_physical_and_metadata_columns() {
    use arrow_schema::{DataType as A, TimeUnit};
    let table = TableDefinition::parse(
        "CREATE TABLE t (
           b BOOLEAN NOT NULL, i INT, l BIGINT, d DECIMAL(20, 4), s STRING, v VARBINARY(3),
           dt DATE, t0 TIME, t3 TIME(3), t9 TIME(9), ts TIMESTAMP(3), ts6 TIMESTAMP,
           ltz TIMESTAMP_LTZ(3), arr ARRAY<INT NOT NULL>, m MAP<STRING, BIGINT>, r ROW<x INT, y STRING>,
           c AS i + 1,
           arrival TIMESTAMP_LTZ(3) NOT NULL METADATA FROM 'timestamp' VIRTUAL
         ) WITH ('connector'='kinesis','stream'='s','format'='json','aws.region'='us-east-1')",
        &[],
    )
    .unwrap();
    let schema = table.arrow_schema();
    let types: Vec<(&str, &A, bool)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type(), f.is_nullable()))
        .collect();
    assert_eq!(
        types.len(),
        17,
        "computed columns are not in the row schema"
    );
    assert_eq!(types[0], ("b", &A::Boolean, false));
    assert_eq!(types[3].1, &A::Decimal128(20, 4));
    assert_eq!(types[4].1, &A::Utf8);
    assert_eq!(types[5].1, &A::Binary);
    assert_eq!(types[6].1, &A::Date32);
    assert_eq!(types[7].1, &A::Time32(TimeUnit::Second));
    assert_eq!(types[8].1, &A::Time32(TimeUnit::Millisecond));
    assert_eq!(types[9].1, &A::Time64(TimeUnit::Nanosecond));
    assert_eq!(types[10].1, &A::Timestamp(TimeUnit::Millisecond, None));
    assert_eq!(types[11].1, &A::Timestamp(TimeUnit::Microsecond, None));
    assert_eq!(
        types[12].1,
        &A::Timestamp(TimeUnit::Millisecond, Some("+00:00".into()))
    );
    let A::List(element) = types[13].1 else {
        panic!()
    };
    assert!(!element.is_nullable());
    assert!(matches!(types[14].1, A::Map(..)));
    assert!(matches!(types[15].1, A::Struct(fields) if fields.len() == 2));
    let arrival = schema.field(16);
    assert_eq!(
        (arrival.name().as_str(), arrival.is_nullable()),
        ("arrival", false)
    );
    assert_eq!(
        arrival
            .metadata()
            .get(kds_table::schema::METADATA_KEY)
            .map(String::as_str),
        Some("timestamp")
    );
}

#[test]
fn type_limits_are_checked() {
    for column in [
        "d DECIMAL(39, 2)",
        "d DECIMAL(5, 6)",
        "t TIMESTAMP(10)",
        "a ARRAY<DECIMAL(40, 0)>",
    ] {
        let sql = format!(
            "CREATE TABLE t ({column}) WITH ('connector'='kinesis','stream'='s','format'='json','aws.region'='us-east-1')"
        );
        let err = TableDefinition::parse(&sql, &[]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidDefinition, "{column}: {err}");
    }
}

/// The `WITH` options of a valid json table.
const WITH_JSON: &str =
    "WITH ('connector'='kinesis','stream'='s','format'='json','aws.region'='us-east-1')";

/// Runs `f` on a thread with a 1 MiB stack, so that unbounded recursion crashes the test
/// rather than passing by luck on a large stack. 100 000 levels need far more than that; the
/// allowed depth needs far less, even unoptimised.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

/// `open` `depth` times, then `inner`, then `close` `depth` times.
fn nested(open: &str, inner: &str, close: &str, depth: usize) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

/// How a nested type opens and closes, for each of ARRAY, MAP (key and value) and ROW.
const NESTINGS: &[(&str, &str)] = &[
    ("ARRAY<", ">"),
    ("ARRAY(", ")"),
    ("MAP<INT, ", ">"),
    ("MAP<", ", INT>"),
    ("MAP(STRING, ", ")"),
    ("ROW<f ", ">"),
    ("ROW(f ", ")"),
    ("ROW<a INT, f ", " NOT NULL>"),
];

#[test]
fn types_nesting_deeper_than_the_limit_are_refused() {
    for (open, close) in NESTINGS {
        let sql = format!(
            "CREATE TABLE t (c {}) {WITH_JSON}",
            nested(open, "INT", close, 100_000)
        );
        let statement = sql.clone();
        let err = on_small_stack(move || parse_create_table(&statement).map(drop)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Syntax, "{open}");
        let text = err.to_string();
        assert!(
            text.contains(&format!(
                "column `c`: the type nests deeper than {MAX_TYPE_DEPTH} levels"
            )),
            "{open}: {text}"
        );
        assert!(text.len() < 1000, "{open}: {} bytes", text.len());
        let err = on_small_stack(move || TableDefinition::parse(&sql, &[]).map(drop)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Syntax, "{open}");

        // One level over the limit is refused too.
        let over = format!(
            "CREATE TABLE t (c {}) {WITH_JSON}",
            nested(open, "INT", close, MAX_TYPE_DEPTH + 1)
        );
        let err = parse_create_table(&over).unwrap_err();
        assert!(err.to_string().contains("nests deeper"), "{open}: {err}");
    }
}

#[test]
fn types_nesting_to_the_limit_parse() {
    for (open, close) in NESTINGS {
        let sql = format!(
            "CREATE TABLE t (c {}) {WITH_JSON}",
            nested(open, "INT", close, MAX_TYPE_DEPTH)
        );
        let table = TableDefinition::parse(&sql, &[]).unwrap_or_else(|e| panic!("{open}: {e}"));
        // Checking, printing and the Arrow schema take the deepest type allowed.
        let field = table.table.columns[0].field.as_ref().unwrap();
        assert_eq!(
            field.to_string().matches('<').count(),
            MAX_TYPE_DEPTH,
            "{open}"
        );
        assert_eq!(table.arrow_schema().fields().len(), 1);
    }
}

#[test]
fn types_built_in_code_nest_at_most_to_the_limit() {
    let nest = |depth: usize| -> Field {
        let mut field = Field {
            data_type: DataType::Int,
            nullable: true,
        };
        for _ in 0..depth {
            field = Field {
                data_type: DataType::Array(Box::new(field)),
                nullable: true,
            };
        }
        field
    };
    let table = |field: Field| CreateTable {
        name: "t".into(),
        columns: vec![Column {
            name: "c".into(),
            field: Some(field),
            kind: ColumnKind::Physical,
            comment: None,
        }],
        watermark: None,
        primary_key: None,
        partitioned_by: Vec::new(),
        options: [
            ("connector", "kinesis"),
            ("stream", "s"),
            ("format", "json"),
            ("aws.region", "us-east-1"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect(),
        comment: None,
    };
    assert!(TableDefinition::new(table(nest(MAX_TYPE_DEPTH)), &[]).is_ok());
    let err = TableDefinition::new(table(nest(MAX_TYPE_DEPTH + 1)), &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidDefinition);
    assert!(
        err.to_string().contains(&format!(
            "column `c`: the type nests deeper than {MAX_TYPE_DEPTH} levels"
        )),
        "{err}"
    );
}

#[test]
fn deeply_parenthesised_expressions_parse() {
    // Expressions are kept as text: their parentheses are counted, not recursed into.
    let expression = nested("(", "ts", ")", 100_000);
    let sql = format!(
        "CREATE TABLE t (ts TIMESTAMP(3), c AS {expression}, WATERMARK FOR ts AS {expression}) WITH ()"
    );
    let table = on_small_stack(move || parse_create_table(&sql)).unwrap();
    assert_eq!(
        table.columns[1].kind,
        ColumnKind::Computed {
            expression: expression.clone()
        }
    );
    assert_eq!(table.watermark.unwrap().expression, expression);
}

#[test]
fn syntax_errors_cut_long_tokens() {
    let long = "x".repeat(1_000_000);
    for sql in [
        format!("CREATE TABLE t (a {long}) WITH ()"),
        format!("CREATE TABLE t (a INT {long}) WITH ()"),
    ] {
        let err = parse_create_table(&sql).unwrap_err();
        let text = err.to_string();
        assert!(text.len() < 1000, "{} bytes", text.len());
        assert!(text.contains('…'), "{text}");
    }
}

#[test]
fn debug_output_redacts_secrets() {
    const SECRET: &str = "wJalrXUtnFEMI-SECRET";
    let basic = TableDefinition::parse(
        &format!(
            "CREATE TABLE t (a INT) WITH ('connector'='kinesis','stream'='s','format'='json',
               'aws.region'='us-east-1',
               'aws.credentials.provider' = 'BASIC',
               'aws.credentials.basic.accesskeyid' = 'AKIDEXAMPLE',
               'aws.credentials.basic.secretkey' = '{SECRET}')"
        ),
        &[],
    )
    .unwrap();
    let role = TableDefinition::parse(
        &format!(
            "CREATE TABLE t (a INT) WITH ('connector'='kinesis','stream'='s','format'='json',
               'aws.region'='us-east-1',
               'aws.credentials.provider' = 'ASSUME_ROLE',
               'aws.credentials.role.arn' = 'arn:aws:iam::123456789012:role/reader',
               'aws.credentials.role.sessionName' = 'kds',
               'aws.credentials.role.provider' = 'BASIC',
               'aws.credentials.role.provider.basic.accesskeyid' = 'AKIDEXAMPLE',
               'aws.credentials.role.provider.basic.secretkey' = '{SECRET}')"
        ),
        &[],
    )
    .unwrap();
    for definition in [&basic, &role] {
        let printed = [
            format!("{definition:?}"),
            format!("{definition:#?}"),
            format!("{:?}", definition.table),
            format!("{:#?}", definition.table),
            format!("{:?}", definition.options),
            format!("{:#?}", definition.options),
            format!("{:?}", definition.options.aws),
            format!("{:#?}", definition.options.aws),
            format!("{:?}", definition.options.aws.credentials),
            format!("{:#?}", definition.options.aws.credentials),
        ];
        for text in printed {
            assert!(!text.contains(SECRET), "{text}");
            assert!(text.contains("<redacted>"), "{text}");
            // What is not secret still shows.
            assert!(text.contains("AKIDEXAMPLE"), "{text}");
        }
        // The statement keeps the secret itself; only its printing hides it.
        assert!(definition.table.options.iter().any(|(_, v)| v == SECRET));
    }
    assert!(kds_table::registry::is_secret(
        "aws.credentials.basic.secretkey"
    ));
    assert!(kds_table::registry::is_secret(
        "aws.credentials.role.provider.basic.SecretKey"
    ));
    assert!(!kds_table::registry::is_secret(
        "aws.credentials.basic.accesskeyid"
    ));
    assert!(!kds_table::registry::is_secret(
        "aws.credentials.webIdentityToken.file"
    ));
}
