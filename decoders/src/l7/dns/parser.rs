//! DNS wire format (RFC 1035 §4.1): pure functions from a message's bytes
//! to borrowed views. No state, no allocation, no panics.
//!
//! A message is a 12-byte header (§4.1.1), a question section (§4.1.2)
//! and three sections of resource records (§4.1.3): answer, authority,
//! additional. Names are sequences of length-prefixed labels ending in the
//! root label or in a compression pointer (§4.1.4).
//!
//! [`parse_message`] checks the header and the whole question section and
//! stops there; the resource records are read lazily by
//! [`Message::records`], so a truncated or partly damaged response still
//! yields its header, its question and the records before the damage.
//!
//! Loop safety: a name walk follows at most [`MAX_POINTER_JUMPS`]
//! pointers and stops past [`MAX_NAME_LEN`] octets of labels, whatever
//! the pointers do (RFC 1035 §2.3.4, §4.1.4).

use std::net::{Ipv4Addr, Ipv6Addr};

/// Size of the fixed header (RFC 1035 §4.1.1).
pub const HEADER_LEN: usize = 12;
/// Longest name on the wire, length octets included (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// Most compression pointers followed while reading one name. A name of
/// 255 octets has at most 127 labels, so a legitimate name never needs
/// more jumps than that; more can only be a loop.
pub const MAX_POINTER_JUMPS: usize = 127;

/// `TYPE` value of the EDNS(0) pseudo-record (RFC 6891 §6.1.1).
pub const TYPE_OPT: u16 = 41;

/// Why bytes are not a DNS message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// Shorter than the 12-byte header.
    ShortHeader,
    /// A name, question or record runs past the end of the message.
    Truncated,
    /// A label type other than a plain label or a pointer (the `01` and
    /// `10` prefixes, RFC 1035 §4.1.4, RFC 6891 §5).
    BadLabel,
    /// A name longer than 255 octets (RFC 1035 §2.3.4).
    NameTooLong,
    /// More than [`MAX_POINTER_JUMPS`] pointers in one name.
    PointerLoop,
    /// A pointer to an offset outside the message.
    BadPointer,
}

impl ParseError {
    /// Stable name of the error, used as the `L7Error::Malformed` kind.
    #[must_use]
    pub fn kind(self) -> &'static str {
        match self {
            ParseError::ShortHeader => "dns_short_header",
            ParseError::Truncated => "dns_truncated",
            ParseError::BadLabel => "dns_bad_label",
            ParseError::NameTooLong => "dns_name_too_long",
            ParseError::PointerLoop => "dns_pointer_loop",
            ParseError::BadPointer => "dns_bad_pointer",
        }
    }
}

fn be16(b: &[u8], at: usize) -> Result<u16, ParseError> {
    match b.get(at..at + 2) {
        Some(&[hi, lo]) => Ok(u16::from_be_bytes([hi, lo])),
        _ => Err(ParseError::Truncated),
    }
}

fn be32(b: &[u8], at: usize) -> Result<u32, ParseError> {
    match b.get(at..at + 4) {
        Some(&[a, b1, c, d]) => Ok(u32::from_be_bytes([a, b1, c, d])),
        _ => Err(ParseError::Truncated),
    }
}

/// The fixed header (RFC 1035 §4.1.1).
///
/// ```text
///   ID | QR Opcode(4) AA TC RD RA Z AD CD RCODE(4) | QDCOUNT | ANCOUNT | NSCOUNT | ARCOUNT
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    pub flags: u16,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl Header {
    /// QR: the message is a response.
    #[must_use]
    pub fn qr(&self) -> bool {
        self.flags & 0x8000 != 0
    }
    /// OPCODE (0 QUERY, 1 IQUERY, 2 STATUS, 4 NOTIFY, 5 UPDATE, 6 DSO).
    #[must_use]
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0x0f) as u8
    }
    /// AA: authoritative answer.
    #[must_use]
    pub fn aa(&self) -> bool {
        self.flags & 0x0400 != 0
    }
    /// TC: truncated.
    #[must_use]
    pub fn tc(&self) -> bool {
        self.flags & 0x0200 != 0
    }
    /// RD: recursion desired.
    #[must_use]
    pub fn rd(&self) -> bool {
        self.flags & 0x0100 != 0
    }
    /// RA: recursion available.
    #[must_use]
    pub fn ra(&self) -> bool {
        self.flags & 0x0080 != 0
    }
    /// Z: the one bit still reserved (AD and CD, RFC 4035 §3.2, took the
    /// other two); must be zero.
    #[must_use]
    pub fn z(&self) -> bool {
        self.flags & 0x0040 != 0
    }
    /// The 4-bit RCODE of the header (without the EDNS extension).
    #[must_use]
    pub fn rcode(&self) -> u8 {
        (self.flags & 0x000f) as u8
    }
    /// Number of resource records after the question section.
    #[must_use]
    pub fn record_count(&self) -> usize {
        usize::from(self.ancount) + usize::from(self.nscount) + usize::from(self.arcount)
    }
}

/// Reads the 12-byte header at the start of a message.
pub fn parse_header(msg: &[u8]) -> Result<Header, ParseError> {
    if msg.len() < HEADER_LEN {
        return Err(ParseError::ShortHeader);
    }
    Ok(Header {
        id: be16(msg, 0)?,
        flags: be16(msg, 2)?,
        qdcount: be16(msg, 4)?,
        ancount: be16(msg, 6)?,
        nscount: be16(msg, 8)?,
        arcount: be16(msg, 10)?,
    })
}

/// A domain name inside a message, possibly compressed (RFC 1035 §4.1.4).
/// Its labels are read from the message on demand.
#[derive(Debug, Clone, Copy)]
pub struct Name<'a> {
    msg: &'a [u8],
    start: usize,
    compressed: bool,
    labels: u8,
}

/// Reads the name starting at `pos`; returns it and the offset just past
/// it in the original sequence (after the root label or the first
/// pointer).
pub fn parse_name(msg: &[u8], pos: usize) -> Result<(Name<'_>, usize), ParseError> {
    let mut p = pos;
    let mut end = None;
    let mut jumps = 0usize;
    // The root label counts for one octet.
    let mut len = 1usize;
    let mut labels = 0u8;
    loop {
        let b = *msg.get(p).ok_or(ParseError::Truncated)?;
        match b & 0xc0 {
            0x00 if b == 0 => {
                let end = end.unwrap_or(p + 1);
                return Ok((Name { msg, start: pos, compressed: jumps > 0, labels }, end));
            }
            0x00 => {
                let l = usize::from(b);
                len += 1 + l;
                if len > MAX_NAME_LEN {
                    return Err(ParseError::NameTooLong);
                }
                if p + 1 + l > msg.len() {
                    return Err(ParseError::Truncated);
                }
                labels = labels.saturating_add(1);
                p += 1 + l;
            }
            0xc0 => {
                let lo = *msg.get(p + 1).ok_or(ParseError::Truncated)?;
                if end.is_none() {
                    end = Some(p + 2);
                }
                jumps += 1;
                if jumps > MAX_POINTER_JUMPS {
                    return Err(ParseError::PointerLoop);
                }
                let target = (usize::from(b & 0x3f) << 8) | usize::from(lo);
                if target >= msg.len() {
                    return Err(ParseError::BadPointer);
                }
                p = target;
            }
            _ => return Err(ParseError::BadLabel),
        }
    }
}

impl<'a> Name<'a> {
    /// Whether reading the name followed a compression pointer.
    #[must_use]
    pub fn is_compressed(&self) -> bool {
        self.compressed
    }

    /// The root name (no labels).
    #[must_use]
    pub fn is_root(&self) -> bool {
        self.labels == 0
    }

    /// The labels, first (leftmost) to last.
    #[must_use]
    pub fn labels(&self) -> Labels<'a> {
        Labels { msg: self.msg, pos: self.start, jumps: 0 }
    }

    /// Calls `emit` with each byte of the presentation form (RFC 1035
    /// §5.1): lower-case, labels joined by `.`, no trailing dot, `.` and
    /// `\` inside a label escaped with `\`, bytes outside printable ASCII
    /// as `\DDD`. The root name is `.`. Stops when `emit` returns false.
    fn for_each_text_byte(&self, mut emit: impl FnMut(u8) -> bool) {
        if self.is_root() {
            emit(b'.');
            return;
        }
        for (i, label) in self.labels().enumerate() {
            if i > 0 && !emit(b'.') {
                return;
            }
            for &b in label {
                let b = b.to_ascii_lowercase();
                let ok = match b {
                    b'.' | b'\\' => emit(b'\\') && emit(b),
                    0x21..=0x7e => emit(b),
                    _ => emit(b'\\') && emit(b'0' + b / 100) && emit(b'0' + (b / 10) % 10) && emit(b'0' + b % 10),
                };
                if !ok {
                    return;
                }
            }
        }
    }

    /// Appends the presentation form (see [`Name::eq_text`]) to `out`.
    pub fn write_text(&self, out: &mut String) {
        self.for_each_text_byte(|b| {
            // Only ASCII is ever emitted.
            out.push(char::from(b));
            true
        });
    }

    /// Whether the presentation form (lower-case, escaped, no trailing
    /// dot, `.` for the root) equals `text`, without allocating.
    #[must_use]
    pub fn eq_text(&self, text: &str) -> bool {
        let text = text.as_bytes();
        let mut i = 0usize;
        let mut same = true;
        self.for_each_text_byte(|b| {
            same = text.get(i) == Some(&b);
            i += 1;
            same
        });
        same && i == text.len()
    }
}

/// Iterator over the labels of a [`Name`]. The name was checked when it
/// was parsed; the walk is bounded again anyway.
#[derive(Debug, Clone)]
pub struct Labels<'a> {
    msg: &'a [u8],
    pos: usize,
    jumps: usize,
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let b = *self.msg.get(self.pos)?;
            match b & 0xc0 {
                0x00 if b == 0 => return None,
                0x00 => {
                    let l = usize::from(b);
                    let label = self.msg.get(self.pos + 1..self.pos + 1 + l)?;
                    self.pos += 1 + l;
                    return Some(label);
                }
                0xc0 => {
                    let lo = *self.msg.get(self.pos + 1)?;
                    self.jumps += 1;
                    if self.jumps > MAX_POINTER_JUMPS {
                        return None;
                    }
                    self.pos = (usize::from(b & 0x3f) << 8) | usize::from(lo);
                }
                _ => return None,
            }
        }
    }
}

/// One entry of the question section (RFC 1035 §4.1.2).
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    pub name: Name<'a>,
    pub qtype: u16,
    pub qclass: u16,
}

/// Reads the question at `pos`; returns it and the offset past it.
pub fn parse_question(msg: &[u8], pos: usize) -> Result<(Question<'_>, usize), ParseError> {
    let (name, p) = parse_name(msg, pos)?;
    let qtype = be16(msg, p)?;
    let qclass = be16(msg, p + 2)?;
    Ok((Question { name, qtype, qclass }, p + 4))
}

/// One resource record (RFC 1035 §4.1.3).
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub name: Name<'a>,
    pub rtype: u16,
    pub rclass: u16,
    pub ttl: u32,
    pub rdata: &'a [u8],
    msg: &'a [u8],
    rdata_pos: usize,
}

/// Reads the resource record at `pos`; returns it and the offset past it.
pub fn parse_record(msg: &[u8], pos: usize) -> Result<(Record<'_>, usize), ParseError> {
    let (name, p) = parse_name(msg, pos)?;
    let rtype = be16(msg, p)?;
    let rclass = be16(msg, p + 2)?;
    let ttl = be32(msg, p + 4)?;
    let rdlen = usize::from(be16(msg, p + 8)?);
    let rdata_pos = p + 10;
    let rdata = msg.get(rdata_pos..rdata_pos + rdlen).ok_or(ParseError::Truncated)?;
    Ok((Record { name, rtype, rclass, ttl, rdata, msg, rdata_pos }, rdata_pos + rdlen))
}

impl<'a> Record<'a> {
    /// The address of an A record (RFC 1035 §3.4.1).
    #[must_use]
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        match (self.rtype, self.rdata) {
            (1, &[a, b, c, d]) => Some(Ipv4Addr::new(a, b, c, d)),
            _ => None,
        }
    }

    /// The address of an AAAA record (RFC 3596 §2.2).
    #[must_use]
    pub fn ipv6(&self) -> Option<Ipv6Addr> {
        match (self.rtype, <[u8; 16]>::try_from(self.rdata)) {
            (28, Ok(a)) => Some(Ipv6Addr::from(a)),
            _ => None,
        }
    }

    /// The target name of a record whose RDATA is one domain name: NS,
    /// CNAME, PTR (RFC 1035 §3.3) and DNAME (RFC 6672). Pointers in it may
    /// reach anywhere in the message.
    #[must_use]
    pub fn target(&self) -> Option<Name<'a>> {
        if !matches!(self.rtype, 2 | 5 | 12 | 39) {
            return None;
        }
        let (name, end) = parse_name(self.msg, self.rdata_pos).ok()?;
        (end == self.rdata_pos + self.rdata.len()).then_some(name)
    }
}

/// Section a resource record belongs to (RFC 1035 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Answer,
    Authority,
    Additional,
}

/// A message whose header and question section were checked.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub bytes: &'a [u8],
    pub header: Header,
    /// The first question, when QDCOUNT > 0.
    pub question: Option<Question<'a>>,
    /// Offset of the first resource record.
    records_pos: usize,
}

/// Reads a header and every question; the records are left for
/// [`Message::records`].
pub fn parse_message(bytes: &[u8]) -> Result<Message<'_>, ParseError> {
    let header = parse_header(bytes)?;
    let mut pos = HEADER_LEN;
    let mut question = None;
    for _ in 0..header.qdcount {
        let (q, next) = parse_question(bytes, pos)?;
        question.get_or_insert(q);
        pos = next;
    }
    Ok(Message { bytes, header, question, records_pos: pos })
}

impl<'a> Message<'a> {
    /// The resource records of all three sections, in order. After an
    /// error the iterator ends.
    #[must_use]
    pub fn records(&self) -> Records<'a> {
        Records {
            msg: self.bytes,
            pos: self.records_pos,
            index: 0,
            ancount: usize::from(self.header.ancount),
            nscount: usize::from(self.header.nscount),
            total: self.header.record_count(),
        }
    }

    /// The answer section's records, up to the first damaged one.
    pub fn answers(&self) -> impl Iterator<Item = Record<'a>> {
        self.records().map_while(Result::ok).filter(|(s, _)| *s == Section::Answer).map(|(_, r)| r)
    }

    /// The EDNS OPT pseudo-record of the additional section (RFC 6891
    /// §6.1.1), if any and if the records before it are readable.
    #[must_use]
    pub fn opt(&self) -> Option<Record<'a>> {
        self.records()
            .map_while(Result::ok)
            .find(|(s, r)| *s == Section::Additional && r.rtype == TYPE_OPT)
            .map(|(_, r)| r)
    }

    /// RCODE with the EDNS extension: the upper 8 bits of the 12-bit
    /// code are the first octet of the OPT record's TTL (RFC 6891 §6.1.3).
    #[must_use]
    pub fn rcode(&self) -> u16 {
        let low = u16::from(self.header.rcode());
        match self.opt() {
            Some(opt) => ((opt.ttl >> 24) as u16) << 4 | low,
            None => low,
        }
    }
}

/// Iterator over the resource records of a [`Message`].
#[derive(Debug, Clone)]
pub struct Records<'a> {
    msg: &'a [u8],
    pos: usize,
    index: usize,
    ancount: usize,
    nscount: usize,
    total: usize,
}

impl<'a> Records<'a> {
    /// Offset just past the records read so far.
    #[must_use]
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<(Section, Record<'a>), ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.index >= self.total {
            return None;
        }
        let section = if self.index < self.ancount {
            Section::Answer
        } else if self.index < self.ancount + self.nscount {
            Section::Authority
        } else {
            Section::Additional
        };
        match parse_record(self.msg, self.pos) {
            Ok((r, next)) => {
                self.index += 1;
                self.pos = next;
                Some(Ok((section, r)))
            }
            Err(e) => {
                self.index = self.total;
                Some(Err(e))
            }
        }
    }
}

/// Mnemonic of a TYPE/QTYPE value (RFC 1035 §3.2.2, §3.2.3 and the IANA
/// registry); `None` for values without one here.
#[must_use]
pub fn type_name(t: u16) -> Option<&'static str> {
    Some(match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        10 => "NULL",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        24 => "SIG",
        25 => "KEY",
        28 => "AAAA",
        29 => "LOC",
        33 => "SRV",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        39 => "DNAME",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        53 => "SMIMEA",
        55 => "HIP",
        59 => "CDS",
        60 => "CDNSKEY",
        61 => "OPENPGPKEY",
        62 => "CSYNC",
        63 => "ZONEMD",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        108 => "EUI48",
        109 => "EUI64",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        _ => return None,
    })
}

/// Name of an OPCODE (RFC 1035 §4.1.1, RFC 1996, RFC 2136, RFC 8490).
#[must_use]
pub fn opcode_name(op: u8) -> Option<&'static str> {
    Some(match op {
        0 => "QUERY",
        1 => "IQUERY",
        2 => "STATUS",
        4 => "NOTIFY",
        5 => "UPDATE",
        6 => "DSO",
        _ => return None,
    })
}

/// Name of an RCODE, extended ones included (RFC 1035 §4.1.1, RFC 2136,
/// RFC 6891, RFC 8945, RFC 7873).
#[must_use]
pub fn rcode_name(rc: u16) -> Option<&'static str> {
    Some(match rc {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        11 => "DSOTYPENI",
        16 => "BADVERS",
        17 => "BADKEY",
        18 => "BADTIME",
        19 => "BADMODE",
        20 => "BADNAME",
        21 => "BADALG",
        22 => "BADTRUNC",
        23 => "BADCOOKIE",
        _ => return None,
    })
}
