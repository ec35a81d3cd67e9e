//! Running store calls on tokio's blocking pool, so that file I/O, syncs
//! and lock waits never stall the runtime's worker threads; except on a
//! store in memory, whose calls do no I/O and are run where they are
//! awaited ([`run_on_store`]).

use std::path::Path;
use std::sync::Arc;

use crate::error::Error;
use crate::store::Store;

/// Runs `work` on `store`: on tokio's blocking pool ([`run_blocking`]) for
/// a store of files, directly for a store in memory
/// ([`Store::in_memory`]). A call on a store in memory does no file I/O
/// and never waits for a sync; it takes microseconds, less than handing it
/// to the blocking pool and waking the task again costs (two thread
/// switches: profiled in `docs/benchmarks.md`, "The cqrs-es client").
///
/// # Errors
/// As [`run_blocking`].
pub(crate) async fn run_on_store<T, F>(
    action: &'static str,
    store: &Arc<Store>,
    work: F,
) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T, Error> + Send + 'static,
{
    if store.is_in_memory() {
        return work(store);
    }
    let shared = Arc::clone(store);
    run_blocking(action, store.dir(), move || work(&shared)).await
}

/// Runs `work` on tokio's blocking pool and waits for it.
///
/// # Errors
/// What `work` returns; [`Error::InvalidArgument`] when called outside a
/// tokio runtime (instead of tokio's panic); [`Error::Io`] naming `action`
/// and `path` if the blocking task panicked or the runtime shut down before
/// it ran.
pub(crate) async fn run_blocking<T, F>(
    action: &'static str,
    path: &Path,
    work: F,
) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
        Error::InvalidArgument(format!(
            "{action} {}: the annals cqrs-es adapter runs store calls on tokio's blocking pool, \
             so it must be awaited inside a tokio runtime (as cqrs-es itself is)",
            path.display()
        ))
    })?;
    match runtime.spawn_blocking(work).await {
        Ok(result) => result,
        Err(failed) => Err(Error::Io {
            action,
            path: path.to_path_buf(),
            source: std::io::Error::other(format!("the blocking task did not complete: {failed}")),
        }),
    }
}
