//! Documents handed over as slices of the message they came in, not as copies.
//!
//! A write's document is needed twice downstream: as the operation's `o` (the
//! store's payload) and as the line's kept values. Each was a copy of the
//! request's bytes (1 KB per inserted document, allocated at decode and freed on the
//! committer's thread), and the store then compared the two byte for byte to keep
//! them once. A slice of the (decompressed) message's own buffer costs a reference
//! count instead, and two slices of the same bytes are known equal by their address.
//!
//! The model's parsers hand out borrowed views (`&RawDocument`); [`Owners`] finds
//! the buffer such a view lies in and takes a slice of it. A view in no buffer it
//! holds (a document built on the way, an owner it was not told of) is copied, so a
//! wrong guess costs a copy, never a wrong byte.

use bytes::Bytes;
use tidemark_mongo::{Body, Message};

/// The buffers of one message that its documents lie in.
#[derive(Default)]
pub struct Owners<'m> {
    buffers: Vec<&'m Bytes>,
}

impl<'m> Owners<'m> {
    /// No buffer: every document is copied (for views whose message is not at hand).
    pub fn none() -> Self {
        Owners::default()
    }

    /// The buffers of `msg`'s documents: its body and document sequences (they are
    /// slices of one buffer when the message arrived whole, or decompressed).
    pub fn of(msg: &'m Message) -> Self {
        let mut buffers = Vec::with_capacity(2);
        match &msg.body {
            Body::Msg(m) => {
                buffers.push(m.body.bytes());
                buffers.extend(m.sequences.iter().map(|s| s.documents.bytes()));
            }
            Body::Insert(i) => buffers.push(i.documents.bytes()),
            Body::Update(u) => {
                buffers.push(u.selector.bytes());
                buffers.push(u.update.bytes());
            }
            Body::Delete(d) => buffers.push(d.selector.bytes()),
            Body::Query(q) => buffers.push(q.query.bytes()),
            Body::Command(c) => {
                buffers.push(c.command_args.bytes());
                buffers.push(c.input_docs.bytes());
            }
            Body::Reply(r) => buffers.push(r.documents.bytes()),
            Body::CommandReply(r) => {
                buffers.push(r.command_reply.bytes());
                buffers.push(r.output_docs.bytes());
            }
            Body::GetMore(_) | Body::KillCursors(_) => {}
        }
        Owners { buffers }
    }

    /// `part` as a slice of the buffer it lies in, or a copy when it lies in none.
    pub fn share(&self, part: &[u8]) -> Bytes {
        if part.is_empty() {
            return Bytes::new();
        }
        self.buffers
            .iter()
            .find(|b| lies_in(part, b))
            // Inside the buffer, as just checked: `slice_ref` cannot panic.
            .map_or_else(|| Bytes::copy_from_slice(part), |b| b.slice_ref(part))
    }
}

/// Whether `part`'s bytes lie within `buffer`'s in memory.
pub fn lies_in(part: &[u8], buffer: &[u8]) -> bool {
    let ((start, end), (s, e)) = (span(part), span(buffer));
    s <= start && end <= e
}

/// The address range a slice covers.
fn span(b: &[u8]) -> (usize, usize) {
    let start = b.as_ptr() as usize;
    (start, start + b.len())
}

/// Whether `a` and `b` are the same bytes in memory (then they are equal without a
/// comparison).
pub fn same_slice(a: &[u8], b: &[u8]) -> bool {
    span(a) == span(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_mongo::bson::rawdoc;
    use tidemark_mongo::{Doc, DocSeq, DocSequence, OpMsg};

    fn message() -> Message {
        let docs = [rawdoc! {"_id": 1, "a": "x"}, rawdoc! {"_id": 2, "a": "y"}];
        let mut m = OpMsg::new(Doc::from_raw(&rawdoc! {"insert": "c", "$db": "d"}));
        m.sequences.push(DocSequence {
            identifier: "documents".into(),
            documents: DocSeq::from_docs(docs.iter().map(|d| d.as_ref())),
        });
        Message::new(7, 0, Body::Msg(m))
    }

    #[test]
    fn a_document_of_the_message_is_shared_not_copied() {
        let msg = message();
        let owners = Owners::of(&msg);
        let Body::Msg(m) = &msg.body else {
            unreachable!()
        };
        let seq = &m.sequences[0].documents;
        for d in seq.iter() {
            let shared = owners.share(d.as_bytes());
            assert_eq!(&shared[..], d.as_bytes());
            assert!(same_slice(&shared, d.as_bytes()), "a slice, not a copy");
        }
        let body = owners.share(m.body.raw().as_bytes());
        assert!(same_slice(&body, m.body.raw().as_bytes()));
    }

    #[test]
    fn bytes_outside_the_message_are_copied_equal() {
        let msg = message();
        let elsewhere = rawdoc! {"_id": 3};
        for owners in [Owners::of(&msg), Owners::none()] {
            let copied = owners.share(elsewhere.as_bytes());
            assert_eq!(&copied[..], elsewhere.as_bytes());
            assert!(!same_slice(&copied, elsewhere.as_bytes()));
        }
        assert!(Owners::of(&msg).share(&[]).is_empty());
    }

    #[test]
    fn a_slice_straddling_a_buffer_end_is_copied() {
        let whole = Bytes::from_static(b"0123456789");
        let left = whole.slice(0..5);
        let owners = Owners {
            buffers: vec![&left],
        };
        let straddling = &whole[3..8];
        let got = owners.share(straddling);
        assert_eq!(&got[..], b"34567");
        assert!(!same_slice(&got, straddling));
        let inside = owners.share(&whole[1..4]);
        assert!(same_slice(&inside, &whole[1..4]));
    }
}
