//! The emulators the tests run against: ferrokinesis and dynoxide (DynamoDB, for lease
//! tables) in process, and kinesis-local (kinesis-mock compiled to JavaScript, from npm) in a
//! node process of its own.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// ferrokinesis on a loopback port, stopped when dropped.
pub struct Ferrokinesis {
    /// `http://127.0.0.1:<port>` (HTTP/1.1 and h2c).
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Ferrokinesis {
    /// ferrokinesis with streams created, deleted and updated within 50 ms.
    pub async fn start() -> Self {
        Self::start_with(ferrokinesis::store::StoreOptions {
            create_stream_ms: 50,
            delete_stream_ms: 50,
            update_stream_ms: 50,
            ..Default::default()
        })
        .await
    }

    /// ferrokinesis whose SubscribeToShard sessions last `session` (five minutes on AWS).
    pub async fn with_subscriptions_of(session: Duration) -> Self {
        Self::start_with(ferrokinesis::store::StoreOptions {
            create_stream_ms: 20,
            delete_stream_ms: 50,
            update_stream_ms: 50,
            subscribe_to_shard_session_ms: u64::try_from(session.as_millis()).unwrap(),
            ..Default::default()
        })
        .await
    }

    /// ferrokinesis with these options.
    pub async fn start_with(options: ferrokinesis::store::StoreOptions) -> Self {
        let (app, _store) = ferrokinesis::create_app(options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        // Without TCP_NODELAY, each response waits for the client's delayed ACK (40 ms).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            url,
            stop: Some(stop),
        }
    }
}

impl Drop for Ferrokinesis {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// dynoxide (a DynamoDB emulator on SQLite in memory) on a loopback port, stopped when
/// dropped.
pub struct Dynoxide {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Dynoxide {
    /// An empty database.
    pub async fn start() -> Self {
        let database = dynoxide::Database::memory().expect("an in-memory database");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            dynoxide::server::serve_with_shutdown(listener, database, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            url,
            stop: Some(stop),
        }
    }
}

impl Drop for Dynoxide {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `kds local` (the `kds` binary at the path given) serving on a free loopback port, killed
/// when dropped.
pub struct KdsLocal {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    child: std::process::Child,
}

impl KdsLocal {
    /// Starts `kds local` from the binary `kds` and waits (at most 20 s) until it listens.
    pub fn start(kds: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(kds)
            .args(["local", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "kds local did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
        }
    }
}

impl Drop for KdsLocal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running kinesis-local, shared by the tests of one test binary.
pub struct KinesisLocal {
    /// `http://127.0.0.1:<port>` (HTTP/1.1).
    pub plain_url: String,
    /// `https://127.0.0.1:<port>` (a self-signed certificate; HTTP/2 by ALPN).
    pub tls_url: String,
    /// The node process is killed when this pipe closes, that is when the test binary exits.
    _lifeline: Mutex<std::process::ChildStdin>,
    /// The shell that holds node; it ends with the test binary.
    _shell: Mutex<std::process::Child>,
}

/// The version the suite is written against.
const VERSION: &str = "0.6.2";

/// kinesis-local 0.6.2 binds 0.0.0.0 and has no setting for it: this preload keeps every
/// listening socket on loopback.
const LOOPBACK_ONLY: &str = r#"const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
    const port = Number(args[0]);
    const cb = args.find((a) => typeof a === 'function');
    return cb ? listen.call(this, port, '127.0.0.1', cb) : listen.call(this, port, '127.0.0.1');
  }
  if (args[0] && typeof args[0] === 'object' && !Array.isArray(args[0])) {
    args[0] = Object.assign({}, args[0], { host: '127.0.0.1' });
  }
  return listen.apply(this, args);
};
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl KinesisLocal {
    /// The shared instance, started on first use: `None`, with a printed notice, when node is
    /// missing. When node is present, kinesis-local is installed with npm if it is not yet
    /// (into `$KDS_KINESIS_LOCAL_DIR`, default `~/.cache/kds/kinesis-local`), and any failure
    /// to install or start it fails the test.
    pub fn get() -> Option<&'static Self> {
        static INSTANCE: OnceLock<Option<KinesisLocal>> = OnceLock::new();
        INSTANCE.get_or_init(Self::start).as_ref()
    }

    fn start() -> Option<Self> {
        if Command::new("node").arg("--version").output().is_err() {
            eprintln!("notice: node is missing, so the kinesis-local interop tests are skipped");
            return None;
        }
        let dir = std::env::var_os("KDS_KINESIS_LOCAL_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                    .join(".cache/kds/kinesis-local")
            });
        let package = dir.join("node_modules/kinesis-local");
        if !package.join("main.js").exists() {
            std::fs::create_dir_all(&dir).unwrap();
            let status = Command::new("npm")
                .args([
                    "install",
                    "--silent",
                    "--no-audit",
                    "--no-fund",
                    "--no-save",
                ])
                .arg(format!("kinesis-local@{VERSION}"))
                .current_dir(&dir)
                .status()
                .expect("npm runs");
            assert!(
                status.success(),
                "npm install kinesis-local@{VERSION} failed"
            );
        }
        let preload = dir.join("loopback-only.js");
        std::fs::write(&preload, LOOPBACK_ONLY).unwrap();
        let (plain, tls) = (free_port(), free_port());
        // A shell keeps node on a leash: when the test binary exits, its stdin closes and the
        // shell kills node.
        let mut child = Command::new("sh")
            .arg("-c")
            // kinesis-local ignores SIGTERM.
            .arg(r#"node --require "$1" "$2" & node=$!; read _ignored; kill -9 "$node""#)
            .arg("kinesis-local")
            .arg(&preload)
            .arg(package.join("main.js"))
            .env("KINESIS_MOCK_CERT_PATH", package.join("server.json"))
            .env("KINESIS_MOCK_PLAIN_PORT", plain.to_string())
            .env("KINESIS_MOCK_TLS_PORT", tls.to_string())
            .env("LOG_LEVEL", "WARN")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh runs");
        let lifeline = child.stdin.take().unwrap();
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", plain)).is_err()
            || TcpStream::connect(("127.0.0.1", tls)).is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "kinesis-local did not listen on ports {plain} and {tls} within 60 s"
            );
            if let Some(status) = child.try_wait().unwrap() {
                panic!("kinesis-local exited at start: {status}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(Self {
            plain_url: format!("http://127.0.0.1:{plain}"),
            tls_url: format!("https://127.0.0.1:{tls}"),
            _lifeline: Mutex::new(lifeline),
            _shell: Mutex::new(child),
        })
    }
}
