//! WAL streams: one thread per `postgres-cluster` asset with `wal = "stream"`, running the
//! engine's `wal_stream` (which keeps `pg_receivewal` going and stores what it receives)
//! until the daemon stops or reloads its plan.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
};

use lifeboat_engine::Engine;
use lifeboat_plan::{AssetSpec, WalMode};

/// The streams running for one plan.
#[derive(Default)]
pub(crate) struct Streams {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Streams {
    /// Starts a stream for every asset of `engine`'s plan that asks for one.
    pub(crate) fn start(engine: &Arc<Engine>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = engine
            .plan()
            .assets
            .iter()
            .filter(|a| {
                matches!(&a.spec, AssetSpec::PostgresCluster(c) if matches!(c.wal, WalMode::Stream { .. }))
            })
            .map(|a| {
                let (engine, stop, name) = (Arc::clone(engine), Arc::clone(&stop), a.name.clone());
                tracing::info!("streaming the WAL of {name}");
                std::thread::Builder::new()
                    .name(format!("wal-stream-{name}"))
                    .spawn(move || {
                        if let Err(e) = engine.wal_stream(&name, &stop) {
                            tracing::error!("wal stream {name}: {e}");
                        }
                    })
            })
            .filter_map(Result::ok)
            .collect();
        Self { stop, threads }
    }

    /// Stops every stream; each stores what it received last before its thread ends.
    pub(crate) async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}
