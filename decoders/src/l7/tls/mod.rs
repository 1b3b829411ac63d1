//! Placeholder: the tls decoder is being written.

use super::{Call, Decoder, Direction, L7Error, Probe, SessionConfig, Transport};

/// Cheap check on the first bytes of a direction.
#[must_use]
pub fn probe(_data: &[u8], _dir: Direction, _transport: Transport) -> Probe {
    Probe::NoMatch
}

#[derive(Debug)]
pub struct Session;

impl Session {
    #[must_use]
    pub fn new(_cfg: &SessionConfig, _transport: Transport) -> Self {
        Session
    }
}

impl Decoder for Session {
    fn parse(&mut self, _dir: Direction, data: &[u8], _ts: i64, _out: &mut Vec<Call>) -> Result<usize, L7Error> {
        Ok(data.len())
    }
    fn on_gap(&mut self, _dir: Direction, _len: u32) {}
    fn expire(&mut self, _older_than: i64, _out: &mut Vec<Call>) {}
    fn finish(&mut self, _end_ts: i64, _out: &mut Vec<Call>) {}
}
