//! `kds sql`: statements over Kinesis tables run by kds-sql, rows printed as they arrive.
//! Ctrl-C stops the session: streaming queries end, pipelines flush their sink and commit.

use std::io::{self, IsTerminal, Write};
use std::pin::{Pin, pin};
use std::sync::Arc;

use arrow_array::RecordBatch;
use futures_util::StreamExt;
use kds_client::Client;
use kds_proto::ErrorCode;
use kds_proto::model::CreateStreamInput;
use kds_proto::types::{StreamName, StreamStatus};
use kds_sql::{ClientFactory, Outcome, SqlSession, split_statements};
use kds_table::TableDefinition;

use crate::cli::{Connection, OutputFormat, SqlArgs};
use crate::failure::Failure;
use crate::interrupt::interrupted;
use crate::local::Emulator;
use crate::table::{lease_table_warning, print, report_left_out, table_client};

/// Clients for tables as `kds tail --table` makes them: the table's options under the
/// connection flags.
struct ConnectionClients(Arc<Connection>);

impl ClientFactory for ConnectionClients {
    fn client<'a>(
        &'a self,
        table: &'a TableDefinition,
    ) -> Pin<Box<dyn Future<Output = Result<Client, kds_sql::Error>> + Send + 'a>> {
        Box::pin(async move {
            table_client(&self.0, table)
                .await
                .map_err(|failure| kds_sql::Error::client(failure.to_string()))
        })
    }
}

impl From<kds_sql::Error> for Failure {
    fn from(error: kds_sql::Error) -> Self {
        match error.kind() {
            kds_sql::ErrorKind::Syntax | kds_sql::ErrorKind::Definition => {
                Self::usage(error.to_string())
            }
            _ => Self::new(error.to_string()),
        }
    }
}

/// Runs `kds sql`.
pub(crate) async fn run(connection: &Connection, args: &SqlArgs) -> Result<(), Failure> {
    let mut scripts = Vec::new();
    for path in &args.files {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
        scripts.push((path.display().to_string(), text));
    }
    for (i, text) in args.statements.iter().enumerate() {
        scripts.push((format!("-e #{}", i + 1), text.clone()));
    }
    if scripts.is_empty() {
        let text = io::read_to_string(io::stdin())
            .map_err(|e| Failure::new(format!("reading standard input: {e}")))?;
        scripts.push(("standard input".to_owned(), text));
    }
    let mut statements = Vec::new();
    for (origin, text) in &scripts {
        let split = split_statements(text).map_err(|e| Failure::usage(format!("{origin}: {e}")))?;
        statements.extend(split.into_iter().map(|s| (origin.clone(), s)));
    }

    let mut connection = connection.clone();
    let emulator = if args.local {
        let emulator = Emulator::start(args.port).await?;
        eprintln!("kds sql: Kinesis emulator at {}", emulator.url());
        connection.endpoint = Some(emulator.url());
        Some(emulator)
    } else {
        None
    };
    let connection = Arc::new(connection);
    let mut builder = SqlSession::builder().clients(ConnectionClients(Arc::clone(&connection)));
    if let Some(dir) = &args.state_dir {
        builder = builder.state_dir(dir);
    }
    let session = builder.build();
    let result = run_statements(&session, statements, &connection, emulator.is_some(), args).await;
    // Every read closes its source (committing, releasing consumers) before the process ends.
    close(&session).await;
    drop(emulator);
    result
}

/// Runs the statements in order, printing rows as they arrive; Ctrl-C stops the session.
async fn run_statements(
    session: &SqlSession,
    statements: Vec<(String, kds_sql::Statement)>,
    connection: &Connection,
    local: bool,
    args: &SqlArgs,
) -> Result<(), Failure> {
    let stopper = session.stopper();
    let mut stop = pin!(interrupted());
    let mut stopped = false;
    let mut out = io::BufWriter::with_capacity(64 * 1024, io::stdout());
    let escape = io::stdout().is_terminal();
    for (origin, statement) in statements {
        if stopped {
            break;
        }
        let at = |e: kds_sql::Error| {
            Failure::from(e).context(&format!("{origin}, line {}", statement.line))
        };
        // A stop lets the statement finish: a pipeline flushes its sink and commits.
        let execute = session.execute(&statement.text);
        let mut execute = pin!(execute);
        let outcome = loop {
            tokio::select! {
                outcome = execute.as_mut() => break outcome.map_err(at)?,
                () = stop.as_mut(), if !stopped => {
                    stopped = true;
                    stopper.stop();
                }
            }
        };
        match outcome {
            Outcome::Created(table) => {
                if local {
                    create_stream(connection, &table).await?;
                }
                eprintln!("kds sql: table `{}` registered", table.table.name);
                // Without an endpoint of its own, the lease table is DynamoDB's regional one.
                let lease_endpoint = table.options.source.lease_table.as_ref();
                if let Some(warning) =
                    lease_endpoint.and_then(|lease| lease_table_warning(lease.endpoint.as_deref()))
                {
                    eprintln!("kds sql: warning: {warning}");
                }
            }
            Outcome::Pipeline(report) => {
                eprintln!(
                    "kds sql: pipeline read {} rows, wrote {}, committed {} times{}",
                    report.rows_in,
                    report.rows_out,
                    report.commits,
                    if report.sink.maybe_duplicated > 0 {
                        format!(
                            "; {} rows were sent again after an unknown outcome and may be in \
                             the stream twice",
                            report.sink.maybe_duplicated
                        )
                    } else {
                        String::new()
                    }
                );
            }
            Outcome::Rows(mut rows) => {
                let mut header = true;
                loop {
                    let next = tokio::select! {
                        next = rows.next() => next,
                        () = stop.as_mut(), if !stopped => {
                            // The scans end their streams once stopped; what they read is
                            // still printed.
                            stopped = true;
                            stopper.stop();
                            continue;
                        }
                    };
                    let Some(batch) = next else { break };
                    let batch = match batch {
                        Ok(batch) => batch,
                        Err(e) => {
                            drop(rows);
                            return Err(Failure::new(format!("{origin}: {e}")));
                        }
                    };
                    if batch.num_columns() == 0 {
                        continue;
                    }
                    match write_rows(&mut out, &batch, args.output, escape, &mut header) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                            drop(rows);
                            return Ok(());
                        }
                        Err(e) => {
                            drop(rows);
                            return Err(Failure::new(format!("writing to standard output: {e}")));
                        }
                    }
                }
            }
            _ => {}
        }
        let report = session.take_report();
        report_left_out("kds sql", report.skipped, report.filtered);
    }
    Ok(())
}

/// Closes the session's reads, waiting at most half a minute (a second Ctrl-C quits at once).
async fn close(session: &SqlSession) {
    if tokio::time::timeout(std::time::Duration::from_secs(30), session.close())
        .await
        .is_err()
    {
        eprintln!("kds sql: some reads did not close within 30 s");
    }
}

/// Prints rows (with the column names first, once per result, as text), then flushes.
fn write_rows(
    out: &mut impl Write,
    batch: &RecordBatch,
    format: OutputFormat,
    escape: bool,
    header: &mut bool,
) -> io::Result<()> {
    if *header && format == OutputFormat::Text {
        let names: Vec<&str> = batch
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        writeln!(out, "{}", names.join("\t"))?;
    }
    *header = false;
    print(out, batch, format, escape)?;
    out.flush()
}

/// Creates the table's stream on the embedded emulator, unless it exists.
async fn create_stream(connection: &Connection, table: &TableDefinition) -> Result<(), Failure> {
    let client = table_client(connection, table).await?;
    let name = StreamName::new(table.options.stream.clone())
        .map_err(|e| Failure::usage(format!("stream `{}`: {e}", table.options.stream)))?;
    let mut create = CreateStreamInput::new(name.clone());
    create.shard_count = Some(2);
    match client.send(&create).await {
        Ok(_) => {}
        Err(e) if e.error_code() == Some(ErrorCode::ResourceInUse) => return Ok(()),
        Err(e) => {
            return Err(Failure::new(format!(
                "creating stream {}: {e}",
                name.as_str()
            )));
        }
    }
    crate::admin::wait_for_status(&client, &name, "creating", StreamStatus::Active).await?;
    Ok(())
}
