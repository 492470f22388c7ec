//! `kds sql`: the README's `--local` example, run as written and its output compared with the
//! README's; a streaming query stopped by Ctrl-C; a pipeline stopped by Ctrl-C that flushes
//! and commits; the warning about a plain-HTTP lease table.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KDS: &str = env!("CARGO_BIN_EXE_kds");

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The README's `kds sql --local` script and the output it shows.
fn readme_example() -> (String, String) {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section = readme
        .split("### SQL\n")
        .nth(1)
        .expect("the README has a SQL section");
    let script = section
        .split("```sql\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the SQL section has a script");
    let output = section
        .split("```text\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the SQL section shows the output");
    (script.to_owned(), output.to_owned())
}

#[test]
fn the_readmes_sql_example_prints_what_the_readme_shows() {
    let (script, expected) = readme_example();
    let dir = std::env::temp_dir().join(format!("kds-sql-readme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("user_behavior.sql");
    std::fs::write(&file, &script).unwrap();
    // Any free port: --local points every table at its emulator, whatever `aws.endpoint` says.
    let output = Command::new(KDS)
        .args(["sql", "--local", "--port", "0", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), expected, "{}", text(&output.stderr));
}

/// Runs `kds sql --local` on `statements`, sends SIGINT once `ready` is on its standard error
/// or output, and returns its status, output and error text.
fn interrupted(args: &[&str], ready: &str) -> (std::process::ExitStatus, String, String) {
    let mut child = Command::new(KDS)
        .args(["sql", "--local", "--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let (seen, seen_rx) = std::sync::mpsc::channel::<String>();
    let err = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buffer = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buffer) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buffer[..n]);
            let _ = seen.send(text(&all));
        }
        text(&all)
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match seen_rx.recv_timeout(left) {
            Ok(so_far) if so_far.contains(ready) => break,
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                panic!("`{ready}` not seen in time");
            }
        }
    }
    // Let the statement run a little past its start.
    std::thread::sleep(Duration::from_secs(2));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("kds sql did not stop within 30 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status, out.join().unwrap(), err.join().unwrap())
}

const EVENTS: &str = "CREATE TABLE events (id BIGINT, k STRING) PARTITIONED BY (k)
  WITH ('connector' = 'kinesis', 'stream' = 'events', 'aws.region' = 'us-east-1',
        'scan.stream.initpos' = 'TRIM_HORIZON', 'format' = 'json');";

#[test]
fn ctrl_c_ends_a_streaming_query_with_what_it_read_printed() {
    let script = format!(
        "{EVENTS}
         INSERT INTO events SELECT value, concat('k', value % 5) FROM generate_series(1, 500);
         SELECT id FROM events WHERE id % 100 = 0;"
    );
    let (status, out, err) = interrupted(&["--output", "jsonl", "-e", &script], "registered");
    assert!(status.success(), "{err}");
    let mut ids: Vec<i64> = out
        .lines()
        .filter(|l| l.starts_with("{\"id\""))
        .map(|l| {
            let value: serde_json::Value = serde_json::from_str(l).unwrap();
            value["id"].as_i64().unwrap()
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, [100, 200, 300, 400, 500], "{out}\n{err}");
}

#[test]
fn ctrl_c_stops_a_pipeline_cleanly_with_its_positions_committed() {
    let state = std::env::temp_dir().join(format!("kds-sql-state-{}", std::process::id()));
    std::fs::create_dir_all(&state).unwrap();
    let script = format!(
        "{EVENTS}
         CREATE TABLE copies (id BIGINT, k STRING) WITH ('connector' = 'kinesis',
           'stream' = 'copies', 'aws.region' = 'us-east-1',
           'scan.stream.initpos' = 'TRIM_HORIZON', 'format' = 'json');
         INSERT INTO events SELECT value, concat('k', value % 5) FROM generate_series(1, 300);
         INSERT INTO copies SELECT id, k FROM events WHERE id > 100;"
    );
    let state_dir = state.to_str().unwrap();
    let (status, _, err) = interrupted(&["--state-dir", state_dir, "-e", &script], "registered");
    assert!(status.success(), "{err}");
    assert!(
        err.contains("pipeline read 300 rows, wrote 200"),
        "the pipeline reports what it did: {err}"
    );
    let leases: Vec<_> = std::fs::read_dir(&state).unwrap().collect();
    assert!(!leases.is_empty(), "positions committed in {state_dir}");
    let _ = std::fs::remove_dir_all(&state);
}

/// A table whose lease table is reached by plain HTTP on another machine is warned about when
/// it is registered, as `kds tail --table` warns; one on this machine is not.
#[test]
fn a_plain_http_lease_table_on_another_machine_is_warned_about() {
    let table = |endpoint: &str| {
        format!(
            "CREATE TABLE t (v STRING) WITH ('connector' = 'kinesis', 'stream' = 's', \
             'aws.region' = 'us-east-1', 'format' = 'raw', 'scan.lease.table' = 'kds-leases', \
             'scan.lease.dynamodb.endpoint' = '{endpoint}');"
        )
    };
    for (endpoint, warned) in [
        ("http://10.0.0.7:8000", true),
        ("http://127.0.0.1:8000", false),
    ] {
        let output = Command::new(KDS)
            .args(["sql", "--local", "--port", "0", "-e", &table(endpoint)])
            .output()
            .unwrap();
        let err = text(&output.stderr);
        assert!(output.status.success(), "{err}");
        assert_eq!(
            err.contains(&format!(
                "kds sql: warning: {endpoint} (DynamoDB, for leases)"
            )),
            warned,
            "{err}"
        );
    }
}
