//! Where records leave flowtrail.

pub mod object;
pub mod parquet;

pub use self::parquet::{ParquetSink, Recycle, SinkStats};
