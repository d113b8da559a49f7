//! The command line: clap definitions and the dispatch from a command to the library.
//!
//! This is the only place that turns an [`Error`] into printed text and an exit code.
//! Commands parse their arguments here ("low args"), then hand validated values to the
//! modules that do the work.

use std::ffi::OsString;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};

use crate::check;
use crate::config;
use crate::diagnostic;
use crate::envfile;
use crate::error::{Error, ErrorKind, ExitCode, Result};
use crate::preview;
use crate::request::Env;
use crate::run::commands;
use crate::sim;
use crate::state::lock::Wait;

/// Declarative data integration: WDT refund stock-ins into Kingdee sales return bills, and
/// any other source→target pair described in YAML.
#[derive(Debug, Parser)]
#[command(name = "engine", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Worker threads of the commands that talk to APIs. Default: one for `run`, `retry`,
    /// `resend`, `serve` and `console` (they mostly wait for the APIs, and one thread does their
    /// work with less CPU than several), one per core for `sim`.
    #[arg(long, global = true, env = "ENGINE_THREADS", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check flows and connectors offline and report every problem at once.
    ///
    /// Exit code 0: no errors (warnings allowed); 3: errors.
    Check {
        /// Flow or connector files, or folders. Default: `mappings/` (its flows and `connectors/`).
        files: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = check::Format::Human)]
        format: check::Format,
        #[command(flatten)]
        env: EnvFile,
    },
    /// Print the exact request bodies a run would send for the given source records (offline).
    ///
    /// Bodies go to stdout; records that cannot be mapped are reported on stderr.
    /// Exit code 0: every record mapped; 1: some records failed; 2: the input cannot be read or
    /// holds no records; 3: the flow is invalid.
    Preview {
        /// The flow file.
        flow: PathBuf,
        /// Source records: a JSON array, a whole response of the source operation, or JSON
        /// Lines (`.jsonl`, `.ndjson`: one record per line).
        #[arg(long)]
        input: PathBuf,
        /// Output format: one JSON array of the bodies, or one body per line.
        #[arg(long, value_enum, default_value_t = preview::Format::Json)]
        format: preview::Format,
        #[command(flatten)]
        env: EnvFile,
    },
    /// Run a flow: read new records, map them, write them exactly once, move the cursor.
    ///
    /// Exit code 0: every record written; 1: some records were parked (see `engine failed`);
    /// 3: the flow is invalid; 4: the run stopped (credentials refused, an API unreachable);
    /// 5: another command holds the flow's lock (see `--wait`).
    Run {
        /// The flow file.
        flow: PathBuf,
        /// Fetch and map, print the request bodies that would be sent; write nothing, move no cursor.
        #[arg(long)]
        dry_run: bool,
        /// With `--dry-run`: the bodies as one JSON array, or one body per line (as `preview`).
        #[arg(long, value_enum, default_value_t = preview::Format::Json, requires = "dry_run")]
        format: preview::Format,
        /// Re-sync from this time instead of the cursor (`2024-01-01 00:00:00` Asia/Shanghai, or RFC 3339); the cursor does not move.
        #[arg(long, value_parser = parse_time)]
        since: Option<DateTime<Utc>>,
        /// Re-sync up to this time (default: now minus the flow's lag); the cursor does not move.
        #[arg(long, value_parser = parse_time)]
        until: Option<DateTime<Utc>>,
        /// Run against the built-in WDT and Kingdee sandboxes, started in this process.
        #[arg(long)]
        sandbox: bool,
        /// With `--sandbox`: keep the sandboxes running after the run, until Ctrl-C.
        #[arg(long, requires = "sandbox")]
        keep_sandbox: bool,
        /// If another command holds the flow's lock, wait for it instead of refusing (exit code
        /// 5): up to DURATION (`30s`, `10m`, `2h`), or as long as it takes without one.
        #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "forever", value_parser = parse_wait)]
        wait: Option<Wait>,
        /// Send the alerts of `alerts.yaml` even with `--dry-run` or `--sandbox` (off for those by default).
        #[arg(long, conflicts_with = "no_alerts")]
        alerts: bool,
        /// Send no alerts (see `alerts.yaml` next to the flow).
        #[arg(long)]
        no_alerts: bool,
        /// How events are logged on stderr: for people, or one JSON object per line (`event`, `flow`, `ts`, …).
        #[arg(long, value_enum, default_value_t = crate::run::progress::LogFormat::Text)]
        log_format: crate::run::progress::LogFormat,
        /// Write the run's metrics to FILE (Prometheus text, for node_exporter's textfile collector).
        #[arg(long, value_name = "FILE")]
        metrics_file: Option<PathBuf>,
        #[command(flatten)]
        state: StateDir,
        #[command(flatten)]
        env: EnvFile,
    },
    /// Show a flow's lock (who holds it), cursor, records by status and last runs.
    State {
        /// The flow file.
        flow: PathBuf,
        /// Set the cursor (`2024-01-01 00:00:00` Asia/Shanghai, or RFC 3339): the next run starts there.
        #[arg(long)]
        reset_cursor: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        state: StateDir,
        #[command(flatten)]
        env: EnvFile,
    },
    /// List a flow's parked records (rejected by the target or impossible to map) with their reasons.
    Failed {
        /// The flow file.
        flow: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        state: StateDir,
        #[command(flatten)]
        env: EnvFile,
    },
    /// Send parked records again (all of them, or the given keys), with the flow as it is now.
    ///
    /// Exit code 5: another command holds the flow's lock (see `--wait`).
    Retry {
        /// The flow file.
        flow: PathBuf,
        /// Keys of the records to retry (e.g. WDT order numbers); none means every parked record.
        keys: Vec<String>,
        /// How events are logged on stderr: for people, or one JSON object per line (`event`, `flow`, `ts`, …).
        #[arg(long, value_enum, default_value_t = crate::run::progress::LogFormat::Text)]
        log_format: crate::run::progress::LogFormat,
        /// If another command holds the flow's lock, wait for it instead of refusing (exit code
        /// 5): up to DURATION (`30s`, `10m`, `2h`), or as long as it takes without one.
        #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "forever", value_parser = parse_wait)]
        wait: Option<Wait>,
        /// Send no alerts (see `alerts.yaml` next to the flow).
        #[arg(long)]
        no_alerts: bool,
        #[command(flatten)]
        state: StateDir,
        #[command(flatten)]
        env: EnvFile,
    },
    /// Map the records already written again with the flow as it is now, and send those whose
    /// content changed (after a mapping change), printing a per-field diff of each on stdout.
    ///
    /// Needs `on_change: update` (with `target.update`) or `upsert` in the flow, except with
    /// `--dry-run`, which shows the diffs and sends nothing. Exit code 0: every change sent
    /// (or nothing changed); 1: some were parked as conflicts or cannot be mapped; 4: it
    /// stopped (an update under way stays in the ledger; the next run, retry or resend finishes
    /// it); 5: another command holds the flow's lock.
    Resend {
        /// The flow file.
        flow: PathBuf,
        /// Keys of the records to resend (e.g. WDT order numbers); none means every written record.
        keys: Vec<String>,
        /// Only records first written at or after this time (`2024-01-01 00:00:00` Asia/Shanghai, or RFC 3339).
        #[arg(long, value_parser = parse_time)]
        since: Option<DateTime<Utc>>,
        /// Only records first written before this time.
        #[arg(long, value_parser = parse_time)]
        until: Option<DateTime<Utc>>,
        /// Print what changed, send nothing.
        #[arg(long)]
        dry_run: bool,
        /// If another command holds the flow's lock, wait for it instead of refusing (exit code
        /// 5): up to DURATION (`30s`, `10m`, `2h`), or as long as it takes without one.
        #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "forever", value_parser = parse_wait)]
        wait: Option<Wait>,
        #[command(flatten)]
        state: StateDir,
        #[command(flatten)]
        env: EnvFile,
    },
    /// Serve the web console of flows (default: every flow in `mappings/`) until Ctrl-C.
    ///
    /// Prints the bound address (`http://127.0.0.1:PORT/`) on stdout. Beyond 127.0.0.1 a token
    /// is required (`--token` or `ENGINE_CONSOLE_TOKEN`). See docs/console.md.
    Console {
        /// Flow files or folders. Default: every flow in `mappings/`.
        flows: Vec<PathBuf>,
        /// The address to listen on (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:8480")]
        listen: std::net::SocketAddr,
        /// The token every request must carry (`?token=` once, then a cookie; or
        /// `Authorization: Bearer`). Required when listening beyond 127.0.0.1.
        #[arg(long, env = "ENGINE_CONSOLE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        #[command(flatten)]
        state: StateDir,
        #[command(flatten)]
        env: EnvFile,
    },
    /// Run flows on the `schedule:` their files declare, until Ctrl-C or SIGTERM.
    ///
    /// A flow without a schedule is not run. A tick whose flow another command holds is
    /// skipped; failed runs are retried later and later (10s, doubled, at most 15m). On
    /// Ctrl-C or SIGTERM no run starts, runs under way stop as `engine run` does, exit code 0.
    Serve {
        /// Flow files. Default: every flow in `mappings/`.
        flows: Vec<PathBuf>,
        /// Send no alerts (see `alerts.yaml` next to the flow).
        #[arg(long)]
        no_alerts: bool,
        /// How events are logged on stderr: for people, or one JSON object per line (`event`, `flow`, `ts`, …).
        #[arg(long, value_enum, default_value_t = crate::run::progress::LogFormat::Text)]
        log_format: crate::run::progress::LogFormat,
        /// Address of the HTTP server (`GET /metrics`). Port 0: any free port.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
        listen: std::net::SocketAddr,
        /// Bearer token every HTTP request must send; required when `--listen` is not loopback.
        #[arg(long, env = "ENGINE_SERVE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        #[command(flatten)]
        state: StateDir,
        #[command(flatten)]
        env: EnvFile,
    },
    /// Print the JSON Schema of flow, connector or alerts files (as shipped in `schemas/`).
    Schema {
        #[arg(value_enum)]
        which: SchemaKind,
    },
    /// Run the built-in sandboxes of the WDT and Kingdee APIs.
    #[command(subcommand)]
    Sim(SimCommand),
}

/// Environment variables from a file, beside the real environment.
#[derive(Debug, clap::Args)]
pub struct EnvFile {
    /// Read environment variables from FILE too (dotenv: `KEY=value` or `export KEY=value`
    /// lines, quotes, `#` comments). A variable set in the real environment wins over the
    /// file's. `engine sim all --env-file FILE` writes one for the sandboxes.
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
}

/// Where the state database lives.
#[derive(Debug, clap::Args)]
pub struct StateDir {
    /// Folder of the state database (`state.db`). Default: `.engine/` next to the flow file.
    #[arg(long, env = "ENGINE_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

impl StateDir {
    /// The folder given, else `ENGINE_STATE_DIR` of `env` (which may come from `--env-file`).
    fn resolve(self, env: &Env) -> Option<PathBuf> {
        self.state_dir
            .or_else(|| env.get("ENGINE_STATE_DIR").map(PathBuf::from))
    }
}

fn parse_wait(text: &str) -> std::result::Result<Wait, String> {
    if text == "forever" {
        return Ok(Wait::Forever);
    }
    let span = crate::time::parse_span(text)?;
    span.to_std()
        .map(Wait::UpTo)
        .map_err(|_| format!("`{text}` is not a time to wait: it must not be negative"))
}

fn parse_time(text: &str) -> std::result::Result<DateTime<Utc>, String> {
    crate::time::parse_instant(text)
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SchemaKind {
    Flow,
    Connector,
    Alerts,
}

// Parsed once per process, like `Command`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// The WDT Qimen router sandbox (`wdt.stockin.order.query.refund`).
    Wdt {
        #[command(flatten)]
        common: sim::CommonOptions,
        #[command(flatten)]
        wdt: sim::wdt::WdtOptions,
    },
    /// The Kingdee K/3 Cloud WebAPI sandbox.
    Kingdee {
        #[command(flatten)]
        common: sim::CommonOptions,
        #[command(flatten)]
        kingdee: sim::kingdee::KingdeeOptions,
    },
    /// Both sandboxes in one process.
    All {
        #[command(flatten)]
        common: sim::CommonOptions,
        #[command(flatten)]
        wdt: sim::wdt::WdtOptions,
        #[command(flatten)]
        kingdee: sim::kingdee::KingdeeOptions,
    },
}

/// The program: [`run`] on the process's arguments, behind a last-resort panic hook, so that
/// no user ever sees a Rust backtrace. A panic is a bug: it prints one
/// `error: internal error: … (please report)` line and the command exits with the fatal
/// code (4). Standard output or error closed early (`engine failed --json | head -1`) is not
/// a bug: the command stops quietly with 141 (128 + SIGPIPE), as a Unix tool does.
pub fn main() -> i32 {
    crate::allocator::configure();
    std::panic::set_hook(Box::new(last_resort));
    std::panic::catch_unwind(|| run(std::env::args_os())).unwrap_or(ExitCode::Fatal.code())
}

fn last_resort(info: &std::panic::PanicHookInfo<'_>) {
    use std::io::Write;
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message");
    if is_closed_pipe(message) {
        // Exiting here, not after unwinding: every later print would panic the same way.
        std::process::exit(ExitCode::ClosedPipe.code());
    }
    let location = info
        .location()
        .map(|at| format!("{}:{}:{}", at.file(), at.line(), at.column()));
    // A closed stderr cannot be told anything: the result is ignored.
    let _ = writeln!(
        std::io::stderr(),
        "{}",
        internal_error_line(message, location.as_deref())
    );
}

/// The one line a panic prints: its message's first line and where it happened.
fn internal_error_line(message: &str, location: Option<&str>) -> String {
    let first = message.lines().next().unwrap_or_default();
    match location {
        Some(at) => format!("error: internal error: {first} at {at} (please report)"),
        None => format!("error: internal error: {first} (please report)"),
    }
}

/// Whether a panic is `println!`/`eprintln!` meeting a closed pipe (EPIPE), as std words it.
fn is_closed_pipe(message: &str) -> bool {
    const EPIPE: &str = "(os error 32)";
    (message.starts_with("failed printing to stdout")
        || message.starts_with("failed printing to stderr"))
        && message.ends_with(EPIPE)
}

/// Run the command line `args` (including the program name) and return the exit code.
pub fn run(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::Usage.code()
            } else {
                ExitCode::Ok.code()
            };
        }
    };
    match dispatch(cli.command, cli.threads) {
        Ok(code) => code.code(),
        Err(err) => {
            diagnostic::eprint_error(&err);
            err.kind().exit_code().code()
        }
    }
}

fn dispatch(command: Command, threads: Option<u16>) -> Result<ExitCode> {
    // The flows' commands wait on APIs: one worker runs a whole pipeline (its tasks then free
    // what they allocate on the thread that allocated it, and never wake another thread).
    // The sandboxes serve many clients at once and use every core.
    let workers = workers(&command, threads);
    let runtime = || self::runtime(workers);
    match command {
        Command::Check { files, format, env } => {
            let mut outcome = check::check(&files, &env.read()?);
            Ok(check::report(&mut outcome, format))
        }
        Command::Preview {
            flow,
            input,
            format,
            env,
        } => preview::preview(&flow, &input, format, &env.read()?),
        Command::Run {
            flow,
            dry_run,
            format,
            since,
            until,
            sandbox,
            keep_sandbox,
            wait,
            alerts,
            no_alerts,
            metrics_file,
            log_format,
            state,
            env,
        } => {
            let env = env.read()?;
            let request = commands::RunRequest {
                metrics_file,
                log_format,
                flow,
                dry_run,
                bodies_format: format,
                since,
                until,
                state_dir: state.resolve(&env),
                sandbox,
                keep_sandbox,
                wait: wait.unwrap_or(Wait::No),
                // Tests and demos do not page people unless asked.
                alerts: !no_alerts && (alerts || !(dry_run || sandbox)),
            };
            runtime()?.block_on(commands::run(request, env))
        }
        Command::State {
            flow,
            reset_cursor,
            json,
            state,
            env,
        } => {
            let state_dir = state.resolve(&env.read()?);
            commands::state(&flow, state_dir.as_deref(), reset_cursor.as_deref(), json)
        }
        Command::Failed {
            flow,
            json,
            state,
            env,
        } => {
            let state_dir = state.resolve(&env.read()?);
            commands::failed(&flow, state_dir.as_deref(), json)
        }
        Command::Retry {
            flow,
            keys,
            log_format,
            wait,
            no_alerts,
            state,
            env,
        } => {
            let env = env.read()?;
            let state_dir = state.resolve(&env);
            runtime()?.block_on(commands::retry(
                &flow,
                state_dir.as_deref(),
                keys,
                wait.unwrap_or(Wait::No),
                env,
                !no_alerts,
                log_format,
            ))
        }
        Command::Resend {
            flow,
            keys,
            since,
            until,
            dry_run,
            wait,
            state,
            env,
        } => {
            let env = env.read()?;
            let state_dir = state.resolve(&env);
            let request = crate::run::resend::Request {
                keys,
                since,
                until,
                dry_run,
            };
            runtime()?.block_on(commands::resend(
                &flow,
                state_dir.as_deref(),
                request,
                wait.unwrap_or(Wait::No),
                env,
            ))
        }
        Command::Console {
            flows,
            listen,
            token,
            state,
            env,
        } => {
            let env = env.read()?;
            let console = crate::console::ConsoleState {
                flows: check::flow_files(&flows),
                state_dir: state.resolve(&env),
                token: token
                    .or_else(|| env.get("ENGINE_CONSOLE_TOKEN").cloned())
                    .map(|t| std::sync::Arc::new(crate::secret::Secret::new(t))),
                env: std::sync::Arc::new(env),
            };
            runtime()?.block_on(crate::console::serve(console, listen))
        }
        Command::Serve {
            flows,
            no_alerts,
            listen,
            token,
            log_format,
            state,
            env,
        } => {
            let env = env.read()?;
            let request = crate::serve::ServeRequest {
                flows,
                state_dir: state.resolve(&env),
                alerts: !no_alerts,
                listen,
                token: token.map(crate::secret::Secret::new),
                log_format,
            };
            runtime()?.block_on(crate::serve::serve(request, env))
        }
        Command::Schema { which } => {
            let schema = match which {
                SchemaKind::Flow => config::flow_schema().clone(),
                SchemaKind::Connector => config::connector_schema().clone(),
                SchemaKind::Alerts => crate::alert::alerts_schema(),
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).expect("schemas serialise")
            );
            Ok(ExitCode::Ok)
        }
        Command::Sim(which) => runtime()?.block_on(run_sim(which)),
    }
}

impl EnvFile {
    /// The process environment, read once at the edge, with the file's variables added where
    /// the process has none. Names (never values) the process overrides are noted on stderr.
    fn read(&self) -> Result<Env> {
        let process: Env = std::env::vars().collect();
        let Some(path) = &self.env_file else {
            return Ok(process);
        };
        let (env, overridden) = envfile::merge(process, envfile::load(path)?);
        if !overridden.is_empty() {
            let names: Vec<String> = overridden.iter().map(|name| format!("`{name}`")).collect();
            eprintln!(
                "note: {} from the environment {} over `{}`",
                names.join(", "),
                if names.len() == 1 { "wins" } else { "win" },
                path.display()
            );
        }
        Ok(env)
    }
}

/// The worker threads `command` runs on: `threads` if given, else one per core for the
/// sandboxes and one for everything else.
fn workers(command: &Command, threads: Option<u16>) -> usize {
    match (threads, command) {
        (Some(threads), _) => usize::from(threads),
        (None, Command::Sim(_)) => std::thread::available_parallelism().map_or(1, usize::from),
        (None, _) => 1,
    }
}

/// An async runtime with `threads` worker threads (blocking work, such as reading a file
/// source, has its own pool).
fn runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(|err| Error::new(ErrorKind::Io, "cannot start the async runtime").with_source(err))
}

async fn run_sim(which: SimCommand) -> Result<ExitCode> {
    let sandboxes = match &which {
        SimCommand::Wdt { common, wdt } => sim::Sandboxes::start(common, Some(wdt), None).await?,
        SimCommand::Kingdee { common, kingdee } => {
            sim::Sandboxes::start(common, None, Some(kingdee)).await?
        }
        SimCommand::All {
            common,
            wdt,
            kingdee,
        } => sim::Sandboxes::start(common, Some(wdt), Some(kingdee)).await?,
    };
    let common = match &which {
        SimCommand::Wdt { common, .. }
        | SimCommand::Kingdee { common, .. }
        | SimCommand::All { common, .. } => common,
    };
    if let Some(path) = &common.env_file {
        envfile::write(path, &sandboxes.env())?;
    }
    println!("{}", sandboxes.env_json_line());
    match &common.env_file {
        Some(path) => eprintln!(
            "sandboxes running; their variables are in `{}` for `--env-file`; press Ctrl-C to stop",
            path.display()
        ),
        None => eprintln!("sandboxes running; press Ctrl-C to stop"),
    }
    shutdown_signal().await;
    if let Some(path) = &common.env_file {
        envfile::remove(path);
    }
    Ok(ExitCode::Ok)
}

/// Resolve on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_one_line_with_its_message_and_place() {
        for (message, location, line) in [
            (
                "index out of bounds\nmore detail",
                Some("src/source/window.rs:10:5"),
                "error: internal error: index out of bounds at src/source/window.rs:10:5 (please report)",
            ),
            ("", None, "error: internal error:  (please report)"),
        ] {
            assert_eq!(internal_error_line(message, location), line);
        }
    }

    #[test]
    fn threads_are_given_before_or_after_the_command_and_never_zero() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|cli| cli.threads);
        assert_eq!(parse(&["engine", "run", "f.yaml"]).unwrap(), None);
        assert_eq!(
            parse(&["engine", "--threads", "4", "run", "f.yaml"]).unwrap(),
            Some(4)
        );
        assert_eq!(
            parse(&["engine", "sim", "all", "--threads", "2"]).unwrap(),
            Some(2)
        );
        let zero = parse(&["engine", "run", "f.yaml", "--threads", "0"]).unwrap_err();
        assert!(zero.to_string().contains("--threads"), "{zero}");
    }

    #[test]
    fn a_run_has_one_worker_the_sandboxes_one_per_core_unless_told() {
        let workers_of = |args: &[&str]| {
            let cli = Cli::try_parse_from(args).unwrap();
            let workers = workers(&cli.command, cli.threads);
            let runtime = runtime(workers).unwrap();
            runtime.metrics().num_workers()
        };
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(workers_of(&["engine", "run", "f.yaml"]), 1);
        assert_eq!(workers_of(&["engine", "retry", "f.yaml"]), 1);
        assert_eq!(workers_of(&["engine", "sim", "all"]), cores);
        assert_eq!(
            workers_of(&["engine", "run", "f.yaml", "--threads", "3"]),
            3
        );
        assert_eq!(workers_of(&["engine", "--threads", "2", "sim", "all"]), 2);
    }

    #[test]
    fn only_a_print_to_a_closed_pipe_counts_as_a_closed_pipe() {
        for (message, closed) in [
            ("failed printing to stdout: Broken pipe (os error 32)", true),
            ("failed printing to stderr: Broken pipe (os error 32)", true),
            (
                "failed printing to stdout: No space left on device (os error 28)",
                false,
            ),
            ("called `Option::unwrap()` on a `None` value", false),
            ("connection: Broken pipe (os error 32)", false),
        ] {
            assert_eq!(is_closed_pipe(message), closed, "{message}");
        }
    }
}
