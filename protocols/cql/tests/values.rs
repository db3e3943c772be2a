//! Every CQL type: encode then decode gives the value back; JSON rendering is valid
//! JSON and agrees with Cassandra's forms on hand-checked cases.

mod common;

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::json;
use tidemark_cql::types::{json_text, to_json};
use tidemark_cql::wire::Reader;
use tidemark_cql::{ColumnType, Text, Value};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn value_roundtrip((ty, v) in common::typed_value()) {
        let mut out = Vec::new();
        v.encode(&mut out);
        let back = Value::decode(&ty, &Bytes::from(out)).unwrap();
        prop_assert_eq!(back, v);
    }

    #[test]
    fn type_option_roundtrip(ty in common::column_type()) {
        let mut out = Vec::new();
        ty.encode(&mut tidemark_cql::wire::Writer::new(&mut out));
        let mut r = Reader::new(Bytes::from(out));
        prop_assert_eq!(ColumnType::decode(&mut r).unwrap(), ty);
        prop_assert!(r.is_empty());
    }

    #[test]
    fn json_text_is_json_and_matches_to_json((ty, v) in common::typed_value()) {
        let text = json_text(&v, &ty);
        let parsed: serde_json::Value = match serde_json::from_str(&text) {
            Ok(p) => p,
            // Valid JSON grammar, but beyond what an f64 holds (e.g. 1E-2147483648).
            Err(e) if e.to_string().contains("number out of range") => return Ok(()),
            Err(e) => panic!("{text}: {e}"),
        };
        let structured = to_json(&v, &ty);
        // The same content, element by element: numbers differ only where to_json
        // keeps a number too wide for a JSON double as a string of its digits.
        if let Err(at) = same_content(&parsed, &structured, "$") {
            prop_assert!(false, "{}: {} vs {}: {}", text, parsed, structured, at);
        }
    }

    #[test]
    fn decode_never_panics(ty in common::column_type(), b in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = Value::decode(&ty, &Bytes::from(b));
    }
}

/// Whether `parsed` (Cassandra's text read back by serde_json) and `structured`
/// (`to_json`) hold the same value; `Err` names the first place they differ.
fn same_content(
    parsed: &serde_json::Value,
    structured: &serde_json::Value,
    at: &str,
) -> Result<(), String> {
    use serde_json::Value as J;
    let differ = || Err(format!("{at}: {parsed} vs {structured}"));
    match (parsed, structured) {
        (J::Number(a), J::Number(b)) => {
            let exact = match (a.as_i64(), b.as_i64(), a.as_u64(), b.as_u64()) {
                (Some(x), Some(y), _, _) => x == y,
                (_, _, Some(x), Some(y)) => x == y,
                _ => close(a.as_f64(), b.as_f64()),
            };
            if exact {
                Ok(())
            } else {
                differ()
            }
        }
        // A varint or decimal beyond a double: the string holds its exact digits,
        // which read as a double give what serde_json read from the text.
        (J::Number(a), J::String(digits)) => {
            if close(digits.parse::<f64>().ok(), a.as_f64()) {
                Ok(())
            } else {
                differ()
            }
        }
        (J::Array(a), J::Array(b)) => {
            if a.len() != b.len() {
                return differ();
            }
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                same_content(x, y, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        (J::Object(a), J::Object(b)) => {
            if a.len() != b.len() || a.keys().any(|k| !b.contains_key(k)) {
                return differ();
            }
            for (k, x) in a {
                same_content(x, &b[k], &format!("{at}.{k}"))?;
            }
            Ok(())
        }
        (a, b) if a == b => Ok(()),
        _ => differ(),
    }
}

/// Equal doubles, allowing one unit in the last place: serde_json's default number
/// parser (without its `float_roundtrip` feature) may round the text's last digit
/// differently from a correctly rounded parse, e.g. `5.516989121084074E290`.
fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) if x == y => true,
        (Some(x), Some(y)) if x.is_finite() && y.is_finite() && x.signum() == y.signum() => {
            x.to_bits().abs_diff(y.to_bits()) <= 1
        }
        _ => false,
    }
}

#[test]
fn same_content_tells_values_apart() {
    // The comparison itself must be able to fail where contents differ.
    let cases = [
        (json!([1, 2]), json!([1, 3])),
        (json!({"a": 1}), json!({"b": 1})),
        (json!("x"), json!("y")),
        (json!(1.5), json!(1.25)),
        (
            json!(18446744073709551615u64),
            json!("18446744073709551616000"),
        ),
        (json!([1]), json!([1, 1])),
    ];
    for (a, b) in cases {
        assert!(same_content(&a, &b, "$").is_err(), "{a} vs {b}");
    }
    let big: serde_json::Value = serde_json::from_str("18446744073709551616").unwrap();
    assert!(same_content(&big, &json!("18446744073709551616"), "$").is_ok());
}

fn t(s: &str) -> Text {
    Text::from(s)
}

#[test]
fn json_forms_like_select_json() {
    use ColumnType as T;
    let cases: Vec<(ColumnType, Value, &str)> = vec![
        (
            T::Uuid,
            Value::Uuid([0xab; 16]),
            r#""abababab-abab-abab-abab-abababababab""#,
        ),
        (
            T::Blob,
            Value::Blob(Bytes::from_static(&[0xca, 0xfe])),
            r#""0xcafe""#,
        ),
        (
            T::Timestamp,
            Value::Timestamp(1_614_834_367_123),
            r#""2021-03-04 05:06:07.123Z""#,
        ),
        (
            T::Date,
            Value::Date((1u32 << 31) + 18_690),
            r#""2021-03-04""#,
        ),
        (
            T::Time,
            Value::Time(45_296_000_000_001),
            r#""12:34:56.000000001""#,
        ),
        (
            T::Inet,
            Value::Inet("10.1.2.3".parse().unwrap()),
            r#""10.1.2.3""#,
        ),
        (
            T::Varint,
            Value::Varint(Bytes::from_static(&[0x01, 0, 0, 0, 0, 0, 0, 0, 0])),
            "18446744073709551616",
        ),
        (
            T::Decimal,
            Value::Decimal {
                scale: 2,
                unscaled: Bytes::from_static(&[0x30, 0x39]),
            },
            "123.45",
        ),
        (T::BigInt, Value::BigInt(-5), "-5"),
        (
            T::Duration,
            Value::Duration {
                months: 1,
                days: 2,
                nanos: 3 * 3_600_000_000_000,
            },
            r#""1mo2d3h""#,
        ),
        (T::Double, Value::Double(f64::NAN), r#""NaN""#),
        (T::Float, Value::Float(f32::INFINITY), r#""Infinity""#),
        (T::Float, Value::Float(1.5), "1.5"),
        (T::Boolean, Value::Boolean(true), "true"),
        (T::Varchar, Value::Text(t("a\"b")), r#""a\"b""#),
        (
            T::List(Box::new(T::Int)),
            Value::List(vec![Value::Int(1), Value::Int(2)]),
            "[1, 2]",
        ),
        (
            T::Map(Box::new(T::Int), Box::new(T::Varchar)),
            Value::Map(vec![(Value::Int(1), Value::Text(t("a")))]),
            r#"{"1": "a"}"#,
        ),
        (
            T::Map(Box::new(T::List(Box::new(T::Int))), Box::new(T::Int)),
            Value::Map(vec![(
                Value::List(vec![Value::Int(1), Value::Int(2)]),
                Value::Int(3),
            )]),
            r#"{"[1, 2]": 3}"#,
        ),
        (
            T::Tuple(vec![T::Int, T::Varchar]),
            Value::Tuple(vec![Value::Int(1), Value::Null]),
            "[1, null]",
        ),
        (
            T::Udt {
                keyspace: t("ks"),
                name: t("addr"),
                fields: vec![(t("street"), T::Varchar), (t("Zip"), T::Int)],
            },
            Value::Udt(vec![Value::Text(t("main"))]),
            r#"{"street": "main", "\"Zip\"": null}"#,
        ),
    ];
    for (ty, v, want) in cases {
        assert_eq!(json_text(&v, &ty), want, "{ty:?}");
    }
    let m = T::Map(Box::new(T::Int), Box::new(T::Varchar));
    assert_eq!(
        to_json(&Value::Map(vec![(Value::Int(1), Value::Text(t("a")))]), &m),
        json!({"1": "a"})
    );
    assert_eq!(to_json(&Value::Float(1.1), &T::Float), json!(1.1));
    assert_eq!(
        to_json(
            &Value::Varint(Bytes::from_static(&[0x01, 0, 0, 0, 0, 0, 0, 0, 0])),
            &T::Varint
        ),
        json!("18446744073709551616")
    );
    assert_eq!(
        to_json(
            &Value::Decimal {
                scale: 2,
                unscaled: Bytes::from_static(&[0x30, 0x39])
            },
            &T::Decimal
        ),
        json!(123.45)
    );
}

#[test]
fn custom_vector_type_decodes_elements() {
    let ty = ColumnType::custom(t(
        "org.apache.cassandra.db.marshal.VectorType(org.apache.cassandra.db.marshal.FloatType, 3)",
    ));
    let mut b = Vec::new();
    for f in [1.0f32, 2.5, -3.0] {
        b.extend_from_slice(&f.to_be_bytes());
    }
    let v = Value::decode(&ty, &Bytes::from(b)).unwrap();
    assert_eq!(
        v,
        Value::Vector(vec![
            Value::Float(1.0),
            Value::Float(2.5),
            Value::Float(-3.0)
        ])
    );
    assert_eq!(json_text(&v, &ty), "[1.0, 2.5, -3.0]");
    // Wrong size: an error, not a panic.
    assert!(Value::decode(&ty, &Bytes::from_static(&[0; 11])).is_err());
}

#[test]
fn lying_collection_count_does_not_allocate() {
    let ty = ColumnType::List(Box::new(ColumnType::Int));
    // Count 2^31-1 with no elements: must fail fast on truncation.
    let b = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff]);
    assert!(Value::decode(&ty, &b).is_err());
}
