//! `kds`: write to, read from and emulate Amazon Kinesis Data Streams from the command line.
//!
//! - `kds demo` runs the quickstart on an emulator inside the process.
//! - `kds local` serves that emulator on loopback for other tools.
//! - `kds put STREAM` writes lines or JSON objects as records (batched, optionally
//!   KPL-aggregated).
//! - `kds tail STREAM` prints the records of every shard, by polling or enhanced fan-out,
//!   deaggregated, as text or JSON lines.
//! - `kds stream …` creates, lists, describes, reshards and deletes streams; `kds consumer …`
//!   manages enhanced fan-out consumers; `kds completions SHELL` prints a completion script.
//! - `kds sql` runs SQL over Kinesis tables declared with Flink's `CREATE TABLE` (with
//!   `--local`, on the embedded emulator).
//!
//! Errors are one line on standard error; the exit status is 2 for usage errors and 1 for
//! failures.

#![forbid(unsafe_code)]

mod admin;
mod cli;
mod connect;
mod demo;
mod failure;
mod interrupt;
mod lines;
mod local;
mod put;
mod read;
mod sql;
mod table;
mod tail;
mod terminal;
mod writer;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use crate::cli::{Cli, Command};
use crate::failure::Failure;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            return match error.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = error.print();
                    ExitCode::SUCCESS
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = error.print();
                    ExitCode::from(2)
                }
                _ => {
                    // The message up to clap's usage and tip, as one line (Failure's Display).
                    let text = error.render().to_string();
                    let message: Vec<&str> = text.lines().take_while(|l| !l.is_empty()).collect();
                    let message = message.join(" ");
                    report(&Failure::usage(message.trim_start_matches("error: ")))
                }
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return report(&Failure::new(format!("cannot start the runtime: {e}"))),
    };
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Local(args) => local::run(args).await,
            Command::Put(args) => put::run(&cli.connection, args).await,
            Command::Tail(args) => tail::run(&cli.connection, args).await,
            Command::Stream(args) => admin::stream(&cli.connection, args).await,
            Command::Consumer(args) => admin::consumer(&cli.connection, args).await,
            Command::Sql(args) => sql::run(&cli.connection, args).await,
            Command::Completions(args) => {
                let mut command = <Cli as clap::CommandFactory>::command();
                clap_complete::generate(args.shell, &mut command, "kds", &mut std::io::stdout());
                Ok(())
            }
        }
    });
    // Subscriptions and pooled connections are not waited for.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => report(&failure),
    }
}

fn report(failure: &Failure) -> ExitCode {
    eprintln!("kds: {failure}");
    ExitCode::from(failure.exit_status())
}
