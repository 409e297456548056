//! The `usher` command line: parses arguments, sets up logging and hands off
//! to the library. Nothing in the library depends on this file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use usher::model::Span;
use usher::rules::{Handler, Rule, RuleEngine, rule_files};

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
    /// Compile and validate rules; every error points at file:line:column.
    Check(CheckArgs),
    /// Run rule tests (YAML files of steps and expected commands).
    Test(TestArgs),
    /// Run the conference simulator: a stand-in for the platform's REST API and
    /// event stream, playing a scenario.
    Simulate(SimulateArgs),
}

#[derive(clap::Args)]
struct CheckArgs {
    /// Rule files to check; without any, every rule in --rules-dir.
    rules: Vec<PathBuf>,
    /// The rules directory.
    #[arg(long, default_value = "rules")]
    rules_dir: PathBuf,
}

#[derive(clap::Args)]
struct TestArgs {
    /// Test files or directories of them.
    #[arg(default_value = "rules/tests")]
    paths: Vec<PathBuf>,
    /// Where the rules under test are; by default the parent of the `tests`
    /// directory holding each file.
    #[arg(long)]
    rules_dir: Option<PathBuf>,
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
    let quiet = matches!(cli.command, Command::Check(_) | Command::Test(_));
    init_logging(cli.log_format, if quiet { "off" } else { "info" });
    match cli.command {
        Command::Check(args) => return check(&args),
        Command::Test(args) => return test(&args),
        Command::Simulate(_) => {}
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Check(_) | Command::Test(_) => unreachable!("handled above"),
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

fn check(args: &CheckArgs) -> ExitCode {
    let engine = Arc::new(RuleEngine::default());
    let files = if args.rules.is_empty() {
        match rule_files(&args.rules_dir) {
            Ok(files) => files,
            Err(err) => {
                eprintln!("{err}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        args.rules.clone()
    };
    let mut errors = 0;
    for file in &files {
        match Rule::load(&engine, file) {
            Ok(rule) => println!("{}: ok ({})", file.display(), describe_rule(&rule)),
            Err(err) => {
                errors += 1;
                println!("{err}");
            }
        }
    }
    println!("\n{} rules checked, {errors} with errors", files.len());
    if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn describe_rule(rule: &Rule) -> String {
    let handlers: Vec<&str> = Handler::ALL
        .into_iter()
        .filter(|h| rule.handles(*h))
        .map(Handler::name)
        .collect();
    let params: Vec<String> = rule
        .defaults()
        .iter()
        .map(|(name, value)| format!("{name} = {value:?}"))
        .collect();
    format!(
        "handles {}; params: {}",
        if handlers.is_empty() {
            "nothing".to_owned()
        } else {
            handlers.join(", ")
        },
        if params.is_empty() {
            "none".to_owned()
        } else {
            params.join(", ")
        }
    )
}

fn test(args: &TestArgs) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match usher::ruletest::run_paths(&args.paths, args.rules_dir.as_deref(), &mut stdout) {
        Ok(summary) if summary.failed == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
