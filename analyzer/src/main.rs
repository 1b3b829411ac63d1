//! The `flowtrail` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flowtrail::flow::FlowConfig;
use flowtrail::pipeline::{replay, Input, ReplayOptions};

#[derive(Parser)]
#[command(name = "flowtrail", version, about = "Passive network analyzer: packets in, flow records out as Parquet")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay pcap/pcapng files into flow records under DIR.
    Replay(Box<ReplayArgs>),
    /// Print the record schema as Markdown.
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

#[derive(clap::Args)]
struct ReplayArgs {
    /// pcap or pcapng files; several are merged by timestamp, each its own capture point.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Output directory (created if missing).
    #[arg(short = 'o', long = "out")]
    out: PathBuf,
    /// Name a file's capture point: NAME=FILE (default: the file's name).
    #[arg(long = "point", value_name = "NAME=FILE")]
    points: Vec<String>,
    /// Worker shards (default: the machine's cores). 1 runs the flow table on the reader thread.
    #[arg(short = 'w', long)]
    workers: Option<usize>,
    /// Idle time after which an established TCP flow ends (e.g. 300s, 5m).
    #[arg(long, default_value = "300s", value_parser = parse_duration_ns)]
    tcp_established_timeout: i64,
    /// Idle time after a FIN or RST before a TCP flow ends.
    #[arg(long, default_value = "35s", value_parser = parse_duration_ns)]
    tcp_closing_timeout: i64,
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
    /// Most flows tracked at once per worker; beyond, packets are counted as untracked.
    #[arg(long, default_value_t = 2_000_000)]
    max_flows: usize,
    /// No progress bar even on a terminal.
    #[arg(long)]
    no_progress: bool,
    /// Also write the run summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    summary_json: Option<PathBuf>,
    /// Names this run's files (default: time and process id).
    #[arg(long)]
    run_id: Option<String>,
}

/// Parses `300s`, `5m`, `250ms`, `1h`, or plain seconds, into nanoseconds.
fn parse_duration_ns(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let scale = match unit {
        "" | "s" => 1e9,
        "ms" => 1e6,
        "us" => 1e3,
        "ns" => 1.0,
        "m" => 60e9,
        "h" => 3600e9,
        _ => return Err(format!("unknown unit in {s:?} (use ns, us, ms, s, m, h)")),
    };
    let ns = v * scale;
    if !(ns > 0.0 && ns < 9.0e18) {
        return Err(format!("duration out of range: {s:?}"));
    }
    Ok(ns as i64)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Schema => {
            print!("{}", flowtrail::records::schema_markdown());
            ExitCode::SUCCESS
        }
        Command::Floor { files, dissect } => match floor(&files, dissect) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("flowtrail: {e:#}");
                ExitCode::from(2)
            }
        },
        Command::Replay(args) => match run_replay(args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("flowtrail: {e:#}");
                ExitCode::from(2)
            }
        },
    }
}

fn run_replay(a: Box<ReplayArgs>) -> anyhow::Result<ExitCode> {
    let mut names = std::collections::HashMap::new();
    for p in &a.points {
        let (name, file) = p.split_once('=').ok_or_else(|| anyhow::anyhow!("--point wants NAME=FILE, got {p:?}"))?;
        names.insert(PathBuf::from(file), name.to_string());
    }
    let inputs = a.files.iter().map(|f| Input { path: f.clone(), point: names.get(f).cloned() }).collect();
    let workers = a.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
    let run_id = a.run_id.unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        format!("{t:x}-{}", std::process::id())
    });
    let opts = ReplayOptions {
        inputs,
        out_dir: a.out,
        workers,
        flow: FlowConfig {
            tcp_opening_timeout_ns: a.tcp_opening_timeout,
            tcp_established_timeout_ns: a.tcp_established_timeout,
            tcp_closing_timeout_ns: a.tcp_closing_timeout,
            udp_timeout_ns: a.udp_timeout,
            other_timeout_ns: a.other_timeout,
            period_ns: a.period,
            max_flows: a.max_flows,
            l7: (!a.no_l7).then(|| flowtrail::reassembly::L7Config {
                request_timeout_ns: a.request_timeout,
                session: flowtrail_decoders::l7::SessionConfig {
                    attr_headers: a.attr_headers.iter().map(|h| h.to_ascii_lowercase()).collect(),
                    ..Default::default()
                },
                ..Default::default()
            }),
        },
        defrag: flowtrail::defrag::DefragConfig::default(),
        progress: !a.no_progress,
        run_id,
    };
    let summary = replay(&opts)?;
    eprint!("{}", flowtrail::summary::render(&summary));
    if let Some(path) = a.summary_json {
        std::fs::write(path, flowtrail::summary::to_json(&summary) + "\n")?;
    }
    Ok(if summary.input_errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
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
