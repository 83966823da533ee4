//! `sluice`: PostgreSQL change data capture to Kafka.

mod admin;
mod check;
mod config;
mod metrics;
mod pipeline;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

/// Exit status for configuration errors (sysexits EX_CONFIG).
const EXIT_CONFIG: u8 = 78;
/// Exit status for a permanent runtime error.
const EXIT_FAILURE: u8 = 1;
/// Exit status when another instance holds the slot or took over the transactional.id.
const EXIT_OTHER_INSTANCE: u8 = 75;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "PostgreSQL change data capture to Kafka, exactly once"
)]
struct Cli {
    /// Log output format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty, env = "SLUICE_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Json,
    Pretty,
}

#[derive(Subcommand)]
enum Command {
    /// Stream changes from PostgreSQL to Kafka.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run only the schema registry (its `schema_registry` section).
    Registry {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check a configuration file and exit.
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Preflight: check PostgreSQL, Kafka and the registry as the configuration uses
    /// them, and print each problem with its fix (exit 0 all pass, 1 a check failed).
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print the SQL that installs the DDL capture event trigger (run it once as a
    /// superuser in the source database, for `source.postgres.ddl_capture: true`).
    DdlCaptureSql,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rdkafka=warn"));
    // Colours only on a terminal: not as escape codes in log files and collectors.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Pretty => builder.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let config = match &cli.command {
        Command::Run { config }
        | Command::Registry { config }
        | Command::CheckConfig { config }
        | Command::Check { config } => config,
        Command::DdlCaptureSql => {
            print!("{}", sluice_postgres::ddl::install_sql());
            return ExitCode::SUCCESS;
        }
    };
    let cfg = match config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sluice: invalid configuration in {}: {e}", config.display());
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Command::Run { .. } = cli.command {
        if let Err(e) = cfg.require_pipeline() {
            eprintln!("sluice: invalid configuration in {}: {e}", config.display());
            return ExitCode::from(EXIT_CONFIG);
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sluice: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let result = rt.block_on(async move {
        let shutdown = CancellationToken::new();
        spawn_signal_handler(shutdown.clone());
        match cli.command {
            Command::CheckConfig { .. } => {
                println!("configuration OK");
                Ok(())
            }
            Command::Check { .. } => {
                let results = check::run(&cfg).await;
                match check::report(&results, std::io::stdout().lock()) {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(anyhow::anyhow!("preflight checks failed")),
                    Err(e) => Err(anyhow::anyhow!("cannot print the report: {e}")),
                }
            }
            Command::Registry { .. } => pipeline::run_registry_only(&cfg, shutdown).await,
            Command::DdlCaptureSql => Ok(()),
            Command::Run { .. } => {
                let metrics = Arc::new(metrics::Metrics::new());
                pipeline::run(&cfg, metrics, shutdown).await
            }
        }
    });
    // Do not wait for lingering blocking threads (librdkafka) beyond a moment.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("stopped: {e:#}");
            eprintln!("sluice: {e:#}");
            let other = e
                .downcast_ref::<pipeline::PipelineError>()
                .is_some_and(pipeline::PipelineError::other_instance);
            ExitCode::from(if other {
                EXIT_OTHER_INSTANCE
            } else {
                EXIT_FAILURE
            })
        }
    }
}

fn spawn_signal_handler(shutdown: CancellationToken) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::warn!("cannot install signal handlers");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
        shutdown.cancel();
    });
}
