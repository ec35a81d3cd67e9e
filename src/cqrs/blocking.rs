//! Running store calls on tokio's blocking pool, so that file I/O, syncs
//! and lock waits never stall the runtime's worker threads.

use std::path::Path;

use crate::error::Error;

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
