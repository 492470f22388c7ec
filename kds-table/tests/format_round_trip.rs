//! Rows encoded to records and decoded back are the same rows, for every format, over random
//! tables of the types the format holds; metadata columns come from the record fields.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMillisecondType};
use arrow_json::reader::ReaderBuilder;
use arrow_schema::SchemaRef;
use kds_table::ddl::{DataType, Field};
use kds_table::{Partitioners, SourceRecord, TableDefinition};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Which types a format holds.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Format {
    Json,
    Csv,
    Avro,
    Raw,
}

fn scalar(format: Format) -> BoxedStrategy<DataType> {
    let mut types = vec![
        Just(DataType::Boolean).boxed(),
        Just(DataType::TinyInt).boxed(),
        Just(DataType::SmallInt).boxed(),
        Just(DataType::Int).boxed(),
        Just(DataType::BigInt).boxed(),
        Just(DataType::Float).boxed(),
        Just(DataType::Double).boxed(),
        Just(DataType::Varchar(i32::MAX as u32)).boxed(),
        Just(DataType::Varchar(20)).boxed(),
        Just(DataType::Varbinary(i32::MAX as u32)).boxed(),
    ];
    if format != Format::Raw {
        types.extend([
            (1u32..=38)
                .prop_flat_map(|p| (Just(p), 0..=p))
                .prop_map(|(p, s)| DataType::Decimal(p, s))
                .boxed(),
            Just(DataType::Date).boxed(),
            prop_oneof![Just(0u32), Just(3), Just(6), Just(9)]
                .prop_map(DataType::Time)
                .boxed(),
            prop_oneof![Just(0u32), Just(3), Just(6), Just(9)]
                .prop_map(DataType::Timestamp)
                .boxed(),
            prop_oneof![Just(0u32), Just(3), Just(6), Just(9)]
                .prop_map(DataType::TimestampLtz)
                .boxed(),
        ]);
    }
    proptest::strategy::Union::new(types)
        .prop_filter(
            "Avro times to milliseconds, timestamps to microseconds",
            move |t| {
                format != Format::Avro
                    || match t {
                        DataType::Time(p) => *p <= 3,
                        DataType::Timestamp(p) | DataType::TimestampLtz(p) => *p <= 6,
                        _ => true,
                    }
            },
        )
        .boxed()
}

fn field(data_type: impl Strategy<Value = DataType>) -> impl Strategy<Value = Field> {
    (data_type, any::<bool>()).prop_map(|(data_type, nullable)| Field {
        data_type,
        nullable,
    })
}

fn column_type(format: Format) -> BoxedStrategy<Field> {
    match format {
        // NULL has no raw form.
        Format::Raw => scalar(format)
            .prop_map(|data_type| Field {
                data_type,
                nullable: false,
            })
            .boxed(),
        Format::Csv => {
            let element = scalar(format).prop_filter("arrays of scalars but binaries", |t| {
                !matches!(t, DataType::Varbinary(_))
            });
            prop_oneof![
                4 => field(scalar(format)),
                1 => field(field(element).prop_map(|e| DataType::Array(Box::new(e)))),
            ]
            .boxed()
        }
        Format::Json | Format::Avro => field(scalar(format))
            .prop_recursive(2, 8, 3, |inner| {
                prop_oneof![
                    inner.clone().prop_map(|e| DataType::Array(Box::new(e))),
                    (
                        field(Just(DataType::Varchar(i32::MAX as u32))),
                        inner.clone()
                    )
                        .prop_map(|(mut k, v)| {
                            k.nullable = false;
                            DataType::Map(Box::new(k), Box::new(v))
                        }),
                    vec(inner, 1..3).prop_map(|fields| DataType::Row(
                        fields
                            .into_iter()
                            .enumerate()
                            .map(|(i, f)| (format!("f{i}"), f))
                            .collect()
                    )),
                ]
                .prop_flat_map(|t| field(Just(t)))
            })
            .boxed(),
    }
}

/// Text the format writes and reads back unchanged.
fn text(format: Format, in_array: bool) -> BoxedStrategy<String> {
    match (format, in_array) {
        // Array elements are split on `;`, and an empty one-element array would be empty.
        (Format::Csv, true) => "[a-z0-9 ,\"']{1,6}".boxed(),
        // `\N` is the null literal of the CSV tables here.
        (Format::Csv, false) => "[a-zA-Z0-9 ,;\"'\n\r\\\\é€]{0,8}"
            .prop_filter("the null literal", |s| s != "\\N")
            .boxed(),
        _ => any::<String>().boxed(),
    }
}

const MILLIS: std::ops::Range<i64> = -4_000_000_000_000..4_000_000_000_000;

/// A value of `field` as arrow-json reads it (the oracle that builds the expected rows).
fn value(format: Format, field: &Field, in_array: bool) -> BoxedStrategy<Value> {
    let non_null = match &field.data_type {
        DataType::Boolean => any::<bool>().prop_map(Value::from).boxed(),
        DataType::TinyInt => any::<i8>().prop_map(Value::from).boxed(),
        DataType::SmallInt => any::<i16>().prop_map(Value::from).boxed(),
        DataType::Int => any::<i32>().prop_map(Value::from).boxed(),
        DataType::BigInt => any::<i64>().prop_map(Value::from).boxed(),
        DataType::Float => any::<f32>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f64::from(f)))
            .boxed(),
        DataType::Double => any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f))
            .boxed(),
        DataType::Decimal(p, s) => {
            let (p, s) = (*p, *s);
            let max = 10i128.pow(p) - 1;
            (-max..=max)
                .prop_map(move |unscaled| {
                    let digits = format!(
                        "{:0>width$}",
                        unscaled.unsigned_abs(),
                        width = s as usize + 1
                    );
                    let (int, frac) = digits.split_at(digits.len() - s as usize);
                    let sign = if unscaled < 0 { "-" } else { "" };
                    Value::from(if s == 0 {
                        format!("{sign}{int}")
                    } else {
                        format!("{sign}{int}.{frac}")
                    })
                })
                .boxed()
        }
        DataType::Char(_) | DataType::Varchar(_) => {
            text(format, in_array).prop_map(Value::from).boxed()
        }
        DataType::Binary(_) | DataType::Varbinary(_) => vec(any::<u8>(), 0..12)
            .prop_map(|b| Value::from(hex(&b)))
            .boxed(),
        DataType::Date => (-100_000i64..100_000).prop_map(Value::from).boxed(),
        DataType::Time(p) => {
            let per_second = 10i64.pow(*p);
            (0..86_400 * per_second).prop_map(Value::from).boxed()
        }
        DataType::Timestamp(p) | DataType::TimestampLtz(p) => {
            let p = *p;
            MILLIS
                .prop_map(move |m| {
                    Value::from(match p {
                        0 => m.div_euclid(1000),
                        3 => m,
                        6 => m * 1000,
                        _ => m * 1_000_000,
                    })
                })
                .boxed()
        }
        DataType::Array(element) => vec(value(format, element, true), 0..3)
            .prop_filter("CSV: [NULL] is written as NULL", move |items| {
                format != Format::Csv || !matches!(items.as_slice(), [Value::Null])
            })
            .prop_map(Value::from)
            .boxed(),
        DataType::Map(_, v) => vec(("[a-z]{1,4}", value(format, v, false)), 0..3)
            .prop_map(|entries| Value::Object(entries.into_iter().collect()))
            .boxed(),
        DataType::Row(fields) => {
            let names: Vec<String> = fields.iter().map(|(n, _)| n.clone()).collect();
            fields
                .iter()
                .map(|(_, f)| value(format, f, false))
                .collect::<Vec<_>>()
                .prop_map(move |values| {
                    Value::Object(names.iter().cloned().zip(values).collect::<Map<_, _>>())
                })
                .boxed()
        }
        other => unreachable!("no values of {other}"),
    };
    if field.nullable {
        prop_oneof![1 => Just(Value::Null), 4 => non_null].boxed()
    } else {
        non_null
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Columns of the format's types and rows of their values.
fn table(format: Format) -> impl Strategy<Value = (Vec<Field>, Vec<Value>)> {
    let columns = if format == Format::Raw {
        1..=1
    } else {
        1..=4usize
    };
    vec(column_type(format), columns).prop_flat_map(move |fields| {
        let row: Vec<_> = fields.iter().map(|f| value(format, f, false)).collect();
        let rows = vec(
            row.prop_map(|values| {
                Value::Object(
                    values
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (format!("c{i}"), v))
                        .collect(),
                )
            }),
            0..12,
        );
        (Just(fields), rows)
    })
}

fn expected(schema: &SchemaRef, rows: &[Value]) -> RecordBatch {
    let mut decoder = ReaderBuilder::new(Arc::clone(schema))
        .build_decoder()
        .unwrap();
    decoder.serialize(rows).unwrap();
    decoder
        .flush()
        .unwrap()
        .unwrap_or_else(|| RecordBatch::new_empty(Arc::clone(schema)))
}

fn round_trip(options: &str, fields: &[Field], rows: &[Value]) {
    let columns: Vec<String> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| format!("c{i} {f}"))
        .collect();
    let sql = format!(
        "CREATE TABLE t ({},
           `shard` VARCHAR(128) NOT NULL METADATA FROM 'shard-id' VIRTUAL,
           `seq` VARCHAR(128) NOT NULL METADATA FROM 'sequence-number' VIRTUAL,
           `arrival` TIMESTAMP_LTZ(3) NOT NULL METADATA FROM 'timestamp' VIRTUAL,
           `sub` BIGINT NOT NULL METADATA FROM 'sub-sequence-number' VIRTUAL,
           `key` STRING NOT NULL METADATA FROM 'partition-key' VIRTUAL
         ) WITH ('connector' = 'kinesis', 'stream' = 's', 'aws.region' = 'us-east-1', {options})",
        columns.join(", ")
    );
    let table = TableDefinition::parse(&sql, &[]).unwrap_or_else(|e| panic!("{e}\n{sql}"));
    let physical = Arc::new(table.physical_schema());
    let batch = expected(&physical, rows);

    let mut encoder = table.encoder(&Partitioners::new(), 0).unwrap();
    let records = encoder.encode(&batch).unwrap();
    assert_eq!(records.len(), rows.len());
    let sequence_numbers: Vec<String> = (0..records.len())
        .map(|i| format!("4959{:020}", i * 7))
        .collect();
    let sources: Vec<SourceRecord<'_>> = records
        .iter()
        .zip(&sequence_numbers)
        .enumerate()
        .map(|(i, (record, seq))| SourceRecord {
            shard_id: "shardId-000000000003",
            sequence_number: seq,
            sub_sequence_number: (i % 2 == 1).then_some(i as u64),
            partition_key: &record.partition_key,
            arrival_millis: 1_700_000_000_000 + i as i64,
            data: &record.data,
        })
        .collect();
    let mut decoder = table.decoder().unwrap();
    let decoded = decoder
        .decode(&sources)
        .unwrap_or_else(|e| panic!("{e}\n{sql}\n{:?}", records.first()));
    assert_eq!(decoder.skipped(), 0);
    assert_eq!(decoded.schema().as_ref(), &table.arrow_schema());
    for (i, field) in physical.fields().iter().enumerate() {
        assert_eq!(
            decoded.column_by_name(field.name()).unwrap().as_ref(),
            batch.column(i).as_ref(),
            "column {} ({}) of\n{sql}\nrecords {records:?}",
            field.name(),
            field.data_type()
        );
    }
    let strings = |name: &str| -> Vec<String> {
        decoded
            .column_by_name(name)
            .unwrap()
            .as_string::<i32>()
            .iter()
            .map(|s| s.unwrap().to_owned())
            .collect()
    };
    assert!(strings("shard").iter().all(|s| s == "shardId-000000000003"));
    assert_eq!(strings("seq"), sequence_numbers);
    let keys: Vec<String> = records.iter().map(|r| r.partition_key.clone()).collect();
    assert_eq!(strings("key"), keys);
    let arrival = decoded
        .column_by_name("arrival")
        .unwrap()
        .as_primitive::<TimestampMillisecondType>();
    let sub = decoded
        .column_by_name("sub")
        .unwrap()
        .as_primitive::<Int64Type>();
    for i in 0..records.len() {
        assert_eq!(arrival.value(i), 1_700_000_000_000 + i as i64);
        assert_eq!(sub.value(i), if i % 2 == 1 { i as i64 } else { 0 });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn json_rows_round_trip((fields, rows) in table(Format::Json), iso in any::<bool>()) {
        let standard = if iso { "ISO-8601" } else { "SQL" };
        round_trip(
            &format!("'format' = 'json', 'json.timestamp-format.standard' = '{standard}'"),
            &fields,
            &rows,
        );
    }

    #[test]
    fn csv_rows_round_trip((fields, rows) in table(Format::Csv), delimiter in prop_oneof![Just(','), Just('|'), Just('\t')]) {
        round_trip(
            &format!("'format' = 'csv', 'csv.field-delimiter' = '{delimiter}', 'csv.null-literal' = '\\N'"),
            &fields,
            &rows,
        );
    }

    #[test]
    fn avro_rows_round_trip((fields, rows) in table(Format::Avro)) {
        round_trip("'format' = 'avro'", &fields, &rows);
    }

    #[test]
    fn raw_rows_round_trip(
        (fields, rows) in table(Format::Raw),
        little in any::<bool>(),
    ) {
        let endianness = if little { "little-endian" } else { "big-endian" };
        round_trip(
            &format!("'format' = 'raw', 'raw.endianness' = '{endianness}'"),
            &fields,
            &rows,
        );
    }
}
