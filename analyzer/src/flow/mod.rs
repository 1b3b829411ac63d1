//! Bidirectional flows: keys, the per-shard flow table and TCP health.
//!
//! A flow is keyed on the capture point, the innermost 5-tuple (ICMP echo
//! flows use the echo identifier as both ports), the innermost VLAN tags
//! and the outermost tunnel id. Keys are normalised (lower endpoint first)
//! so both directions find the same entry.

mod key;
mod table;
mod tcp;

pub use key::{shard_of, FlowKey};
pub use table::{CapturePoint, FlowConfig, FlowTable, PacketInfo, TableStats};
