//! Apache Kafka wire protocol: the per-flow session.

use crate::l7::{Call, Decoder, Direction, L7Error, SessionConfig, Transport};

/// A kafka connection's decoder.
#[derive(Debug)]
pub struct Session {}

impl Session {
    #[must_use]
    pub fn new(_cfg: &SessionConfig, _transport: Transport) -> Self {
        Session {}
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
