//! The HTTP/2 [`Decoder`]: framing of both directions (RFC 9113 §4),
//! header blocks across CONTINUATION frames, one HPACK context per
//! direction, streams, limits, and one [`Call`] per stream.
//!
//! Framing: frames other than DATA (and unknown types) are handled whole,
//! up to `max_message_bytes` of payload (a larger one is `TooLarge`);
//! DATA payloads and unknown frames are consumed as they arrive, never
//! buffered, only their bytes counted and, for gRPC, the 5-byte message
//! prefixes read. A header block split over HEADERS and CONTINUATION is
//! assembled (at most `max_message_bytes`) and decoded when it ends.
//!
//! Roles: the direction that sent the preface or a `:method` is the
//! client's, the one that sent a `:status` the server's; until either is
//! seen the analyzer's `ToServer` is taken as the client's.
//!
//! Gaps: a gap inside a DATA payload whose remaining length covers it keeps
//! the direction in sync (only the gRPC message count of that stream stops).
//! Any other gap drops the partial frame and header block and empties that
//! direction's HPACK table (its insertions may be lost: later references
//! to them read as unknown); the next `parse` skips to the first offset
//! where a plausible frame header is followed by another plausible one.

use super::parser::{self, FrameHeader, Hpack, ParseError, FRAME_HEADER_LEN, PREFACE};
use crate::l7::{Call, CallStatus, Decoder, Direction, L7Error, L7Protocol, SessionConfig, Transport};

/// Longest text kept from one header value (path, authority, user agent,
/// grpc-message…), in bytes; longer values are cut at a char boundary.
pub const MAX_TEXT: usize = 1024;

fn dir_index(dir: Direction) -> usize {
    match dir {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

fn other(dir: Direction) -> Direction {
    match dir {
        Direction::ToServer => Direction::ToClient,
        Direction::ToClient => Direction::ToServer,
    }
}

/// Reads the 5-byte gRPC message prefixes (compressed flag, 4-byte
/// length) of one direction of a stream, skipping message bodies.
#[derive(Debug, Clone, Copy, Default)]
struct GrpcFramer {
    have: u8,
    len: [u8; 4],
    remaining: u64,
    messages: u64,
    /// Bytes were lost: counting stopped.
    lost: bool,
}

impl GrpcFramer {
    fn feed(&mut self, mut data: &[u8]) {
        if self.lost {
            return;
        }
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = data.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                self.remaining -= n as u64;
                data = data.get(n..).unwrap_or_default();
                continue;
            }
            let Some((&b, rest)) = data.split_first() else { break };
            data = rest;
            if self.have > 0 {
                if let Some(slot) = self.len.get_mut(usize::from(self.have) - 1) {
                    *slot = b;
                }
            }
            self.have += 1;
            if self.have == 5 {
                self.have = 0;
                self.messages += 1;
                self.remaining = u64::from(u32::from_be_bytes(self.len));
            }
        }
    }
}

/// A stream waiting for its end.
#[derive(Debug)]
struct Stream {
    id: u32,
    call: Call,
    /// Capture time of its last frame (for `expire`).
    last_ts: i64,
    request_seen: bool,
    response_seen: bool,
    http_status: Option<u16>,
    grpc_status: Option<i32>,
    grpc_message: Option<String>,
    /// Request (0) and response (1) message framers.
    framers: [GrpcFramer; 2],
    /// Set by RST_STREAM or GOAWAY.
    error: Option<(CallStatus, String)>,
}

impl Stream {
    fn new(id: u32, ts: i64) -> Self {
        Stream {
            id,
            call: Call::new(L7Protocol::Http2),
            last_ts: ts,
            request_seen: false,
            response_seen: false,
            http_status: None,
            grpc_status: None,
            grpc_message: None,
            framers: [GrpcFramer::default(); 2],
            error: None,
        }
    }
}

/// Where a direction is in its frame sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// At a frame header.
    Frame,
    /// Inside a payload consumed as it arrives: `remaining` bytes, of
    /// which the first `data_left` are DATA of `stream` (0: none).
    Skip { remaining: u32, stream: u32, data_left: u32, end_stream: bool },
}

/// A header block waiting for its CONTINUATION frames.
#[derive(Debug)]
struct Block {
    stream: u32,
    end_stream: bool,
    push: bool,
    ts: i64,
    bytes: u64,
}

#[derive(Debug)]
struct Side {
    hpack: Hpack,
    phase: Phase,
    block: Option<Block>,
    fragments: Vec<u8>,
    /// The preface check was done.
    started: bool,
    resync: bool,
    partial_ts: Option<i64>,
}

impl Side {
    fn new() -> Self {
        Side {
            hpack: Hpack::default(),
            phase: Phase::Frame,
            block: None,
            fragments: Vec::new(),
            started: false,
            resync: false,
            partial_ts: None,
        }
    }
}

/// Header fields kept from one block (a whitelist: secrets such as
/// authorization, cookie and set-cookie are never copied).
#[derive(Debug, Default)]
struct Fields {
    method: Option<Vec<u8>>,
    authority: Option<Vec<u8>>,
    host: Option<Vec<u8>>,
    path: Option<Vec<u8>>,
    status: Option<Vec<u8>>,
    content_type: Option<Vec<u8>>,
    user_agent: Option<Vec<u8>>,
    referer: Option<Vec<u8>>,
    x_forwarded_for: Option<Vec<u8>>,
    traceparent: Option<Vec<u8>>,
    b3: Option<Vec<u8>>,
    x_b3_trace_id: Option<Vec<u8>>,
    x_b3_span_id: Option<Vec<u8>>,
    x_b3_parent_span_id: Option<Vec<u8>>,
    sw8: Option<Vec<u8>>,
    x_request_id: Option<Vec<u8>>,
    grpc_status: Option<Vec<u8>>,
    grpc_message: Option<Vec<u8>>,
    /// `SessionConfig::attr_headers` found: (attribute key, value).
    extra: Vec<(String, String)>,
}

impl Fields {
    fn take(&mut self, name: &[u8], value: &[u8], attr_headers: &[(String, String)]) {
        let slot = match name {
            b":method" => &mut self.method,
            b":authority" => &mut self.authority,
            b"host" => &mut self.host,
            b":path" => &mut self.path,
            b":status" => &mut self.status,
            b"content-type" => &mut self.content_type,
            b"user-agent" => &mut self.user_agent,
            b"referer" => &mut self.referer,
            b"x-forwarded-for" => &mut self.x_forwarded_for,
            b"traceparent" => &mut self.traceparent,
            b"b3" => &mut self.b3,
            b"x-b3-traceid" => &mut self.x_b3_trace_id,
            b"x-b3-spanid" => &mut self.x_b3_span_id,
            b"x-b3-parentspanid" => &mut self.x_b3_parent_span_id,
            b"sw8" => &mut self.sw8,
            b"x-request-id" => &mut self.x_request_id,
            b"grpc-status" => &mut self.grpc_status,
            b"grpc-message" => &mut self.grpc_message,
            _ => {
                if let Some((_, key)) = attr_headers.iter().find(|(n, _)| n.as_bytes() == name) {
                    if self.extra.len() < 16 {
                        self.extra.push((key.clone(), text(value)));
                    }
                }
                return;
            }
        };
        if slot.is_none() {
            *slot = Some(value.get(..MAX_TEXT).unwrap_or(value).to_vec());
        }
    }
}

/// Lossy UTF-8, cut to at most [`MAX_TEXT`] bytes at a char boundary.
fn text(v: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(v.get(..MAX_TEXT).unwrap_or(v)).into_owned();
    if s.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

fn is_grpc(content_type: Option<&Vec<u8>>) -> bool {
    content_type.is_some_and(|c| c.len() >= 16 && c[..16].eq_ignore_ascii_case(b"application/grpc"))
}

/// Closed stream ids remembered per connection.
const MAX_CLOSED: usize = 32;

/// An HTTP/2 connection's decoder.
#[derive(Debug)]
pub struct Session {
    max_message: usize,
    max_pending: usize,
    /// (header name, attribute key) of `SessionConfig::attr_headers`.
    attr_headers: Vec<(String, String)>,
    sides: [Side; 2],
    /// Which direction the client sends in, and whether that was seen.
    client: Direction,
    client_known: bool,
    /// Open streams, oldest first.
    streams: Vec<Stream>,
    /// The last [`MAX_CLOSED`] streams that gave their call: late frames
    /// on them (a response after the client's RST_STREAM) are ignored.
    closed: std::collections::VecDeque<u32>,
    /// Header blocks whose HPACK decoding failed.
    hpack_errors: u64,
    /// Streams dropped (as timeouts) because `max_pending` were open.
    dropped: u64,
}

impl Session {
    #[must_use]
    pub fn new(cfg: &SessionConfig, _transport: Transport) -> Self {
        let attr_headers = cfg
            .attr_headers
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .filter(|h| !matches!(h.as_str(), "authorization" | "proxy-authorization" | "cookie" | "set-cookie"))
            .map(|h| (h.clone(), format!("http.header.{h}")))
            .collect();
        Session {
            max_message: cfg.max_message_bytes,
            max_pending: cfg.max_pending.max(1),
            attr_headers,
            sides: [Side::new(), Side::new()],
            client: Direction::ToServer,
            client_known: false,
            streams: Vec::new(),
            closed: std::collections::VecDeque::new(),
            hpack_errors: 0,
            dropped: 0,
        }
    }

    /// Streams waiting for their end.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.streams.len()
    }

    /// Header blocks whose HPACK decoding failed so far.
    #[must_use]
    pub fn hpack_errors(&self) -> u64 {
        self.hpack_errors
    }

    /// Streams dropped because too many were open.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn learn_client(&mut self, dir: Direction) {
        if !self.client_known {
            self.client_known = true;
            self.client = dir;
        }
    }

    fn is_client(&self, dir: Direction) -> bool {
        dir == self.client
    }

    /// The open stream `id`, created when new (the oldest open stream
    /// leaves as a timeout when `max_pending` are open).
    fn stream(&mut self, id: u32, ts: i64, out: &mut Vec<Call>) -> &mut Stream {
        let i = match self.streams.iter().position(|s| s.id == id) {
            Some(i) => i,
            None => {
                while self.streams.len() >= self.max_pending && !self.streams.is_empty() {
                    let old = self.streams.remove(0);
                    self.mark_closed(old.id);
                    self.dropped += 1;
                    out.push(finalize(old, None));
                }
                self.streams.push(Stream::new(id, ts));
                self.streams.len() - 1
            }
        };
        let s = &mut self.streams[i];
        s.last_ts = s.last_ts.max(ts);
        s
    }

    fn take_stream(&mut self, id: u32) -> Option<Stream> {
        let i = self.streams.iter().position(|s| s.id == id)?;
        self.mark_closed(id);
        Some(self.streams.remove(i))
    }

    fn mark_closed(&mut self, id: u32) {
        if self.closed.len() >= MAX_CLOSED {
            self.closed.pop_front();
        }
        self.closed.push_back(id);
    }

    /// The server ended stream `id` at `ts`.
    fn complete(&mut self, id: u32, ts: i64, out: &mut Vec<Call>) {
        if let Some(s) = self.take_stream(id) {
            out.push(finalize(s, Some(ts)));
        }
    }

    fn parse_tcp(&mut self, dir: Direction, data: &[u8], ts: i64, out: &mut Vec<Call>) -> Result<usize, L7Error> {
        let d = dir_index(dir);
        let first_ts = self.sides[d].partial_ts.take().unwrap_or(ts);
        let mut pos = 0usize;
        if !self.sides[d].started {
            let n = data.len().min(PREFACE.len());
            if data.get(..n) == PREFACE.get(..n) {
                if n < PREFACE.len() {
                    self.sides[d].partial_ts = Some(first_ts);
                    return Ok(0);
                }
                pos = PREFACE.len();
                self.learn_client(dir);
            }
            self.sides[d].started = true;
        }
        if self.sides[d].resync {
            let rest = data.get(pos..).unwrap_or_default();
            match find_sync(rest, self.max_message) {
                Sync::At(off) => {
                    self.sides[d].resync = false;
                    pos += off;
                }
                Sync::NeedMore(off) => return Ok(pos + off),
                Sync::Nothing => return Ok(data.len()),
            }
        }
        loop {
            let rest = data.get(pos..).unwrap_or_default();
            let frame_ts = if pos == 0 { first_ts } else { ts };
            match self.sides[d].phase {
                Phase::Skip { remaining, stream, data_left, end_stream } => {
                    let avail = rest.len().min(remaining as usize);
                    let in_data = avail.min(data_left as usize);
                    if stream != 0 && avail > 0 {
                        let part = rest.get(..in_data).unwrap_or_default();
                        self.on_data(dir, stream, part, avail as u64, ts);
                    }
                    pos += avail;
                    let remaining = remaining - avail as u32;
                    let data_left = data_left - in_data as u32;
                    if remaining > 0 {
                        self.sides[d].phase = Phase::Skip { remaining, stream, data_left, end_stream };
                        break;
                    }
                    self.sides[d].phase = Phase::Frame;
                    if end_stream && stream != 0 {
                        self.end_stream(dir, stream, ts, out);
                    }
                }
                Phase::Frame => {
                    let Some(h) = parser::parse_frame_header(rest) else { break };
                    let is_data = h.kind == parser::DATA;
                    if is_data || h.kind > parser::CONTINUATION {
                        let mut skip = FRAME_HEADER_LEN;
                        let mut remaining = h.len;
                        let mut data_left = if is_data { h.len } else { 0 };
                        if is_data && h.has(parser::FLAG_PADDED) {
                            let Some(&pad) = rest.get(FRAME_HEADER_LEN) else { break };
                            if u32::from(pad) >= h.len {
                                return Err(L7Error::Malformed(ParseError::BadPadding.kind()));
                            }
                            skip += 1;
                            remaining -= 1;
                            data_left = h.len - 1 - u32::from(pad);
                        }
                        if is_data && h.stream_id != 0 {
                            self.on_data(dir, h.stream_id, &[], skip as u64, frame_ts);
                        }
                        pos += skip;
                        let stream = if is_data { h.stream_id } else { 0 };
                        let end_stream = is_data && h.has(parser::FLAG_END_STREAM);
                        self.sides[d].phase = Phase::Skip { remaining, stream, data_left, end_stream };
                        continue;
                    }
                    if h.len as usize > self.max_message {
                        return Err(L7Error::TooLarge);
                    }
                    let end = FRAME_HEADER_LEN + h.len as usize;
                    let Some(payload) = rest.get(FRAME_HEADER_LEN..end) else { break };
                    pos += end;
                    self.on_frame(dir, &h, payload, frame_ts, ts, out)?;
                }
            }
        }
        if pos < data.len() {
            self.sides[d].partial_ts = Some(if pos == 0 { first_ts } else { ts });
        }
        Ok(pos)
    }

    /// `bytes` more bytes of a DATA frame of `id`, of which `data` is
    /// payload (padding and frame header excluded). DATA never opens a
    /// stream: without its HEADERS (seen, or lost before the capture) there
    /// is nothing to name the call by.
    fn on_data(&mut self, dir: Direction, id: u32, data: &[u8], bytes: u64, ts: i64) {
        let client = self.is_client(dir);
        let Some(s) = self.streams.iter_mut().find(|s| s.id == id) else { return };
        s.last_ts = s.last_ts.max(ts);
        if client {
            s.call.request_bytes += bytes;
            s.framers[0].feed(data);
        } else {
            s.call.response_bytes += bytes;
            s.framers[1].feed(data);
        }
    }

    /// END_STREAM from `dir` on `id`.
    fn end_stream(&mut self, dir: Direction, id: u32, ts: i64, out: &mut Vec<Call>) {
        if !self.is_client(dir) {
            self.complete(id, ts, out);
        }
    }

    fn on_frame(
        &mut self,
        dir: Direction,
        h: &FrameHeader,
        payload: &[u8],
        first_ts: i64,
        ts: i64,
        out: &mut Vec<Call>,
    ) -> Result<(), L7Error> {
        let d = dir_index(dir);
        let bytes = (FRAME_HEADER_LEN + payload.len()) as u64;
        if self.sides[d].block.is_some() && h.kind != parser::CONTINUATION {
            // RFC 9113 §6.10: only CONTINUATION may follow; the block is
            // lost and so is the table's state.
            self.sides[d].block = None;
            self.sides[d].fragments.clear();
            self.sides[d].hpack.clear();
        }
        match h.kind {
            parser::HEADERS | parser::PUSH_PROMISE => {
                let frag = parser::headers_fragment(h, payload).map_err(|e| L7Error::Malformed(e.kind()))?;
                let push = h.kind == parser::PUSH_PROMISE;
                let end_stream = !push && h.has(parser::FLAG_END_STREAM);
                if h.has(parser::FLAG_END_HEADERS) {
                    self.on_block(dir, h.stream_id, frag, end_stream, push, first_ts, ts, bytes, out);
                } else {
                    let side = &mut self.sides[d];
                    side.fragments.clear();
                    side.fragments.extend_from_slice(frag);
                    side.block = Some(Block { stream: h.stream_id, end_stream, push, ts: first_ts, bytes });
                }
            }
            parser::CONTINUATION => {
                let side = &mut self.sides[d];
                match &mut side.block {
                    Some(b) if b.stream == h.stream_id => {
                        if side.fragments.len() + payload.len() > self.max_message {
                            side.block = None;
                            side.fragments.clear();
                            side.hpack.clear();
                            return Err(L7Error::TooLarge);
                        }
                        side.fragments.extend_from_slice(payload);
                        b.bytes += bytes;
                    }
                    _ => {
                        // A CONTINUATION without its HEADERS (after a gap).
                        side.hpack.clear();
                        return Ok(());
                    }
                }
                if h.has(parser::FLAG_END_HEADERS) {
                    if let Some(b) = side.block.take() {
                        let frags = std::mem::take(&mut side.fragments);
                        self.on_block(dir, b.stream, &frags, b.end_stream, b.push, b.ts, ts, b.bytes, out);
                        let mut frags = frags;
                        frags.clear();
                        self.sides[d].fragments = frags;
                    }
                }
            }
            parser::RST_STREAM => {
                let code = parser::be32(payload, 0).unwrap_or(0);
                if let Some(mut s) = self.take_stream(h.stream_id) {
                    let name = error_name(code);
                    s.error = Some((rst_status(code, s.response_seen), name));
                    s.call.response_end_ts = Some(ts);
                    out.push(finalize(s, None));
                }
            }
            parser::GOAWAY => {
                let last = parser::be32(payload, 0).unwrap_or(0) & 0x7fff_ffff;
                let code = parser::be32(payload, 4).unwrap_or(0);
                if !self.is_client(dir) {
                    // Client streams above `last` were not processed (§6.8).
                    let mut i = 0;
                    while i < self.streams.len() {
                        if self.streams[i].id > last && self.streams[i].id % 2 == 1 {
                            let mut s = self.streams.remove(i);
                            self.mark_closed(s.id);
                            s.error = Some((CallStatus::ServerError, format!("GOAWAY {}", error_name(code))));
                            out.push(finalize(s, None));
                        } else {
                            i += 1;
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A whole header block of stream `id` from `dir`.
    #[allow(clippy::too_many_arguments)]
    fn on_block(
        &mut self,
        dir: Direction,
        id: u32,
        block: &[u8],
        end_stream: bool,
        push: bool,
        first_ts: i64,
        ts: i64,
        bytes: u64,
        out: &mut Vec<Call>,
    ) {
        let d = dir_index(dir);
        let mut f = Fields::default();
        let attr_headers = &self.attr_headers;
        let result = self.sides[d].hpack.decode(block, &mut |(name, value)| {
            if let (Some(n), Some(v)) = (name, value) {
                f.take(n, v, attr_headers);
            }
        });
        if result.is_err() {
            self.hpack_errors += 1;
            self.sides[d].hpack.clear();
        }
        if push || id == 0 || self.closed.contains(&id) {
            // Promised requests are not calls of their own here; a late
            // block on a stream that already gave its call is dropped.
            return;
        }
        if f.method.is_some() {
            self.learn_client(dir);
        } else if f.status.is_some() {
            self.learn_client(other(dir));
        }
        let client = self.is_client(dir);
        let s = self.stream(id, first_ts, out);
        if client {
            if s.request_seen {
                // Request trailers.
                s.call.request_bytes += bytes;
                return;
            }
            s.request_seen = true;
            fill_request(s, &f, first_ts, bytes);
            return;
        }
        s.call.response_bytes += bytes;
        let status = f.status.as_deref().and_then(|v| std::str::from_utf8(v).ok()?.parse::<u16>().ok());
        if let Some(code) = status {
            if (100..200).contains(&code) && code != 101 {
                // Interim response (RFC 9113 §8.1).
                return;
            }
            s.response_seen = true;
            s.http_status = Some(code);
            s.call.response_first_ts = Some(first_ts);
            if s.call.version.is_none() {
                s.call.version = Some("HTTP/2".to_owned());
            }
            if is_grpc(f.content_type.as_ref()) {
                s.call.protocol = L7Protocol::Grpc;
            }
            if let Some(ct) = &f.content_type {
                s.call.attributes.push(("http.content_type".to_owned(), text(ct)));
            }
            s.call.trace.x_request_id_response = f.x_request_id.as_deref().filter(|v| !v.is_empty()).map(text);
        } else if !s.response_seen {
            // Headers whose `:status` referred to a lost table entry.
            s.response_seen = true;
            s.call.response_first_ts = Some(first_ts);
        }
        if let Some(v) = &f.grpc_status {
            s.grpc_status = std::str::from_utf8(v).ok().and_then(|t| t.trim().parse().ok());
        }
        if let Some(v) = &f.grpc_message {
            s.grpc_message = Some(text(parser::percent_decode(v).as_bytes()));
        }
        if end_stream {
            self.complete(id, ts, out);
        }
    }
}

/// The request's part of a call.
fn fill_request(s: &mut Stream, f: &Fields, ts: i64, bytes: u64) {
    let call = &mut s.call;
    call.request_ts = Some(ts);
    call.request_bytes += bytes;
    call.version = Some("HTTP/2".to_owned());
    call.request_type = f.method.as_deref().map(text);
    call.request_domain =
        f.authority.as_ref().or(f.host.as_ref()).filter(|v| !v.is_empty()).map(|v| text(v).to_ascii_lowercase());
    call.request_resource = f.path.as_deref().map(text);
    call.user_agent = f.user_agent.as_deref().map(text);
    // Trace context, the same precedence as HTTP/1.
    let ids = f
        .traceparent
        .as_deref()
        .and_then(parser::parse_traceparent)
        .or_else(|| f.b3.as_deref().and_then(parser::parse_b3_single))
        .or_else(|| {
            parser::parse_b3_multi(
                f.x_b3_trace_id.as_deref(),
                f.x_b3_span_id.as_deref(),
                f.x_b3_parent_span_id.as_deref(),
            )
        });
    if let Some(ids) = ids {
        let hex = |v: &[u8]| text(v).to_ascii_lowercase();
        call.trace.trace_id = ids.trace_id.map(hex);
        call.trace.span_id = ids.span_id.map(hex);
        call.trace.parent_span_id = ids.parent_span_id.map(hex);
    } else if let Some((trace, span)) = f.sw8.as_deref().and_then(parser::parse_sw8) {
        call.trace.trace_id = Some(trace);
        call.trace.span_id = span;
    }
    call.trace.x_request_id = f.x_request_id.as_deref().filter(|v| !v.is_empty()).map(text);
    if let Some(v) = &f.referer {
        call.attributes.push(("http.referer".to_owned(), text(v)));
    }
    if let Some(v) = &f.x_forwarded_for {
        call.attributes.push(("http.x_forwarded_for".to_owned(), text(v)));
    }
    call.attributes.extend(f.extra.iter().cloned());
    if is_grpc(f.content_type.as_ref()) {
        call.protocol = L7Protocol::Grpc;
        if let Some(path) = call.request_resource.as_deref() {
            // `/package.Service/Method`.
            let mut parts = path.strip_prefix('/').unwrap_or(path).splitn(2, '/');
            if let (Some(service), Some(method)) = (parts.next(), parts.next()) {
                if !service.is_empty() && !method.is_empty() {
                    call.attributes.push(("grpc.service".to_owned(), service.to_owned()));
                    call.attributes.push(("grpc.method".to_owned(), method.to_owned()));
                }
            }
        }
    }
}

fn error_name(code: u32) -> String {
    match parser::error_code_name(code) {
        Some(n) => n.to_owned(),
        None => format!("0x{code:x}"),
    }
}

/// RST_STREAM: NO_ERROR after a response is `Ok` (the server stopped
/// reading the request, RFC 9113 §8.1); CANCEL, ENHANCE_YOUR_CALM,
/// INADEQUATE_SECURITY and HTTP_1_1_REQUIRED are the client's doing or
/// its choice of transport; every other code is the server's error.
fn rst_status(code: u32, response_seen: bool) -> CallStatus {
    match code {
        0 if response_seen => CallStatus::Ok,
        0x8 | 0xb | 0xc | 0xd => CallStatus::ClientError,
        _ => CallStatus::ServerError,
    }
}

fn http_status_class(code: u16) -> CallStatus {
    match code {
        400..=499 => CallStatus::ClientError,
        500..=599 => CallStatus::ServerError,
        _ => CallStatus::Ok,
    }
}

/// gRPC codes the client causes (grpc/doc/statuscodes.md): the rest are
/// the server's.
fn grpc_status_class(code: i32) -> CallStatus {
    match code {
        0 => CallStatus::Ok,
        3 | 5 | 6 | 7 | 9 | 11 | 16 => CallStatus::ClientError,
        _ => CallStatus::ServerError,
    }
}

/// The call of a stream that ended (`end_ts`: its last frame) or left
/// before its end (`None`).
fn finalize(s: Stream, end_ts: Option<i64>) -> Call {
    let mut call = s.call;
    if let Some(ts) = end_ts {
        call.response_end_ts = Some(ts);
    }
    if call.version.is_none() {
        call.version = Some("HTTP/2".to_owned());
    }
    let grpc = call.protocol == L7Protocol::Grpc;
    if grpc {
        call.response_code = s.grpc_status;
        if let Some(code) = s.http_status {
            call.attributes.push(("http.status".to_owned(), code.to_string()));
        }
        call.attributes.push(("grpc.request_messages".to_owned(), s.framers[0].messages.to_string()));
        call.attributes.push(("grpc.response_messages".to_owned(), s.framers[1].messages.to_string()));
    } else {
        call.response_code = s.http_status.map(i32::from);
    }
    call.status = match (&s.error, s.http_status, s.grpc_status) {
        (Some((status, _)), _, _) => *status,
        (None, Some(code), _) if !(200..300).contains(&code) && (!grpc || code != 200) => http_status_class(code),
        (None, _, Some(g)) if grpc => grpc_status_class(g),
        (None, _, _) if s.response_seen => CallStatus::Ok,
        (None, _, _) => CallStatus::Timeout,
    };
    call.response_exception = match (&s.error, grpc) {
        (Some((_, name)), _) => Some(name.clone()),
        (None, true) if s.grpc_status.is_some_and(|g| g != 0) => s
            .grpc_message
            .filter(|m| !m.is_empty())
            .or_else(|| s.grpc_status.and_then(parser::grpc_status_name).map(str::to_owned)),
        _ => None,
    };
    call.attributes.push(("http2.stream_id".to_owned(), s.id.to_string()));
    call.attributes.sort_by(|a, b| a.0.cmp(&b.0));
    call
}

/// Where framing can start again after a gap.
enum Sync {
    At(usize),
    NeedMore(usize),
    Nothing,
}

/// The first offset where a plausible frame header is followed by another
/// plausible one (or by the end of the bytes so far).
fn find_sync(data: &[u8], max_message: usize) -> Sync {
    let max_len = parser::DEFAULT_MAX_FRAME;
    for off in 0..data.len() {
        let rest = data.get(off..).unwrap_or_default();
        let Some(h) = parser::parse_frame_header(rest) else { return Sync::NeedMore(off) };
        if !parser::plausible_header(&h, max_len) || h.kind == parser::CONTINUATION {
            continue;
        }
        let next = FRAME_HEADER_LEN + h.len as usize;
        match rest.get(next..).and_then(parser::parse_frame_header) {
            Some(h2) if parser::plausible_header(&h2, max_len) => return Sync::At(off),
            Some(_) => continue,
            None if next <= max_message => return Sync::NeedMore(off),
            None => continue,
        }
    }
    Sync::Nothing
}

impl Decoder for Session {
    fn parse(&mut self, dir: Direction, data: &[u8], ts: i64, out: &mut Vec<Call>) -> Result<usize, L7Error> {
        self.parse_tcp(dir, data, ts, out)
    }

    fn on_gap(&mut self, dir: Direction, len: u32) {
        let client = self.is_client(dir);
        let side = &mut self.sides[dir_index(dir)];
        side.partial_ts = None;
        side.started = true;
        if let Phase::Skip { remaining, stream, data_left, end_stream } = side.phase {
            if len <= remaining {
                // Inside a payload of known length: still in sync.
                side.phase = Phase::Skip {
                    remaining: remaining - len,
                    stream,
                    data_left: data_left.saturating_sub(len),
                    end_stream,
                };
                if let Some(s) = self.streams.iter_mut().find(|s| s.id == stream) {
                    let k = usize::from(!client);
                    s.framers[k].lost = true;
                    if client {
                        s.call.request_bytes += u64::from(len);
                    } else {
                        s.call.response_bytes += u64::from(len);
                    }
                }
                return;
            }
        }
        side.phase = Phase::Frame;
        side.block = None;
        side.fragments.clear();
        side.hpack.clear();
        side.resync = true;
    }

    /// Streams with no frame since `older_than` leave: as `Timeout` when
    /// no response was seen, else with the status their response gave.
    fn expire(&mut self, older_than: i64, out: &mut Vec<Call>) {
        let mut i = 0;
        while i < self.streams.len() {
            if self.streams[i].last_ts < older_than {
                let s = self.streams.remove(i);
                out.push(finalize(s, None));
            } else {
                i += 1;
            }
        }
    }

    fn finish(&mut self, _end_ts: i64, out: &mut Vec<Call>) {
        for s in self.streams.drain(..) {
            out.push(finalize(s, None));
        }
        for side in &mut self.sides {
            side.partial_ts = None;
            side.block = None;
            side.fragments.clear();
        }
    }
}

#[cfg(test)]
pub(super) fn sync_offset(data: &[u8]) -> Option<usize> {
    match find_sync(data, 1 << 16) {
        Sync::At(o) => Some(o),
        _ => None,
    }
}
