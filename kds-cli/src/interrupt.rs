//! Ctrl-C and SIGTERM: how a user stops `kds local`, `kds tail` and `kds put` cleanly.

/// Resolves at the first Ctrl-C (SIGINT) or SIGTERM. Create it once and keep it pinned: the
/// signals are caught from the first poll on, also while other work runs.
pub(crate) async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
