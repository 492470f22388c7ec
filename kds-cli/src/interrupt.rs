//! Ctrl-C and SIGTERM: how a user stops `kds local`, `kds tail` and `kds put` cleanly, and a
//! second Ctrl-C stops them at once.

/// Resolves at the first Ctrl-C (SIGINT) or SIGTERM. Create it once and keep it pinned: the
/// signals are caught from the first poll on, also while other work runs. Once it has
/// resolved, a second signal ends the process at once (exit status 130), so that a clean
/// stop that takes long (writing what is buffered, deregistering a consumer) can be cut.
pub(crate) async fn interrupted() {
    signal().await;
    eprintln!("kds: stopping (Ctrl-C again to quit at once)");
    tokio::spawn(async {
        signal().await;
        std::process::exit(130);
    });
}

async fn signal() {
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
