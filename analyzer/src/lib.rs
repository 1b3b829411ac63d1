//! flowtrail: a passive network analyzer that turns packets into flow
//! records in Parquet.
//!
//! Dataflow (see `pipeline`): `capture::PacketSource` → `RawPacket` →
//! `decoders::wire::dissect` → `Packet` → `analyzer::flow::FlowTable` →
//! `records::FlowRecord` → `sink::ParquetSink`.

pub mod dataset;
pub mod defrag;
pub mod flow;
pub mod metrics;
pub mod nat;
pub mod pipeline;
pub mod query;
pub mod reassembly;
pub mod records;
pub mod report;
pub mod sink;
pub mod summary;
