//! The protocol ERROR bodies the testbed answers with, shared by every layer that
//! refuses a request (statement parsing, execution, the write coordinator).

use tidemark_cql::message::{error_code as code, ErrorBody, ErrorDetails};

pub fn error(c: i32, msg: impl Into<String>) -> ErrorBody {
    ErrorBody {
        code: c,
        message: msg.into().into(),
        details: ErrorDetails::None,
    }
}

pub fn invalid(msg: impl Into<String>) -> ErrorBody {
    error(code::INVALID, msg)
}
