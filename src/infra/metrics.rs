//! Prometheus metrics, registered once per process in the default registry.
//!
//! Labels are closed sets (route templates, providers, results), so cardinality stays small.

use std::sync::LazyLock;

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts,
    TextEncoder,
};

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    prometheus::register(Box::new(c.clone())).expect("metric registered once");
    c
}

pub static HTTP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "hsq_http_requests_total",
        "HTTP requests by route template, method and status",
        &["route", "method", "status"],
    )
});

pub static HTTP_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    let h = HistogramVec::new(
        HistogramOpts::new(
            "hsq_http_request_duration_seconds",
            "HTTP request latency by route template and method",
        )
        .buckets(vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ]),
        &["route", "method"],
    )
    .expect("valid metric definition");
    prometheus::register(Box::new(h.clone())).expect("metric registered once");
    h
});

pub static VALIDATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "hsq_validations_total",
        "Live credential validations by provider, environment and result",
        &["provider", "environment", "result"],
    )
});

pub static BREAKER_STATE: LazyLock<GaugeVec> = LazyLock::new(|| {
    let g = GaugeVec::new(
        Opts::new(
            "hsq_circuit_breaker_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open",
        ),
        &["provider", "environment"],
    )
    .expect("valid metric definition");
    prometheus::register(Box::new(g.clone())).expect("metric registered once");
    g
});

pub static OAUTH_FLOWS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "hsq_oauth_flows_total",
        "OAuth authorization flows completed, by provider and result",
        &["provider", "result"],
    )
});

pub static TOKEN_REFRESHES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "hsq_token_refreshes_total",
        "OAuth token refreshes by provider and result",
        &["provider", "result"],
    )
});

pub static AUDIT_WRITES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "hsq_audit_writes_total",
        "Audit rows written, by result",
        &["result"],
    )
});

pub static MONITOR_LAST_SUCCESS: LazyLock<IntGauge> = LazyLock::new(|| {
    let g = IntGauge::new(
        "hsq_health_monitor_last_success_timestamp_seconds",
        "Unix time of the last completed health-monitor round",
    )
    .expect("valid metric definition");
    prometheus::register(Box::new(g.clone())).expect("metric registered once");
    g
});

pub static BACKUPS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "hsq_scheduled_backups_total",
        "Scheduled backup rounds that wrote a file (ok) or failed",
        &["result"],
    )
});

pub static BACKUP_LAST_SUCCESS: LazyLock<IntGauge> = LazyLock::new(|| {
    let g = IntGauge::new(
        "hsq_backup_last_success_timestamp_seconds",
        "Unix time of this process's last successful scheduled backup",
    )
    .expect("valid metric definition");
    prometheus::register(Box::new(g.clone())).expect("metric registered once");
    g
});

pub static WEBHOOK_DELIVERIES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "hsq_webhook_attempts_total",
        "Webhook delivery attempts by outcome (delivered, retrying, failed)",
        &["outcome"],
    )
});

pub static WEBHOOK_ATTEMPT_DURATION: LazyLock<Histogram> = LazyLock::new(|| {
    let h = Histogram::with_opts(
        HistogramOpts::new(
            "hsq_webhook_attempt_duration_seconds",
            "Webhook delivery attempt latency",
        )
        .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
    )
    .expect("valid metric definition");
    prometheus::register(Box::new(h.clone())).expect("metric registered once");
    h
});

pub static WEBHOOK_QUEUE_DEPTH: LazyLock<IntGauge> = LazyLock::new(|| {
    let g = IntGauge::new(
        "hsq_webhook_pending_deliveries",
        "Webhook deliveries waiting for an attempt, as this process last counted them",
    )
    .expect("valid metric definition");
    prometheus::register(Box::new(g.clone())).expect("metric registered once");
    g
});

pub static WEBHOOK_OLDEST_PENDING: LazyLock<IntGauge> = LazyLock::new(|| {
    let g = IntGauge::new(
        "hsq_webhook_oldest_pending_seconds",
        "Age of the oldest pending webhook delivery, as this process last measured it",
    )
    .expect("valid metric definition");
    prometheus::register(Box::new(g.clone())).expect("metric registered once");
    g
});

/// Touches every metric so each appears in the output before its first event.
pub fn init() {
    LazyLock::force(&HTTP_REQUESTS);
    LazyLock::force(&HTTP_DURATION);
    LazyLock::force(&VALIDATIONS);
    LazyLock::force(&BREAKER_STATE);
    LazyLock::force(&OAUTH_FLOWS);
    LazyLock::force(&TOKEN_REFRESHES);
    LazyLock::force(&AUDIT_WRITES);
    LazyLock::force(&MONITOR_LAST_SUCCESS);
    LazyLock::force(&BACKUPS);
    LazyLock::force(&BACKUP_LAST_SUCCESS);
    LazyLock::force(&WEBHOOK_DELIVERIES);
    LazyLock::force(&WEBHOOK_ATTEMPT_DURATION);
    LazyLock::force(&WEBHOOK_QUEUE_DEPTH);
    LazyLock::force(&WEBHOOK_OLDEST_PENDING);
}

/// The text exposition of every registered metric.
pub fn render() -> String {
    let mut out = Vec::new();
    if TextEncoder::new()
        .encode(&prometheus::gather(), &mut out)
        .is_err()
    {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}
