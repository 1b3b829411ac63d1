//! The end-of-run summary: what was read, what was made, what was lost.

use std::fmt::Write as _;

use crate::pipeline::RunSummary;

/// Human-readable summary, printed to stderr at the end of a run.
#[must_use]
pub fn render(s: &RunSummary) -> String {
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    let mut o = String::new();
    let _ = writeln!(o, "flowtrail summary");
    let _ = writeln!(o, "  packets            {:>12}  ({} bytes)", s.packets, s.bytes);
    let _ = writeln!(
        o,
        "  elapsed            {:>12.3} s  ({:.0} packets/s, {:.3} Gbit/s, {} workers)",
        secs,
        s.packets as f64 / secs,
        s.bytes as f64 * 8.0 / secs / 1e9,
        s.workers
    );
    let _ = writeln!(o, "  non-IP frames      {:>12}", s.non_ip);
    let errors: u64 = s.decode_errors.values().sum();
    let _ = writeln!(o, "  decode errors      {:>12}", errors);
    for (k, v) in &s.decode_errors {
        let _ = writeln!(o, "    {k:<24} {v:>8}");
    }
    if s.unsupported_linktype > 0 {
        let _ = writeln!(o, "  unsupported link   {:>12}", s.unsupported_linktype);
    }
    if s.capture.snapped > 0 {
        let _ = writeln!(o, "  snapped packets    {:>12}  (captured shorter than on the wire)", s.capture.snapped);
    }
    if s.capture.dropped > 0 || s.capture.kernel_packets > 0 {
        let _ = writeln!(
            o,
            "  capture drops      {:>12}  (kernel ring / eBPF ring full, or as the capture file reports; {} packets seen by the kernel, {} ring freezes)",
            s.capture.dropped, s.capture.kernel_packets, s.capture.freeze_count
        );
    }
    if !s.points.is_empty() {
        let _ = writeln!(o, "  capture points     {:>12}  (packets, wire bytes, drops by cause)", s.points.len());
        for p in &s.points {
            let drops: Vec<String> = p.drops.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let mut place = String::new();
            if let Some(i) = p.ifindex {
                let _ = write!(place, " ifindex {i}");
            }
            if let Some(ns) = &p.netns {
                let _ = write!(place, " netns {ns}");
            }
            let _ = writeln!(
                o,
                "    {:<20} {:<8}{place}: {} packets, {} bytes, drops {}",
                p.name,
                p.mode,
                p.packets,
                p.bytes,
                if drops.is_empty() { "none".to_string() } else { drops.join(", ") }
            );
        }
    }
    let d = &s.defrag;
    if d.fragments > 0 {
        let _ = writeln!(
            o,
            "  IP fragments       {:>12}  ({} datagrams reassembled, {} incomplete ({} counted from their first fragment), {} over limits, {} overlaps, {} malformed)",
            d.fragments, d.reassembled, d.timed_out, d.partial_delivered, d.dropped_limit, d.overlaps, d.malformed
        );
    }
    let f = &s.flows;
    let _ = writeln!(
        o,
        "  flows              {:>12}  (tcp {}, udp {}, icmp {}, other {})",
        f.flows_tcp + f.flows_udp + f.flows_icmp + f.flows_other,
        f.flows_tcp,
        f.flows_udp,
        f.flows_icmp,
        f.flows_other
    );
    if f.untracked_packets > 0 {
        let _ = writeln!(o, "  untracked packets  {:>12}  (flow table full: raise --max-flows)", f.untracked_packets);
    }
    let _ = writeln!(
        o,
        "  flow records       {:>12}  ({} final, {} period) in {} files, {} bytes",
        s.sink.rows, f.records_final, f.records_period, s.sink.files, s.sink.bytes
    );
    if s.calls.rows > 0 || s.l7.calls > 0 {
        let _ = writeln!(
            o,
            "  call records       {:>12}  in {} files, {} bytes",
            s.calls.rows, s.calls.files, s.calls.bytes
        );
    }
    if let Some(n) = &s.nat {
        let links: u64 = n.links.values().sum();
        let by: Vec<String> = n.links.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(
            o,
            "  nat path links     {:>12}  ({}; {} left unlinked as ambiguous, {} ISN matches contradicted)",
            links,
            if by.is_empty() { "none".to_string() } else { by.join(", ") },
            n.ambiguous,
            n.isn_conflicts
        );
    }
    if s.pcap_packets > 0 || s.pcap_files > 0 {
        let _ = writeln!(
            o,
            "  pcapng kept        {:>12}  packets in {} files, {} bytes (--write-pcap)",
            s.pcap_packets, s.pcap_files, s.pcap_bytes
        );
    }
    if let Some(u) = &s.upload {
        let _ = writeln!(
            o,
            "  uploaded           {:>12}  files, {} bytes to {} ({} tries failed and were retried or given up)",
            u.files, u.bytes, u.target, u.retries
        );
        if u.failed_files > 0 {
            let _ = writeln!(
                o,
                "  UPLOAD FAILED      {:>12}  files, {} bytes, kept in staging {}:",
                u.failed_files,
                u.failed_bytes,
                u.staging.display()
            );
            for p in &u.failed_paths {
                let _ = writeln!(o, "    {}", p.display());
            }
        }
    }
    for e in &s.input_errors {
        let _ = writeln!(o, "  INPUT ERROR        {e}");
    }
    o
}

/// The same as one JSON object, for scripts and benchmarks.
#[must_use]
pub fn to_json(s: &RunSummary) -> String {
    let f = &s.flows;
    let mut j = serde_json::json!({
        "packets": s.packets,
        "bytes": s.bytes,
        "elapsed_s": s.elapsed.as_secs_f64(),
        "workers": s.workers,
        "non_ip": s.non_ip,
        "decode_errors": s.decode_errors,
        "unsupported_linktype": s.unsupported_linktype,
        "snapped": s.capture.snapped,
        "capture_dropped": s.capture.dropped,
        "capture_kernel_packets": s.capture.kernel_packets,
        "capture_freeze_count": s.capture.freeze_count,
        "fragments": s.defrag.fragments,
        "reassembled": s.defrag.reassembled,
        "defrag_incomplete": s.defrag.timed_out,
        "defrag_over_limit": s.defrag.dropped_limit,
        "flows_tcp": f.flows_tcp,
        "flows_udp": f.flows_udp,
        "flows_icmp": f.flows_icmp,
        "flows_other": f.flows_other,
        "untracked_packets": f.untracked_packets,
        "max_concurrent_flows": f.max_concurrent_flows,
        "records_final": f.records_final,
        "records_period": f.records_period,
        "rows_written": s.sink.rows,
        "files_written": s.sink.files,
        "l7_detected": flowtrail_decoders::l7::L7Protocol::ALL
            .iter()
            .map(|p| (p.as_str(), s.l7.detected[p.index()]))
            .collect::<std::collections::BTreeMap<_, _>>(),
        "l7_undetected_flows": s.l7.undetected_flows,
        "l7_errors": s.l7.errors,
        "stream_gaps": s.l7.stream.gaps,
        "stream_gap_bytes": s.l7.stream.gap_bytes,
        "stream_overlap_conflicts": s.l7.stream.overlap_conflicts,
        "stream_limit_hits": s.l7.stream.limit_hits,
        "call_rows_written": s.calls.rows,
        "call_files_written": s.calls.files,
        "nat_links": s.nat.as_ref().map(|n| &n.links),
        "nat_ambiguous": s.nat.as_ref().map(|n| n.ambiguous),
        "nat_isn_conflicts": s.nat.as_ref().map(|n| n.isn_conflicts),
        "nat_rows_written": s.nat_paths.rows,
        "pcap_files_written": s.pcap_files,
        "pcap_packets_written": s.pcap_packets,
        "pcap_bytes_written": s.pcap_bytes,
        "input_errors": s.input_errors,
        "points": s
            .points
            .iter()
            .map(|p| serde_json::json!({
                "name": p.name,
                "mode": p.mode,
                "interface": p.interface,
                "file": p.file,
                "ifindex": p.ifindex,
                "netns": p.netns,
                "packets": p.packets,
                "bytes": p.bytes,
                "drops": p.drops,
                "dropped": p.dropped(),
                "kernel_packets": p.kernel_packets,
                "ring_freezes": p.ring_freezes,
            }))
            .collect::<Vec<_>>(),
    });
    // Only with `-o s3://…`: a local run's summary keeps its keys.
    if let (Some(u), Some(obj)) = (&s.upload, j.as_object_mut()) {
        obj.insert("upload_target".into(), u.target.clone().into());
        obj.insert("upload_staging".into(), u.staging.display().to_string().into());
        obj.insert("uploaded_files".into(), u.files.into());
        obj.insert("uploaded_bytes".into(), u.bytes.into());
        obj.insert("upload_retries".into(), u.retries.into());
        obj.insert("upload_failed_files".into(), u.failed_files.into());
        obj.insert("upload_failed_bytes".into(), u.failed_bytes.into());
        let paths: Vec<String> = u.failed_paths.iter().map(|p| p.display().to_string()).collect();
        obj.insert("upload_failed_paths".into(), paths.into());
    }
    j.to_string()
}
