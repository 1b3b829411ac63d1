//! Network interfaces: list them, match their names against globs, and
//! watch them appear and disappear (Linux).
//!
//! Everything here speaks rtnetlink (`NETLINK_ROUTE`) directly through
//! `libc`: a `RTM_GETLINK` dump lists the links, a socket subscribed to
//! `RTMGRP_LINK` hears `RTM_NEWLINK`/`RTM_DELLINK` as they happen. Only
//! `ifinfomsg` and three attributes (`IFLA_IFNAME`, `IFLA_LINKINFO` →
//! `IFLA_INFO_KIND`) are read, a stable kernel ABI small enough that the
//! `netlink-packet-route`/`netlink-sys` crates (whose APIs change between
//! releases and which pull in their own dependency tree) are not worth it.
//! Netlink rather than `/sys/class/net`: sysfs shows the namespace of
//! whoever mounted it, a netlink socket the namespace it was created in,
//! so [`list_in`] and [`LinkWatcher::open_in`] work for any namespace.
//!
//! Namespaces are named as `ip netns` names them (`/var/run/netns/NAME`)
//! or by a path (`/proc/PID/ns/net`); [`in_netns`] runs a closure on a
//! short-lived thread that entered one. Sockets created there stay in that
//! namespace for their whole life, whichever thread uses them later.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::linktype;

/// One network interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetDev {
    pub name: String,
    pub ifindex: u32,
    /// `ARPHRD_*` hardware type: 1 Ethernet (also veth, tap, bridge),
    /// 772 loopback, 65534 (`ARPHRD_NONE`) tun and WireGuard.
    pub arphrd: u16,
    /// `IFF_*` flags (`IFF_UP` = 1, `IFF_RUNNING` = 0x40, …).
    pub flags: u32,
    /// The rtnl link kind (`veth`, `tun`, `bridge`, `vlan`, …) when the
    /// driver has one; `None` for physical NICs and loopback.
    pub kind: Option<String>,
    /// The namespace it was listed in: `None` for the caller's own, else
    /// the name or path given to [`list_in`] / [`LinkWatcher::open_in`].
    pub netns: Option<String>,
}

impl NetDev {
    pub fn is_up(&self) -> bool {
        self.flags & libc::IFF_UP as u32 != 0
    }

    /// The `LINKTYPE_*` an AF_PACKET capture on it gets, `None` when
    /// flowtrail cannot capture it (see [`linktype_of_arphrd`]).
    pub fn linktype(&self) -> Option<u32> {
        linktype_of_arphrd(self.arphrd)
    }
}

/// `LINKTYPE_*` of the frames a `SOCK_RAW` AF_PACKET socket reads on a
/// device of this `ARPHRD_*` type: Ethernet and loopback (Linux gives `lo`
/// an Ethernet header with zero addresses) → `LINKTYPE_ETHERNET`; devices
/// without a link header (tun, WireGuard, ipip/sit tunnels, raw-IP modems)
/// → `LINKTYPE_RAW`. Anything else is `None`.
pub fn linktype_of_arphrd(arphrd: u16) -> Option<u32> {
    const ARPHRD_RAWIP: u16 = 519;
    match arphrd {
        libc::ARPHRD_ETHER | libc::ARPHRD_LOOPBACK => Some(linktype::ETHERNET),
        libc::ARPHRD_NONE | ARPHRD_RAWIP | libc::ARPHRD_TUNNEL | libc::ARPHRD_TUNNEL6 | libc::ARPHRD_SIT => {
            Some(linktype::RAW)
        }
        _ => None,
    }
}

/// The interfaces of the caller's network namespace, by ifindex.
pub fn list() -> io::Result<Vec<NetDev>> {
    Netlink::open(0)?.dump_links(None)
}

/// The interfaces of another network namespace (an `ip netns` name or a
/// path such as `/proc/PID/ns/net`), by ifindex.
pub fn list_in(netns: &str) -> io::Result<Vec<NetDev>> {
    in_netns(netns, || Netlink::open(0)?.dump_links(Some(netns)))?
}

/// Runs `f` on a new thread that has entered network namespace `netns`
/// (an `ip netns` name, i.e. `/var/run/netns/NAME`, or any path to a
/// namespace file). Sockets `f` creates belong to that namespace for good.
/// Errors: the namespace cannot be opened or entered (`setns` needs
/// `CAP_SYS_ADMIN`). A panic in `f` is resumed on the caller's thread.
pub fn in_netns<T: Send>(netns: &str, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    let path = netns_path(netns);
    let file = File::open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("network namespace {}: {e}", path.display())))?;
    std::thread::scope(|s| {
        let worker = s.spawn(move || {
            // SAFETY: `file` is an open namespace file that outlives the
            // call; setns changes the namespace of this thread only, which
            // exits right after `f`.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                let e = io::Error::last_os_error();
                return Err(io::Error::new(e.kind(), format!("setns({}): {e}", path.display())));
            }
            Ok(f())
        });
        worker.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

fn netns_path(netns: &str) -> PathBuf {
    if netns.contains('/') {
        PathBuf::from(netns)
    } else {
        PathBuf::from("/var/run/netns").join(netns)
    }
}

/// Shell-style glob match of an interface name: `*` any run of characters,
/// `?` one character, `[abc]`, `[a-z]`, `[!0-9]` a class, `\x` a literal
/// `x`; everything else matches itself. `eth0`, `tap*`, `veth*`, `cali*`.
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0usize, 0usize);
    // Where the last `*` was and the name position it currently absorbs up to.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            let step = match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' => Some(1),
                '[' => match class(&p[pi..], n[ni]) {
                    Some((true, len)) => Some(len),
                    Some((false, _)) => None,
                    None => (n[ni] == '[').then_some(1),
                },
                '\\' if pi + 1 < p.len() => (p[pi + 1] == n[ni]).then_some(2),
                c => (c == n[ni]).then_some(1),
            };
            if let Some(len) = step {
                pi += len;
                ni += 1;
                continue;
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A `[...]` class at the start of `p`: whether `c` is in it and the
/// class's length, or `None` when the `[` is not closed.
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            hit |= p[i] <= c && c <= p[i + 2];
            i += 3;
        } else {
            hit |= p[i] == c;
            i += 1;
        }
    }
    None
}

/// What a [`LinkWatcher`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// A new interface (created, moved into the namespace, or renamed to
    /// this name).
    Added(NetDev),
    /// An interface is gone (deleted, moved out, or renamed away: a rename
    /// is `Removed` of the old name then `Added` of the new one). The
    /// `NetDev` is the last one known.
    Removed(NetDev),
}

/// Reports interfaces appearing and disappearing, from rtnetlink link
/// events (`RTM_NEWLINK`/`RTM_DELLINK` on `RTMGRP_LINK`): the kernel sends
/// them as it makes the change, so [`poll`](Self::poll) sees them within
/// milliseconds. Flag changes (up/down) update [`devices`](Self::devices)
/// without an event. If the kernel overflows the socket (`ENOBUFS`), the
/// watcher lists the links again and reports the difference.
pub struct LinkWatcher {
    events: Netlink,
    dump: Netlink,
    netns: Option<String>,
    known: BTreeMap<u32, NetDev>,
    buf: Vec<u8>,
}

impl LinkWatcher {
    /// Watches the caller's network namespace. The interfaces present now
    /// are in [`devices`](Self::devices), not reported as events.
    pub fn open() -> io::Result<Self> {
        Self::open_here(None)
    }

    /// Watches another network namespace (see [`in_netns`]).
    pub fn open_in(netns: &str) -> io::Result<Self> {
        in_netns(netns, || Self::open_here(Some(netns.to_string())))?
    }

    fn open_here(netns: Option<String>) -> io::Result<Self> {
        // Subscribe before listing: a link that appears in between shows up
        // in both, and `apply` drops the duplicate.
        let events = Netlink::open(libc::RTMGRP_LINK as u32)?;
        events.grow_rcvbuf(1 << 20);
        let dump = Netlink::open(0)?;
        let known = dump.dump_links(netns.as_deref())?.into_iter().map(|d| (d.ifindex, d)).collect();
        Ok(LinkWatcher { events, dump, netns, known, buf: vec![0; 64 * 1024] })
    }

    /// The interfaces known now, by ifindex.
    pub fn devices(&self) -> impl Iterator<Item = &NetDev> {
        self.known.values()
    }

    /// Waits up to `timeout` for link events and returns them (empty when
    /// none came). Returns as soon as at least one event is in.
    pub fn poll(&mut self, timeout: Duration) -> io::Result<Vec<LinkEvent>> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        loop {
            self.drain(&mut out)?;
            if !out.is_empty() {
                return Ok(out);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(out);
            }
            let mut pfd = libc::pollfd { fd: self.events.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd, count 1.
            if unsafe { libc::poll(&mut pfd, 1, ms) } < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }

    /// Reads every queued event without waiting.
    fn drain(&mut self, out: &mut Vec<LinkEvent>) -> io::Result<()> {
        loop {
            let n = match self.events.recv(&mut self.buf, libc::MSG_DONTWAIT) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.resync(out)?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut changes = Vec::new();
            for_each_message(&self.buf[..n], |kind, _flags, payload| {
                if kind == libc::RTM_NEWLINK || kind == libc::RTM_DELLINK {
                    if let Some(dev) = parse_link(payload, self.netns.as_deref()) {
                        changes.push((kind == libc::RTM_NEWLINK, dev));
                    }
                }
                Ok(())
            })?;
            for (present, dev) in changes {
                self.apply(present, dev, out);
            }
        }
    }

    fn apply(&mut self, present: bool, dev: NetDev, out: &mut Vec<LinkEvent>) {
        if present {
            match self.known.get_mut(&dev.ifindex) {
                Some(old) if old.name == dev.name => *old = dev,
                Some(old) => {
                    out.push(LinkEvent::Removed(mem::replace(old, dev.clone())));
                    out.push(LinkEvent::Added(dev));
                }
                None => {
                    self.known.insert(dev.ifindex, dev.clone());
                    out.push(LinkEvent::Added(dev));
                }
            }
        } else if let Some(old) = self.known.remove(&dev.ifindex) {
            out.push(LinkEvent::Removed(old));
        }
    }

    /// Events were lost: list the links again and report the difference.
    fn resync(&mut self, out: &mut Vec<LinkEvent>) -> io::Result<()> {
        let now: BTreeMap<u32, NetDev> =
            self.dump.dump_links(self.netns.as_deref())?.into_iter().map(|d| (d.ifindex, d)).collect();
        let gone: Vec<u32> = self.known.keys().filter(|i| !now.contains_key(i)).copied().collect();
        for i in gone {
            let dev = self.known[&i].clone();
            self.apply(false, dev, out);
        }
        for dev in now.into_values() {
            self.apply(true, dev, out);
        }
        Ok(())
    }
}

impl AsFd for LinkWatcher {
    /// The event socket, readable when [`poll`](LinkWatcher::poll) has
    /// something to read (for callers multiplexing several sources).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.events.fd.as_fd()
    }
}

/// An rtnetlink socket.
struct Netlink {
    fd: OwnedFd,
}

const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
/// `NLA_F_NESTED | NLA_F_NET_BYTEORDER`, not part of the type.
const NLA_TYPE_MASK: u16 = !0xc000;

impl Netlink {
    fn open(groups: u32) -> io::Result<Self> {
        // SAFETY: plain socket(2) call; the result is checked.
        let raw = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_nl is plain old data; all-zero is valid.
        let mut sa: libc::sockaddr_nl = unsafe { mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        sa.nl_groups = groups;
        // SAFETY: `sa` is a valid sockaddr_nl and the length is its size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_nl).cast(),
                mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Netlink { fd })
    }

    /// Best effort: a bigger receive buffer makes `ENOBUFS` rarer.
    fn grow_rcvbuf(&self, bytes: libc::c_int) {
        for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
            // SAFETY: `bytes` is a c_int and the length says so.
            let rc = unsafe {
                libc::setsockopt(
                    self.fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    (&bytes as *const libc::c_int).cast(),
                    mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc == 0 {
                return;
            }
        }
    }

    /// Receives one datagram into `buf`, growing it when the datagram is
    /// larger (peeked first so nothing is cut).
    fn recv(&self, buf: &mut Vec<u8>, flags: libc::c_int) -> io::Result<usize> {
        loop {
            // SAFETY: `buf` is valid for `buf.len()` writable bytes.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    flags | libc::MSG_PEEK | libc::MSG_TRUNC,
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            if n as usize > buf.len() {
                buf.resize(n as usize, 0);
                continue;
            }
            // SAFETY: as above; the datagram fits, as the peek showed.
            let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), flags) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            return Ok(n as usize);
        }
    }

    /// `RTM_GETLINK` dump of every link.
    fn dump_links(&self, netns: Option<&str>) -> io::Result<Vec<NetDev>> {
        const REQ_LEN: usize = NLMSG_HDRLEN + IFINFOMSG_LEN;
        let mut req = [0u8; REQ_LEN];
        let seq: u32 = 1;
        req[0..4].copy_from_slice(&(REQ_LEN as u32).to_ne_bytes());
        req[4..6].copy_from_slice(&libc::RTM_GETLINK.to_ne_bytes());
        req[6..8].copy_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
        req[8..12].copy_from_slice(&seq.to_ne_bytes());
        req[NLMSG_HDRLEN] = libc::AF_UNSPEC as u8;
        // SAFETY: sockaddr_nl is plain old data; all-zero is valid.
        let mut kernel: libc::sockaddr_nl = unsafe { mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `req` and `kernel` are valid for the lengths given.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                req.as_ptr().cast(),
                req.len(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; 64 * 1024];
        let mut devs = Vec::new();
        let mut done = false;
        while !done {
            let n = match self.recv(&mut buf, 0) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            for_each_message(&buf[..n], |kind, _flags, payload| {
                match kind {
                    libc::RTM_NEWLINK => devs.extend(parse_link(payload, netns)),
                    k if k == libc::NLMSG_DONE as u16 => done = true,
                    _ => {}
                }
                Ok(())
            })?;
        }
        devs.sort_by_key(|d| d.ifindex);
        Ok(devs)
    }
}

/// Calls `f(type, flags, payload)` for each netlink message in `buf`;
/// an `NLMSG_ERROR` with a non-zero code becomes that error.
fn for_each_message(buf: &[u8], mut f: impl FnMut(u16, u16, &[u8]) -> io::Result<()>) -> io::Result<()> {
    let mut at = 0;
    while at + NLMSG_HDRLEN <= buf.len() {
        let len = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes(buf[at + 4..at + 6].try_into().unwrap());
        let flags = u16::from_ne_bytes(buf[at + 6..at + 8].try_into().unwrap());
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "malformed netlink message"));
        }
        let payload = &buf[at + NLMSG_HDRLEN..at + len];
        if kind == libc::NLMSG_ERROR as u16 && payload.len() >= 4 {
            let code = i32::from_ne_bytes(payload[..4].try_into().unwrap());
            if code != 0 {
                return Err(io::Error::from_raw_os_error(-code));
            }
        } else {
            f(kind, flags, payload)?;
        }
        at += align4(len);
    }
    Ok(())
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// `(type, value)` of each attribute in `buf`.
fn attrs(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at + 4 > buf.len() {
            return None;
        }
        let len = u16::from_ne_bytes(buf[at..at + 2].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes(buf[at + 2..at + 4].try_into().unwrap()) & NLA_TYPE_MASK;
        if len < 4 || at + len > buf.len() {
            return None;
        }
        let value = &buf[at + 4..at + len];
        at += align4(len);
        Some((kind, value))
    })
}

fn c_string(v: &[u8]) -> String {
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

/// An `ifinfomsg` and its attributes.
fn parse_link(payload: &[u8], netns: Option<&str>) -> Option<NetDev> {
    if payload.len() < IFINFOMSG_LEN {
        return None;
    }
    let arphrd = u16::from_ne_bytes(payload[2..4].try_into().unwrap());
    let ifindex = i32::from_ne_bytes(payload[4..8].try_into().unwrap());
    let flags = u32::from_ne_bytes(payload[8..12].try_into().unwrap());
    let mut name = None;
    let mut kind = None;
    for (t, v) in attrs(&payload[IFINFOMSG_LEN..]) {
        match t {
            IFLA_IFNAME => name = Some(c_string(v)),
            IFLA_LINKINFO => {
                kind = attrs(v).find(|&(t, _)| t == IFLA_INFO_KIND).map(|(_, v)| c_string(v));
            }
            _ => {}
        }
    }
    Some(NetDev {
        name: name?,
        ifindex: u32::try_from(ifindex).ok()?,
        arphrd,
        flags,
        kind,
        netns: netns.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(matches("eth0", "eth0"));
        assert!(!matches("eth0", "eth01"));
        assert!(!matches("eth0", "eth"));
        assert!(matches("tap*", "tap"));
        assert!(matches("tap*", "tap1234"));
        assert!(!matches("tap*", "xtap1"));
        assert!(matches("veth*", "veth8c1f2a"));
        assert!(matches("cali*", "cali0123456789a"));
        assert!(matches("*", ""));
        assert!(matches("*0", "eth0"));
        assert!(matches("e*h*0", "ethhh0"));
        assert!(!matches("e*h*0", "ethhh1"));
        assert!(matches("eth?", "eth7"));
        assert!(!matches("eth?", "eth"));
        assert!(matches("eth[0-3]", "eth2"));
        assert!(!matches("eth[0-3]", "eth4"));
        assert!(matches("eth[!0-3]", "eth4"));
        assert!(matches("eth[]x]", "eth]"));
        assert!(matches("a[b", "a[b"));
        assert!(matches("a\\*", "a*"));
        assert!(!matches("a\\*", "ab"));
        assert!(matches("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!matches("*a*b*c*", "xxaxxcxxbxx"));
    }

    #[test]
    fn link_messages_parse() {
        // ifinfomsg + IFLA_IFNAME "veth9" + IFLA_LINKINFO{IFLA_INFO_KIND "veth"}
        let mut p = vec![0u8; IFINFOMSG_LEN];
        p[2..4].copy_from_slice(&1u16.to_ne_bytes());
        p[4..8].copy_from_slice(&42i32.to_ne_bytes());
        p[8..12].copy_from_slice(&1u32.to_ne_bytes());
        let attr = |t: u16, v: &[u8]| {
            let mut a = Vec::new();
            a.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
            a.extend_from_slice(&t.to_ne_bytes());
            a.extend_from_slice(v);
            a.resize(align4(a.len()), 0);
            a
        };
        p.extend(attr(IFLA_IFNAME, b"veth9\0"));
        p.extend(attr(IFLA_LINKINFO | 0x8000, &attr(IFLA_INFO_KIND, b"veth\0")));
        let d = parse_link(&p, None).unwrap();
        assert_eq!(d.name, "veth9");
        assert_eq!(d.ifindex, 42);
        assert_eq!(d.arphrd, 1);
        assert!(d.is_up());
        assert_eq!(d.kind.as_deref(), Some("veth"));
        assert_eq!(d.linktype(), Some(linktype::ETHERNET));
    }

    #[test]
    fn lists_loopback() {
        let devs = list().unwrap();
        let lo = devs.iter().find(|d| d.name == "lo").expect("lo listed");
        assert_eq!(lo.arphrd, libc::ARPHRD_LOOPBACK);
        assert_eq!(lo.linktype(), Some(linktype::ETHERNET));
    }
}
