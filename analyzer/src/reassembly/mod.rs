//! TCP stream reassembly and the L7 decoding it feeds.
//!
//! `assembler` orders the segments of one direction (bounded, pure);
//! `stream` runs detection and the protocol session of a flow on what the
//! assemblers release (or on UDP datagrams as they come).

mod assembler;
mod stream;

pub use assembler::{Assembler, AssemblerStats, Chunk};
pub use stream::{L7Config, L7Flow, L7Shard, L7Stats, SegmentFlags};
