//! The `flowtrail` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use flowtrail::flow::FlowConfig;
use flowtrail::pipeline::{
    capture_with, replay_with, Input, LiveOptions, LiveSource, Opener, ReplayOptions, RunSummary,
};
use flowtrail::sink::object::{Target, UploadConfig, Uploader};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "flowtrail",
    version,
    about = "Passive network analyzer: packets in, flow and call records out as Parquet"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay pcap/pcapng files into flow and call records under DIR.
    Replay(Box<ReplayArgs>),
    /// Capture live from interfaces (AF_PACKET, TC or XDP) into records under DIR.
    Capture(Box<CaptureArgs>),
    /// Link flows and calls written by separate runs (one per node) into NAT paths under OUT.
    Correlate(CorrelateArgs),
    /// Print NAT paths as chains, hops ordered from the client.
    Path(PathArgs),
    /// Write one self-contained HTML report (service map, errors, resources, TCP health) of DIR.
    Report(ReportArgs),
    /// Calls matching a status, resource or domain, newest first with their NAT paths; or counts per key and window.
    Calls(Box<flowtrail::query::CallsArgs>),
    /// The top N resources, domains, servers… by calls; per window, or compared before and after a time.
    Top(Box<flowtrail::query::TopArgs>),
    /// Network, server or client? The evidence on one server's flows and calls, and a verdict.
    Diagnose(Box<flowtrail::query::DiagnoseArgs>),
    /// Print the record schemas as Markdown.
    Schema,
    /// Benchmark floor: read (and optionally dissect) every packet, build nothing.
    #[command(hide = true)]
    Floor {
        files: Vec<PathBuf>,
        /// Also dissect each frame down to its transport header.
        #[arg(long)]
        dissect: bool,
    },
}

/// Flow table and L7 options, the same for replay and capture.
#[derive(clap::Args)]
struct FlowArgs {
    /// Idle time after which an established TCP flow ends (e.g. 300s, 5m).
    #[arg(long, default_value = "300s", value_parser = parse_duration_ns)]
    tcp_established_timeout: i64,
    /// Idle time after a FIN or RST before a TCP flow ends.
    #[arg(long, default_value = "35s", value_parser = parse_duration_ns)]
    tcp_closing_timeout: i64,
    /// Idle time after both sides sent a FIN (no RST) before a TCP flow ends.
    #[arg(long, default_value = "5s", value_parser = parse_duration_ns)]
    tcp_closed_timeout: i64,
    /// Idle time of a TCP handshake that has not completed.
    #[arg(long, default_value = "20s", value_parser = parse_duration_ns)]
    tcp_opening_timeout: i64,
    /// Idle time after which a UDP flow ends.
    #[arg(long, default_value = "60s", value_parser = parse_duration_ns)]
    udp_timeout: i64,
    /// Idle time after which an ICMP or other flow ends.
    #[arg(long, default_value = "60s", value_parser = parse_duration_ns)]
    other_timeout: i64,
    /// Long flows write a `period` record at every multiple of this (capture time).
    #[arg(long, default_value = "60s", value_parser = parse_duration_ns)]
    period: i64,
    /// Most flows tracked at once per worker; beyond, packets are counted as untracked.
    #[arg(long, default_value_t = 2_000_000)]
    max_flows: usize,
    /// Flows only: no TCP reassembly, no L7 detection, no call records.
    #[arg(long)]
    no_l7: bool,
    /// A request without response for this long (capture time) becomes a timeout call.
    #[arg(long, default_value = "60s", value_parser = parse_duration_ns)]
    request_timeout: i64,
    /// Keep this request header as the call attribute `http.header.<name>` (repeatable).
    /// Authorization, Proxy-Authorization, Cookie and Set-Cookie are never kept.
    #[arg(long = "attr-header", value_name = "NAME")]
    attr_headers: Vec<String>,
}

impl FlowArgs {
    fn config(&self) -> FlowConfig {
        FlowConfig {
            tcp_opening_timeout_ns: self.tcp_opening_timeout,
            tcp_established_timeout_ns: self.tcp_established_timeout,
            tcp_closing_timeout_ns: self.tcp_closing_timeout,
            tcp_closed_timeout_ns: self.tcp_closed_timeout,
            udp_timeout_ns: self.udp_timeout,
            other_timeout_ns: self.other_timeout,
            period_ns: self.period,
            max_flows: self.max_flows,
            l7: (!self.no_l7).then(|| flowtrail::reassembly::L7Config {
                request_timeout_ns: self.request_timeout,
                session: flowtrail_decoders::l7::SessionConfig {
                    attr_headers: self.attr_headers.iter().map(|h| h.to_ascii_lowercase()).collect(),
                    ..Default::default()
                },
                ..Default::default()
            }),
        }
    }
}

/// Output options, the same for replay and capture.
#[derive(clap::Args)]
struct OutputArgs {
    /// Output directory (created if missing), or `s3://bucket/prefix` for
    /// S3-compatible object storage (see README, "Object storage").
    #[arg(short = 'o', long = "out")]
    out: PathBuf,
    /// With `-o s3://…`: where files are written whole before upload
    /// (default: a directory named after the run in the system temp dir).
    #[arg(long, value_name = "DIR")]
    staging: Option<PathBuf>,
    /// With `-o s3://…`: the S3 endpoint (default: $AWS_ENDPOINT_URL, else AWS).
    #[arg(long, value_name = "URL")]
    s3_endpoint: Option<String>,
    /// With `-o s3://…`: tries per file before it is counted as failed (kept in staging).
    #[arg(long, default_value_t = 4, value_name = "N")]
    upload_attempts: u32,
    /// With `-o s3://…`: first wait between tries, doubled each time.
    #[arg(long, default_value = "1s", value_parser = parse_duration_ns, value_name = "DURATION")]
    upload_backoff: i64,
    /// Also write the run summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    summary_json: Option<PathBuf>,
    /// Names this run's files (default: time and process id).
    #[arg(long)]
    run_id: Option<String>,
}

impl OutputArgs {
    fn run_id(&self) -> String {
        self.run_id.clone().unwrap_or_else(|| {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            format!("{t:x}-{}", std::process::id())
        })
    }

    /// The local directory the run writes, and with `-o s3://…` the
    /// started uploader. `nat`: the run reads its files back at the end.
    fn open(&self, run_id: &str, nat: bool) -> anyhow::Result<(PathBuf, Option<ObjectOut>)> {
        let Some(target) = Target::parse(&self.out.to_string_lossy())? else {
            return Ok((self.out.clone(), None));
        };
        let staging = self.staging.clone().unwrap_or_else(|| {
            let name: String =
                run_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
            std::env::temp_dir().join(format!("flowtrail-staging-{name}"))
        });
        let cfg = UploadConfig {
            endpoint: self.s3_endpoint.clone(),
            attempts: self.upload_attempts.max(1),
            backoff: std::time::Duration::from_nanos(self.upload_backoff.max(0) as u64),
            defer_delete: nat,
        };
        let uploader = Uploader::start(&target, &staging, cfg.clone())?;
        tracing::info!("writing to {target} through staging {}", staging.display());
        Ok((staging.clone(), Some(ObjectOut { target, staging, cfg, uploader })))
    }
}

/// `-o s3://…`: the target and its uploader.
struct ObjectOut {
    target: Target,
    staging: PathBuf,
    cfg: UploadConfig,
    uploader: Uploader,
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// pcap or pcapng files; several are merged by timestamp, each its own capture point.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
    /// Name a file's capture point: NAME=FILE (default: the file's name).
    #[arg(long = "point", value_name = "NAME=FILE")]
    points: Vec<String>,
    /// Worker shards (default: the machine's cores). 1 runs the flow table on the reader thread.
    #[arg(short = 'w', long)]
    workers: Option<usize>,
    #[command(flatten)]
    flow: FlowArgs,
    /// No progress bar even on a terminal.
    #[arg(long)]
    no_progress: bool,
    /// Do not correlate the run's flows and calls into `nat_paths`.
    #[arg(long)]
    no_nat_paths: bool,
    #[command(flatten)]
    nat: NatArgs,
}

/// NAT path matching windows.
#[derive(clap::Args)]
struct NatArgs {
    /// Largest clock difference between capture points; widens every matching window.
    #[arg(long, default_value = "5ms", value_parser = parse_duration_ns)]
    max_skew: i64,
    /// Longest downstream call considered for L7 (proxy) links.
    #[arg(long, default_value = "300s", value_parser = parse_duration_ns)]
    l7_window: i64,
}

impl NatArgs {
    fn config(&self) -> flowtrail::nat::NatConfig {
        flowtrail::nat::NatConfig {
            max_skew_ns: self.max_skew,
            l7_window_ns: self.l7_window,
            ..flowtrail::nat::NatConfig::default()
        }
    }
}

#[derive(clap::Args)]
struct CorrelateArgs {
    /// Output directories of flowtrail runs (their `flows/` and `calls/`).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Where `nat_paths/` is written.
    #[arg(short = 'o', long = "out")]
    out: PathBuf,
    #[command(flatten)]
    nat: NatArgs,
}

#[derive(clap::Args)]
struct PathArgs {
    /// Output directory holding `nat_paths/` (and `calls/` for --request-id).
    dir: PathBuf,
    /// Chains whose first hop's client is IP or IP:PORT.
    #[arg(long)]
    client: Option<String>,
    /// Chains of the request carrying this X-Request-ID.
    #[arg(long)]
    request_id: Option<String>,
    /// Chains with a hop whose resource contains TEXT.
    #[arg(long, value_name = "TEXT")]
    resource: Option<String>,
    /// Chains with a hop that answered this response code.
    #[arg(long)]
    status: Option<i32>,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// Output directories of flowtrail runs (their `flows/`, `calls/`, `nat_paths/`, `runs/`).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// The HTML file to write.
    #[arg(short = 'o', long = "out", default_value = "report.html")]
    out: PathBuf,
    /// Page title (default: the directories).
    #[arg(long)]
    title: Option<String>,
    /// Only records starting at or after this time (RFC 3339 or Unix ns).
    #[arg(long, value_parser = flowtrail::query::parse_time)]
    since: Option<i64>,
    /// Only records starting before this time (RFC 3339 or Unix ns).
    #[arg(long, value_parser = flowtrail::query::parse_time)]
    until: Option<i64>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// AF_PACKET TPACKET_V3 rings, fanout across capture threads (any interface).
    Afpacket,
    /// eBPF classifier on clsact ingress and egress (pod veths, vSwitch taps).
    Tc,
    /// eBPF XDP program, ingress only (NICs and mirror ports).
    Xdp,
}

#[derive(clap::Args)]
struct CaptureArgs {
    /// Interfaces by name or glob (`eth0`, `tap*`, `veth*`, `cali*`), repeatable;
    /// interfaces that appear later and match are picked up.
    #[arg(short = 'i', long = "interface", required = true, value_name = "PATTERN")]
    interfaces: Vec<String>,
    /// How packets are captured.
    #[arg(long, value_enum, default_value = "afpacket")]
    mode: Mode,
    #[command(flatten)]
    output: OutputArgs,
    /// Capture threads (afpacket: one fanout socket per interface each) or
    /// worker shards (tc/xdp). Default: the machine's cores.
    #[arg(short = 'w', long)]
    workers: Option<usize>,
    /// Stop after this long (e.g. 30s, 10m); otherwise until SIGINT/SIGTERM.
    #[arg(long, value_parser = parse_duration_ns)]
    duration: Option<i64>,
    /// Capture filter in tcpdump syntax (afpacket; compiled with tcpdump -ddd).
    #[arg(long)]
    filter: Option<String>,
    /// Bytes kept of each packet (afpacket; tc/xdp copy 256).
    #[arg(long, default_value_t = 262_144)]
    snaplen: u32,
    /// Do not put interfaces in promiscuous mode (afpacket; on by default for mirror ports).
    #[arg(long)]
    no_promisc: bool,
    /// Ring block size in bytes (afpacket).
    #[arg(long, default_value_t = 1 << 20)]
    block_size: u32,
    /// Ring blocks per socket (afpacket).
    #[arg(long, default_value_t = 64)]
    block_count: u32,
    /// Hand a block to user space at most this many ms after its first packet (afpacket).
    #[arg(long, default_value_t = 64)]
    block_timeout_ms: u32,
    /// xdp: drop packets after copying them (mirror ports only: the host has no use for them).
    #[arg(long)]
    xdp_drop: bool,
    /// The eBPF object (default: found next to the build, or $FLOWTRAIL_EBPF_OBJECT).
    #[arg(long, value_name = "FILE")]
    ebpf_object: Option<PathBuf>,
    #[command(flatten)]
    flow: FlowArgs,
    /// Do not correlate the run's flows and calls into `nat_paths` when it stops.
    #[arg(long)]
    no_nat_paths: bool,
    #[command(flatten)]
    nat: NatArgs,
    /// Serve Prometheus metrics on http://ADDR/metrics (e.g. 127.0.0.1:9464; port 0 picks one and logs it).
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Also keep the raw packets as rotating pcapng files in DIR (one series
    /// per capture thread, one interface block per capture point), to replay later.
    #[arg(long, value_name = "DIR")]
    write_pcap: Option<PathBuf>,
    /// Rotate --write-pcap files past this many MiB.
    #[arg(long, default_value_t = 256, value_name = "MIB")]
    write_pcap_mib: u64,
}

use flowtrail::query::parse_duration_ns;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Schema => {
            print!("{}", flowtrail::records::schema_markdown());
            Ok(ExitCode::SUCCESS)
        }
        Command::Floor { files, dissect } => floor(&files, dissect).map(|()| ExitCode::SUCCESS),
        Command::Replay(args) => run_replay(&args),
        Command::Correlate(args) => run_correlate(&args),
        Command::Path(args) => flowtrail::nat::path::print_paths(
            &args.dir,
            &flowtrail::nat::path::PathQuery {
                client: args.client.clone(),
                request_id: args.request_id.clone(),
                resource: args.resource.clone(),
                status: args.status,
            },
            &mut std::io::stdout().lock(),
        )
        .map(|()| ExitCode::SUCCESS),
        Command::Report(args) => run_report(&args),
        Command::Capture(args) => run_capture(&args),
        Command::Calls(args) => {
            flowtrail::query::calls::run(&args, &mut std::io::stdout().lock()).map(|()| ExitCode::SUCCESS)
        }
        Command::Top(args) => {
            flowtrail::query::top::run(&args, &mut std::io::stdout().lock()).map(|()| ExitCode::SUCCESS)
        }
        Command::Diagnose(args) => {
            flowtrail::query::diagnose::run(&args, &mut std::io::stdout().lock()).map(|()| ExitCode::SUCCESS)
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("flowtrail: {e:#}");
        ExitCode::from(2)
    })
}

fn workers_or_cores(w: Option<usize>) -> usize {
    w.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get)).max(1)
}

/// Prints the summary, writes it as JSON to `DIR/runs/<run_id>.json` (for
/// `flowtrail report`) and where asked; exit 1 if an input failed.
/// With `-o s3://…`, first waits for the uploads, then puts the summary at
/// `prefix/runs/<run_id>.json` too; exit 3 if any file failed to upload.
fn conclude(
    mut summary: RunSummary,
    output: &OutputArgs,
    run_id: &str,
    object: Option<ObjectOut>,
) -> anyhow::Result<ExitCode> {
    match object {
        None => {
            flowtrail::report::write_run_summary(&output.out, run_id, &summary)?;
        }
        Some(o) => {
            let mut stats = o.uploader.finish(run_id);
            summary.upload = Some(stats.clone());
            let path = flowtrail::report::write_run_summary(&o.staging, run_id, &summary)?;
            Uploader::put_last(&o.target, &o.staging, &o.cfg, &path, &mut stats);
            summary.upload = Some(stats);
        }
    }
    eprint!("{}", flowtrail::summary::render(&summary));
    if let Some(path) = &output.summary_json {
        std::fs::write(path, flowtrail::summary::to_json(&summary) + "\n")?;
    }
    Ok(if summary.upload.as_ref().is_some_and(|u| u.failed_files > 0) {
        ExitCode::from(3)
    } else if summary.input_errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn run_replay(a: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let mut names = std::collections::HashMap::new();
    for p in &a.points {
        let (name, file) = p.split_once('=').ok_or_else(|| anyhow::anyhow!("--point wants NAME=FILE, got {p:?}"))?;
        names.insert(PathBuf::from(file), name.to_string());
    }
    let inputs = a.files.iter().map(|f| Input { path: f.clone(), point: names.get(f).cloned() }).collect();
    let run_id = a.output.run_id();
    let (out_dir, object) = a.output.open(&run_id, !a.no_nat_paths)?;
    let opts = ReplayOptions {
        inputs,
        out_dir,
        workers: workers_or_cores(a.workers),
        flow: a.flow.config(),
        defrag: flowtrail::defrag::DefragConfig::default(),
        progress: !a.no_progress,
        run_id,
        nat: (!a.no_nat_paths).then(|| a.nat.config()),
    };
    let summary = replay_with(&opts, object.as_ref().map(|o| o.uploader.queue()).as_ref())?;
    conclude(summary, &a.output, &opts.run_id, object)
}

fn run_correlate(a: &CorrelateArgs) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let run_id = {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        format!("{t:x}-{}", std::process::id())
    };
    let (stats, sink) = flowtrail::nat::read::correlate_dirs(&a.dirs, None, &a.nat.config(), &a.out, &run_id)?;
    let links: u64 = stats.links.values().sum();
    eprintln!(
        "flowtrail correlate: {} flows, {} calls -> {links} links {:?} ({} ambiguous, {} ISN conflicts) in {} files, {:.3} s",
        stats.flows,
        stats.calls,
        stats.links,
        stats.ambiguous,
        stats.isn_conflicts,
        sink.files,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn run_report(a: &ReportArgs) -> anyhow::Result<ExitCode> {
    let range =
        flowtrail::dataset::TimeRange { since: a.since.unwrap_or(i64::MIN), until: a.until.unwrap_or(i64::MAX) };
    let opts = flowtrail::report::ReportOptions { dirs: a.dirs.clone(), title: a.title.clone(), range };
    let r = flowtrail::report::write_report(&opts, &a.out)?;
    eprintln!(
        "flowtrail report: {} records from {} files in {:.3} s ({:.0} records/s): {} services, {} edges -> {}",
        r.scan.records,
        r.scan.files,
        r.scan.elapsed_s,
        r.scan.records as f64 / r.scan.elapsed_s.max(1e-9),
        r.nodes.iter().filter(|n| n.kind != flowtrail::report::NodeKind::Client).count(),
        r.edges.len(),
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn run_capture(a: &CaptureArgs) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let workers = workers_or_cores(a.workers);
    let run_id = a.output.run_id();
    let (opener, capture_threads, shards) = match a.mode {
        Mode::Afpacket => (afpacket_opener(a, workers), workers, 1),
        Mode::Tc | Mode::Xdp => (ebpf_opener(a)?, 1, workers),
    };
    let metrics = match a.metrics_addr {
        Some(addr) => {
            let m = flowtrail::metrics::Metrics::new();
            let bound = flowtrail::metrics::serve(addr, Arc::clone(&m))
                .map_err(|e| anyhow::anyhow!("--metrics-addr {addr}: {e}"))?;
            tracing::info!("serving metrics on http://{bound}/metrics");
            Some(m)
        }
        None => None,
    };
    let (out_dir, object) = a.output.open(&run_id, !a.no_nat_paths)?;
    let opts = LiveOptions {
        patterns: a.interfaces.clone(),
        opener,
        capture_threads,
        shards,
        out_dir,
        flow: a.flow.config(),
        defrag: flowtrail::defrag::DefragConfig::default(),
        run_id: run_id.clone(),
        stop,
        duration: a.duration.map(|ns| std::time::Duration::from_nanos(ns as u64)),
        nat: (!a.no_nat_paths).then(|| a.nat.config()),
        write_pcap: a.write_pcap.clone().map(|d| (d, a.write_pcap_mib << 20)),
        metrics,
    };
    let summary = capture_with(opts, object.as_ref().map(|o| o.uploader.queue()).as_ref())?;
    conclude(summary, &a.output, &run_id, object)
}

fn afpacket_opener(a: &CaptureArgs, threads: usize) -> Opener {
    use flowtrail_capture::af_packet::{AfPacketConfig, AfPacketSource, Fanout};
    let (filter, snaplen, promisc) = (a.filter.clone(), a.snaplen, !a.no_promisc);
    let (block_size, block_count, block_timeout) = (a.block_size, a.block_count, a.block_timeout_ms);
    let pid = std::process::id();
    Arc::new(move |name: &str, _thread: usize| {
        let mut cfg = AfPacketConfig::new(name);
        cfg.filter.clone_from(&filter);
        cfg.snaplen = snaplen;
        cfg.promiscuous = promisc;
        cfg.block_size = block_size;
        cfg.block_count = block_count;
        cfg.block_timeout_ms = block_timeout;
        if threads > 1 {
            // One group per interface: its sockets share its flows by hash.
            let h = name.bytes().fold(pid, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
            cfg.fanout = Some(Fanout::hash((h & 0xffff) as u16));
        }
        Ok(LiveSource { source: Box::new(AfPacketSource::open(&cfg)?), mode: "afpacket" })
    })
}

#[cfg(feature = "ebpf")]
fn ebpf_opener(a: &CaptureArgs) -> anyhow::Result<Opener> {
    use flowtrail_capture::ebpf::{EbpfConfig, EbpfMode, EbpfSource};
    let mode = if a.mode == Mode::Tc { EbpfMode::Tc } else { EbpfMode::Xdp };
    let label = if a.mode == Mode::Tc { "tc" } else { "xdp" };
    let base = EbpfConfig { mode, xdp_drop: a.xdp_drop, object: a.ebpf_object.clone(), ..EbpfConfig::default() };
    // Fail now, with the build instructions, if the object is missing.
    if let Err(e) = EbpfSource::open(&EbpfConfig { interfaces: Vec::new(), ..base.clone() }) {
        anyhow::bail!("{e}");
    }
    Ok(Arc::new(move |name: &str, _thread: usize| {
        let cfg = EbpfConfig { interfaces: vec![name.to_string()], ..base.clone() };
        let src = EbpfSource::open(&cfg).map_err(flowtrail_capture::CaptureError::from)?;
        Ok(LiveSource { source: Box::new(src), mode: label })
    }))
}

#[cfg(not(feature = "ebpf"))]
fn ebpf_opener(_a: &CaptureArgs) -> anyhow::Result<Opener> {
    anyhow::bail!(
        "this flowtrail was built without the `ebpf` feature: rebuild with default features, \
         then build the eBPF object with scripts/setup-ebpf.sh && scripts/build-ebpf.sh"
    )
}

/// The cost of getting packets out of the file (and through the
/// dissector), for the benchmark table's floor rows.
fn floor(files: &[PathBuf], dissect: bool) -> anyhow::Result<()> {
    use flowtrail_capture::PacketSource;
    let started = std::time::Instant::now();
    let (mut packets, mut bytes, mut ok) = (0u64, 0u64, 0u64);
    for f in files {
        let mut src = flowtrail_capture::pcap_file::PcapFileSource::open(f)?;
        while let Some(p) = src.next_packet()? {
            packets += 1;
            bytes += u64::from(p.orig_len);
            if dissect {
                if let Some(link) = flowtrail_decoders::LinkType::from_linktype(p.linktype) {
                    ok += u64::from(flowtrail_decoders::dissect_frame(link, p.data, p.orig_len).is_ok());
                }
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"packets\":{packets},\"bytes\":{bytes},\"dissected\":{ok},\"elapsed_s\":{secs:.6},\"pps\":{:.0}}}",
        packets as f64 / secs.max(1e-9)
    );
    Ok(())
}
