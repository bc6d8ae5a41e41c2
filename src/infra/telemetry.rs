//! tracing set-up: JSON or pretty lines, filtered by `LOG_LEVEL`.
//!
//! JSON lines come from `json-subscriber`, not tracing-subscriber's own JSON format: the
//! latter writes a span's fields as JSON text when the span opens and parses that text back
//! for every event inside it, which made the one request-log line cost about a fifth of a
//! `/health` request (docs/benchmarks.md). The lines have the same shape.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// Installs the global subscriber. Call once, from `main` (tests capture the binary's output).
pub fn init<W>(level: &str, format: LogFormat, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let result = match format {
        LogFormat::Json => json_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_target(true)
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_target(true)
            .try_init(),
    };
    if let Err(e) = result {
        eprintln!("logging was already initialised: {e}");
    }
}
