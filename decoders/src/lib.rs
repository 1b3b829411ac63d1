//! Pure, zero-copy decoders for flowtrail.
//!
//! Everything here reads borrowed bytes and returns plain values: no I/O,
//! no clock, no global state, no allocation. `wire` decodes L2–L4 headers
//! and tunnels; L7 protocols join in `l7` with the call-records issue.
//!
//! Contract (as smoltcp's `wire`): every function takes untrusted bytes and
//! never panics; a short or impossible header is a [`DecodeError`].

pub mod wire;

pub use wire::{dissect, dissect_frame, dissect_transport, DecodeError, LinkType, Packet};
