//! Output of the analyst commands: rows of typed cells written as an
//! aligned table (times in RFC 3339, durations in ms), JSON (one object per
//! line, times and durations as integer nanoseconds) or CSV (as JSON's
//! values, with a header).

use std::io::Write;

/// How a command prints its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
    Csv,
}

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Str(String),
    Int(i64),
    Float(f64),
    /// Unix nanoseconds, shown as RFC 3339 in tables.
    Time(i64),
    /// Nanoseconds, shown as milliseconds in tables.
    Dur(i64),
}

impl Value {
    #[must_use]
    pub fn opt_str(v: Option<&str>) -> Value {
        v.map_or(Value::Null, |s| Value::Str(s.to_string()))
    }
    #[must_use]
    pub fn opt_int(v: Option<i64>) -> Value {
        v.map_or(Value::Null, Value::Int)
    }
    #[must_use]
    pub fn opt_dur(v: Option<i64>) -> Value {
        v.map_or(Value::Null, Value::Dur)
    }
    #[must_use]
    pub fn opt_float(v: Option<f64>) -> Value {
        v.map_or(Value::Null, Value::Float)
    }

    /// The value as text for tables.
    #[must_use]
    pub fn table_text(&self) -> String {
        match self {
            Value::Null => "-".into(),
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format!("{f:.4}"),
            Value::Time(t) => super::format_time(*t),
            Value::Dur(d) => format!("{:.3}ms", *d as f64 / 1e6),
        }
    }

    /// The value as text for CSV (empty for null) and for comparisons.
    #[must_use]
    pub fn raw_text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Str(s) => s.clone(),
            Value::Int(i) | Value::Time(i) | Value::Dur(i) => i.to_string(),
            Value::Float(f) => format!("{f}"),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Int(i) | Value::Time(i) | Value::Dur(i) => serde_json::Value::from(*i),
            Value::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
        }
    }

    #[must_use]
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) | Value::Time(i) | Value::Dur(i) => Some(*i),
            _ => None,
        }
    }
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// A command's answer: named columns and rows of cells.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    /// Lines printed after a table (a verdict's evidence); JSON and CSV
    /// carry the same facts in columns.
    pub notes: Vec<String>,
}

impl Rows {
    #[must_use]
    pub fn new(columns: &[&str]) -> Self {
        Rows { columns: columns.iter().map(|c| (*c).to_string()).collect(), ..Rows::default() }
    }
    /// Index of a column.
    ///
    /// # Panics
    /// When there is no such column.
    #[must_use]
    pub fn col(&self, name: &str) -> usize {
        self.columns.iter().position(|c| c == name).unwrap_or_else(|| panic!("no column {name}"))
    }
    /// The cells of one column.
    #[must_use]
    pub fn column(&self, name: &str) -> Vec<&Value> {
        let i = self.col(name);
        self.rows.iter().map(|r| &r[i]).collect()
    }
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes `rows` in `format`.
pub fn write(rows: &Rows, format: Format, out: &mut impl Write) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            for r in &rows.rows {
                // Written by hand to keep the columns' order.
                let fields: Vec<String> = rows
                    .columns
                    .iter()
                    .zip(r)
                    .map(|(c, v)| format!("{}:{}", serde_json::Value::from(c.as_str()), v.json()))
                    .collect();
                writeln!(out, "{{{}}}", fields.join(","))?;
            }
        }
        Format::Csv => {
            writeln!(out, "{}", rows.columns.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(","))?;
            for r in &rows.rows {
                writeln!(out, "{}", r.iter().map(|v| csv_cell(&v.raw_text())).collect::<Vec<_>>().join(","))?;
            }
        }
        Format::Table => {
            let cells: Vec<Vec<String>> = rows.rows.iter().map(|r| r.iter().map(Value::table_text).collect()).collect();
            let mut width: Vec<usize> = rows.columns.iter().map(|c| c.chars().count()).collect();
            for r in &cells {
                for (w, c) in width.iter_mut().zip(r) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let line = |r: &[String]| {
                let s: Vec<String> = r.iter().zip(&width).map(|(c, w)| format!("{c:<w$}")).collect();
                s.join("  ").trim_end().to_string()
            };
            writeln!(out, "{}", line(&rows.columns))?;
            for r in &cells {
                writeln!(out, "{}", line(r))?;
            }
            if rows.rows.is_empty() {
                writeln!(out, "(no rows)")?;
            }
            for n in &rows.notes {
                writeln!(out, "{n}")?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let mut r = Rows::new(&["start_ns", "request_resource", "latency_ns", "rate"]);
        r.rows.push(vec![Value::Time(0), Value::Str("/a,b".into()), Value::Dur(1_500_000), Value::Float(0.5)]);
        r.rows.push(vec![Value::Time(1000), Value::Null, Value::Null, Value::Null]);
        let text = |f| {
            let mut v = Vec::new();
            write(&r, f, &mut v).unwrap();
            String::from_utf8(v).unwrap()
        };
        assert_eq!(
            text(Format::Json),
            "{\"start_ns\":0,\"request_resource\":\"/a,b\",\"latency_ns\":1500000,\"rate\":0.5}\n\
             {\"start_ns\":1000,\"request_resource\":null,\"latency_ns\":null,\"rate\":null}\n"
        );
        assert_eq!(text(Format::Csv), "start_ns,request_resource,latency_ns,rate\n0,\"/a,b\",1500000,0.5\n1000,,,\n");
        let t = text(Format::Table);
        assert!(t.starts_with("start_ns                     request_resource  latency_ns  rate\n"), "{t}");
        assert!(t.contains("1970-01-01T00:00:00.000000Z  /a,b              1.500ms     0.5000"), "{t}");
    }
}
