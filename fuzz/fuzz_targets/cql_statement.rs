//! CQL statement text: arbitrary UTF-8 into the statement parser. Never panics; and
//! every statement it accepts renders to text that parses back to the same AST
//! (the renderer is what restore uses to write statements).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidemark_cql::statement::{parse_statement, parse_statements, StatementKind};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(st) = parse_statement(text) {
        if matches!(
            st.kind,
            StatementKind::Modification(_)
                | StatementKind::Batch(_)
                | StatementKind::Truncate(_)
                | StatementKind::Use(_)
        ) {
            let rendered = st.to_string();
            let again = parse_statement(&rendered)
                .unwrap_or_else(|e| panic!("rendered text does not parse: {rendered:?}: {e}"));
            assert_eq!(again, st, "round trip of {text:?} via {rendered:?}");
        }
    }
    for (part, result) in parse_statements(text) {
        assert!(text.contains(part));
        if let Err(e) = result {
            assert!(e.offset <= text.len());
        }
    }
});
