//! Zero-copy handles on validated BSON inside a message's bytes.
//!
//! A [`Doc`] is a `Bytes` slice of the message buffer that has passed
//! [`crate::bsonval`] validation; it hands out `&RawDocument` views and never
//! copies or parses the document into an owned `bson::Document`. A
//! [`DocSeq`] is a run of documents laid end to end (OP_MSG kind-1 payloads,
//! OP_REPLY and OP_INSERT bodies), iterated in place.

use std::fmt;
use std::sync::LazyLock;

use bson::{RawDocument, RawDocumentBuf};
use bytes::Bytes;

use crate::bsonval;
use crate::limits::Limits;

static EMPTY: LazyLock<RawDocumentBuf> = LazyLock::new(RawDocumentBuf::new);

/// Views `bytes` as a document. Callers only pass validated bytes, so the
/// fallback (an empty document) is unreachable; it exists so no input can
/// make this function panic.
pub(crate) fn view(bytes: &[u8]) -> &RawDocument {
    match RawDocument::from_bytes(bytes) {
        Ok(doc) => doc,
        Err(_) => &EMPTY,
    }
}

/// One validated BSON document, sharing the message's buffer.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Doc {
    bytes: Bytes,
}

impl Doc {
    /// Validates `bytes` as exactly one document.
    pub fn new(bytes: Bytes, limits: &Limits) -> Result<Doc, &'static str> {
        bsonval::validate_exact(&bytes, limits)?;
        Ok(Doc { bytes })
    }

    /// Builds a document from an owned raw document (encoder side).
    pub fn from_raw(doc: &RawDocument) -> Doc {
        Doc {
            bytes: Bytes::copy_from_slice(doc.as_bytes()),
        }
    }

    /// Wraps bytes already validated by the caller.
    pub(crate) fn trusted(bytes: Bytes) -> Doc {
        Doc { bytes }
    }

    /// The document as a borrowed raw view.
    pub fn raw(&self) -> &RawDocument {
        view(&self.bytes)
    }

    /// The document's bytes (shared, no copy).
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True for the empty document `{}`.
    pub fn is_empty(&self) -> bool {
        self.bytes.len() <= 5
    }
}

impl std::ops::Deref for Doc {
    type Target = RawDocument;
    fn deref(&self) -> &RawDocument {
        self.raw()
    }
}

impl From<RawDocumentBuf> for Doc {
    fn from(buf: RawDocumentBuf) -> Doc {
        Doc {
            bytes: Bytes::from(buf.into_bytes()),
        }
    }
}

impl fmt::Debug for Doc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::json::document_to_json(self.raw()))
    }
}

/// Documents laid end to end, validated, iterated without copying.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct DocSeq {
    bytes: Bytes,
    count: usize,
}

impl DocSeq {
    /// Validates `bytes` as zero or more whole documents.
    pub fn new(bytes: Bytes, limits: &Limits) -> Result<DocSeq, &'static str> {
        let mut at = 0;
        let mut count = 0;
        while at < bytes.len() {
            at += bsonval::validate_prefix(&bytes[at..], limits)?;
            count += 1;
        }
        Ok(DocSeq { bytes, count })
    }

    /// Concatenates documents (encoder side).
    pub fn from_docs<'a, I: IntoIterator<Item = &'a RawDocument>>(docs: I) -> DocSeq {
        let mut out = Vec::new();
        let mut count = 0;
        for d in docs {
            out.extend_from_slice(d.as_bytes());
            count += 1;
        }
        DocSeq {
            bytes: Bytes::from(out),
            count,
        }
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there is no document.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The raw concatenated bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Iterates the documents as borrowed views.
    pub fn iter(&self) -> DocSeqIter<'_> {
        DocSeqIter { rest: &self.bytes }
    }

    /// The `i`-th document as a shared [`Doc`].
    pub fn get(&self, i: usize) -> Option<Doc> {
        let mut at = 0;
        for (n, d) in self.iter().enumerate() {
            let len = d.as_bytes().len();
            if n == i {
                return Some(Doc::trusted(self.bytes.slice(at..at + len)));
            }
            at += len;
        }
        None
    }
}

impl fmt::Debug for DocSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter().map(DebugRaw)).finish()
    }
}

struct DebugRaw<'a>(&'a RawDocument);
impl fmt::Debug for DebugRaw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::json::document_to_json(self.0))
    }
}

/// Iterator over a [`DocSeq`].
pub struct DocSeqIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for DocSeqIter<'a> {
    type Item = &'a RawDocument;
    fn next(&mut self) -> Option<&'a RawDocument> {
        let len = i32::from_le_bytes(self.rest.get(..4)?.try_into().ok()?);
        let len = usize::try_from(len).ok()?;
        let doc = self.rest.get(..len)?;
        self.rest = &self.rest[len..];
        RawDocument::from_bytes(doc).ok()
    }
}
