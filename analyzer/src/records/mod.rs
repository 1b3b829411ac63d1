//! The only schema definition of flowtrail's output.
//!
//! Each record kind is declared once with [`record!`]: a struct whose
//! fields carry `///` docs. From that one declaration come the Rust struct,
//! the Arrow schema written to Parquet, the column builder, and the
//! Markdown table that `flowtrail schema` prints and README.md embeds (a
//! test fails when README.md is stale).

pub mod call;
pub mod flow;
pub mod nat_path;

use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, MapBuilder, StringBuilder,
};
use arrow_array::Array;
use arrow_array::RecordBatch;
use arrow_schema::{DataType, Schema};

pub use call::CallRecord;
pub use flow::FlowRecord;
pub use nat_path::NatPathRecord;

/// Cleared record vectors waiting to be filled again (see
/// `sink::Recycle`): one bounded pool per record kind, shared by every run
/// in the process; a full pool simply frees the vector.
pub struct Pool<R>(std::sync::OnceLock<PoolChannel<R>>);

type PoolChannel<R> = (crossbeam_channel::Sender<Vec<R>>, crossbeam_channel::Receiver<Vec<R>>);

impl<R> Default for Pool<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R> Pool<R> {
    #[must_use]
    pub const fn new() -> Self {
        Pool(std::sync::OnceLock::new())
    }

    fn channel(&self) -> &PoolChannel<R> {
        self.0.get_or_init(|| crossbeam_channel::bounded(64))
    }

    /// An empty vector, reused when one is waiting, else new with room for
    /// a whole hand-off batch: growing one by doubling copied megabytes of
    /// records and faulted fresh pages in at every step (perf: a fifth of
    /// an L7 replay).
    pub fn take(&self) -> Vec<R> {
        self.channel().1.try_recv().unwrap_or_else(|_| Vec::with_capacity(BATCH_CAPACITY))
    }

    pub fn put(&self, v: Vec<R>) {
        let _ = self.channel().0.try_send(v);
    }
}

/// Records a shard hands to the writer at once (the pipeline's batch,
/// plus the calls one packet may finish on top of it).
pub const BATCH_CAPACITY: usize = 4096 + 256;

pub static FLOW_POOL: Pool<FlowRecord> = Pool::new();
pub static CALL_POOL: Pool<CallRecord> = Pool::new();

impl crate::sink::Recycle for FlowRecord {
    fn recycle(batch: Vec<Self>) {
        FLOW_POOL.put(batch);
    }
}

impl crate::sink::Recycle for NatPathRecord {
    fn recycle(_batch: Vec<Self>) {}
}

impl crate::sink::Recycle for CallRecord {
    fn recycle(batch: Vec<Self>) {
        CALL_POOL.put(batch);
    }
}

/// Version of the record schemas, written into every Parquet file's
/// key-value metadata as `flowtrail.schema_version`.
pub const SCHEMA_VERSION: &str = "1";

/// A Rust field type that maps onto one Arrow column.
pub trait Column {
    type Builder: ArrayBuilder;
    /// Name shown in the schema table.
    const TYPE_NAME: &'static str;
    const NULLABLE: bool;
    fn data_type() -> DataType;
    fn builder(capacity: usize) -> Self::Builder;
    fn append(b: &mut Self::Builder, v: &Self);
    /// Reads row `row` of a column of this type back (the default value
    /// for a null, or for a column of another type: files of an older
    /// schema version may lack it).
    fn read(col: &dyn Array, row: usize) -> Self
    where
        Self: Sized;
}

macro_rules! column {
    ($ty:ty, $builder:ident, $arr:ty, $dt:expr, $name:literal, |$b:ident, $v:ident| $some:expr, $optname:literal) => {
        impl Column for $ty {
            type Builder = $builder;
            const TYPE_NAME: &'static str = $name;
            const NULLABLE: bool = false;
            fn data_type() -> DataType {
                $dt
            }
            fn builder(capacity: usize) -> $builder {
                $builder::with_capacity(capacity)
            }
            fn append($b: &mut $builder, $v: &$ty) {
                $some
            }
            fn read(col: &dyn Array, row: usize) -> $ty {
                <Option<$ty> as Column>::read(col, row).unwrap_or_default()
            }
        }
        impl Column for Option<$ty> {
            type Builder = $builder;
            const TYPE_NAME: &'static str = $optname;
            const NULLABLE: bool = true;
            fn data_type() -> DataType {
                $dt
            }
            fn builder(capacity: usize) -> $builder {
                $builder::with_capacity(capacity)
            }
            fn append(b: &mut $builder, v: &Option<$ty>) {
                match v {
                    Some(x) => <$ty as Column>::append(b, x),
                    None => b.append_null(),
                }
            }
            fn read(col: &dyn Array, row: usize) -> Option<$ty> {
                let a = col.as_any().downcast_ref::<$arr>()?;
                (row < a.len() && !a.is_null(row)).then(|| a.value(row))
            }
        }
    };
}

column!(i64, Int64Builder, arrow_array::Int64Array, DataType::Int64, "int64", |b, v| b.append_value(*v), "int64?");
column!(i32, Int32Builder, arrow_array::Int32Array, DataType::Int32, "int32", |b, v| b.append_value(*v), "int32?");
column!(
    f64,
    Float64Builder,
    arrow_array::Float64Array,
    DataType::Float64,
    "float64",
    |b, v| b.append_value(*v),
    "float64?"
);
column!(bool, BooleanBuilder, arrow_array::BooleanArray, DataType::Boolean, "bool", |b, v| b.append_value(*v), "bool?");

impl Column for String {
    type Builder = StringBuilder;
    const TYPE_NAME: &'static str = "string";
    const NULLABLE: bool = false;
    fn data_type() -> DataType {
        DataType::Utf8
    }
    fn builder(capacity: usize) -> StringBuilder {
        StringBuilder::with_capacity(capacity, capacity * 16)
    }
    fn append(b: &mut StringBuilder, v: &String) {
        b.append_value(v);
    }
    fn read(col: &dyn Array, row: usize) -> String {
        <Option<String> as Column>::read(col, row).unwrap_or_default()
    }
}

impl Column for Option<String> {
    type Builder = StringBuilder;
    const TYPE_NAME: &'static str = "string?";
    const NULLABLE: bool = true;
    fn data_type() -> DataType {
        DataType::Utf8
    }
    fn builder(capacity: usize) -> StringBuilder {
        StringBuilder::with_capacity(capacity, capacity * 16)
    }
    fn append(b: &mut StringBuilder, v: &Option<String>) {
        b.append_option(v.as_deref());
    }
    fn read(col: &dyn Array, row: usize) -> Option<String> {
        let a = col.as_any().downcast_ref::<arrow_array::StringArray>()?;
        (row < a.len() && !a.is_null(row)).then(|| a.value(row).to_string())
    }
}

/// Sorted `(key, value)` pairs, written as an Arrow/Parquet map
/// (`map<string, string>`, which DuckDB reads as `MAP(VARCHAR, VARCHAR)`).
impl Column for Vec<(String, String)> {
    type Builder = MapBuilder<StringBuilder, StringBuilder>;
    const TYPE_NAME: &'static str = "map<string,string>";
    const NULLABLE: bool = false;
    fn data_type() -> DataType {
        // Whatever the builder makes, so schema and data never disagree.
        Self::builder(0).finish().data_type().clone()
    }
    fn builder(capacity: usize) -> Self::Builder {
        MapBuilder::with_capacity(None, StringBuilder::new(), StringBuilder::new(), capacity)
    }
    fn append(b: &mut Self::Builder, v: &Self) {
        for (k, val) in v {
            b.keys().append_value(k);
            b.values().append_value(val);
        }
        b.append(true).expect("keys and values appended in pairs");
    }
    fn read(col: &dyn Array, row: usize) -> Self {
        let Some(m) = col.as_any().downcast_ref::<arrow_array::MapArray>() else { return Vec::new() };
        if row >= m.len() || m.is_null(row) {
            return Vec::new();
        }
        let entries = m.value(row);
        let keys = entries.column(0).as_any().downcast_ref::<arrow_array::StringArray>();
        let values = entries.column(1).as_any().downcast_ref::<arrow_array::StringArray>();
        match (keys, values) {
            (Some(k), Some(v)) => (0..k.len()).map(|i| (k.value(i).to_string(), v.value(i).to_string())).collect(),
            _ => Vec::new(),
        }
    }
}

/// One documented column of a record kind.
#[derive(Debug, Clone, Copy)]
pub struct ColumnDoc {
    pub name: &'static str,
    pub type_name: &'static str,
    pub doc: &'static str,
}

/// What every record kind offers the sinks.
/// The columns of a record kind: generated by [`record!`], never written by hand.
pub trait Columns {
    fn columns() -> Vec<ColumnDoc>;
    fn schema() -> Arc<Schema>;
    /// Builds one Arrow batch from records in the given order.
    fn to_batch(rows: &[&Self]) -> RecordBatch
    where
        Self: Sized;
    /// Reads records back from a batch (by column name; a missing column
    /// gives default values).
    fn from_batch(batch: &RecordBatch, out: &mut Vec<Self>)
    where
        Self: Sized;
}

pub trait Record: Columns + Send + 'static {
    /// Directory name under the output directory (`flows`, `calls`, …).
    const KIND: &'static str;
    /// One line on what a row is.
    const ABOUT: &'static str;
    /// Nanosecond time that decides the record's `date=/hour=` partition.
    fn partition_ns(&self) -> i64;
    /// Total order used to write rows deterministically.
    fn sort_key(&self) -> (i64, i64, i32);
}

/// Declares a record kind; see the module docs.
macro_rules! record {
    (
        $(#[doc = $sdoc:literal])*
        pub struct $name:ident (kind = $kind:literal) {
            $( $(#[doc = $doc:literal])+ pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[doc = $sdoc])*
        #[derive(Debug, Clone, PartialEq, Default)]
        pub struct $name {
            $( $(#[doc = $doc])+ pub $field: $ty, )*
        }

        impl $crate::records::Columns for $name {
            fn columns() -> Vec<$crate::records::ColumnDoc> {
                vec![
                    $( $crate::records::ColumnDoc {
                        name: stringify!($field),
                        type_name: <$ty as $crate::records::Column>::TYPE_NAME,
                        doc: concat!($($doc),+),
                    }, )*
                ]
            }

            fn schema() -> ::std::sync::Arc<::arrow_schema::Schema> {
                ::std::sync::Arc::new(::arrow_schema::Schema::new(vec![
                    $( ::arrow_schema::Field::new(
                        stringify!($field),
                        <$ty as $crate::records::Column>::data_type(),
                        <$ty as $crate::records::Column>::NULLABLE,
                    ), )*
                ]))
            }

            fn to_batch(rows: &[&Self]) -> ::arrow_array::RecordBatch {
                $( let mut $field = <$ty as $crate::records::Column>::builder(rows.len()); )*
                for r in rows {
                    $( <$ty as $crate::records::Column>::append(&mut $field, &r.$field); )*
                }
                let columns: Vec<::arrow_array::ArrayRef> = vec![
                    $( ::std::sync::Arc::new(::arrow_array::builder::ArrayBuilder::finish(&mut $field)), )*
                ];
                ::arrow_array::RecordBatch::try_new(<Self as $crate::records::Columns>::schema(), columns)
                    .expect("builders follow the schema they were generated with")
            }

            fn from_batch(batch: &::arrow_array::RecordBatch, out: &mut Vec<Self>) {
                let null = ::arrow_array::new_null_array(&::arrow_schema::DataType::Null, batch.num_rows());
                $( let $field = batch.column_by_name(stringify!($field)).unwrap_or(&null); )*
                out.reserve(batch.num_rows());
                for row in 0..batch.num_rows() {
                    out.push($name {
                        $( $field: <$ty as $crate::records::Column>::read($field.as_ref(), row), )*
                    });
                }
            }
        }
    };
}
pub(crate) use record;

/// Renders a record kind's columns as a Markdown table.
#[must_use]
pub fn markdown_table<R: Record>() -> String {
    let mut s = format!("### `{}`\n\n{}\n\n| column | type | meaning |\n|---|---|---|\n", R::KIND, R::ABOUT);
    for c in R::columns() {
        s.push_str(&format!("| `{}` | {} | {} |\n", c.name, c.type_name, c.doc.trim().replace('|', "\\|")));
    }
    s
}

/// The whole schema document: every record kind, in dataflow order.
#[must_use]
pub fn schema_markdown() -> String {
    let mut s = format!(
        "Schema version {SCHEMA_VERSION}. Types: `?` marks a nullable column; \
         times are nanoseconds since the Unix epoch (UTC); counters are per record \
         (a `period` record counts only its own interval).\n\n"
    );
    s.push_str(&markdown_table::<FlowRecord>());
    s.push('\n');
    s.push_str(&markdown_table::<CallRecord>());
    s.push('\n');
    s.push_str(&markdown_table::<NatPathRecord>());
    s
}
