//! `kds stream …`, `kds consumer …` and `kds completions` end to end, against the embedded
//! emulator (`kds local`) and npm kinesis-local: each subcommand's JSON and text output, its
//! bad input (one line on stderr, exit status 2 for usage and 1 for failures), and the README's
//! kinesis-local walkthrough run line by line.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kds_test_support as support;
use kds_test_support::KdsLocal;
use serde_json::Value;

const KDS: &str = env!("CARGO_BIN_EXE_kds");

/// Runs `kds --endpoint URL ARGS…` (at most two minutes).
fn run(url: &str, args: &[&str]) -> Output {
    let mut child = Command::new(KDS)
        .args(["--endpoint", url])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("kds {args:?} ran past two minutes");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn text(output: &[u8]) -> String {
    String::from_utf8_lossy(output).into_owned()
}

/// Runs a command that must succeed and print one JSON document.
fn json(url: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let output = run(url, &all);
    assert!(
        output.status.success(),
        "kds {args:?}: {}",
        text(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "kds {args:?} printed no JSON ({e}): {}",
            text(&output.stdout)
        )
    })
}

/// Runs a command that must fail with `status` and one line on stderr containing `says`.
fn fails(url: &str, args: &[&str], status: i32, says: &str) {
    let output = run(url, args);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(status), "kds {args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("kds: "), "{stderr}");
    assert!(
        stderr.contains(says),
        "kds {args:?}: `{says}` not in {stderr}"
    );
}

fn shards(description: &Value) -> Vec<Value> {
    description["shards"].as_array().unwrap().clone()
}

/// Every subcommand on one endpoint.
fn stream_life(url: &str, stream: &str) {
    // Create, list, describe.
    let created = json(
        url,
        &["stream", "create", stream, "--shards", "2", "--wait"],
    );
    assert_eq!(created["status"], "ACTIVE");
    assert_eq!(created["open_shard_count"], 2);
    let listed = json(url, &["stream", "list"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["stream_name"] == stream && s["status"] == "ACTIVE"),
        "{listed}"
    );
    let described = json(url, &["stream", "describe", stream]);
    let first = shards(&described);
    assert_eq!(first.len(), 2);
    assert_eq!(first[0]["starting_hash_key"], "0");
    assert_eq!(
        first[1]["ending_hash_key"],
        u128::MAX.to_string(),
        "the two shards cover the hash key space"
    );
    assert!(first.iter().all(|s| s["state"] == "open"));
    // Text: aligned, a header and a line per shard.
    let output = run(url, &["stream", "describe", stream]);
    assert!(output.status.success());
    let lines = text(&output.stdout);
    assert!(
        lines.contains("SHARD") && lines.contains("FIRST HASH KEY"),
        "{lines}"
    );
    assert!(
        lines.contains(first[0]["shard_id"].as_str().unwrap()),
        "{lines}"
    );
    // Split at the middle, merge the children back.
    let parent = first[0]["shard_id"].as_str().unwrap().to_owned();
    let split = json(url, &["stream", "split", stream, &parent, "--wait"]);
    let after_split = shards(&split);
    let children: Vec<&Value> = after_split
        .iter()
        .filter(|s| s["parent_shard_id"] == parent.as_str())
        .collect();
    assert_eq!(children.len(), 2, "{split}");
    let middle = (u128::MAX / 2 / 2 + 1).to_string();
    assert_eq!(
        children[1]["starting_hash_key"], middle,
        "split at the middle"
    );
    assert!(
        after_split
            .iter()
            .any(|s| s["shard_id"] == parent.as_str() && s["state"] == "closed")
    );
    let (low, high) = (
        children[0]["shard_id"].as_str().unwrap().to_owned(),
        children[1]["shard_id"].as_str().unwrap().to_owned(),
    );
    let merged = json(url, &["stream", "merge", stream, &low, &high, "--wait"]);
    assert!(
        shards(&merged)
            .iter()
            .any(|s| s["parent_shard_id"] == low.as_str()
                && s["adjacent_parent_shard_id"] == high.as_str()),
        "{merged}"
    );
    // Scale to four open shards.
    let scaled = json(url, &["stream", "scale", stream, "--shards", "4", "--wait"]);
    assert_eq!(scaled["open_shard_count"], 4, "{scaled}");
    // Retention up and down.
    let kept = json(url, &["stream", "retention", stream, "48"]);
    assert_eq!(
        (
            kept["retention_period_hours"].as_i64(),
            kept["was"].as_i64()
        ),
        (Some(48), Some(24))
    );
    assert_eq!(
        json(url, &["stream", "describe", stream])["retention_period_hours"],
        48
    );
    json(url, &["stream", "retention", stream, "24"]);
    // Consumers.
    let registered = json(url, &["consumer", "register", stream, "reader", "--wait"]);
    assert_eq!(registered["status"], "ACTIVE");
    let consumers = json(url, &["consumer", "list", stream]);
    assert_eq!(consumers.as_array().unwrap().len(), 1, "{consumers}");
    assert_eq!(consumers[0]["consumer_name"], "reader");
    let output = run(url, &["consumer", "list", stream]);
    assert!(
        text(&output.stdout).starts_with("CONSUMER"),
        "{}",
        text(&output.stdout)
    );
    json(url, &["consumer", "deregister", stream, "reader", "--wait"]);
    assert_eq!(
        json(url, &["consumer", "list", stream]),
        Value::Array(Vec::new())
    );
    // Bad input.
    fails(
        url,
        &["stream", "describe", "no-such-stream"],
        1,
        "no-such-stream",
    );
    fails(
        url,
        &["stream", "split", stream, "shardId-000000000099"],
        1,
        "shardId-000000000099",
    );
    fails(
        url,
        &["stream", "split", stream, "not a shard"],
        2,
        "bad shard id",
    );
    fails(url, &["stream", "create", "zero", "--shards", "0"], 2, "0");
    fails(url, &["stream", "retention", stream, "5"], 2, "5");
    fails(
        url,
        &["consumer", "register", "no-such-stream", "c"],
        1,
        "no-such-stream",
    );
    // Delete.
    let deleted = json(url, &["stream", "delete", stream, "--wait"]);
    assert_eq!(deleted["deleted"], true);
    fails(url, &["stream", "describe", stream], 1, stream);
}

#[test]
fn a_streams_life_on_the_embedded_emulator() {
    let local = KdsLocal::start(KDS);
    stream_life(&local.url, "life");
}

#[test]
fn a_streams_life_on_kinesis_local() {
    let Some(local) = support::KinesisLocal::get() else {
        return;
    };
    stream_life(&local.plain_url, &format!("life-{}", std::process::id()));
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let output = Command::new(KDS)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(output.status.success(), "{shell}");
        let script = text(&output.stdout);
        assert!(
            script.contains("kds") && script.contains("stream"),
            "{shell}: {script}"
        );
    }
    let output = Command::new(KDS)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

/// The README's kinesis-local walkthrough, run line by line (its ports replaced by the test's
/// kinesis-local, its stream name made unique): only `kds`, no AWS CLI.
#[test]
fn the_readmes_kinesis_local_walkthrough_runs() {
    let Some(local) = support::KinesisLocal::get() else {
        return;
    };
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let block = readme
        .split("Against kinesis-local:\n\n```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README has the kinesis-local walkthrough");
    assert!(
        !block.contains("aws "),
        "the walkthrough needs only kds:\n{block}"
    );
    let stream = format!("readme-{}", std::process::id());
    let bin = std::path::Path::new(KDS).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = 0;
    for line in block.lines() {
        let command = line.split(" #").next().unwrap().trim();
        if command.is_empty() || command.starts_with('#') || command.starts_with("npx ") {
            continue;
        }
        let command = command
            .replace("http://127.0.0.1:4568", &local.plain_url)
            .replace("https://127.0.0.1:4567", &local.tls_url)
            .replace(" events", &format!(" {stream}"));
        let output = Command::new("sh")
            .args(["-c", &command])
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{command}: {}",
            text(&output.stderr)
        );
        ran += 1;
        if command.contains("tail") {
            // Every line written came back.
            let printed = text(&output.stdout);
            let count = printed.lines().count();
            assert_eq!(count, 1000, "{command} printed {count} lines");
        }
    }
    assert!(ran >= 4, "the walkthrough's commands ran: {ran}");
}
