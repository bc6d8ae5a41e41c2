//! `hsq-config`: serve | migrate | healthcheck | backup | restore | rotate-key | audit verify.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use hsq_config::app::Application;
use hsq_config::config::Settings;
use hsq_config::domain::backup::restore::Mode;
use hsq_config::domain::operator;
use hsq_config::infra::telemetry;
use hsq_config::state::AppState;
use hsq_config::store;
use tracing_appender::non_blocking::WorkerGuard;

/// jemalloc, not glibc's malloc: every request allocates and frees many small, short-lived
/// buffers across the worker threads, and glibc spent about a fifth of the CPU of an audit
/// page in malloc, free and consolidation. mimalloc was as fast but held nearly twice the
/// memory (a 62 MiB peak against jemalloc's 39; docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Configuration management for the HubSpot–Stripe–QuickBooks bridge
#[derive(Parser)]
#[command(name = "hsq-config", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Exit 0 when the local service reports ready, 1 otherwise (for container health checks).
    Healthcheck,
    /// Write a backup of every config, webhook and OAuth token (secrets stay sealed unless a
    /// passphrase is given).
    Backup {
        /// Where to write; `-` for stdout. Default: a new file in BACKUP_DIR.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Re-seal secrets under a key derived from this file's passphrase (default:
        /// BACKUP_PASSPHRASE_FILE), so the backup restores under another ENCRYPTION_KEY.
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Verify a backup file and restore it in one transaction.
    Restore {
        file: PathBuf,
        /// Report what would be created, replaced and deleted; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// merge keeps rows the file does not hold; replace deletes them.
        #[arg(long, default_value = "merge", value_parser = parse_mode)]
        mode: Mode,
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Re-seal every stored secret under the current ENCRYPTION_KEY (old keys in
    /// ENCRYPTION_KEYS_PREVIOUS); resumable.
    RotateKey {
        /// Only report how many values remain under each key id.
        #[arg(long)]
        check: bool,
        /// Values per batch; each batch is one transaction.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10000))]
        batch_size: u32,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the audit hash chain; names the first row where it breaks.
    Verify,
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    s.parse()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Healthcheck => return runtime.block_on(healthcheck()),
        Command::Serve => runtime.block_on(serve()),
        Command::Migrate => runtime.block_on(migrate()),
        Command::Backup {
            out,
            passphrase_file,
        } => runtime.block_on(async {
            let state = cli_state()?;
            let passphrase = passphrase_file
                .as_deref()
                .map(operator::read_passphrase)
                .transpose()?;
            operator::backup(&state, out.as_deref(), passphrase, &mut std::io::stdout()).await
        }),
        Command::Restore {
            file,
            dry_run,
            mode,
            passphrase_file,
        } => runtime.block_on(async {
            let state = cli_state()?;
            let passphrase = passphrase_file
                .as_deref()
                .map(operator::read_passphrase)
                .transpose()?;
            operator::restore(
                &state,
                &file,
                mode,
                dry_run,
                passphrase,
                &mut std::io::stdout(),
            )
            .await
        }),
        Command::RotateKey { check, batch_size } => runtime.block_on(async {
            let state = cli_state()?;
            operator::rotate_key(&state, check, batch_size, &mut std::io::stdout()).await
        }),
        Command::Audit {
            command: AuditCommand::Verify,
        } => runtime.block_on(async {
            let state = cli_state()?;
            operator::audit_verify(&state, &mut std::io::stdout()).await
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line that names what is wrong; the tracing log has the same.
            tracing::error!(error = %e, "hsq-config stopped with an error");
            eprintln!("hsq-config: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Log lines that may wait for the writer thread.
const LOG_QUEUE_LINES: usize = 8_192;

/// Settings for the server. Log lines go to stdout through a writer thread that writes them
/// in batches (no line is dropped: a full queue makes the logger wait), so a request never
/// waits on the pipe; the guard flushes what is queued when the process ends.
fn load_settings() -> anyhow::Result<(Settings, WorkerGuard)> {
    let settings = Settings::from_env()?;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        // The queue's default bound, 128,000 lines, let a burst of request logs hold tens of
        // MiB while the writer caught up; this bound keeps it to a few (a full queue makes
        // the logging request wait, so nothing is dropped).
        .buffered_lines_limit(LOG_QUEUE_LINES)
        // The writer thread flushes after each batch it drains: one write for many lines.
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stdout(),
        ));
    telemetry::init(&settings.log_level, settings.log_format, writer);
    Ok((settings, guard))
}

/// The state of the operator commands: their results go to stdout, so logs go to stderr.
fn cli_state() -> anyhow::Result<AppState> {
    let settings = Settings::from_env()?;
    telemetry::init(&settings.log_level, settings.log_format, std::io::stderr);
    AppState::new(settings)
}

async fn serve() -> anyhow::Result<()> {
    let (settings, _logs) = load_settings()?;
    let app = Application::build(settings).await?;
    app.run_until_stopped(shutdown_signal()).await
}

async fn migrate() -> anyhow::Result<()> {
    let (settings, _logs) = load_settings()?;
    let db = store::pool(&settings)?;
    store::MIGRATOR.run(&db).await?;
    let (latest, _) = store::migration_state(&db).await?;
    tracing::info!(version = latest, "migrations applied");
    println!("migrations applied (latest version {latest})");
    Ok(())
}

async fn healthcheck() -> ExitCode {
    let port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(13000);
    let url = format!("http://127.0.0.1:{port}/health/ready");
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(_) => return ExitCode::FAILURE,
    };
    match client.get(&url).send().await {
        Ok(r) if r.status().is_success() => ExitCode::SUCCESS,
        Ok(r) => {
            eprintln!("not ready: {url} answered {}", r.status());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("not ready: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM or ctrl-c.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received; draining");
}
