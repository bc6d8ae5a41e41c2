//! Bounded polling: how a test waits for work it cannot drive a step at a time.

use std::time::Duration;

use tokio::time::Instant;

const FIRST_PAUSE: Duration = Duration::from_millis(10);
const LONGEST_PAUSE: Duration = Duration::from_millis(100);

/// Runs `check` until it returns `Some`, and returns that value. Between checks it pauses a
/// little longer each time (10 ms doubling up to 100 ms) and never past the deadline, so the
/// last check runs at `timeout`; after that it panics naming `what` and the time waited.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut pause = FIRST_PAUSE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        let now = Instant::now();
        if now >= deadline {
            panic!("gave up waiting for {what} after {:?}", now - started);
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}
