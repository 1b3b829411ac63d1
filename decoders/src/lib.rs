//! Pure, zero-copy decoders for flowtrail.
//!
//! Everything here reads borrowed bytes and returns plain values: no I/O,
//! no clock, no global state. `wire` decodes L2–L4 headers and tunnels
//! without allocating; `l7` detects application protocols by payload and
//! turns byte streams into calls (allocating only per call).
//!
//! Contract (as smoltcp's `wire`): every function takes untrusted bytes and
//! never panics; a short or impossible header is a [`DecodeError`].

pub mod l7;
pub mod wire;

pub use wire::{dissect, dissect_frame, dissect_transport, DecodeError, LinkType, Packet};
