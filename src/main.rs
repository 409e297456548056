//! The `usher` command line: parses arguments, sets up logging and hands off
//! to the library. Nothing in the library depends on this file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use usher::model::Span;

/// usher keeps order in live video conferences: it watches each room's event
/// stream, runs your Rhai rules on every change and sends the commands they ask for.
#[derive(Parser)]
#[command(name = "usher", version, about)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the conference simulator: a stand-in for the platform's REST API and
    /// event stream, playing a scenario.
    Simulate(SimulateArgs),
}

#[derive(clap::Args)]
struct SimulateArgs {
    /// Address to listen on (loopback only unless you mean it).
    #[arg(long, default_value = "127.0.0.1:8440")]
    listen: SocketAddr,
    /// Scenario file; without one the bundled lecture scenario plays.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Room alias, overriding the scenario's.
    #[arg(long)]
    room: Option<String>,
    /// Room PIN, overriding the scenario's.
    #[arg(long)]
    pin: Option<String>,
    /// Token lifetime (e.g. `120`, `3s`), overriding the scenario's.
    #[arg(long)]
    token_expiry: Option<Span>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Simulate(args) => {
                usher::sim::run(usher::sim::SimulateOptions {
                    listen: args.listen,
                    scenario: args.scenario,
                    room: args.room,
                    pin: args.pin,
                    token_expiry: args.token_expiry,
                })
                .await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
