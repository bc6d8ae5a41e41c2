//! The Prometheus endpoint: guarded by its token, valid text format, and counters that move
//! with requests.

use serde_json::json;

use crate::support::fake_providers::FakeProviders;
use crate::support::helpers::STRIPE_TEST_KEY;
use crate::support::provider_support::{STRIPE, app_with, validate};

/// Checks the Prometheus text format line by line and returns the samples.
fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            assert!(
                comment.starts_with(" HELP ") || comment.starts_with(" TYPE "),
                "bad comment: {line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample is `series value`");
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name: {line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "bad labels: {line}");
        }
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().expect("numeric value"),
        };
        samples.push((series.to_owned(), value));
    }
    samples
}

fn sample(samples: &[(String, f64)], name: &str, labels: &[&str]) -> f64 {
    samples
        .iter()
        .filter(|(s, _)| {
            s.starts_with(&format!("{name}{{")) && labels.iter().all(|l| s.contains(l))
        })
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_move_with_requests() {
    let fake = FakeProviders::start().await;
    let app = app_with(&fake, &[("METRICS_TOKEN", "metrics-token-for-tests")]).await;
    assert_eq!(
        app.client
            .get(app.url("/metrics"))
            .send()
            .await
            .expect("send")
            .status(),
        401
    );
    let scrape = || async {
        let r = app
            .client
            .get(app.url("/metrics"))
            .bearer_auth("metrics-token-for-tests")
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .expect("ct")
                .starts_with("text/plain")
        );
        parse_prometheus(&r.text().await.expect("text"))
    };
    let before = scrape().await;
    app.put_json(STRIPE, &json!({"secrets": {"secret_key": STRIPE_TEST_KEY}}))
        .await;
    fake.accept("stripe", STRIPE_TEST_KEY);
    validate(&app, STRIPE).await;
    let after = scrape().await;

    let validations = [
        "provider=\"stripe\"",
        "environment=\"sandbox\"",
        "result=\"ok\"",
    ];
    assert_eq!(
        sample(&after, "hsq_validations_total", &validations)
            - sample(&before, "hsq_validations_total", &validations),
        1.0
    );
    let puts = [
        "route=\"/api/config/integrations/{provider}/{environment}\"",
        "method=\"PUT\"",
        "status=\"201\"",
    ];
    assert!(
        sample(&after, "hsq_http_requests_total", &puts)
            - sample(&before, "hsq_http_requests_total", &puts)
            >= 1.0
    );
    assert!(
        sample(&after, "hsq_audit_writes_total", &["result=\"ok\""])
            - sample(&before, "hsq_audit_writes_total", &["result=\"ok\""])
            >= 2.0
    );
    assert!(
        after
            .iter()
            .any(|(s, _)| s.starts_with("hsq_circuit_breaker_state{"))
    );
    assert!(
        after
            .iter()
            .any(|(s, _)| s.starts_with("hsq_http_request_duration_seconds_bucket{"))
    );
}
