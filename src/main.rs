//! The `usher` command line: parses arguments, sets up logging and hands off
//! to the library. Nothing in the library depends on this file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use usher::config::Config;
use usher::model::Span;
use usher::platform::PlatformKind;
use usher::platform::http::StreamProtocol;
use usher::rules::{Handler, Rule, RuleEngine, RuleSet, rule_files};
use usher::runtime::audit::{explain, read_log};
use usher::runtime::{Daemon, StartError};

/// jemalloc: less memory and CPU with thousands of rooms (see Cargo.toml).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options: freed pages go back to the system at once rather
/// than after ten seconds. A daemon watching thousands of rooms frees memory
/// all the time (every token refresh), and at 5,000 rooms the pages waiting
/// out the delay came to 15% of its memory; the pipeline benchmark shows no
/// cost.
#[cfg(not(target_env = "msvc"))]
#[unsafe(export_name = "_rjem_malloc_conf")]
static ALLOCATOR_OPTIONS: Option<&'static std::ffi::c_char> =
    // SAFETY: a C string literal lives for the whole program.
    Some(unsafe { &*c"dirty_decay_ms:0,muzzy_decay_ms:0".as_ptr() });

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
    /// Watch a simulated lecture moderated by the shipped rules (about 50 s).
    Demo(DemoArgs),
    /// Run the daemon: watch every configured room and apply its rules.
    Run(RunArgs),
    /// Compile and validate rules (and a config); every error points at file:line:column.
    Check(CheckArgs),
    /// Explain from the audit log what usher did to a participant, and why.
    Why(WhyArgs),
    /// Record a live room's events to a JSONL file (until Ctrl-C).
    Record(RecordArgs),
    /// Run the rules over a recording, offline, and print what they would send.
    Replay(ReplayArgs),
    /// Build an end-of-lecture report offline, from a recording and the audit log.
    Report(ReportArgs),
    /// Run rule tests (YAML files of steps and expected commands).
    Test(TestArgs),
    /// Print a timetable's sessions, one per line: START END TITLE.
    Timetable(TimetableArgs),
    /// Run the conference simulator: a stand-in for the platform's REST API and
    /// event stream, playing a scenario.
    Simulate(SimulateArgs),
    /// Measure throughput, latency and scale.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Several instances sharing rooms through etcd.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Help for writing rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Start something new from a template.
    #[command(subcommand)]
    New(NewCommand),
    /// Print a completion script for a shell (e.g. `usher completions bash >
    /// /etc/bash_completion.d/usher`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print usher's manual page (e.g. `usher man > usher.1`).
    Man,
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Print the live instances and every room's owner, as etcd has them.
    Status {
        /// The configuration (with `cluster:`).
        #[arg(short, long, default_value = "usher.yaml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Write Rhai definition files for everything usher gives rules, so an
    /// editor with the Rhai extension completes and checks rule files.
    Definitions {
        /// Where to write them.
        #[arg(default_value = "rules/definitions")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum NewCommand {
    /// Write rules/NAME.rhai (documented, with parameters and one handler)
    /// and rules/tests/NAME.yaml (a test that passes).
    Rule {
        /// The rule's name: letters, digits and underscores.
        name: String,
        /// The rules directory.
        #[arg(long, default_value = "rules")]
        rules_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Events per second through decode, room state, rules and planning, on one core.
    Pipeline(PipelineArgs),
    /// Latency from an event leaving the platform to the command it causes arriving back.
    Latency(LatencyArgs),
    /// Thousands of rooms in one daemon: memory, CPU, token refreshes, lost commands.
    Scale(ScaleArgs),
    /// The dashboard with many rooms: the overview, /status, a room's page, a live update.
    Dashboard(DashboardArgs),
    /// Floods of Agora and Tencent callbacks through the webhook listener: callbacks per
    /// second, and proof that none was lost or applied twice.
    Webhooks(WebhooksArgs),
    /// Three instances sharing rooms through a local etcd: failover time over
    /// repeated kill -9, and etcd writes per room per minute.
    Failover(FailoverArgs),
    /// The simulator half of `bench scale`, run as its own process.
    #[command(hide = true)]
    ServeRooms(ServeRoomsArgs),
}

#[derive(clap::Args)]
struct FailoverArgs {
    /// Instances killed (one after another, each started again).
    #[arg(long, default_value_t = 20)]
    kills: usize,
    /// Rooms shared.
    #[arg(long, default_value_t = 30)]
    rooms: usize,
    /// The instances' lease.
    #[arg(long, default_value = "2s")]
    lease_ttl: Span,
}

#[derive(clap::Args)]
struct ScaleArgs {
    /// Rooms to watch.
    #[arg(long, default_value_t = 1000)]
    rooms: usize,
    /// How long to measure; at least two token lifetimes.
    #[arg(long, default_value = "40s")]
    length: Span,
    /// How long each token lasts.
    #[arg(long, default_value = "15s")]
    token_expiry: Span,
    /// How event streams travel: http1 (a connection per room) or http2 (multiplexed).
    #[arg(long, value_enum, default_value_t = Protocol::Http2)]
    stream_protocol: Protocol,
}

#[derive(Clone, Copy, ValueEnum)]
enum Protocol {
    Http1,
    Http2,
}

#[derive(clap::Args)]
struct WebhooksArgs {
    /// Rooms the callbacks are spread over.
    #[arg(long, default_value_t = 100)]
    rooms: usize,
    /// Callbacks in each flood.
    #[arg(long, default_value_t = 10_000)]
    callbacks: usize,
}

#[derive(clap::Args)]
struct ServeRoomsArgs {
    #[arg(long)]
    rooms: usize,
    #[arg(long)]
    token_expiry: Span,
}

#[derive(clap::Args)]
struct DashboardArgs {
    /// Rooms on the overview.
    #[arg(long, default_value_t = 500)]
    rooms: usize,
    /// Participants in each room.
    #[arg(long, default_value_t = 120)]
    people: usize,
    /// Rounds of each measurement; the median is reported.
    #[arg(long, default_value_t = 15)]
    rounds: usize,
}

#[derive(clap::Args)]
struct LatencyArgs {
    /// Events the simulator emits per second.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// How long to emit them (e.g. `10s`).
    #[arg(long, default_value = "10s")]
    length: Span,
}

#[derive(clap::Args)]
struct PipelineArgs {
    /// Use this config's rules (its only room's, or --room's) instead of the
    /// shipped rules with their defaults.
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// Whose rules to use, when the config has several rooms.
    #[arg(long)]
    room: Option<String>,
    /// Replay a recording made by `usher record` instead of the built-in
    /// workload (a busy 500-participant lecture).
    #[arg(long)]
    events: Option<PathBuf>,
    /// Events in the built-in workload.
    #[arg(long, default_value_t = 200_000)]
    count: usize,
    /// Rounds of each measurement; the median is reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Also measure the rules plus a rule keeping a roster in `state`, written
    /// the natural way and the careful way (examples/bench/), side by side.
    #[arg(long)]
    compare_state: bool,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The configuration file.
    #[arg(short, long, default_value = "usher.yaml")]
    config: PathBuf,
}

#[derive(clap::Args)]
struct CheckArgs {
    /// Rule files to check; without any, every rule in --rules-dir (or the
    /// config's rules_dir).
    rules: Vec<PathBuf>,
    /// A configuration to validate too, with every room's rule bindings.
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// The rules directory.
    #[arg(long, default_value = "rules")]
    rules_dir: PathBuf,
}

#[derive(clap::Args)]
struct RecordArgs {
    /// The configuration file (for the platform and the room's PIN).
    #[arg(short, long, default_value = "usher.yaml")]
    config: PathBuf,
    /// The room to record.
    #[arg(long)]
    room: String,
    /// Where to write the recording.
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// The recording.
    recording: PathBuf,
    /// The configuration file (for the rules and their parameters).
    #[arg(short, long, default_value = "usher.yaml")]
    config: PathBuf,
    /// Whose rules to use, when the config has several rooms.
    #[arg(long)]
    room: Option<String>,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// The room's recording (`usher record`).
    #[arg(long)]
    recording: PathBuf,
    /// The audit log, for the commands sent while it was recorded.
    #[arg(long)]
    audit: Option<PathBuf>,
    /// The room, when the audit log names several.
    #[arg(long)]
    room: Option<String>,
    /// The room's time zone (`Europe/Berlin`, `+08:00`); the machine's by default.
    #[arg(long, value_parser = usher::clock::Zone::parse)]
    zone: Option<usher::clock::Zone>,
    /// Where to write the page; the JSON goes beside it (`.json`).
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(clap::Args)]
struct WhyArgs {
    /// The participant's display name (or uuid).
    name: String,
    /// The audit log.
    #[arg(long, default_value = "audit.jsonl")]
    audit: PathBuf,
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
struct DemoArgs {
    /// Which platform the simulated lecture is on.
    #[arg(long, default_value = "vmr")]
    platform: PlatformKind,
}

#[derive(clap::Args)]
struct TimetableArgs {
    /// The calendar (.ics). Or give --config to list every room's.
    #[arg(required_unless_present = "config")]
    file: Option<PathBuf>,
    /// List the sessions of every room of this config, each line led by
    /// the room's alias.
    #[arg(short, long, conflicts_with = "file")]
    config: Option<PathBuf>,
    /// Show times in this zone (default: the calendar's own; with --config,
    /// each room's).
    #[arg(long)]
    zone: Option<String>,
    /// The first day, e.g. 2027-03-29 (default: today).
    #[arg(long)]
    from: Option<String>,
    /// How many days.
    #[arg(long, default_value_t = 7)]
    days: u32,
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
    /// Which platform to simulate.
    #[arg(long, default_value = "vmr")]
    platform: PlatformKind,
    /// Where a webhook platform's simulator sends its callbacks (usher's
    /// `/hooks/<platform name>` URL).
    #[arg(long)]
    webhook_to: Option<url::Url>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_filter = match cli.command {
        Command::Check(_)
        | Command::Test(_)
        | Command::Timetable(_)
        | Command::Why(_)
        | Command::Replay(_)
        | Command::Report(_)
        | Command::Bench(_) => "warn",
        Command::Demo(_) => "error",
        Command::Rules(_) | Command::New(_) | Command::Completions { .. } | Command::Man => "warn",
        _ => "info",
    };
    init_logging(cli.log_format, default_filter);
    match cli.command {
        Command::Check(args) => return check(&args),
        Command::Test(args) => return test(&args),
        Command::Why(args) => return why(&args),
        Command::Replay(args) => return replay(&args),
        Command::Report(args) => return report(&args),
        Command::Bench(BenchCommand::Pipeline(args)) => return bench_pipeline(&args),
        Command::Rules(RulesCommand::Definitions { dir }) => return definitions(&dir),
        Command::New(NewCommand::Rule { name, rules_dir }) => return new_rule(&name, &rules_dir),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "usher", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Man => return man(),
        Command::Demo(_)
        | Command::Run(_)
        | Command::Cluster(_)
        | Command::Timetable(_)
        | Command::Record(_)
        | Command::Simulate(_)
        | Command::Bench(
            BenchCommand::Latency(_)
            | BenchCommand::Scale(_)
            | BenchCommand::ServeRooms(_)
            | BenchCommand::Dashboard(_)
            | BenchCommand::Webhooks(_)
            | BenchCommand::Failover(_),
        ) => {}
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<ExitCode> = runtime.block_on(async {
        match cli.command {
            Command::Check(_)
            | Command::Test(_)
            | Command::Why(_)
            | Command::Replay(_)
            | Command::Report(_)
            | Command::Bench(BenchCommand::Pipeline(_))
            | Command::Rules(_)
            | Command::New(_)
            | Command::Completions { .. }
            | Command::Man => unreachable!("handled above"),
            Command::Timetable(args) => Ok(timetable(&args).await),
            Command::Record(args) => return record(&args).await,
            Command::Cluster(ClusterCommand::Status { config }) => {
                return Ok(cluster_status(&config).await);
            }
            Command::Bench(BenchCommand::Scale(args)) => {
                let mut stdout = std::io::stdout();
                let protocol = match args.stream_protocol {
                    Protocol::Http1 => StreamProtocol::Http1,
                    Protocol::Http2 => StreamProtocol::Http2,
                };
                let report = usher::bench::scale::run(
                    args.rooms,
                    args.length.0,
                    args.token_expiry.0,
                    protocol,
                    &mut stdout,
                )
                .await?;
                println!("{}", serde_json::to_string(&report)?);
                Ok(ExitCode::SUCCESS)
            }
            Command::Bench(BenchCommand::Failover(args)) => {
                let mut stdout = std::io::stdout();
                let report = usher::bench::failover::run(
                    args.kills,
                    args.rooms,
                    args.lease_ttl.0,
                    &mut stdout,
                )
                .await?;
                println!("{}", serde_json::to_string(&report)?);
                Ok(ExitCode::SUCCESS)
            }
            Command::Bench(BenchCommand::ServeRooms(args)) => {
                usher::os::raise_open_files_limit()?;
                usher::bench::scale::serve_rooms(args.rooms, args.token_expiry.0).await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Bench(BenchCommand::Dashboard(args)) => {
                let mut stdout = std::io::stdout();
                let report =
                    usher::bench::dashboard::run(args.rooms, args.people, args.rounds, &mut stdout)
                        .await?;
                println!("{}", serde_json::to_string(&report)?);
                Ok(ExitCode::SUCCESS)
            }
            Command::Bench(BenchCommand::Webhooks(args)) => {
                let mut stdout = std::io::stdout();
                let report =
                    usher::bench::webhooks::run(args.rooms, args.callbacks, &mut stdout).await?;
                println!("{}", serde_json::to_string(&report)?);
                if report.lost + report.applied_twice > 0 {
                    anyhow::bail!("callbacks were lost or applied twice");
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Bench(BenchCommand::Latency(args)) => {
                let mut stdout = std::io::stdout();
                let report =
                    usher::bench::latency::run(args.rate, args.length.0, &mut stdout).await?;
                println!("{}", serde_json::to_string(&report)?);
                Ok(ExitCode::SUCCESS)
            }
            Command::Run(args) => return run(&args).await,
            Command::Demo(args) => {
                let mut stdout = std::io::stdout();
                usher::demo::run(&mut stdout, args.platform).await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Simulate(args) => {
                usher::sim::run(usher::sim::SimulateOptions {
                    listen: args.listen,
                    scenario: args.scenario,
                    room: args.room,
                    pin: args.pin,
                    token_expiry: args.token_expiry,
                    platform: args.platform,
                    webhook_to: args.webhook_to,
                })
                .await?;
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Exit status for a configuration (or rules) that cannot be used.
const BAD_CONFIG: u8 = 2;

async fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let open_files = usher::os::raise_open_files_limit();
    if let Err(err) = &open_files {
        tracing::warn!("cannot raise the open-files limit: {err}");
    }
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(ExitCode::from(BAD_CONFIG));
        }
    };
    if let Ok(limit) = open_files {
        for (name, platform) in &config.platforms {
            let rooms = config
                .rooms
                .iter()
                .filter(|room| room.platform_name() == name)
                .count();
            let protocol = platform.stream_protocol();
            if let Err(short) = usher::os::check_open_files(rooms, protocol, limit) {
                tracing::warn!("platform `{name}`: {short}");
            }
        }
    }
    match Daemon::start(config, &args.config).await {
        Ok(daemon) => {
            daemon.run_until_signalled().await?;
            Ok(ExitCode::SUCCESS)
        }
        Err(StartError::Config(message)) => {
            eprintln!("error: {message}");
            Ok(ExitCode::from(BAD_CONFIG))
        }
        Err(StartError::Other(err)) => Err(err),
    }
}

async fn cluster_status(path: &Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    let Some(cluster) = &config.cluster else {
        eprintln!(
            "error: {}: no `cluster:` section; this config runs one instance",
            path.display()
        );
        return ExitCode::from(BAD_CONFIG);
    };
    let rooms: Vec<&str> = config
        .rooms
        .iter()
        .map(|room| room.alias.as_str())
        .collect();
    match usher::cluster::report::status_text(cluster, &rooms).await {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(BAD_CONFIG)
        }
    }
}

async fn record(args: &RecordArgs) -> anyhow::Result<ExitCode> {
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(ExitCode::from(BAD_CONFIG));
        }
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_signal.cancel();
    });
    eprintln!(
        "recording {} into {} (Ctrl-C to stop)",
        args.room,
        args.output.display()
    );
    let events =
        usher::recording::record(&config, &args.config, &args.room, &args.output, stop).await?;
    eprintln!("recorded {events} events");
    Ok(ExitCode::SUCCESS)
}

fn replay(args: &ReplayArgs) -> ExitCode {
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    let replayed = usher::recording::read(&args.recording).and_then(|lines| {
        usher::recording::replay(
            &config,
            args.room.as_deref(),
            &lines,
            &mut std::io::stdout(),
        )
    });
    match replayed {
        Ok(summary) => {
            println!(
                "\n{} events replayed ({} unreadable); the rules would have sent {} commands; {} rule errors",
                summary.events, summary.malformed, summary.commands, summary.rule_errors
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn report(args: &ReportArgs) -> ExitCode {
    use usher::report::{html, offline, write_pair};
    let sources = offline::Sources {
        recording: &args.recording,
        audit: args.audit.as_deref(),
        room: args.room.as_deref(),
    };
    let zone = args.zone.clone().unwrap_or_else(usher::clock::Zone::system);
    let written = offline::build(&sources, zone)
        .map_err(|err| err.to_string())
        .and_then(|report| {
            write_pair(&args.output, &report, &html::render(&report))
                .map_err(|err| format!("cannot write {}: {err}", args.output.display()))
        });
    match written {
        Ok(()) => {
            println!(
                "wrote {} and {}",
                args.output.display(),
                args.output.with_extension("json").display()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn bench_pipeline(args: &PipelineArgs) -> ExitCode {
    let result = (|| -> anyhow::Result<()> {
        let (set, bindings) = match &args.config {
            None => usher::bench::shipped_rules().map_err(|err| anyhow::anyhow!("{err}"))?,
            Some(path) => {
                let config = Config::load(path).map_err(|err| anyhow::anyhow!("{err}"))?;
                let room = match &args.room {
                    Some(alias) => config.rooms.iter().find(|r| &r.alias == alias),
                    None => config.rooms.first(),
                }
                .ok_or_else(|| anyhow::anyhow!("no such room in {}", path.display()))?;
                let engine = Arc::new(RuleEngine::new(config.limits.to_limits()));
                let set = RuleSet::load_dir(engine, &config.rules_dir).map_err(|errors| {
                    anyhow::anyhow!(
                        errors
                            .iter()
                            .map(|e| e.to_string())
                            .collect::<Vec<_>>()
                            .join("\n")
                    )
                })?;
                (Arc::new(set), room.rules.clone())
            }
        };
        let frames = match &args.events {
            Some(path) => usher::bench::workload::recorded(path)?,
            None => usher::bench::workload::lecture(args.count),
        };
        let mut stdout = std::io::stdout();
        let report = usher::bench::pipeline::run(
            set,
            &bindings,
            &frames,
            args.rounds.max(1),
            args.compare_state,
            &mut stdout,
        )?;
        println!("{}", serde_json::to_string(&report)?);
        Ok(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn why(args: &WhyArgs) -> ExitCode {
    let (records, unreadable) = match read_log(&args.audit) {
        Ok(read) => read,
        Err(err) => {
            eprintln!(
                "error: cannot read the audit log {}: {err}",
                args.audit.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let mut found = 0;
    for record in records.iter().filter(|record| record.concerns(&args.name)) {
        found += 1;
        println!("{}", explain(record));
    }
    if found == 0 {
        println!(
            "usher did nothing to or because of {:?} in {} ({} records).",
            args.name,
            args.audit.display(),
            records.len()
        );
    }
    if unreadable > 0 {
        eprintln!("note: {unreadable} lines of the audit log could not be read");
    }
    ExitCode::SUCCESS
}

fn check(args: &CheckArgs) -> ExitCode {
    let engine = Arc::new(RuleEngine::default());
    let config = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(config) => Some((path, config)),
            Err(err) => {
                println!("{err}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let rules_dir = config
        .as_ref()
        .map_or(args.rules_dir.clone(), |(_, config)| {
            config.rules_dir.clone()
        });
    let files = if args.rules.is_empty() {
        match rule_files(&rules_dir) {
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
    let mut compiled = Vec::new();
    for file in &files {
        match Rule::load(&engine, file) {
            Ok(rule) => {
                println!("{}: ok ({})", file.display(), describe_rule(&rule));
                compiled.push(rule);
            }
            Err(err) => {
                errors += 1;
                println!("{err}");
            }
        }
    }
    println!("\n{} rules checked, {errors} with errors", files.len());
    if errors > 0 {
        return ExitCode::FAILURE;
    }
    if let Some((path, config)) = config {
        let set = RuleSet::new(engine, compiled);
        if let Err(err) = config.check_bindings(path, &set) {
            println!("{err}");
            return ExitCode::FAILURE;
        }
        if let Err(err) = config.resolve_pins(path) {
            println!("{err}");
            return ExitCode::FAILURE;
        }
        for warning in unsupported_uses(&config, &set) {
            println!("{warning}");
        }
        let checked = tokio::runtime::Runtime::new()
            .map(|runtime| runtime.block_on(usher::timetable::list::check(&config)));
        match checked {
            Ok(Ok(warnings)) => warnings
                .iter()
                .for_each(|warning| println!("{}: warning: {warning}", path.display())),
            Ok(Err(errors)) => {
                errors
                    .iter()
                    .for_each(|error| println!("{}: {error}", path.display()));
                return ExitCode::FAILURE;
            }
            Err(err) => {
                println!("cannot check the timetables: {err}");
                return ExitCode::FAILURE;
            }
        }
        println!("{}: ok ({} rooms)", path.display(), config.rooms.len());
    }
    ExitCode::SUCCESS
}

/// Warnings for commands rules ask for that their room's platform cannot
/// carry out, each at the call in the rule's file.
fn unsupported_uses(config: &Config, set: &RuleSet) -> Vec<String> {
    let mut warnings = Vec::new();
    let rooms = config.rooms.iter().map(|room| {
        let platform = room.platform_name();
        (format!("room `{}`", room.alias), platform, &room.rules)
    });
    let discovered = config.discover.iter().filter_map(|entry| {
        let profile = config.profiles.get(&entry.profile)?;
        let whom = format!("rooms discovered as `{}`", entry.pattern);
        Some((whom, entry.platform.as_str(), &profile.rules))
    });
    for (whom, platform, bindings) in rooms.chain(discovered) {
        let kind = config.platforms[platform].kind();
        let capabilities = kind.capabilities();
        for binding in bindings {
            let Some(rule) = set.get(&binding.rule) else {
                continue;
            };
            let Ok(source) = std::fs::read_to_string(rule.path()) else {
                continue;
            };
            for used in usher::rules::uses::command_uses(&source) {
                if !capabilities.supports_verb(used.verb) {
                    warnings.push(format!(
                        "{}:{}:{}: warning: {whom} is on platform `{platform}` ({kind}), which cannot `{}`; the rule still runs and the command is audited as unsupported",
                        rule.path().display(),
                        used.line,
                        used.column,
                        used.verb
                    ));
                }
            }
        }
    }
    warnings
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

async fn timetable(args: &TimetableArgs) -> ExitCode {
    use usher::timetable::list;
    let (zone, from) = (args.zone.as_deref(), args.from.as_deref());
    let (lines, errors) = match (&args.config, &args.file) {
        (Some(path), _) => match Config::load(path) {
            Ok(config) => list::rooms(&config, zone, from, args.days).await,
            Err(err) => (Vec::new(), vec![err.to_string()]),
        },
        (None, file) => {
            let file = file.as_deref().unwrap_or(Path::new(""));
            match list::file(file, zone, from, args.days) {
                Ok(lines) => (lines, Vec::new()),
                Err(err) => (Vec::new(), vec![err.to_string()]),
            }
        }
    };
    lines.iter().for_each(|line| println!("{line}"));
    errors.iter().for_each(|error| eprintln!("{error}"));
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn definitions(dir: &std::path::Path) -> ExitCode {
    match usher::rules::docs::write_definitions(&RuleEngine::default(), dir) {
        Ok(files) => {
            for file in files {
                println!("wrote {}", file.display());
            }
            println!(
                "\nAn editor with the Rhai extension reads them when they are in the workspace."
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!(
                "error: cannot write the definitions to {}: {err}",
                dir.display()
            );
            ExitCode::FAILURE
        }
    }
}

fn new_rule(name: &str, rules_dir: &std::path::Path) -> ExitCode {
    match usher::rules::scaffold::new_rule(name, rules_dir) {
        Ok(files) => {
            for file in &files {
                println!("wrote {}", file.display());
            }
            println!(
                "\nRun its test with:\n\n    usher test {}\n\nthen make the rule and its test your own.",
                files[1].display()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn man() -> ExitCode {
    match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Colours only for a person at a terminal who has not asked for none
/// (<https://no-color.org>): never in a file, a pipe or a CI log.
fn use_colour() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

fn init_logging(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // tungstenite traces its handshake request and every frame, which carry
    // Huawei's one-shot socket token and the meeting's passwords.
    let filter = match "tungstenite=debug".parse() {
        Ok(cap) => filter.add_directive(cap),
        Err(_) => filter,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(use_colour())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
