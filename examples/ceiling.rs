//! The ceiling of the load benchmark: a bare axum server answering `GET /` with
//! `{"status":"ok"}` on the same runtime as hsq-config (tokio multi-thread, one worker per
//! core), with no middleware, database or Redis. `scripts/bench.sh` divides every case by it,
//! so a result reads as "this fraction of what axum on this machine can do at all".
//!
//! ```sh
//! cargo build --release --example ceiling
//! target/release/examples/ceiling 18080      # or PORT=18080; default 13999
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

const DEFAULT_PORT: u16 = 13999;

fn main() -> ExitCode {
    let port = match port() {
        Ok(port) => port,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    // The same runtime hsq-config's `main` builds: `Runtime::new()` is multi-thread.
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(port)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ceiling: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The port from the first argument, else `PORT`, else the default.
fn port() -> Result<u16, String> {
    let Some(value) = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORT").ok())
    else {
        return Ok(DEFAULT_PORT);
    };
    value
        .parse()
        .map_err(|_| format!("port: got {value:?}; accepts a number from 0 to 65535"))
}

async fn serve(port: u16) -> std::io::Result<()> {
    let app = Router::new().route("/", get(ok));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    eprintln!("ceiling listening on {}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

async fn ok() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}
