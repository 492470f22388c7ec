//! The embedded Kinesis endpoint: ferrokinesis served on loopback (HTTP/1.1 and h2c), for
//! `kds local` and `kds demo`.

use std::net::SocketAddr;

use tokio::task::JoinHandle;

use crate::cli::LocalArgs;
use crate::failure::Failure;

/// A running emulator, stopped when dropped (open connections are cut).
pub(crate) struct Emulator {
    pub(crate) address: SocketAddr,
    served: JoinHandle<std::io::Result<()>>,
}

impl Emulator {
    /// Serves a fresh emulator on `127.0.0.1:port` (0: any free port).
    pub(crate) async fn start(port: u16) -> Result<Self, Failure> {
        let options = ferrokinesis::store::StoreOptions {
            create_stream_ms: 100,
            delete_stream_ms: 100,
            update_stream_ms: 100,
            shard_limit: 200,
            ..Default::default()
        };
        let (app, _store) = ferrokinesis::create_app(options);
        // A PutRecords body may carry 10 MiB of records, a third more in JSON's base64.
        let app = app.layer(axum::extract::DefaultBodyLimit::max(32 << 20));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| Failure::new(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
        let address = listener.local_addr()?;
        // Without TCP_NODELAY, each response waits for the client's delayed ACK (40 ms).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let served = tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { address, served })
    }

    /// The endpoint URL.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.served.abort();
    }
}

/// Runs `kds local`.
pub(crate) async fn run(args: &LocalArgs) -> Result<(), Failure> {
    let emulator = Emulator::start(args.port).await?;
    eprintln!(
        "kds local: Kinesis at {} (HTTP/1.1 and h2c; any credentials) until Ctrl-C",
        emulator.url()
    );
    crate::interrupt::interrupted().await;
    eprintln!("kds local: stopping");
    // Enhanced fan-out subscriptions stay open for minutes: they are cut, not waited for.
    drop(emulator);
    Ok(())
}
