//! ERROR bodies (spec section 9 of v4, 8 of v5): `[int]` code, `[string]` message, then
//! code-specific details. The details decide write outcomes (see ARCHITECTURE.md), so
//! every code's body is decoded, including v4's `numfailures` and v5's reason maps and
//! CAS contentions.

use crate::error::ParseError;
use crate::text::Text;
use crate::wire::{Consistency, Reader, Writer};
use bytes::Bytes;
use std::net::IpAddr;

/// Error codes.
pub mod code {
    pub const SERVER_ERROR: i32 = 0x0000;
    pub const PROTOCOL_ERROR: i32 = 0x000A;
    pub const BAD_CREDENTIALS: i32 = 0x0100;
    pub const UNAVAILABLE: i32 = 0x1000;
    pub const OVERLOADED: i32 = 0x1001;
    pub const IS_BOOTSTRAPPING: i32 = 0x1002;
    pub const TRUNCATE_ERROR: i32 = 0x1003;
    pub const WRITE_TIMEOUT: i32 = 0x1100;
    pub const READ_TIMEOUT: i32 = 0x1200;
    pub const READ_FAILURE: i32 = 0x1300;
    pub const FUNCTION_FAILURE: i32 = 0x1400;
    pub const WRITE_FAILURE: i32 = 0x1500;
    pub const CDC_WRITE_FAILURE: i32 = 0x1600;
    pub const CAS_WRITE_UNKNOWN: i32 = 0x1700;
    pub const SYNTAX_ERROR: i32 = 0x2000;
    pub const UNAUTHORIZED: i32 = 0x2100;
    pub const INVALID: i32 = 0x2200;
    pub const CONFIG_ERROR: i32 = 0x2300;
    pub const ALREADY_EXISTS: i32 = 0x2400;
    pub const UNPREPARED: i32 = 0x2500;

    /// The spec's name for a code.
    pub fn name(c: i32) -> &'static str {
        match c {
            SERVER_ERROR => "Server_error",
            PROTOCOL_ERROR => "Protocol_error",
            BAD_CREDENTIALS => "Bad_credentials",
            UNAVAILABLE => "Unavailable",
            OVERLOADED => "Overloaded",
            IS_BOOTSTRAPPING => "Is_bootstrapping",
            TRUNCATE_ERROR => "Truncate_error",
            WRITE_TIMEOUT => "Write_timeout",
            READ_TIMEOUT => "Read_timeout",
            READ_FAILURE => "Read_failure",
            FUNCTION_FAILURE => "Function_failure",
            WRITE_FAILURE => "Write_failure",
            CDC_WRITE_FAILURE => "CDC_write_failure",
            CAS_WRITE_UNKNOWN => "CAS_write_unknown",
            SYNTAX_ERROR => "Syntax_error",
            UNAUTHORIZED => "Unauthorized",
            INVALID => "Invalid",
            CONFIG_ERROR => "Config_error",
            ALREADY_EXISTS => "Already_exists",
            UNPREPARED => "Unprepared",
            _ => "Unknown",
        }
    }
}

/// Replica failures: a count before v5, a map of replica address to reason code in v5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failures {
    Count(i32),
    ReasonMap(Vec<(IpAddr, u16)>),
}

impl Failures {
    pub fn count(&self) -> usize {
        match self {
            Failures::Count(n) => usize::try_from(*n).unwrap_or(0),
            Failures::ReasonMap(m) => m.len(),
        }
    }

    fn read(r: &mut Reader, version: u8) -> Result<Failures, ParseError> {
        if version >= 5 {
            let n = r.i32("reasonmap size")?;
            let n = usize::try_from(n).unwrap_or(0);
            let mut m = Vec::with_capacity(r.capacity_for(n, 7));
            for _ in 0..n {
                let ip = r.inetaddr()?;
                m.push((ip, r.u16("failure code")?));
            }
            Ok(Failures::ReasonMap(m))
        } else {
            Ok(Failures::Count(r.i32("numfailures")?))
        }
    }

    fn write(&self, w: &mut Writer) {
        match self {
            Failures::Count(n) => w.i32(*n),
            Failures::ReasonMap(m) => {
                w.i32(i32::try_from(m.len()).unwrap_or(i32::MAX));
                for (ip, c) in m {
                    w.inetaddr(ip);
                    w.u16(*c);
                }
            }
        }
    }
}

/// Code-specific ERROR details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorDetails {
    /// Codes with nothing after the message (server, protocol, bad credentials,
    /// overloaded, is_bootstrapping, truncate, CDC write failure, syntax, unauthorized,
    /// invalid, config, and unknown codes).
    None,
    Unavailable {
        consistency: Consistency,
        required: i32,
        alive: i32,
    },
    WriteTimeout {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        write_type: Text,
        /// v5, write type `CAS` only.
        contentions: Option<u16>,
    },
    ReadTimeout {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        data_present: bool,
    },
    ReadFailure {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        failures: Failures,
        data_present: bool,
    },
    WriteFailure {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        failures: Failures,
        write_type: Text,
    },
    FunctionFailure {
        keyspace: Text,
        function: Text,
        arg_types: Vec<Text>,
    },
    CasWriteUnknown {
        consistency: Consistency,
        received: i32,
        block_for: i32,
    },
    AlreadyExists {
        keyspace: Text,
        /// Empty when a keyspace already existed.
        table: Text,
    },
    Unprepared {
        id: Bytes,
    },
}

/// An ERROR message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: i32,
    pub message: Text,
    pub details: ErrorDetails,
}

impl ErrorBody {
    /// The spec's name for the code.
    pub fn code_name(&self) -> &'static str {
        code::name(self.code)
    }

    pub(crate) fn read(r: &mut Reader, version: u8) -> Result<Self, ParseError> {
        let c = r.i32("error code")?;
        let message = r.string()?;
        use ErrorDetails as D;
        let details = match c {
            code::UNAVAILABLE => D::Unavailable {
                consistency: r.consistency()?,
                required: r.i32("required")?,
                alive: r.i32("alive")?,
            },
            code::WRITE_TIMEOUT => {
                let consistency = r.consistency()?;
                let received = r.i32("received")?;
                let block_for = r.i32("blockfor")?;
                let write_type = r.string()?;
                let contentions = if version >= 5 && write_type == "CAS" && r.remaining() >= 2 {
                    Some(r.u16("contentions")?)
                } else {
                    None
                };
                D::WriteTimeout {
                    consistency,
                    received,
                    block_for,
                    write_type,
                    contentions,
                }
            }
            code::READ_TIMEOUT => D::ReadTimeout {
                consistency: r.consistency()?,
                received: r.i32("received")?,
                block_for: r.i32("blockfor")?,
                data_present: r.u8("data_present")? != 0,
            },
            code::READ_FAILURE => D::ReadFailure {
                consistency: r.consistency()?,
                received: r.i32("received")?,
                block_for: r.i32("blockfor")?,
                failures: Failures::read(r, version)?,
                data_present: r.u8("data_present")? != 0,
            },
            code::WRITE_FAILURE => D::WriteFailure {
                consistency: r.consistency()?,
                received: r.i32("received")?,
                block_for: r.i32("blockfor")?,
                failures: Failures::read(r, version)?,
                write_type: r.string()?,
            },
            code::FUNCTION_FAILURE => D::FunctionFailure {
                keyspace: r.string()?,
                function: r.string()?,
                arg_types: r.string_list()?,
            },
            code::CAS_WRITE_UNKNOWN => D::CasWriteUnknown {
                consistency: r.consistency()?,
                received: r.i32("received")?,
                block_for: r.i32("blockfor")?,
            },
            code::ALREADY_EXISTS => D::AlreadyExists {
                keyspace: r.string()?,
                table: r.string()?,
            },
            code::UNPREPARED => D::Unprepared {
                id: r.short_bytes()?,
            },
            _ => D::None,
        };
        Ok(ErrorBody {
            code: c,
            message,
            details,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.i32(self.code);
        w.string(&self.message);
        use ErrorDetails as D;
        match &self.details {
            D::None => {}
            D::Unavailable {
                consistency,
                required,
                alive,
            } => {
                w.consistency(*consistency);
                w.i32(*required);
                w.i32(*alive);
            }
            D::WriteTimeout {
                consistency,
                received,
                block_for,
                write_type,
                contentions,
            } => {
                w.consistency(*consistency);
                w.i32(*received);
                w.i32(*block_for);
                w.string(write_type);
                if let Some(c) = contentions {
                    w.u16(*c);
                }
            }
            D::ReadTimeout {
                consistency,
                received,
                block_for,
                data_present,
            } => {
                w.consistency(*consistency);
                w.i32(*received);
                w.i32(*block_for);
                w.u8(u8::from(*data_present));
            }
            D::ReadFailure {
                consistency,
                received,
                block_for,
                failures,
                data_present,
            } => {
                w.consistency(*consistency);
                w.i32(*received);
                w.i32(*block_for);
                failures.write(w);
                w.u8(u8::from(*data_present));
            }
            D::WriteFailure {
                consistency,
                received,
                block_for,
                failures,
                write_type,
            } => {
                w.consistency(*consistency);
                w.i32(*received);
                w.i32(*block_for);
                failures.write(w);
                w.string(write_type);
            }
            D::FunctionFailure {
                keyspace,
                function,
                arg_types,
            } => {
                w.string(keyspace);
                w.string(function);
                w.string_list(arg_types);
            }
            D::CasWriteUnknown {
                consistency,
                received,
                block_for,
            } => {
                w.consistency(*consistency);
                w.i32(*received);
                w.i32(*block_for);
            }
            D::AlreadyExists { keyspace, table } => {
                w.string(keyspace);
                w.string(table);
            }
            D::Unprepared { id } => w.short_bytes(id),
        }
    }
}
