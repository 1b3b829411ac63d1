//! HTTP/1.x message syntax (RFC 9112) as pure functions over borrowed
//! bytes: start-line plausibility checks, message heads (through
//! `httparse`), the header fields a call needs, body framing, chunk-size
//! lines and trace-context headers. Nothing here keeps state; offsets are
//! relative to the slice passed in.

use crate::l7::Probe;

/// Header fields kept per message head. A head with more is malformed
/// (httparse's `TooManyHeaders`).
pub const MAX_HEADERS: usize = 64;

/// Longest method token accepted by the start-line checks.
const MAX_METHOD_LEN: usize = 32;

/// Methods the probe accepts (RFC 9110 §9, WebDAV RFC 4918 and RFC 3253,
/// CalDAV RFC 4791, binding RFC 5842, PATCH RFC 5789, cache PURGE, UPnP).
pub const KNOWN_METHODS: &[&[u8]] = &[
    b"GET",
    b"POST",
    b"PUT",
    b"DELETE",
    b"HEAD",
    b"OPTIONS",
    b"PATCH",
    b"CONNECT",
    b"TRACE",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"SEARCH",
    b"REPORT",
    b"MKACTIVITY",
    b"CHECKOUT",
    b"CHECKIN",
    b"UNCHECKOUT",
    b"MERGE",
    b"VERSION-CONTROL",
    b"BASELINE-CONTROL",
    b"MKWORKSPACE",
    b"UPDATE",
    b"LABEL",
    b"MKCALENDAR",
    b"ACL",
    b"BIND",
    b"UNBIND",
    b"REBIND",
    b"ORDERPATCH",
    b"PURGE",
    b"LINK",
    b"UNLINK",
    b"M-SEARCH",
    b"NOTIFY",
    b"SUBSCRIBE",
    b"UNSUBSCRIBE",
];

/// `tchar` of RFC 9110 §5.6.2 (method and field-name characters).
#[must_use]
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Bytes httparse accepts in a request-target: visible ASCII and obs-text.
fn is_target_byte(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) || b >= 0x80
}

/// Matches `HTTP/1.0` or `HTTP/1.1` (RFC 9112 §2.3) at the start of
/// `data`; `Ok(None)` when `data` is a strict prefix of one.
fn http_version(data: &[u8]) -> Result<Option<u8>, ()> {
    const PREFIX: &[u8] = b"HTTP/1.";
    let n = data.len().min(PREFIX.len());
    if data[..n] != PREFIX[..n] {
        return Err(());
    }
    match data.get(PREFIX.len()) {
        None => Ok(None),
        Some(b'0') => Ok(Some(0)),
        Some(b'1') => Ok(Some(1)),
        Some(_) => Err(()),
    }
}

/// Whether `data` starts with a plausible request-line
/// (RFC 9112 §3: `method SP request-target SP HTTP-version CRLF`).
///
/// `known_only` restricts the method to [`KNOWN_METHODS`]. `NeedMore`
/// while the bytes are a valid prefix of a line shorter than `limit`; a
/// valid prefix reaching `limit` bytes (a very long target) is a `Match`.
/// One or more spaces separate the parts, a bare LF ends the line
/// (RFC 9112 §2.2 lets recipients accept both).
#[must_use]
pub fn check_request_line(data: &[u8], known_only: bool, limit: usize) -> Probe {
    // method
    let m = data.iter().position(|&b| !is_tchar(b)).unwrap_or(data.len());
    if m > MAX_METHOD_LEN {
        return Probe::NoMatch;
    }
    if m == data.len() {
        let prefix_ok = !known_only || KNOWN_METHODS.iter().any(|k| k.starts_with(&data[..m]));
        return if prefix_ok && m < limit { Probe::NeedMore } else { Probe::NoMatch };
    }
    if m == 0 || data[m] != b' ' {
        return Probe::NoMatch;
    }
    if known_only && !KNOWN_METHODS.contains(&&data[..m]) {
        return Probe::NoMatch;
    }
    let mut i = m;
    while i < data.len() && data[i] == b' ' {
        i += 1;
    }
    // request-target
    let t = i;
    while i < data.len() && is_target_byte(data[i]) {
        i += 1;
    }
    if i == data.len() {
        return match (i >= limit, i > t) {
            (false, _) => Probe::NeedMore,
            (true, true) => Probe::Match,
            (true, false) => Probe::NoMatch,
        };
    }
    if i == t || data[i] != b' ' {
        return Probe::NoMatch;
    }
    while i < data.len() && data[i] == b' ' {
        i += 1;
    }
    // HTTP-version
    match http_version(&data[i..]) {
        Err(()) => return Probe::NoMatch,
        Ok(None) => return if data.len() < limit { Probe::NeedMore } else { Probe::NoMatch },
        Ok(Some(_)) => i += 8,
    }
    match data.get(i..i + 2) {
        Some(b"\r\n") => Probe::Match,
        _ => match data.get(i) {
            Some(b'\n') => Probe::Match,
            Some(b'\r') if i + 1 == data.len() => Probe::NeedMore,
            None => Probe::NeedMore,
            Some(_) => Probe::NoMatch,
        },
    }
}

/// Whether `data` starts with a plausible status-line
/// (RFC 9112 §4: `HTTP-version SP status-code SP [reason-phrase] CRLF`):
/// `HTTP/1.x`, spaces, three digits, then a space or the line end.
#[must_use]
pub fn check_status_line(data: &[u8]) -> Probe {
    match http_version(data) {
        Err(()) => return Probe::NoMatch,
        Ok(None) => return Probe::NeedMore,
        Ok(Some(_)) => {}
    }
    let mut i = 8;
    match data.get(i) {
        None => return Probe::NeedMore,
        Some(b' ') => {}
        Some(_) => return Probe::NoMatch,
    }
    while i < data.len() && data[i] == b' ' {
        i += 1;
    }
    for _ in 0..3 {
        match data.get(i) {
            None => return Probe::NeedMore,
            Some(b) if b.is_ascii_digit() => i += 1,
            Some(_) => return Probe::NoMatch,
        }
    }
    match data.get(i) {
        None => Probe::NeedMore,
        Some(b' ' | b'\r' | b'\n') => Probe::Match,
        Some(_) => Probe::NoMatch,
    }
}

/// Whether `data` holds an empty line (`LF LF` or `LF CR LF`): the end of
/// a header section (RFC 9112 §2.1) if the bytes before are a head.
#[must_use]
pub fn has_empty_line(data: &[u8]) -> bool {
    data.windows(2).any(|w| w == b"\n\n") || data.windows(3).any(|w| w == b"\n\r\n")
}

/// `Content-Length` of a head (RFC 9112 §6.3 rule 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentLength {
    Absent,
    Valid(u64),
    /// Not a number, or several different values.
    Invalid,
}

/// `Transfer-Encoding` of a head (RFC 9112 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferEncoding {
    Absent,
    /// `chunked` is the final coding.
    Chunked,
    /// Present but `chunked` is not the final coding.
    Other,
}

/// The header fields of one head that framing and calls use, borrowed.
/// A field that appears several times keeps its first value (except
/// Content-Length and Transfer-Encoding, combined as RFC 9112 says).
#[derive(Debug, Clone, Default)]
pub struct HeadFields<'a> {
    pub content_length: Option<ContentLength>,
    pub transfer_encoding: Option<TransferEncoding>,
    pub host: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
    pub content_type: Option<&'a [u8]>,
    pub referer: Option<&'a [u8]>,
    pub upgrade: bool,
    pub traceparent: Option<&'a [u8]>,
    pub b3: Option<&'a [u8]>,
    pub x_b3_trace_id: Option<&'a [u8]>,
    pub x_b3_span_id: Option<&'a [u8]>,
    pub x_b3_parent_span_id: Option<&'a [u8]>,
    pub sw8: Option<&'a [u8]>,
    pub x_request_id: Option<&'a [u8]>,
}

impl HeadFields<'_> {
    #[must_use]
    pub fn content_length(&self) -> ContentLength {
        self.content_length.unwrap_or(ContentLength::Absent)
    }
    #[must_use]
    pub fn transfer_encoding(&self) -> TransferEncoding {
        self.transfer_encoding.unwrap_or(TransferEncoding::Absent)
    }
}

/// A request head (RFC 9112 §3): the request-line and header section.
#[derive(Debug)]
pub struct RequestHead<'h, 'a> {
    pub method: &'a str,
    /// The request-target as sent (origin, absolute, authority or
    /// asterisk form).
    pub target: &'a str,
    /// Minor version: 0 or 1.
    pub minor: u8,
    /// Bytes from the start of the slice to the end of the empty line that
    /// ends the head (the body starts there).
    pub head_len: usize,
    pub headers: &'h [httparse::Header<'a>],
    pub fields: HeadFields<'a>,
}

/// A response head (RFC 9112 §4): the status-line and header section.
#[derive(Debug)]
pub struct ResponseHead<'a> {
    pub minor: u8,
    pub code: u16,
    /// The reason-phrase as sent (may be empty).
    pub reason: &'a [u8],
    pub head_len: usize,
    pub fields: HeadFields<'a>,
}

/// Why a head is malformed: the `L7Error::Malformed` kind.
pub type Malformed = &'static str;

fn request_config() -> httparse::ParserConfig {
    let mut c = httparse::ParserConfig::default();
    c.allow_multiple_spaces_in_request_line_delimiters(true);
    c
}

fn response_config() -> httparse::ParserConfig {
    // Servers are sloppier than clients; a passive observer accepts what
    // clients accept (RFC 9112 §5.2 obs-fold, stray spaces, junk lines).
    let mut c = httparse::ParserConfig::default();
    c.allow_multiple_spaces_in_response_status_delimiters(true)
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .ignore_invalid_headers_in_responses(true);
    c
}

fn request_error(e: httparse::Error) -> Malformed {
    match e {
        httparse::Error::TooManyHeaders => "http_too_many_headers",
        httparse::Error::HeaderName | httparse::Error::HeaderValue => "http_header",
        httparse::Error::Token | httparse::Error::Version | httparse::Error::NewLine | httparse::Error::Status => {
            "http_request_line"
        }
    }
}

fn response_error(e: httparse::Error) -> Malformed {
    match e {
        httparse::Error::TooManyHeaders => "http_too_many_headers",
        httparse::Error::HeaderName | httparse::Error::HeaderValue => "http_header",
        httparse::Error::Token | httparse::Error::Version | httparse::Error::NewLine | httparse::Error::Status => {
            "http_status_line"
        }
    }
}

/// Parses a request head at the start of `data`. `Ok(None)` when the head
/// is not complete yet. Leading empty lines are skipped (RFC 9112 §2.2)
/// and counted in `head_len`.
pub fn parse_request<'h, 'a>(
    data: &'a [u8],
    headers: &'h mut [httparse::Header<'a>; MAX_HEADERS],
) -> Result<Option<RequestHead<'h, 'a>>, Malformed> {
    let mut req = httparse::Request::new(headers);
    let head_len = match request_config().parse_request(&mut req, data) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(request_error(e)),
    };
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err("http_request_line");
    };
    let headers: &'h [httparse::Header<'a>] = req.headers;
    Ok(Some(RequestHead { method, target, minor, head_len, headers, fields: summarize(headers) }))
}

/// Parses a response head at the start of `data`. `Ok(None)` when the
/// head is not complete yet.
pub fn parse_response<'a>(
    data: &'a [u8],
    headers: &mut [httparse::Header<'a>; MAX_HEADERS],
) -> Result<Option<ResponseHead<'a>>, Malformed> {
    let mut resp = httparse::Response::new(headers);
    let head_len = match response_config().parse_response(&mut resp, data) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(response_error(e)),
    };
    let (Some(minor), Some(code)) = (resp.version, resp.code) else {
        return Err("http_status_line");
    };
    Ok(Some(ResponseHead { minor, code, reason: reason_phrase(data), head_len, fields: summarize(resp.headers) }))
}

/// The start-line and complete header lines of an incomplete head: what a
/// capture cut by its snap length, a gap or a size limit still shows.
/// `head_len` covers the complete lines only. `None` without a complete,
/// valid request-line.
pub fn parse_request_prefix<'h, 'a>(
    data: &'a [u8],
    headers: &'h mut [httparse::Header<'a>; MAX_HEADERS],
) -> Option<RequestHead<'h, 'a>> {
    let start = data.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let lf = start + data[start..].iter().position(|&b| b == b'\n')?;
    let mut req = httparse::Request::new(&mut []);
    // With no room for fields, the line alone parses as Partial or fails.
    if request_config().parse_request(&mut req, &data[..=lf]).is_err() {
        return None;
    }
    let (method, target, minor) = (req.method?, req.path?, req.version?);
    let (n, head_len) = complete_fields(&data[lf + 1..], headers);
    let headers: &'h [httparse::Header<'a>] = &headers[..n];
    Some(RequestHead { method, target, minor, head_len: lf + 1 + head_len, headers, fields: summarize(headers) })
}

/// [`parse_request_prefix`] for a response head.
pub fn parse_response_prefix<'a>(
    data: &'a [u8],
    headers: &mut [httparse::Header<'a>; MAX_HEADERS],
) -> Option<ResponseHead<'a>> {
    let start = data.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let lf = start + data[start..].iter().position(|&b| b == b'\n')?;
    let mut resp = httparse::Response::new(&mut []);
    if response_config().parse_response(&mut resp, &data[..=lf]).is_err() {
        return None;
    }
    let (minor, code) = (resp.version?, resp.code?);
    let (n, head_len) = complete_fields(&data[lf + 1..], headers);
    Some(ResponseHead {
        minor,
        code,
        reason: reason_phrase(data),
        head_len: lf + 1 + head_len,
        fields: summarize(&headers[..n]),
    })
}

/// The well-formed `name: value` fields among the complete lines of an
/// unfinished header section (RFC 9112 §5), up to [`MAX_HEADERS`]; returns
/// their count and the bytes of the complete lines.
fn complete_fields<'a>(data: &'a [u8], out: &mut [httparse::Header<'a>; MAX_HEADERS]) -> (usize, usize) {
    let (mut n, mut pos) = (0, 0);
    while let Some(lf) = data[pos..].iter().position(|&b| b == b'\n') {
        let line = &data[pos..pos + lf];
        pos += lf + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let name = &line[..colon];
        if n == MAX_HEADERS || name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            continue;
        }
        let Ok(name) = std::str::from_utf8(name) else { continue };
        out[n] = httparse::Header { name, value: trim(&line[colon + 1..]) };
        n += 1;
    }
    (n, pos)
}

/// The reason-phrase of the status-line at the start of `data` (after
/// leading empty lines), raw: httparse blanks phrases with obs-text.
fn reason_phrase(data: &[u8]) -> &[u8] {
    let start = data.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(data.len());
    let line = &data[start..];
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    let line = &line[..end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // "HTTP/1.x" SP+ 3DIGIT [SP+ reason]
    let mut i = 8.min(line.len());
    while i < line.len() && line[i] == b' ' {
        i += 1;
    }
    i = (i + 3).min(line.len());
    while i < line.len() && line[i] == b' ' {
        i += 1;
    }
    trim(&line[i..])
}

/// Strips optional whitespace (SP / HTAB) at both ends (RFC 9110 §5.6.3).
#[must_use]
pub fn trim(v: &[u8]) -> &[u8] {
    let s = v.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(v.len());
    let e = v.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(s, |e| e + 1);
    &v[s..e.max(s)]
}

/// Picks the fields of [`HeadFields`] out of a header section.
#[must_use]
pub fn summarize<'a>(headers: &[httparse::Header<'a>]) -> HeadFields<'a> {
    let mut f = HeadFields::default();
    for h in headers {
        let name = h.name.as_bytes();
        let value = trim(h.value);
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        match name.len() {
            4 if is("host") => {
                f.host.get_or_insert(value);
            }
            10 if is("user-agent") => {
                f.user_agent.get_or_insert(value);
            }
            12 if is("content-type") => {
                f.content_type.get_or_insert(value);
            }
            7 if is("referer") => {
                f.referer.get_or_insert(value);
            }
            7 if is("upgrade") => f.upgrade = true,
            14 if is("content-length") => {
                f.content_length = Some(combine_content_length(f.content_length, value));
            }
            17 if is("transfer-encoding") => {
                f.transfer_encoding = Some(combine_transfer_encoding(f.transfer_encoding, value));
            }
            11 if is("traceparent") => {
                f.traceparent.get_or_insert(value);
            }
            2 if is("b3") => {
                f.b3.get_or_insert(value);
            }
            12 if is("x-b3-traceid") => {
                f.x_b3_trace_id.get_or_insert(value);
            }
            11 if is("x-b3-spanid") => {
                f.x_b3_span_id.get_or_insert(value);
            }
            17 if is("x-b3-parentspanid") => {
                f.x_b3_parent_span_id.get_or_insert(value);
            }
            3 if is("sw8") => {
                f.sw8.get_or_insert(value);
            }
            12 if is("x-request-id") => {
                f.x_request_id.get_or_insert(value);
            }
            _ => {}
        }
    }
    f
}

/// Values of every header named `name` (case-insensitive), trimmed.
pub fn header_values<'h, 'a: 'h>(
    headers: &'h [httparse::Header<'a>],
    name: &'h str,
) -> impl Iterator<Item = &'a [u8]> + 'h {
    headers.iter().filter(move |h| h.name.eq_ignore_ascii_case(name)).map(|h| trim(h.value))
}

/// RFC 9112 §6.3 rule 5: a list of identical decimal values is that value;
/// anything else is invalid.
fn combine_content_length(prev: Option<ContentLength>, value: &[u8]) -> ContentLength {
    let mut cur = prev.unwrap_or(ContentLength::Absent);
    for part in value.split(|&b| b == b',') {
        let part = trim(part);
        let Some(n) = parse_decimal(part) else {
            return ContentLength::Invalid;
        };
        cur = match cur {
            ContentLength::Absent => ContentLength::Valid(n),
            ContentLength::Valid(m) if m == n => cur,
            _ => return ContentLength::Invalid,
        };
    }
    cur
}

fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// RFC 9112 §6.1: what matters is whether `chunked` is the final coding of
/// the combined list (several fields are one comma-separated list).
fn combine_transfer_encoding(prev: Option<TransferEncoding>, value: &[u8]) -> TransferEncoding {
    let last = value.split(|&b| b == b',').map(trim).rfind(|p| !p.is_empty());
    match last {
        // An empty field does not change the list.
        None => prev.unwrap_or(TransferEncoding::Other),
        Some(c) if c.eq_ignore_ascii_case(b"chunked") => TransferEncoding::Chunked,
        Some(_) => TransferEncoding::Other,
    }
}

/// Longest chunk-size line (size and extensions) accepted.
pub const MAX_CHUNK_LINE: usize = 4096;

/// Parses one complete chunk-size line (RFC 9112 §7.1:
/// `chunk-size [ chunk-ext ] CRLF`, `chunk-size = 1*HEXDIG`), `line`
/// ending with its LF. Returns the chunk size; 0 is the last chunk.
pub fn parse_chunk_line(line: &[u8]) -> Result<u64, Malformed> {
    if !line.first().is_some_and(u8::is_ascii_hexdigit) {
        return Err("http_chunk_size");
    }
    match httparse::parse_chunk_size(line) {
        Ok(httparse::Status::Complete((n, size))) if n == line.len() => Ok(size),
        _ => Err("http_chunk_size"),
    }
}

/// Trace context of one request, borrowed from its headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceIds<'a> {
    pub trace_id: Option<&'a [u8]>,
    pub span_id: Option<&'a [u8]>,
    pub parent_span_id: Option<&'a [u8]>,
}

fn all_hex(v: &[u8]) -> bool {
    v.iter().all(u8::is_ascii_hexdigit)
}

fn all_zero(v: &[u8]) -> bool {
    v.iter().all(|&b| b == b'0')
}

/// W3C Trace Context `traceparent`:
/// `version "-" trace-id(32 hex) "-" parent-id(16 hex) "-" flags(2 hex)`.
/// The parent-id (the caller's span) is returned as the span id.
#[must_use]
pub fn parse_traceparent(v: &[u8]) -> Option<TraceIds<'_>> {
    let mut it = v.split(|&b| b == b'-');
    let (version, trace, parent, flags) = (it.next()?, it.next()?, it.next()?, it.next()?);
    if version.len() != 2 || !all_hex(version) || version.eq_ignore_ascii_case(b"ff") {
        return None;
    }
    // Version 00 has exactly four fields; later versions may add more.
    if version == b"00" && it.next().is_some() {
        return None;
    }
    if trace.len() != 32 || !all_hex(trace) || all_zero(trace) {
        return None;
    }
    if parent.len() != 16 || !all_hex(parent) || all_zero(parent) {
        return None;
    }
    if flags.len() != 2 || !all_hex(flags) {
        return None;
    }
    Some(TraceIds { trace_id: Some(trace), span_id: Some(parent), parent_span_id: None })
}

fn b3_id(v: &[u8], lens: &[usize]) -> bool {
    lens.contains(&v.len()) && all_hex(v)
}

/// Zipkin B3 single header: `{TraceId}-{SpanId}[-{Sampled}[-{ParentSpanId}]]`.
/// A lone sampling state (`0`, `1`, `d`) carries no ids.
#[must_use]
pub fn parse_b3_single(v: &[u8]) -> Option<TraceIds<'_>> {
    let mut it = v.split(|&b| b == b'-');
    let trace = it.next()?;
    let span = it.next()?;
    if !b3_id(trace, &[16, 32]) || !b3_id(span, &[16]) {
        return None;
    }
    let _sampled = it.next();
    let parent = it.next().filter(|p| b3_id(p, &[16]));
    Some(TraceIds { trace_id: Some(trace), span_id: Some(span), parent_span_id: parent })
}

/// Zipkin B3 multiple headers (`X-B3-TraceId`, `X-B3-SpanId`,
/// `X-B3-ParentSpanId`).
#[must_use]
pub fn parse_b3_multi<'a>(
    trace: Option<&'a [u8]>,
    span: Option<&'a [u8]>,
    parent: Option<&'a [u8]>,
) -> Option<TraceIds<'a>> {
    let trace = trace.filter(|t| b3_id(t, &[16, 32]))?;
    Some(TraceIds {
        trace_id: Some(trace),
        span_id: span.filter(|s| b3_id(s, &[16])),
        parent_span_id: parent.filter(|p| b3_id(p, &[16])),
    })
}

/// SkyWalking `sw8` (Cross Process Propagation Headers Protocol v3):
/// `sample-traceId-parentSegmentId-parentSpanId-...`, ids base64. Returns
/// the decoded trace id and, as span id, `<parentSegmentId>-<parentSpanId>`
/// (the caller's span, as DeepFlow reports it).
#[must_use]
pub fn parse_sw8(v: &[u8]) -> Option<(String, Option<String>)> {
    let mut it = v.split(|&b| b == b'-');
    let sample = it.next()?;
    if sample != b"0" && sample != b"1" {
        return None;
    }
    let trace = base64_text(it.next()?)?;
    let span = match (it.next().and_then(base64_text), it.next()) {
        (Some(seg), Some(span)) if !span.is_empty() && span.iter().all(u8::is_ascii_digit) => {
            Some(format!("{seg}-{}", String::from_utf8_lossy(span)))
        }
        _ => None,
    };
    Some((trace, span))
}

/// Decodes standard or URL-safe base64 (padding optional) into UTF-8 text
/// without control characters.
#[must_use]
pub fn base64_text(v: &[u8]) -> Option<String> {
    fn val(b: u8) -> Option<u32> {
        Some(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    }
    let v = v.strip_suffix(b"==").or_else(|| v.strip_suffix(b"=")).unwrap_or(v);
    if v.is_empty() || v.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(v.len() * 3 / 4);
    for chunk in v.chunks(4) {
        let mut acc = 0u32;
        for (i, &b) in chunk.iter().enumerate() {
            acc |= val(b)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    let s = String::from_utf8(out).ok()?;
    (!s.chars().any(char::is_control)).then_some(s)
}
