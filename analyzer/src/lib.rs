//! flowtrail: a passive network analyzer that turns packets into flow
//! records in Parquet.
//!
//! Dataflow (see `pipeline`): `capture::PacketSource` → `RawPacket` →
//! `decoders::wire::dissect` → `Packet` → `analyzer::flow::FlowTable` →
//! `records::FlowRecord` → `sink::ParquetSink`.

#![recursion_limit = "256"] // serde_json::json! of the run summary (summary.rs) nests deeply

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
