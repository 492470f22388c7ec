//! Partition keys of written rows, as Flink's `RowDataFieldsKinesisPartitionKeyGenerator` and
//! `KinesisPartitionKeyGeneratorFactory` make them.

use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use kds_table::{ErrorKind, PartitionKeyGenerator, Partitioner, Partitioners};

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap()
}

/// A fields partitioner, built the way users get one: from a table definition.
fn fields(columns: &[&str], delimiter: &str) -> Partitioner {
    let sql = format!(
        "CREATE TABLE t (date INT, ip STRING, route STRING, ok BOOLEAN, score DOUBLE) PARTITIONED BY ({}) WITH ('connector'='kinesis','stream'='s','format'='json','aws.region'='us-east-1','sink.partitioner-field-delimiter'='{delimiter}')",
        columns.join(", ")
    );
    kds_table::TableDefinition::parse(&sql, &[])
        .unwrap()
        .options
        .sink
        .partitioner
}

fn keys(partitioner: &Partitioner, batch: &RecordBatch) -> Vec<String> {
    let mut generator = Partitioners::new()
        .generator(partitioner, &batch.schema(), 3)
        .unwrap();
    (0..batch.num_rows())
        .map(|row| generator.partition_key(batch, row))
        .collect()
}

#[test]
fn fields_are_joined_by_the_delimiter() {
    let rows = batch(vec![
        (
            "date",
            Arc::new(Int32Array::from(vec![Some(16_000), None])) as ArrayRef,
        ),
        (
            "ip",
            Arc::new(StringArray::from(vec![
                Some("255.255.255.255"),
                Some("10.0.0.1"),
            ])),
        ),
    ]);
    for delimiter in ["", "|", ",", "--"] {
        let partitioner = fields(&["date", "ip"], delimiter);
        assert_eq!(
            keys(&partitioner, &rows),
            [
                format!("16000{delimiter}255.255.255.255"),
                format!("null{delimiter}10.0.0.1")
            ],
            "{delimiter:?}"
        );
    }
}

#[test]
fn long_keys_are_cut_at_256_characters() {
    let route = "r".repeat(280);
    let rows = batch(vec![(
        "route",
        Arc::new(StringArray::from(vec![route.as_str()])) as ArrayRef,
    )]);
    let key = &keys(&fields(&["route"], "|"), &rows)[0];
    assert_eq!(key, &route[..256]);
}

#[test]
fn values_are_written_as_java_writes_them() {
    let rows = batch(vec![
        ("ok", Arc::new(BooleanArray::from(vec![true])) as ArrayRef),
        ("score", Arc::new(Float64Array::from(vec![1e10]))),
        ("date", Arc::new(Int32Array::from(vec![-7]))),
    ]);
    assert_eq!(
        keys(&fields(&["ok", "score", "date"], "|"), &rows),
        ["true|1.0E10|-7"]
    );
}

#[test]
fn random_fixed_and_custom() {
    let rows = batch(vec![(
        "ip",
        Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef,
    )]);
    let random = keys(&Partitioner::Random, &rows);
    assert_eq!(random[0].len(), 36);
    assert_ne!(random[0], random[1]);
    assert_eq!(keys(&Partitioner::Fixed, &rows), ["3", "3"]);

    struct FirstColumn;
    impl PartitionKeyGenerator for FirstColumn {
        fn partition_key(&mut self, batch: &RecordBatch, row: usize) -> String {
            let column = batch
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            format!("tenant-{}", column.value(row))
        }
    }
    let partitioners = Partitioners::new().with("by-tenant", Box::new(|_| Box::new(FirstColumn)));
    let table = kds_table::TableDefinition::parse(
        "CREATE TABLE t (ip STRING) WITH ('connector'='kinesis','stream'='s','format'='json','aws.region'='us-east-1','sink.partitioner'='by-tenant')",
        &partitioners.names(),
    )
    .unwrap();
    let mut generator = partitioners
        .generator(&table.options.sink.partitioner, &rows.schema(), 0)
        .unwrap();
    assert_eq!(generator.partition_key(&rows, 1), "tenant-b");
}

#[test]
fn unsupported_key_columns_are_refused() {
    let rows = batch(vec![(
        "date",
        Arc::new(TimestampMillisecondArray::from(vec![0])) as ArrayRef,
    )]);
    assert_eq!(
        rows.schema().field(0).data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, None)
    );
    let err = Partitioners::new()
        .generator(&fields(&["date"], "|"), &rows.schema(), 0)
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidDefinition);
}
