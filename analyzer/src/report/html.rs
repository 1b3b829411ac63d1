//! Renders a [`Report`] as one self-contained HTML page: inline CSS, an
//! inline SVG service map, a few lines of inline JS (hover highlighting),
//! and a Content-Security-Policy that forbids every fetch.
//!
//! Every string that came from a record goes through [`escape`] (text and
//! attribute values alike), so a captured hostname or URI cannot open a tag.
//! The map's SVG elements carry machine-readable attributes:
//! `data-node="10.99.69.22:80"` (`data-kind`, `data-column`) on nodes and
//! `data-edge="FROM->TO"` (`data-from`, `data-to`, `data-calls`,
//! `data-errors`, `data-links`, `data-translation`) on edges.

use std::fmt::Write as _;

use super::{format_ms, format_time, Edge, Node, NodeKind, Report};

const STYLE: &str = include_str!("report.css");
const SCRIPT: &str = include_str!("report.js");

const NODE_W: f64 = 240.0;
const NODE_H: f64 = 44.0;
const GAP_Y: f64 = 14.0;
/// Horizontal room between columns, for edges and their labels.
const GAP_X: f64 = 270.0;
const MARGIN: f64 = 24.0;
/// A column with more nodes is split into side-by-side sub-columns (edges
/// into the far ones cross the near ones: one tall column reads better up to
/// here).
const PER_SUBCOLUMN: usize = 60;
/// With more edges their labels show only on hover (the edge table has them all).
const LABELLED_EDGES: usize = 24;

/// Escapes `&`, `<`, `>`, `"` and `'`: safe in text and in quoted attributes.
#[must_use]
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// At most `n` characters of `s` (an ellipsis marks the cut), escaped.
fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        escape(s)
    } else {
        let cut: String = s.chars().take(n.saturating_sub(1)).collect();
        escape(&(cut + "…"))
    }
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Where each node sits: top-left corner, in node order.
struct Layout {
    pos: Vec<(f64, f64)>,
    width: f64,
    height: f64,
}

fn layout(nodes: &[Node]) -> Layout {
    let columns = nodes.iter().map(|n| n.column + 1).max().unwrap_or(0);
    let mut by_col: Vec<Vec<usize>> = vec![Vec::new(); columns];
    for (i, n) in nodes.iter().enumerate() {
        by_col[n.column].push(i);
    }
    let rows = by_col.iter().map(|c| c.len().min(PER_SUBCOLUMN)).max().unwrap_or(0);
    let height = (2.0 * MARGIN + rows as f64 * (NODE_H + GAP_Y) - GAP_Y).max(120.0);
    let mut pos = vec![(0.0, 0.0); nodes.len()];
    let mut x = MARGIN;
    for col in by_col.iter().filter(|c| !c.is_empty()) {
        let subs = col.len().div_ceil(PER_SUBCOLUMN);
        let per = col.len().div_ceil(subs);
        for chunk in col.chunks(per) {
            let h = chunk.len() as f64 * (NODE_H + GAP_Y) - GAP_Y;
            let top = (height - h) / 2.0;
            for (k, &i) in chunk.iter().enumerate() {
                pos[i] = (x, top + k as f64 * (NODE_H + GAP_Y));
            }
            x += NODE_W + 40.0;
        }
        x += GAP_X - 40.0;
    }
    let width = (x - GAP_X + MARGIN).max(400.0);
    Layout { pos, width, height }
}

fn node_svg(o: &mut String, n: &Node, (x, y): (f64, f64)) {
    let id = escape(&n.id);
    let detail = match n.kind {
        NodeKind::Client => format!("client · {} calls", n.calls_out),
        _ => {
            let mut d = if n.protocols.is_empty() { n.kind.as_str().to_string() } else { n.protocols.join(",") };
            if let Some(first) = n.names.first() {
                d.push_str(" · ");
                d.push_str(first);
                if n.names.len() > 1 {
                    let _ = write!(d, " +{}", n.names.len() - 1);
                }
            }
            d
        }
    };
    let mut title = format!("{} ({})\ncalls in {}, out {}", n.id, n.kind.as_str(), n.calls_in, n.calls_out);
    if !n.protocols.is_empty() {
        let _ = write!(title, "\nprotocols: {}", n.protocols.join(", "));
    }
    if !n.names.is_empty() {
        let _ = write!(title, "\nnames: {}", n.names.join(", "));
    }
    let _ = writeln!(
        o,
        r#"<g class="node {kind}" data-node="{id}" data-kind="{kind}" data-column="{col}" transform="translate({x:.1},{y:.1})"><title>{title}</title><rect width="{NODE_W}" height="{NODE_H}" rx="6"/><text x="10" y="18" class="id">{sid}</text><text x="10" y="35" class="detail">{detail}</text></g>"#,
        kind = n.kind.as_str(),
        col = n.column,
        title = escape(&title),
        sid = short(&n.id, 30),
        detail = short(&detail, 36),
    );
}

fn edge_svg(o: &mut String, e: &Edge, from: (f64, f64), to: (f64, f64)) {
    let y1 = from.1 + NODE_H / 2.0;
    let y2 = to.1 + NODE_H / 2.0;
    let x1 = from.0 + NODE_W;
    // Forward edges enter the target's left side; others loop to its right side.
    let (x2, c1, c2) = if to.0 > from.0 {
        let x2 = to.0;
        let dx = (x2 - x1) / 2.0;
        (x2, (x1 + dx, y1), (x2 - dx, y2))
    } else {
        let x2 = to.0 + NODE_W;
        let out = x1.max(x2) + 70.0;
        (x2, (out, y1), (out, y2))
    };
    // Label at t = 0.62 of the curve: nearer the target, where edges fanning
    // out of one node have parted.
    let t = 0.62;
    let bez = |p0: f64, p1: f64, p2: f64, p3: f64| {
        let u = 1.0 - t;
        u * u * u * p0 + 3.0 * u * u * t * p1 + 3.0 * u * t * t * p2 + t * t * t * p3
    };
    let (lx, ly) = (bez(x1, c1.0, c2.0, x2), bez(y1, c1.1, c2.1, y2));
    let translated = !e.translations.is_empty();
    let err_rate = if e.calls == 0 { 0.0 } else { e.errors as f64 / e.calls as f64 };
    let health = if err_rate >= 0.5 {
        "bad"
    } else if err_rate > 0.0 {
        "warn"
    } else {
        "ok"
    };
    let width = 1.5 + (e.calls.max(e.links) as f64).log10().max(0.0) * 1.5;
    let translation = e.translations.join("+");
    let mut label = String::new();
    if translated {
        label.push_str(&translation);
        label.push_str(" · ");
    }
    if e.calls > 0 {
        let _ = write!(label, "{} calls", e.calls);
        if e.errors > 0 {
            let _ = write!(label, " · {} err", pct(e.errors, e.calls));
        }
        if e.p50_ns.is_some() {
            let _ = write!(label, " · p50 {}", format_ms(e.p50_ns));
        }
    } else {
        let _ = write!(label, "{} links", e.links);
    }
    let title = format!(
        "{} -> {}\ncalls {}, errors {} ({}), p50 {}, p99 {}{}",
        e.from,
        e.to,
        e.calls,
        e.errors,
        pct(e.errors, e.calls),
        format_ms(e.p50_ns),
        format_ms(e.p99_ns),
        if translated { format!("\nNAT: {translation} ({} links)", e.links) } else { String::new() }
    );
    let (from_id, to_id) = (escape(&e.from), escape(&e.to));
    let _ = writeln!(
        o,
        r#"<g class="edge {health}{dash}" data-edge="{from_id}->{to_id}" data-from="{from_id}" data-to="{to_id}" data-calls="{calls}" data-errors="{errors}" data-links="{links}" data-translation="{tr}"><title>{title}</title><path d="M{x1:.1},{y1:.1} C{:.1},{:.1} {:.1},{:.1} {x2:.1},{y2:.1}" stroke-width="{width:.1}" marker-end="url(#arrow)"/><text x="{lx:.1}" y="{:.1}" text-anchor="middle">{label}</text></g>"#,
        c1.0,
        c1.1,
        c2.0,
        c2.1,
        ly - 4.0,
        dash = if translated { " nat" } else { "" },
        calls = e.calls,
        errors = e.errors,
        links = e.links,
        tr = escape(&translation),
        title = escape(&title),
        label = short(&label, 48),
    );
}

fn map_svg(o: &mut String, r: &Report) {
    if r.nodes.is_empty() {
        o.push_str("<p class=\"empty\">No calls or NAT paths in the range.</p>\n");
        return;
    }
    let l = layout(&r.nodes);
    let index: std::collections::HashMap<&str, usize> =
        r.nodes.iter().enumerate().map(|(i, n)| (n.id.as_str(), i)).collect();
    let _ = writeln!(
        o,
        r#"<svg id="map" class="{class}" xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" role="img" aria-label="service map">"#,
        w = l.width,
        h = l.height,
        class = if r.edges.len() > LABELLED_EDGES { "many" } else { "few" },
    );
    o.push_str(
        r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#667"/></marker></defs>"##,
    );
    o.push('\n');
    o.push_str("<g class=\"edges\">\n");
    for e in &r.edges {
        if let (Some(&a), Some(&b)) = (index.get(e.from.as_str()), index.get(e.to.as_str())) {
            edge_svg(o, e, l.pos[a], l.pos[b]);
        }
    }
    o.push_str("</g>\n<g class=\"nodes\">\n");
    for (n, &p) in r.nodes.iter().zip(&l.pos) {
        node_svg(o, n, p);
    }
    o.push_str("</g>\n</svg>\n");
}

fn table(o: &mut String, id: &str, head: &[&str], rows: &[Vec<String>], empty: &str) {
    if rows.is_empty() {
        let _ = writeln!(o, "<p class=\"empty\" id=\"{id}\">{empty}</p>");
        return;
    }
    let _ = write!(o, "<table id=\"{id}\"><thead><tr>");
    for h in head {
        let _ = write!(o, "<th>{h}</th>");
    }
    o.push_str("</tr></thead><tbody>\n");
    for r in rows {
        o.push_str("<tr>");
        for c in r {
            let _ = write!(o, "<td>{c}</td>");
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody></table>\n");
}

fn summary_html(o: &mut String, r: &Report) {
    let s = &r.summary;
    let unknown = "<span class=\"muted\">unknown</span>".to_string();
    let packets = s.packets().map_or_else(|| unknown.clone(), |p| p.to_string());
    let total_bytes = if s.runs.is_empty() { unknown.clone() } else { bytes(s.runs.iter().map(|x| x.bytes).sum()) };
    let drops =
        if s.runs.is_empty() { unknown.clone() } else { s.runs.iter().map(|x| x.dropped).sum::<u64>().to_string() };
    let decode = if s.runs.is_empty() {
        unknown.clone()
    } else {
        s.runs.iter().map(|x| x.decode_errors).sum::<u64>().to_string()
    };
    let range = match (s.first_ns, s.last_ns) {
        (Some(a), Some(b)) => format!("{} – {}", format_time(a), format_time(b)),
        _ => "-".into(),
    };
    let points: Vec<String> = s.capture_points.iter().map(|p| escape(p)).collect();
    let _ = writeln!(o, "<dl class=\"summary\" id=\"summary\">");
    for (k, v) in [
        ("packets", packets),
        ("bytes", total_bytes),
        ("flows", format!("{} <span class=\"muted\">({} records)</span>", s.flows, s.flow_records)),
        ("calls", s.calls.to_string()),
        ("NAT path links", s.links.to_string()),
        ("capture drops", drops),
        ("decode errors", decode),
        ("capture points", if points.is_empty() { "-".into() } else { points.join(", ") }),
        ("time range", range),
    ] {
        let _ = writeln!(o, "<div><dt>{k}</dt><dd data-summary=\"{}\">{v}</dd></div>", k.replace(' ', "_"));
    }
    o.push_str("</dl>\n");
    if s.runs.is_empty() {
        o.push_str("<p class=\"muted\">No run summaries (<code>runs/*.json</code>, written by <code>flowtrail replay</code> and <code>capture</code>): packet, drop and decode error counts are unknown.</p>\n");
    } else {
        let rows: Vec<Vec<String>> = s
            .runs
            .iter()
            .map(|x| {
                vec![
                    escape(&x.run_id),
                    x.packets.to_string(),
                    bytes(x.bytes),
                    format!("{:.3} s", x.elapsed_s),
                    x.dropped.to_string(),
                    x.decode_errors.to_string(),
                    x.input_errors.to_string(),
                ]
            })
            .collect();
        table(o, "runs", &["run", "packets", "bytes", "elapsed", "drops", "decode errors", "input errors"], &rows, "");
    }
}

/// The whole page.
#[must_use]
pub fn render(r: &Report) -> String {
    let mut o = String::with_capacity(64 * 1024);
    let title = escape(&r.title);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <link rel=\"icon\" href=\"data:,\">\n<title>{title}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );

    o.push_str("<section><h2>Capture summary</h2>\n");
    summary_html(&mut o, r);
    o.push_str("</section>\n");

    o.push_str("<section><h2>Service map</h2>\n<p class=\"muted\">Clients left, gateways and proxies in the middle, services right. Dashed edges are NAT paths (labelled with the translation); colour shows the error rate. Hover a node to highlight its edges (and, on a busy map, show their labels).</p>\n<div class=\"map\">\n");
    map_svg(&mut o, r);
    o.push_str("</div>\n");
    let rows: Vec<Vec<String>> = r
        .edges
        .iter()
        .map(|e| {
            vec![
                escape(&e.from),
                escape(&e.to),
                escape(&e.translations.join("+")),
                e.calls.to_string(),
                format!("{} ({})", e.errors, pct(e.errors, e.calls)),
                format_ms(e.p50_ns),
                format_ms(e.p99_ns),
                e.links.to_string(),
            ]
        })
        .collect();
    o.push_str("<details><summary>Edges as a table</summary>\n");
    table(&mut o, "edges", &["from", "to", "NAT", "calls", "errors", "p50", "p99", "links"], &rows, "No edges.");
    o.push_str("</details>\n</section>\n");

    o.push_str("<section><h2>Top errors</h2>\n");
    let rows: Vec<Vec<String>> = r
        .top_errors
        .iter()
        .map(|e| {
            let code = e.code.map(|c| c.to_string()).unwrap_or_default();
            let exc = e.exception.as_deref().map(|x| format!(" {}", short(x, 60))).unwrap_or_default();
            vec![
                format!("<span class=\"code\">{}</span>{exc}", escape(&code)),
                escape(&e.status),
                escape(&e.protocol),
                e.resource
                    .as_deref()
                    .map(|x| format!("<span title=\"{}\">{}</span>", escape(x), short(x, 100)))
                    .unwrap_or_default(),
                escape(&e.server),
                e.count.to_string(),
            ]
        })
        .collect();
    table(&mut o, "errors", &["status", "kind", "protocol", "resource", "server", "count"], &rows, "No errors.");
    o.push_str("</section>\n");

    o.push_str("<section><h2>Top resources</h2>\n<p class=\"muted\">Surge: the rate in the last third of the time range is more than twice the rate in the first two thirds (and at least three calls fell in the last third).</p>\n");
    let rows: Vec<Vec<String>> = r
        .top_resources
        .iter()
        .map(|x| {
            let ratio = x.ratio.map_or_else(|| "new".into(), |v| format!("{v:.2}×"));
            vec![
                format!("<span title=\"{}\">{}</span>", escape(&x.resource), short(&x.resource, 100)),
                escape(&x.protocol),
                x.calls.to_string(),
                format!("{} ({})", x.errors, pct(x.errors, x.calls)),
                format_ms(x.p50_ns),
                format!("{} / {}", x.early, x.late),
                if x.surge { format!("<span class=\"surge\" data-surge=\"1\">▲ {ratio}</span>") } else { ratio },
            ]
        })
        .collect();
    table(
        &mut o,
        "resources",
        &["resource", "protocol", "calls", "errors", "p50", "first ⅔ / last ⅓", "rate change"],
        &rows,
        "No resources.",
    );
    o.push_str("</section>\n");

    o.push_str("<section><h2>TCP health per server</h2>\n<p class=\"muted\">RTT: handshake round trip (client side + server side of the capture point), from each connection's first record. Resets: ended by RST after the handshake; refused: RST answered the SYN.</p>\n");
    let rows: Vec<Vec<String>> = r
        .tcp
        .iter()
        .map(|t| {
            vec![
                escape(&t.server),
                t.flows.to_string(),
                t.retransmits.to_string(),
                format_ms(t.rtt_p50_ns),
                format_ms(t.rtt_p90_ns),
                t.resets.to_string(),
                t.refused.to_string(),
                t.no_synack.to_string(),
            ]
        })
        .collect();
    table(
        &mut o,
        "tcp",
        &["server", "flows", "retransmits", "RTT median", "RTT p90", "resets", "refused", "SYN unanswered"],
        &rows,
        "No TCP flows.",
    );
    o.push_str("</section>\n");

    let _ = write!(
        o,
        "<footer class=\"muted\">flowtrail {} · {} records from {} files scanned in {:.3} s</footer>\n<script>\n{SCRIPT}</script>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION"),
        r.scan.records,
        r.scan.files,
        r.scan.elapsed_s
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
        assert_eq!(short("abcdef", 4), "abc…");
        assert_eq!(short("<<<<<<", 3), "&lt;&lt;…");
    }
}
