//! `hsq-config`: serve | migrate | healthcheck.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use hsq_config::app::Application;
use hsq_config::config::Settings;
use hsq_config::{store, telemetry};

#[derive(Parser)]
#[command(
    name = "hsq-config",
    version,
    about = "Configuration management for the HubSpot–Stripe–QuickBooks bridge"
)]
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

fn load_settings() -> anyhow::Result<Settings> {
    let settings = Settings::from_env()?;
    telemetry::init(&settings.log_level, settings.log_format, std::io::stdout);
    Ok(settings)
}

async fn serve() -> anyhow::Result<()> {
    let settings = load_settings()?;
    let app = Application::build(settings).await?;
    app.run_until_stopped(shutdown_signal()).await
}

async fn migrate() -> anyhow::Result<()> {
    let settings = load_settings()?;
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
