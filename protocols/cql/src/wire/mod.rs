//! The notations of the native protocol spec (section 3): `[int]`, `[string]`,
//! `[bytes]`, `[value]`, `[string map]`, `[inet]`, `[vint]`, ... as a bounds-checked
//! reader over a shared buffer and a writer into a `Vec<u8>`.

mod reader;
mod writer;

pub use reader::{Reader, WireValue};
pub use writer::Writer;

/// Consistency levels as the spec numbers them (`[consistency]`). Unknown numbers are
/// kept, not rejected, so a newer server's level still decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Consistency {
    Any,
    One,
    Two,
    Three,
    Quorum,
    All,
    LocalQuorum,
    EachQuorum,
    Serial,
    LocalSerial,
    LocalOne,
    Other(u16),
}

impl Consistency {
    pub fn from_u16(v: u16) -> Consistency {
        use Consistency::*;
        match v {
            0 => Any,
            1 => One,
            2 => Two,
            3 => Three,
            4 => Quorum,
            5 => All,
            6 => LocalQuorum,
            7 => EachQuorum,
            8 => Serial,
            9 => LocalSerial,
            10 => LocalOne,
            n => Other(n),
        }
    }

    pub fn to_u16(self) -> u16 {
        use Consistency::*;
        match self {
            Any => 0,
            One => 1,
            Two => 2,
            Three => 3,
            Quorum => 4,
            All => 5,
            LocalQuorum => 6,
            EachQuorum => 7,
            Serial => 8,
            LocalSerial => 9,
            LocalOne => 10,
            Other(n) => n,
        }
    }

    /// The name as cqlsh and the spec spell it (`LOCAL_QUORUM`).
    pub fn name(self) -> &'static str {
        use Consistency::*;
        match self {
            Any => "ANY",
            One => "ONE",
            Two => "TWO",
            Three => "THREE",
            Quorum => "QUORUM",
            All => "ALL",
            LocalQuorum => "LOCAL_QUORUM",
            EachQuorum => "EACH_QUORUM",
            Serial => "SERIAL",
            LocalSerial => "LOCAL_SERIAL",
            LocalOne => "LOCAL_ONE",
            Other(_) => "UNKNOWN",
        }
    }
}
