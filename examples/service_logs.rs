//! A service that logs through annals: one line of set-up, spans whose ids
//! become correlation and causation ids, a stream per tenant, and a guard
//! that flushes on shutdown. Then read the logs as people do:
//!
//! ```text
//! cargo run --example service_logs --features tracing -- /tmp/service-logs
//! annals read /tmp/service-logs --pretty --level warn
//! annals tail /tmp/service-logs --pretty --stream-prefix tenant- --since 10m
//! ```

use std::time::Duration;

use annals::tracing::StreamKey;
use annals::{Durability, Options, Store};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "service-logs".to_string());
    // Synced every 100 ms: a crash of the machine loses at most that much;
    // a crash of the process loses nothing appended.
    let options = Options::default().durability(Durability::Periodic { interval_ms: 100 });
    let store = Store::open(&dir, options)?;

    // Each event goes to the stream named by its (or its span's) `tenant`
    // field; span openings and closings are logged too.
    let layer = annals::tracing::builder()
        .stream(StreamKey::Field("tenant"))
        .spans(true)
        .build(store);
    let guard = layer.guard(); // keep until shutdown: its drop flushes and syncs
    tracing_subscriber::registry().with(layer).init();

    for request in 0..20u64 {
        let tenant = format!("tenant-{}", request % 3);
        let span = tracing::info_span!("request", tenant = tenant.as_str(), request);
        let _entered = span.enter();
        tracing::info!(path = "/orders", "request received");
        let elapsed_ms = 5 + request * 7 % 40;
        std::thread::sleep(Duration::from_millis(1));
        if elapsed_ms > 35 {
            tracing::warn!(elapsed_ms, "slow request");
        }
        if request % 9 == 8 {
            let error = std::io::Error::other("card declined");
            tracing::error!(error = &error as &dyn std::error::Error, "payment failed");
        }
        tracing::debug!(elapsed_ms, ok = true, "request done");
    }

    let stats = guard.stats();
    drop(guard);
    println!(
        "logged {} events into {dir} ({} dropped, {} refused); read them with:\n  annals read {dir} --pretty",
        stats.written, stats.dropped, stats.failed
    );
    Ok(())
}
