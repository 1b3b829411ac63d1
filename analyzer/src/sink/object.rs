//! `-o s3://bucket/prefix`: the same dataset, in S3-compatible object storage.
//!
//! Parquet files are still written whole to a local staging directory with
//! the usual write-then-rename ([`super::ParquetSink`]); every file the sink
//! closes is handed to one uploader thread through a bounded queue and put at
//! `prefix/<its path relative to staging>`, so the bucket holds the same
//! hive layout (`prefix/flows/date=…/hour=…/part-….parquet`) that a local
//! run writes, and a fleet of nodes (each its own run id) writes one dataset.
//!
//! - **Whole files only.** Files above one part go up with a multipart upload
//!   (`put_multipart` + `WriteMultipart`, [`PART_SIZE`] parts, two in
//!   flight); S3 makes the object visible only at CompleteMultipartUpload. A
//!   smaller file is one `PUT`, atomic too. A failed multipart upload is
//!   aborted, so no part lingers.
//! - **Threads.** The uploader is a tokio current-thread runtime on its own
//!   std thread; capture, parse and writer threads never touch tokio. The
//!   queue holds paths, bounded ([`QUEUE_FILES`]): when uploads fall that far
//!   behind, the writer waits (back-pressure) rather than staging files
//!   without end.
//! - **Failures.** Each request is retried by object_store (its
//!   `RetryConfig`, with our backoff), and each file as a whole up to
//!   `attempts` times with doubling backoff. A file that still fails stays in
//!   staging, is logged with its path and counted (`upload_failed_*` in the
//!   run summary, which names the paths); the run then exits with code 3.
//!   Nothing is lost silently.
//! - **Staged files** are deleted once uploaded. Deviation from "delete right
//!   after the upload": when the run's NAT pass is on, it reads the run's
//!   flows and calls back from staging when the run ends, so their deletion
//!   waits until [`Uploader::finish`] (the disk use is then that of a local
//!   run, no more). `nat_paths` files, written by that pass, and anything the
//!   queue did not see are swept from staging by `finish`.
//! - **The run summary** JSON is written to `staging/runs/<run_id>.json` and
//!   put at `prefix/runs/<run_id>.json` last, with the upload counts of the
//!   data files in it.
//!
//! Configuration is object_store's: `AmazonS3Builder::from_env()` (the usual
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_REGION`, `AWS_ENDPOINT_URL`…) then `with_url("s3://bucket")`;
//! `--s3-endpoint URL` overrides the endpoint, and plain `http://` is
//! allowed only when the endpoint is http (a local MinIO/Garage).

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjPath;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart};

/// Multipart part size (S3 wants at least 5 MiB but the last).
pub const PART_SIZE: usize = 8 << 20;
/// Closed files waiting for the uploader before the writer blocks.
pub const QUEUE_FILES: usize = 64;
/// Parts of one file in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// `s3://bucket/prefix`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub bucket: String,
    /// Without leading or trailing `/`; may be empty.
    pub prefix: String,
}

impl Target {
    /// `Some` for an `s3://` (or `s3a://`) URL, `None` for anything else (a
    /// local directory). An `s3://` URL without a bucket is an error.
    pub fn parse(out: &str) -> anyhow::Result<Option<Target>> {
        let Some(rest) = out.strip_prefix("s3://").or_else(|| out.strip_prefix("s3a://")) else {
            return Ok(None);
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        anyhow::ensure!(!bucket.is_empty(), "{out}: no bucket (want s3://bucket/prefix)");
        let prefix = prefix.trim_matches('/').to_string();
        if !prefix.is_empty() {
            ObjPath::parse(&prefix).map_err(|e| anyhow::anyhow!("{out}: bad prefix: {e}"))?;
        }
        Ok(Some(Target { bucket: bucket.to_string(), prefix }))
    }

    /// The object key of a path relative to the staging directory.
    pub fn key(&self, rel: &Path) -> anyhow::Result<ObjPath> {
        let mut key = self.prefix.clone();
        for c in rel.components() {
            let std::path::Component::Normal(s) = c else {
                anyhow::bail!("{}: not a plain relative path", rel.display());
            };
            if !key.is_empty() {
                key.push('/');
            }
            key.push_str(&s.to_string_lossy());
        }
        ObjPath::parse(&key).map_err(|e| anyhow::anyhow!("{key}: {e}"))
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// How the uploader talks to the store.
#[derive(Debug, Clone)]
pub struct UploadConfig {
    /// `--s3-endpoint`; else `AWS_ENDPOINT_URL` (read by object_store).
    pub endpoint: Option<String>,
    /// Tries per file (at least 1).
    pub attempts: u32,
    /// First wait between tries; doubles each time. Also object_store's
    /// per-request backoff.
    pub backoff: Duration,
    /// Keep uploaded files in staging until [`Uploader::finish`] (the NAT
    /// pass reads them back).
    pub defer_delete: bool,
}

impl Default for UploadConfig {
    fn default() -> Self {
        UploadConfig { endpoint: None, attempts: 4, backoff: Duration::from_secs(1), defer_delete: false }
    }
}

/// What the uploader did, for the run summary.
#[derive(Debug, Clone, Default)]
pub struct UploadStats {
    /// `s3://bucket/prefix`.
    pub target: String,
    /// The local staging directory.
    pub staging: PathBuf,
    pub files: u64,
    pub bytes: u64,
    /// Files given up after every try; they stay in staging.
    pub failed_files: u64,
    pub failed_bytes: u64,
    /// Their staged paths.
    pub failed_paths: Vec<PathBuf>,
    /// Tries that failed, including those a later try made good.
    pub retries: u64,
}

/// Hands closed files to the uploader; cheap to clone, one per sink.
#[derive(Clone)]
pub struct FileQueue {
    tx: Sender<PathBuf>,
}

impl std::fmt::Debug for FileQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileQueue")
    }
}

impl FileQueue {
    /// Queues a closed file; blocks while the queue is full. A file the
    /// uploader can no longer take (it stopped) is swept by `finish`.
    pub fn push(&self, path: &Path) {
        let _ = self.tx.send(path.to_path_buf());
    }
}

/// The uploader thread and its queue.
pub struct Uploader {
    queue: Option<FileQueue>,
    handle: std::thread::JoinHandle<Done>,
    target: Target,
    staging: PathBuf,
    store: Arc<dyn ObjectStore>,
    cfg: UploadConfig,
}

/// What the thread hands back.
struct Done {
    stats: UploadStats,
    /// Uploaded, not yet deleted (deferred deletion).
    uploaded: Vec<PathBuf>,
    /// Every file the thread saw, uploaded or failed.
    seen: HashSet<PathBuf>,
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

/// Builds the S3 client for `target`: environment first, then the URL and
/// the endpoint.
pub fn build_store(target: &Target, cfg: &UploadConfig) -> anyhow::Result<Arc<dyn ObjectStore>> {
    // reqwest is built without a crypto provider of its own (see the
    // workspace Cargo.toml): *ring* is the process default for TLS. An
    // error here only means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = AmazonS3Builder::from_env().with_url(format!("s3://{}", target.bucket));
    let endpoint = cfg.endpoint.clone().or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
    if let Some(ep) = &endpoint {
        b = b.with_endpoint(ep.clone());
        if ep.starts_with("http://") {
            b = b.with_allow_http(true);
        }
    }
    let backoff = BackoffConfig { init_backoff: cfg.backoff, max_backoff: cfg.backoff * 8, base: 2.0 };
    let retry = RetryConfig { backoff, max_retries: 2, retry_timeout: (cfg.backoff * 16).max(Duration::from_secs(1)) };
    let store = b.with_retry(retry).build().map_err(|e| anyhow::anyhow!("{target}: {e}"))?;
    Ok(Arc::new(store))
}

impl Uploader {
    /// Starts the uploader for files staged under `staging`. Fails now on a
    /// configuration the store rejects (no credentials are checked here:
    /// the first upload does that).
    pub fn start(target: &Target, staging: &Path, cfg: UploadConfig) -> anyhow::Result<Uploader> {
        std::fs::create_dir_all(staging)?;
        let store = build_store(target, &cfg)?;
        let (tx, rx) = bounded::<PathBuf>(QUEUE_FILES);
        let stats =
            UploadStats { target: target.to_string(), staging: staging.to_path_buf(), ..UploadStats::default() };
        let ctx =
            Ctx { store: Arc::clone(&store), target: target.clone(), staging: staging.to_path_buf(), cfg: cfg.clone() };
        let handle = std::thread::Builder::new().name("flowtrail-upload".into()).spawn(move || ctx.run(&rx, stats))?;
        Ok(Uploader {
            queue: Some(FileQueue { tx }),
            handle,
            target: target.clone(),
            staging: staging.to_path_buf(),
            store,
            cfg,
        })
    }

    /// The queue the sinks hand closed files to.
    #[must_use]
    pub fn queue(&self) -> FileQueue {
        self.queue.clone().expect("queue is taken only by finish")
    }

    /// Ends the run's uploads: waits for the queue, sweeps staging for this
    /// run's files the queue did not carry (`nat_paths`), deletes what was
    /// uploaded, and returns the counts. `run_id` names the run's files
    /// (`part-<run_id>-NNNNN.parquet`).
    pub fn finish(mut self, run_id: &str) -> UploadStats {
        drop(self.queue.take());
        let Done { mut stats, uploaded, mut seen } = self.handle.join().expect("uploader thread panicked");
        let ctx = Ctx { store: self.store, target: self.target, staging: self.staging, cfg: self.cfg };
        let mut rest = Vec::new();
        sweep(&ctx.staging, &format!("part-{run_id}-"), &seen, &mut rest);
        rest.sort();
        match runtime() {
            Ok(rt) => {
                for path in rest {
                    if ctx.one(&rt, &path, &mut stats) {
                        remove_staged(&path);
                    }
                    seen.insert(path);
                }
            }
            Err(e) => tracing::error!("upload: no runtime for the last files: {e}"),
        }
        for path in uploaded {
            remove_staged(&path);
        }
        stats
    }

    /// Puts one more file (the run summary) synchronously, after
    /// [`Uploader::finish`] counted the data files; `stats` counts it too.
    /// The staged file is deleted once uploaded.
    pub fn put_last(target: &Target, staging: &Path, cfg: &UploadConfig, path: &Path, stats: &mut UploadStats) {
        let store = match build_store(target, cfg) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("upload: {e}");
                return;
            }
        };
        let ctx = Ctx { store, target: target.clone(), staging: staging.to_path_buf(), cfg: cfg.clone() };
        match runtime() {
            Ok(rt) => {
                if ctx.one(&rt, path, stats) {
                    remove_staged(path);
                    prune_staging(staging);
                }
            }
            Err(e) => tracing::error!("upload: no runtime for {}: {e}", path.display()),
        }
    }
}

/// Files under `dir` (recursively) whose name starts with `prefix` and ends
/// in `.parquet`, not yet in `seen`. Hidden (in-progress) files are skipped.
fn sweep(dir: &Path, prefix: &str, seen: &HashSet<PathBuf>, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            if name != "runs" {
                sweep(&path, prefix, seen, out);
            }
        } else if name.starts_with(prefix)
            && name.ends_with(".parquet")
            && !name.starts_with('.')
            && !seen.contains(&path)
        {
            out.push(path);
        }
    }
}

fn remove_staged(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        tracing::warn!("upload: could not delete staged {}: {e}", path.display());
    }
}

/// Removes the empty partition directories the run left in staging, then
/// staging itself if empty (never anything else: `--staging` may be shared).
pub fn prune_staging(staging: &Path) {
    for kind in ["flows", "calls", "nat_paths", "runs"] {
        prune_empty(&staging.join(kind));
    }
    let _ = std::fs::remove_dir(staging);
}

/// Removes empty directories below and including `dir` (best effort).
fn prune_empty(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                prune_empty(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

struct Ctx {
    store: Arc<dyn ObjectStore>,
    target: Target,
    staging: PathBuf,
    cfg: UploadConfig,
}

impl Ctx {
    fn run(self, rx: &Receiver<PathBuf>, mut stats: UploadStats) -> Done {
        let mut done = Done { stats: UploadStats::default(), uploaded: Vec::new(), seen: HashSet::new() };
        let rt = match runtime() {
            Ok(rt) => Some(rt),
            Err(e) => {
                tracing::error!("upload: cannot start the runtime: {e}");
                None
            }
        };
        for path in rx {
            let ok = match &rt {
                Some(rt) => self.one(rt, &path, &mut stats),
                None => {
                    fail(&path, "no runtime", &mut stats);
                    false
                }
            };
            if ok {
                if self.cfg.defer_delete {
                    done.uploaded.push(path.clone());
                } else {
                    remove_staged(&path);
                }
            }
            done.seen.insert(path);
        }
        done.stats = stats;
        done
    }

    /// Uploads one staged file with retries; true when it is in the store.
    fn one(&self, rt: &tokio::runtime::Runtime, path: &Path, stats: &mut UploadStats) -> bool {
        let key = match path.strip_prefix(&self.staging).map_err(anyhow::Error::from).and_then(|r| self.target.key(r)) {
            Ok(k) => k,
            Err(e) => {
                fail(path, &e.to_string(), stats);
                return false;
            }
        };
        let attempts = self.cfg.attempts.max(1);
        let mut wait = self.cfg.backoff;
        for attempt in 1..=attempts {
            match rt.block_on(put_file(self.store.as_ref(), path, &key)) {
                Ok(bytes) => {
                    stats.files += 1;
                    stats.bytes += bytes;
                    tracing::debug!("uploaded {} ({bytes} bytes) to {}/{key}", path.display(), self.target);
                    return true;
                }
                Err(e) if attempt < attempts => {
                    stats.retries += 1;
                    tracing::warn!(
                        "upload of {} failed (try {attempt}/{attempts}), again in {wait:?}: {e:#}",
                        path.display()
                    );
                    std::thread::sleep(wait);
                    wait *= 2;
                }
                Err(e) => {
                    stats.retries += 1;
                    fail(path, &format!("{e:#}"), stats);
                }
            }
        }
        false
    }
}

fn fail(path: &Path, err: &str, stats: &mut UploadStats) {
    let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    tracing::error!("upload FAILED, file kept in staging: {} ({bytes} bytes): {err}", path.display());
    stats.failed_files += 1;
    stats.failed_bytes += bytes;
    stats.failed_paths.push(path.to_path_buf());
}

/// Puts one file whole: one `PUT` up to a part, else a multipart upload
/// streamed from disk in [`PART_SIZE`] parts. Returns the bytes put.
async fn put_file(store: &dyn ObjectStore, path: &Path, key: &ObjPath) -> anyhow::Result<u64> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len <= PART_SIZE as u64 {
        let mut data = Vec::with_capacity(len as usize);
        file.read_to_end(&mut data)?;
        store.put(key, PutPayload::from(data)).await?;
        return Ok(len);
    }
    let upload = store.put_multipart(key).await?;
    let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    let mut buf = vec![0u8; PART_SIZE];
    let mut sent = 0u64;
    loop {
        if let Err(e) = w.wait_for_capacity(PARTS_IN_FLIGHT).await {
            let _ = w.abort().await;
            return Err(e.into());
        }
        let n = read_full(&mut file, &mut buf)?;
        if n == 0 {
            break;
        }
        w.write(&buf[..n]);
        sent += n as u64;
    }
    anyhow::ensure!(sent == len, "{} changed size while uploading ({len} -> {sent} bytes)", path.display());
    w.finish().await?;
    Ok(sent)
}

/// Reads until `buf` is full or the file ends.
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        assert_eq!(Target::parse("/tmp/out").unwrap(), None);
        let t = Target::parse("s3://b/some/prefix/").unwrap().unwrap();
        assert_eq!(t, Target { bucket: "b".into(), prefix: "some/prefix".into() });
        assert_eq!(t.to_string(), "s3://b/some/prefix");
        assert_eq!(Target::parse("s3://b").unwrap().unwrap().prefix, "");
        assert!(Target::parse("s3:///x").is_err());
        let key = t.key(Path::new("flows/date=2024-01-02/hour=03/part-r-00000.parquet")).unwrap();
        assert_eq!(key.as_ref(), "some/prefix/flows/date=2024-01-02/hour=03/part-r-00000.parquet");
        assert!(t.key(Path::new("../x")).is_err());
        let root = Target::parse("s3://b/").unwrap().unwrap();
        assert_eq!(root.key(Path::new("runs/r.json")).unwrap().as_ref(), "runs/r.json");
    }

    #[test]
    fn sweeps_only_this_runs_whole_files() {
        let dir = std::env::temp_dir().join(format!("flowtrail-sweep-{}", std::process::id()));
        let p = dir.join("nat_paths/date=2024-01-01/hour=00");
        std::fs::create_dir_all(&p).unwrap();
        for name in ["part-r1-00000.parquet", ".part-r1-00001.parquet.inprogress", "part-r2-00000.parquet"] {
            std::fs::write(p.join(name), b"x").unwrap();
        }
        std::fs::create_dir_all(dir.join("runs")).unwrap();
        std::fs::write(dir.join("runs/part-r1-x.parquet"), b"x").unwrap();
        let mut out = Vec::new();
        sweep(&dir, "part-r1-", &HashSet::new(), &mut out);
        assert_eq!(out, vec![p.join("part-r1-00000.parquet")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
