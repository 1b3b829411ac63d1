//! PostgreSQL frontend/backend protocol v3: detection and a session that turns each request and its
//! response into one [`Call`](super::Call).
//!
//! Placeholder: the probe matches nothing and the session emits nothing
//! until the decoder lands.

pub mod parser;
pub mod session;
#[cfg(test)]
mod tests;

pub use session::Session;

use super::{Direction, Probe, Transport};

/// Cheap check on the first bytes of a direction.
#[must_use]
pub fn probe(_data: &[u8], _dir: Direction, _transport: Transport) -> Probe {
    Probe::NoMatch
}
