//! `-o s3://bucket/prefix` against a real S3 server on loopback.
//!
//! The server is `s3s-fs` (the s3s project's S3 server over a directory,
//! from crates.io; `scripts/setup.sh --test` installs it into ~/.cargo/bin).
//! Garage and RustFS were tried first: RustFS 1.0.1 (the only recent
//! release) needs Rust 1.98 and the toolchain here is 1.95; `cargo install
//! garage` (2.5.0) had built 99 of its crates after the 15-minute time box
//! on this shared 2-core machine, too long for a setup step. s3s-fs 0.14.1
//! (the newest that builds on 1.95) took 18.5 min there (`-j1`, load 8-10)
//! and speaks the S3 wire protocol: SigV4, ListObjectsV2, multipart uploads,
//! which is what flowtrail's uploader (object_store) uses. Its one quirk:
//! a HEAD on a "directory" prefix answers 500, so the reader lists files.
//!
//! Objects are read back with pyarrow's S3 filesystem (DuckDB's httpfs
//! extension cannot be downloaded here), the rows compared exactly with a
//! local `-o DIR` replay, and DuckDB answers top talkers over the pyarrow
//! dataset. The flowtrail binary is the one `cargo build -p flowtrail` made.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use flowtrail_tests::{read_kind, root, Scratch};

const ACCESS: &str = "flowtrail-test";
const SECRET: &str = "flowtrail-test-secret";
const BUCKET: &str = "lake";
const PREFIX: &str = "fleet/node-a";

fn flowtrail_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    let p = target.join("debug/flowtrail");
    assert!(p.exists(), "{} missing: run `cargo build -p flowtrail` first (scripts/test.sh does)", p.display());
    p
}

fn s3s_fs_bin() -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let p = home.join(".cargo/bin/s3s-fs");
    assert!(p.exists(), "{} missing: scripts/setup.sh --test installs it", p.display());
    p
}

/// A port nobody listens on (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind").local_addr().expect("addr").port()
}

/// The S3 server, killed on drop (also when the test fails).
struct Server {
    child: Child,
    endpoint: String,
    _data: Scratch,
}

impl Server {
    fn start() -> Server {
        let data = Scratch::new("s3data");
        // A bucket of s3s-fs is a directory of its root.
        std::fs::create_dir_all(data.0.join(BUCKET)).expect("bucket dir");
        let port = free_port();
        let child = Command::new(s3s_fs_bin())
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", ACCESS, "--secret-key", SECRET])
            .arg(&data.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs starts");
        let server = Server { child, endpoint: format!("http://127.0.0.1:{port}"), _data: data };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pcaps() -> Vec<PathBuf> {
    let r = root();
    vec![r.join("pcaps/http_keepalive.pcap"), r.join("pcaps/dns_udp.pcap"), r.join("pcaps/http_errors.pcap")]
}

/// Runs `flowtrail replay` of the test pcaps with `args`, credentials in the environment.
fn replay(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(flowtrail_bin());
    cmd.arg("replay").args(pcaps()).args(["-w", "2", "--no-progress"]).args(args);
    for k in ["AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"] {
        cmd.env_remove(k);
    }
    cmd.env("AWS_ACCESS_KEY_ID", ACCESS).env("AWS_SECRET_ACCESS_KEY", SECRET).env("AWS_REGION", "us-east-1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("flowtrail runs")
}

fn python(args: &[&str]) -> String {
    let script = root().join("tests/scripts/s3_read.py");
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", ACCESS)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "s3_read.py {args:?} failed (scripts/setup.sh --test installs pyarrow): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("summary json")).expect("valid json")
}

/// `prefix/<kind>/date=YYYY-MM-DD/hour=HH/part-<run>-NNNNN.parquet` or `prefix/runs/<run>.json`.
fn well_placed(key: &str, run: &str) -> bool {
    let Some(rest) = key.strip_prefix(&format!("{PREFIX}/")) else { return false };
    if rest == format!("runs/{run}.json") {
        return true;
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let [kind, date, hour, name] = parts[..] else { return false };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let date_ok = date.strip_prefix("date=").is_some_and(|d| {
        let f: Vec<&str> = d.split('-').collect();
        f.len() == 3 && f[0].len() == 4 && f[1].len() == 2 && f[2].len() == 2 && f.iter().all(|x| digits(x))
    });
    let hour_ok = hour.strip_prefix("hour=").is_some_and(|h| h.len() == 2 && digits(h));
    let name_ok = name
        .strip_prefix(&format!("part-{run}-"))
        .and_then(|n| n.strip_suffix(".parquet"))
        .is_some_and(|n| n.len() == 5 && digits(n));
    ["flows", "calls", "nat_paths"].contains(&kind) && date_ok && hour_ok && name_ok
}

#[test]
fn replay_to_s3_writes_the_same_dataset_as_a_local_replay() {
    let server = Server::start();
    let scratch = Scratch::new("s3out");
    let (local, staging, fetched) = (scratch.0.join("local"), scratch.0.join("staging"), scratch.0.join("fetched"));
    let summary = scratch.0.join("summary.json");
    let run = "s3run";

    let out = replay(&["-o", local.to_str().unwrap(), "--run-id", run], &[]);
    assert!(out.status.success(), "local replay: {}", String::from_utf8_lossy(&out.stderr));

    let url = format!("s3://{BUCKET}/{PREFIX}");
    let out = replay(
        &[
            "-o",
            &url,
            "--run-id",
            run,
            "--staging",
            staging.to_str().unwrap(),
            "--s3-endpoint",
            &server.endpoint,
            "--summary-json",
            summary.to_str().unwrap(),
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "s3 replay failed: {stderr}");
    assert!(!staging.exists(), "staging is removed once everything is uploaded");

    // Every object is whole and in the hive layout; the run's summary is there.
    let listing = python(&["fetch", &server.endpoint, BUCKET, PREFIX, fetched.to_str().unwrap()]);
    let objects: Vec<(String, u64)> = listing
        .lines()
        .map(|l| {
            let (k, s) = l.split_once('\t').expect("key\tsize");
            (k.to_string(), s.parse().expect("size"))
        })
        .collect();
    for kind in ["flows", "calls"] {
        assert!(objects.iter().any(|(k, _)| k.starts_with(&format!("{PREFIX}/{kind}/"))), "no {kind}: {listing}");
    }
    for (key, _) in &objects {
        assert!(!key.contains(".inprogress"), "partial object {key}");
        assert!(well_placed(key, run), "object outside the layout: {key}");
    }
    assert!(objects.iter().any(|(k, _)| k == &format!("{PREFIX}/runs/{run}.json")));
    // The same files as the local run, path for path.
    let mut local_files = Vec::new();
    for kind in ["flows", "calls", "nat_paths", "runs"] {
        let mut stack = vec![local.join(kind)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else {
                    let rel = e.path().strip_prefix(&local).unwrap().to_string_lossy().into_owned();
                    local_files.push(format!("{PREFIX}/{rel}"));
                }
            }
        }
    }
    local_files.sort();
    let keys: Vec<String> = objects.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys, local_files, "object keys differ from the local run's files");

    // The exact same rows, every column.
    for kind in ["flows", "calls", "nat_paths"] {
        let (a, b) = (read_kind(&local, kind), read_kind(&fetched, kind));
        assert!(!a.rows.is_empty() || kind == "nat_paths", "{kind}: no rows in the local run");
        assert_eq!(a.to_tsv(), b.to_tsv(), "{kind} read back from S3 differ from the local run");
    }

    // Counts: the summary printed/--summary-json counts every object, the
    // uploaded run summary every object but itself.
    let s = json(&summary);
    let total: u64 = objects.iter().map(|(_, n)| n).sum();
    assert_eq!(s["uploaded_files"].as_u64(), Some(objects.len() as u64), "{s}");
    assert_eq!(s["uploaded_bytes"].as_u64(), Some(total));
    assert_eq!(s["upload_failed_files"].as_u64(), Some(0));
    assert_eq!(s["upload_target"].as_str(), Some(url.as_str()));
    let uploaded = json(&fetched.join(format!("runs/{run}.json")));
    assert_eq!(uploaded["uploaded_files"].as_u64(), Some(objects.len() as u64 - 1));
    assert_eq!(uploaded["rows_written"], s["rows_written"]);
    let flows = read_kind(&local, "flows");
    assert_eq!(s["rows_written"].as_u64(), Some(flows.rows.len() as u64));

    // DuckDB over the pyarrow dataset (hive partitions) answers top talkers
    // as the rows read here do.
    let top = python(&["top", &server.endpoint, BUCKET, PREFIX]);
    let (ip, cb, sb) = (flows.col("client_ip"), flows.col("client_bytes"), flows.col("server_bytes"));
    let mut by_client = std::collections::BTreeMap::<String, u64>::new();
    for r in &flows.rows {
        *by_client.entry(r[ip].clone()).or_default() += r[cb].parse::<u64>().unwrap() + r[sb].parse::<u64>().unwrap();
    }
    let mut ranked: Vec<(String, u64)> = by_client.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut expected: String = ranked.iter().take(5).map(|(ip, b)| format!("{ip}\t{b}\n")).collect();
    expected.push_str(&format!("rows\t{}\n", flows.rows.len()));
    assert_eq!(top, expected, "DuckDB over S3 disagrees with the local rows");
}

#[test]
fn unreachable_store_keeps_whole_files_and_fails_the_run() {
    let scratch = Scratch::new("s3down");
    let staging = scratch.0.join("staging");
    let summary = scratch.0.join("summary.json");
    let run = "s3down";
    // Nothing listens there: every connection is refused. The endpoint
    // comes from the environment this time.
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let out = replay(
        &[
            "-o",
            &format!("s3://{BUCKET}/{PREFIX}"),
            "--run-id",
            run,
            "--staging",
            staging.to_str().unwrap(),
            "--upload-attempts",
            "2",
            "--upload-backoff",
            "10ms",
            "--summary-json",
            summary.to_str().unwrap(),
        ],
        &[("AWS_ENDPOINT_URL", &endpoint)],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "exit code 3 when uploads failed: {stderr}");
    eprintln!("failed run took {:.1} s", started.elapsed().as_secs_f64());

    let s = json(&summary);
    let failed: Vec<PathBuf> = s["upload_failed_paths"]
        .as_array()
        .expect("paths")
        .iter()
        .map(|p| PathBuf::from(p.as_str().unwrap()))
        .collect();
    assert_eq!(s["upload_failed_files"].as_u64(), Some(failed.len() as u64));
    assert_eq!(s["uploaded_files"].as_u64(), Some(0));
    // Every file the run wrote failed, the run summary last; each is named
    // in the log and still in staging.
    let files_written = s["files_written"].as_u64().unwrap() + s["call_files_written"].as_u64().unwrap();
    assert!(failed.len() as u64 > files_written, "{s}");
    assert_eq!(failed.last().unwrap(), &staging.join(format!("runs/{run}.json")));
    let mut bytes = 0;
    for p in &failed {
        assert!(p.starts_with(&staging) && p.is_file(), "{} not kept", p.display());
        assert!(stderr.contains(&p.display().to_string()), "{} not in the log", p.display());
        bytes += std::fs::metadata(p).unwrap().len();
    }
    assert_eq!(s["upload_failed_bytes"].as_u64(), Some(bytes));
    // Whole files: the staged Parquet reads back completely.
    assert_eq!(read_kind(&staging, "flows").rows.len() as u64, s["rows_written"].as_u64().unwrap());
    assert_eq!(read_kind(&staging, "calls").rows.len() as u64, s["call_rows_written"].as_u64().unwrap());
    let staged_summary = json(&staging.join(format!("runs/{run}.json")));
    assert_eq!(staged_summary["rows_written"], s["rows_written"]);
}

/// A file above one part goes up as a multipart upload and comes back whole.
#[test]
fn large_file_goes_up_in_parts_and_whole() {
    use flowtrail::sink::object::{Target, UploadConfig, Uploader, PART_SIZE};
    let server = Server::start();
    let scratch = Scratch::new("s3big");
    let staging = scratch.0.join("staging");
    let dir = staging.join("flows/date=2024-01-01/hour=00");
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("part-big-00000.parquet");
    // 2.5 parts of bytes that differ from part to part.
    let data: Vec<u8> = (0..PART_SIZE * 5 / 2).map(|i| (i / 4099 % 251) as u8 ^ (i as u8)).collect();
    std::fs::write(&big, &data).unwrap();

    std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET);
    std::env::set_var("AWS_REGION", "us-east-1");
    let target = Target::parse(&format!("s3://{BUCKET}/big")).unwrap().unwrap();
    let cfg = UploadConfig {
        endpoint: Some(server.endpoint.clone()),
        attempts: 2,
        backoff: Duration::from_millis(10),
        defer_delete: false,
    };
    let up = Uploader::start(&target, &staging, cfg).expect("uploader");
    up.queue().push(&big);
    let stats = up.finish("big");
    assert_eq!((stats.files, stats.bytes, stats.failed_files), (1, data.len() as u64, 0), "{stats:?}");
    assert!(!big.exists(), "uploaded file is deleted from staging");

    let fetched = scratch.0.join("fetched");
    let listing = python(&["fetch", &server.endpoint, BUCKET, "big", fetched.to_str().unwrap()]);
    assert_eq!(listing, format!("big/flows/date=2024-01-01/hour=00/part-big-00000.parquet\t{}\n", data.len()));
    let back = std::fs::read(fetched.join("flows/date=2024-01-01/hour=00/part-big-00000.parquet")).unwrap();
    assert!(back == data, "the object differs from the file");
}
