//! `kds tail --table FILE`: the rows of a table declared with Flink's `CREATE TABLE`, decoded
//! with its format and printed as they are read. A batch is acknowledged once it is printed and
//! flushed, so with `--state-dir` a later run goes on after the last row printed, and a run that
//! is killed prints again at most what it had not committed. With `--group`, workers share the
//! shards through a DynamoDB lease table.

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use kds_client::credentials;
use kds_stream::{
    DEFAULT_LEASE_DURATION, DynamoDbLeaseStore, FileLeaseStore, LeaseStore, MemoryLeaseStore,
    SourceConfig, TableSource,
};
use kds_table::TableDefinition;

use crate::cli::{Connection, OutputFormat, Protocol, TailArgs};
use crate::connect::{OrPlaceholder, is_loopback};
use crate::failure::Failure;
use crate::interrupt::interrupted;

impl From<kds_stream::Error> for Failure {
    fn from(error: kds_stream::Error) -> Self {
        Self::new(error.to_string())
    }
}

/// Runs `kds tail --table FILE`.
pub(crate) async fn tail(
    connection: &Connection,
    args: &TailArgs,
    path: &Path,
) -> Result<(), Failure> {
    let sql = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    let table = TableDefinition::parse(&sql, &[])
        .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
    if args.limit == Some(0) {
        return Ok(());
    }
    let client = table_client(connection, &table).await?;
    let (subtask, subtasks) = args.subtask.unwrap_or((0, 1));
    let lease_table = table.options.source.lease_table.as_ref();
    let dynamodb_endpoint = args
        .dynamodb_endpoint
        .clone()
        .or_else(|| lease_table.and_then(|t| t.endpoint.clone()));
    if (args.group.is_some() || lease_table.is_some())
        && let Some(warning) = lease_table_warning(dynamodb_endpoint.as_deref())
    {
        eprintln!("kds: warning: {warning}");
    }
    let store: Arc<dyn LeaseStore> = match (&args.group, &args.state_dir) {
        (Some(group), _) => {
            let dynamodb = client
                .dynamodb(dynamodb_endpoint.as_deref())
                .map_err(|e| Failure::usage(e.to_string()))?;
            let name = args.lease_table.as_deref().unwrap_or(group);
            Arc::new(DynamoDbLeaseStore::open(dynamodb, name).await?)
        }
        (None, state_dir) if table.options.source.lease_table.is_some() => {
            if state_dir.is_some() || args.subtask.is_some() || args.no_follow {
                return Err(Failure::usage(format!(
                    "{}: the table shares its shards through `scan.lease.table`, which \
                     --state-dir, --subtask and --no-follow do not",
                    path.display()
                )));
            }
            let store = DynamoDbLeaseStore::for_table(&table, &client)
                .await?
                .ok_or_else(|| Failure::new("the table's lease table went missing"))?;
            Arc::new(store)
        }
        (None, Some(dir)) => Arc::new(FileLeaseStore::open(
            dir,
            &format!(
                "{}-{}-{subtask}-of-{subtasks}",
                table.table.name, table.options.stream
            ),
        )?),
        (None, None) => Arc::new(MemoryLeaseStore::new()),
    };
    let mut config = SourceConfig::default();
    config.bounded = args.no_follow;
    // Printed rows are committed within a quarter of a second: a killed run prints again at
    // most what it printed in that time.
    config.commit_interval = Duration::from_millis(250);
    config.subtask = subtask;
    config.subtasks = subtasks;
    if let Some(group) = &args.group {
        config.lease_duration = Some(args.lease_duration.unwrap_or(DEFAULT_LEASE_DURATION));
        config.owner = format!("{group}-{}", config.owner);
    }
    let mut stop = pin!(interrupted());
    let mut open = pin!(TableSource::open(&table, client, store, config));
    let opened = tokio::select! {
        opened = open.as_mut() => opened,
        () = stop.as_mut() => {
            // Opening may have registered an enhanced fan-out consumer (billed while it
            // exists): let it finish, then close, which deregisters what the source registered.
            eprintln!("kds: stopping once the table is open, to release what opening registered");
            if let Ok(source) = open.await {
                source.close().await?;
            }
            return Ok(());
        }
    };
    let mut source = opened?;
    let mut out = io::BufWriter::with_capacity(64 * 1024, io::stdout());
    let escape = io::stdout().is_terminal();
    let limit = args.limit.unwrap_or(u64::MAX);
    let mut printed = 0u64;
    let result = loop {
        let next = tokio::select! {
            next = source.next() => next,
            () = stop.as_mut() => break Ok(()),
        };
        let batch = match next {
            Ok(Some(batch)) => batch,
            Ok(None) => break Ok(()),
            Err(error) => break Err(Failure::from(error)),
        };
        let left = usize::try_from(limit - printed).unwrap_or(usize::MAX);
        let whole = batch.rows.num_rows() <= left;
        let rows = if whole {
            batch.rows
        } else {
            batch.rows.slice(0, left)
        };
        let written = print(&mut out, &rows, args.output, escape).and_then(|()| out.flush());
        match written {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break Ok(()),
            Err(e) => break Err(Failure::new(format!("writing to standard output: {e}"))),
        }
        // Printed and flushed: its position may be committed. A batch cut by --limit is not
        // acknowledged, so a later run prints it again, whole.
        if whole {
            source.ack(batch.token)?;
        }
        printed += rows.num_rows() as u64;
        if printed >= limit {
            break Ok(());
        }
    };
    let stats = source.close().await;
    let stats = match (result, stats) {
        (Err(failure), _) => return Err(failure),
        (Ok(()), Err(error)) => return Err(error.into()),
        (Ok(()), Ok(stats)) => stats,
    };
    report_left_out("kds tail", stats.skipped, stats.filtered);
    Ok(())
}

/// What the user should know about a DynamoDB endpoint for leases: plain HTTP to another
/// machine carries the signed requests (with any session token) unencrypted.
pub(crate) fn lease_table_warning(endpoint: Option<&str>) -> Option<String> {
    let endpoint = endpoint?;
    (endpoint.starts_with("http://") && !is_loopback(endpoint)).then(|| {
        format!(
            "{endpoint} (DynamoDB, for leases) is plain HTTP to another machine: the leases and \
             credentials' session tokens travel unencrypted"
        )
    })
}

/// Reports on standard error the records a read skipped (they did not decode) and the user
/// records of aggregates it left out (another shard's hash key range).
pub(crate) fn report_left_out(command: &str, skipped: u64, filtered: u64) {
    if skipped > 0 {
        eprintln!(
            "{command}: {skipped} records did not decode in their table's format and were skipped"
        );
    }
    if filtered > 0 {
        eprintln!(
            "{command}: {filtered} user records of KPL aggregates belonged to another shard's \
             hash key range and were left out"
        );
    }
}

/// A client for `table`'s stream: the table's options (endpoint, region, credentials, retries),
/// with the connection flags' endpoint, region, protocol and TLS choice over them.
pub(crate) async fn table_client(
    connection: &Connection,
    table: &TableDefinition,
) -> Result<kds_client::Client, Failure> {
    for (key, value) in &connection.properties {
        credentials::set_property(key.clone(), value.clone());
    }
    let mut builder = kds_stream::client_builder(table)
        .await
        .protocol(match connection.protocol {
            Protocol::Json => kds_client::Protocol::Json,
            Protocol::Cbor => kds_client::Protocol::Cbor,
        });
    let endpoint = connection
        .endpoint
        .clone()
        .or_else(|| table.options.aws.endpoint.clone());
    if let Some(endpoint) = &connection.endpoint {
        builder = builder.endpoint(endpoint.clone());
    }
    if let Some(region) = &connection.region {
        builder = builder.region(region.clone());
    }
    if connection.no_verify_tls {
        builder = builder.trust_all_certificates(true);
    }
    // As for the other commands: a loopback endpoint without configured credentials is signed
    // with placeholder keys.
    if endpoint.as_deref().is_some_and(is_loopback)
        && matches!(table.options.aws.credentials, kds_table::Credentials::Auto)
    {
        let region = table
            .options
            .aws
            .region
            .clone()
            .unwrap_or_else(|| "us-east-1".into());
        let chain = credentials::aws::default_chain(&credentials::aws::Sts::new(region)).await;
        builder = builder.credentials(OrPlaceholder::new(chain, true));
    }
    builder.build().map_err(|e| Failure::usage(e.to_string()))
}

/// Prints `rows`: one JSON object per row, or the values separated by tabs (with control
/// characters escaped when `escape`: standard output is a terminal).
pub(crate) fn print(
    out: &mut impl Write,
    rows: &RecordBatch,
    format: OutputFormat,
    escape: bool,
) -> io::Result<()> {
    match format {
        OutputFormat::Jsonl => {
            let mut writer = arrow_json::LineDelimitedWriter::new(&mut *out);
            writer.write(rows).map_err(io::Error::other)?;
            writer.finish().map_err(io::Error::other)
        }
        OutputFormat::Text => {
            let options = FormatOptions::default().with_null("NULL");
            let columns = rows
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()
                .map_err(io::Error::other)?;
            for row in 0..rows.num_rows() {
                for (i, column) in columns.iter().enumerate() {
                    if i > 0 {
                        out.write_all(b"\t")?;
                    }
                    let value = column.value(row).to_string();
                    if escape {
                        out.write_all(crate::terminal::escape_text(&value).as_bytes())?;
                    } else {
                        out.write_all(value.as_bytes())?;
                    }
                }
                out.write_all(b"\n")?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_to_another_machine_is_warned_about_for_leases_too() {
        for quiet in [
            None,
            Some("http://127.0.0.1:8000"),
            Some("http://localhost:8000"),
            Some("https://dynamodb.eu-west-1.amazonaws.com"),
        ] {
            assert_eq!(lease_table_warning(quiet), None, "{quiet:?}");
        }
        let warning = lease_table_warning(Some("http://10.0.0.7:8000")).unwrap();
        assert!(
            warning.starts_with("http://10.0.0.7:8000 (DynamoDB"),
            "{warning}"
        );
        assert!(warning.contains("unencrypted"), "{warning}");
    }
}
