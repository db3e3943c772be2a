//! Parquet files of a version (`export --format parquet`), for analytics on a copy.
//!
//! CQL columns map to Arrow types by their CQL type: `tinyint`/`smallint`/`int`/
//! `bigint`/`counter` to Int8/16/32/64, `float`/`double` to Float32/64, `boolean`,
//! `text`/`ascii`/`varchar` to Utf8, `blob` to Binary, `timestamp` to
//! Timestamp(ms, UTC), `date` to Date32, `time` to Time64(ns). Types Arrow has no exact
//! equal for keep their `SELECT JSON` text as Utf8, so nothing is rounded: `varint`
//! and `decimal` (arbitrary precision), `uuid`/`timeuuid`, `inet`, `duration`,
//! collections, tuples and UDTs. MongoDB collections are two Utf8 columns, `_id` and
//! `document`, as relaxed Extended JSON (documents have no fixed schema).
//!
//! Values come from the rendered rows ([`crate::version::render`]), the same text the
//! JSON export writes, converted per column type; a value that does not convert is an
//! error naming it, never a silent null.

use std::fs::File;
use std::sync::Arc;

use anyhow::{bail, Context};
use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Float32Builder, Float64Builder, Int16Builder,
    Int32Builder, Int64Builder, Int8Builder, StringBuilder, Time64NanosecondBuilder,
    TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema as ArrowSchema, TimeUnit};
use parquet::arrow::ArrowWriter;
use serde_json::Value;

use crate::decode::cql::protocol::ColumnType;
use crate::decode::time::parse_rfc3339;

/// The Arrow type of a CQL column.
pub fn arrow_type(ty: Option<&ColumnType>) -> DataType {
    use ColumnType as C;
    match ty.map(ColumnType::effective) {
        Some(C::TinyInt) => DataType::Int8,
        Some(C::SmallInt) => DataType::Int16,
        Some(C::Int) => DataType::Int32,
        Some(C::BigInt | C::Counter) => DataType::Int64,
        Some(C::Float) => DataType::Float32,
        Some(C::Double) => DataType::Float64,
        Some(C::Boolean) => DataType::Boolean,
        Some(C::Blob) => DataType::Binary,
        Some(C::Timestamp) => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        Some(C::Date) => DataType::Date32,
        Some(C::Time) => DataType::Time64(TimeUnit::Nanosecond),
        _ => DataType::Utf8,
    }
}

/// Writes one table: `columns` (name, CQL type) in order, `rows` as rendered.
pub fn write_cql(
    file: File,
    columns: &[(String, Option<ColumnType>)],
    rows: &[Value],
) -> anyhow::Result<()> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, ty)| Field::new(name, arrow_type(ty.as_ref()), true))
        .collect();
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for (name, ty) in columns {
        let values: Vec<&Value> = rows
            .iter()
            .map(|r| r.get(name).unwrap_or(&Value::Null))
            .collect();
        arrays.push(column(name, arrow_type(ty.as_ref()), &values)?);
    }
    write(file, fields, arrays)
}

/// Writes one MongoDB collection: `_id` and `document` as relaxed Extended JSON.
pub fn write_mongo(file: File, docs: &[Value]) -> anyhow::Result<()> {
    let mut ids = StringBuilder::new();
    let mut bodies = StringBuilder::new();
    for d in docs {
        ids.append_value(d.get("_id").unwrap_or(&Value::Null).to_string());
        bodies.append_value(d.to_string());
    }
    write(
        file,
        vec![
            Field::new("_id", DataType::Utf8, false),
            Field::new("document", DataType::Utf8, false),
        ],
        vec![Arc::new(ids.finish()), Arc::new(bodies.finish())],
    )
}

fn write(file: File, fields: Vec<Field>, arrays: Vec<ArrayRef>) -> anyhow::Result<()> {
    let schema = Arc::new(ArrowSchema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), arrays).context("build record batch")?;
    let mut w = ArrowWriter::try_new(file, schema, None).context("start parquet file")?;
    w.write(&batch).context("write parquet")?;
    w.close().context("finish parquet file")?;
    Ok(())
}

fn bad(column: &str, v: &Value, what: &str) -> anyhow::Error {
    anyhow::anyhow!("column {column}: {v} is not {what}")
}

fn int(column: &str, v: &Value) -> anyhow::Result<i64> {
    v.as_i64().ok_or_else(|| bad(column, v, "an integer"))
}

/// `NaN`, `Infinity` and `-Infinity` come as strings in `SELECT JSON`.
fn float(column: &str, v: &Value) -> anyhow::Result<f64> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| bad(column, v, "a number")),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => Err(bad(column, v, "a number")),
        },
        _ => Err(bad(column, v, "a number")),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn date(column: &str, v: &Value) -> anyhow::Result<i32> {
    let s = v.as_str().ok_or_else(|| bad(column, v, "a date"))?;
    let (neg, body) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let mut parts = body.splitn(3, '-').map(|p| p.parse::<i64>());
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(y)), Some(Ok(m)), Some(Ok(d)))
            if (1..=12).contains(&m) && (1..=31).contains(&d) =>
        {
            let y = if neg { -y } else { y };
            i32::try_from(days_from_civil(y, m, d)).map_err(|_| bad(column, v, "a date in range"))
        }
        _ => Err(bad(column, v, "a date")),
    }
}

fn timestamp_ms(column: &str, v: &Value) -> anyhow::Result<i64> {
    let s = v.as_str().ok_or_else(|| bad(column, v, "a timestamp"))?;
    // `SELECT JSON` writes `2026-01-01 00:00:00.000Z`.
    let t = parse_rfc3339(&s.replacen(' ', "T", 1)).ok_or_else(|| bad(column, v, "a timestamp"))?;
    Ok((t.0 / 1_000_000) as i64)
}

fn time_ns(column: &str, v: &Value) -> anyhow::Result<i64> {
    let s = v.as_str().ok_or_else(|| bad(column, v, "a time"))?;
    let (hms, frac) = s.split_once('.').unwrap_or((s, "0"));
    let p: Vec<i64> = hms.split(':').filter_map(|x| x.parse().ok()).collect();
    let frac_ns: i64 = format!("{frac:0<9}")[..9]
        .parse()
        .map_err(|_| bad(column, v, "a time"))?;
    match p.as_slice() {
        [h, m, sec] => Ok(((h * 60 + m) * 60 + sec) * 1_000_000_000 + frac_ns),
        _ => Err(bad(column, v, "a time")),
    }
}

fn blob(column: &str, v: &Value) -> anyhow::Result<Vec<u8>> {
    let s = v
        .as_str()
        .and_then(|s| s.strip_prefix("0x"))
        .ok_or_else(|| bad(column, v, "a blob"))?;
    if s.len() % 2 != 0 {
        bail!("column {column}: odd-length blob {v}");
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| bad(column, v, "a blob")))
        .collect()
}

macro_rules! build {
    ($builder:expr, $values:expr, |$v:ident| $conv:expr) => {{
        let mut b = $builder;
        for $v in $values {
            if $v.is_null() {
                b.append_null();
            } else {
                b.append_value($conv);
            }
        }
        Arc::new(b.finish()) as ArrayRef
    }};
}

fn column(name: &str, ty: DataType, values: &[&Value]) -> anyhow::Result<ArrayRef> {
    Ok(match ty {
        DataType::Int8 => build!(Int8Builder::new(), values, |v| i8::try_from(int(name, v)?)
            .map_err(|_| bad(name, v, "a tinyint"))?),
        DataType::Int16 => build!(Int16Builder::new(), values, |v| i16::try_from(int(
            name, v
        )?)
        .map_err(|_| bad(name, v, "a smallint"))?),
        DataType::Int32 => build!(Int32Builder::new(), values, |v| i32::try_from(int(
            name, v
        )?)
        .map_err(|_| bad(name, v, "an int"))?),
        DataType::Int64 => build!(Int64Builder::new(), values, |v| int(name, v)?),
        DataType::Float32 => build!(Float32Builder::new(), values, |v| float(name, v)? as f32),
        DataType::Float64 => build!(Float64Builder::new(), values, |v| float(name, v)?),
        DataType::Boolean => build!(BooleanBuilder::new(), values, |v| v
            .as_bool()
            .ok_or_else(|| bad(name, v, "a boolean"))?),
        DataType::Binary => build!(BinaryBuilder::new(), values, |v| blob(name, v)?),
        DataType::Date32 => build!(Date32Builder::new(), values, |v| date(name, v)?),
        DataType::Time64(_) => build!(Time64NanosecondBuilder::new(), values, |v| time_ns(
            name, v
        )?),
        DataType::Timestamp(..) => build!(
            TimestampMillisecondBuilder::new().with_timezone("UTC"),
            values,
            |v| timestamp_ms(name, v)?
        ),
        _ => build!(StringBuilder::new(), values, |v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_from_civil_matches_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2026, 1, 1), 20_454);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn times_and_timestamps_parse_as_select_json_writes_them() {
        let col = "c";
        assert_eq!(
            time_ns(col, &Value::from("12:30:01.000000005")).unwrap(),
            45_001_000_000_005
        );
        assert_eq!(
            timestamp_ms(col, &Value::from("2026-01-01 00:00:01.250Z")).unwrap(),
            1_767_225_601_250
        );
        assert!(date(col, &Value::from("2026-13-01")).is_err());
        assert!(blob(col, &Value::from("0xabc")).is_err());
    }
}
