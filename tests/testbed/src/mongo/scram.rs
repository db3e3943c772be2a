//! SCRAM-SHA-256 authentication (RFC 5802 / RFC 7677) as mongod does it:
//! `saslStart` (or `speculativeAuthenticate` inside the handshake hello)
//! with the client-first message, `saslContinue` with the client proof,
//! answered with the server signature (`done: true` at once when the client
//! asked for `skipEmptyExchange`). Wrong credentials get AuthenticationFailed
//! (18). The server keeps only the salt, iteration count, StoredKey and
//! ServerKey: never the password, and no SASL payload is logged.

use crate::mongo::errors::error;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use tidemark_mongo::bson::spec::BinarySubtype;
use tidemark_mongo::bson::{doc, Binary, Bson, Document};

/// MongoDB's default iteration count for SCRAM-SHA-256.
pub const ITERATIONS: u32 = 15000;
pub const MECHANISM: &str = "SCRAM-SHA-256";

/// The one configured user, stored as a server stores SCRAM credentials.
#[derive(Clone)]
pub struct ScramUser {
    pub name: String,
    salt: Vec<u8>,
    iterations: u32,
    stored_key: [u8; 32],
    server_key: [u8; 32],
}

impl std::fmt::Debug for ScramUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramUser")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

impl ScramUser {
    /// Derives the stored credentials of `name` (on `admin`) from `password`
    /// with a random salt; the password itself is not kept. ASCII
    /// passwords only: SASLprep is the identity on them (others are not
    /// normalised).
    pub fn new(name: &str, password: &str) -> ScramUser {
        let salt = rand::random::<[u8; 28]>().to_vec();
        ScramUser::with_salt(name, password, salt, ITERATIONS)
    }

    /// As [`ScramUser::new`] with a given salt and iteration count.
    pub fn with_salt(name: &str, password: &str, salt: Vec<u8>, iterations: u32) -> ScramUser {
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        ScramUser {
            name: name.to_string(),
            salt,
            iterations,
            stored_key: sha256(&client_key),
            server_key: hmac(&salted, b"Server Key"),
        }
    }
}

/// One connection's authentication state.
#[derive(Debug, Default)]
pub struct ConnAuth {
    pub authenticated: bool,
    conversation: Option<Conversation>,
}

#[derive(Debug)]
struct Conversation {
    client_first_bare: String,
    server_first: String,
    nonce: String,
    gs2_header: String,
    skip_empty_exchange: bool,
    /// The proof was verified; waiting for the client's empty final message.
    verified: bool,
}

fn failed() -> Document {
    error(18, "AuthenticationFailed", "Authentication failed.")
}

fn payload_bytes(cmd: &Document) -> Option<Vec<u8>> {
    match cmd.get("payload")? {
        Bson::Binary(b) => Some(b.bytes.clone()),
        Bson::String(s) => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

fn binary(s: &str) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes: s.as_bytes().to_vec(),
    }
}

/// `key=value` attributes of a SCRAM message.
fn attr(msg: &str, key: char) -> Option<&str> {
    msg.split(',').find_map(|part| {
        let mut c = part.chars();
        (c.next() == Some(key) && c.next() == Some('=')).then(|| &part[2..])
    })
}

/// `saslStart` (also the `speculativeAuthenticate` of a hello): checks the
/// mechanism and user, answers with server-first.
pub fn sasl_start(user: &ScramUser, auth: &mut ConnAuth, cmd: &Document) -> Document {
    let server_nonce = B64.encode(rand::random::<[u8; 24]>());
    start_with_nonce(user, auth, cmd, &server_nonce)
}

fn start_with_nonce(
    user: &ScramUser,
    auth: &mut ConnAuth,
    cmd: &Document,
    server_nonce: &str,
) -> Document {
    auth.conversation = None;
    if cmd.get_str("mechanism").ok() != Some(MECHANISM) {
        return error(
            334,
            "MechanismUnavailable",
            "only SCRAM-SHA-256 is supported by the testbed",
        );
    }
    let Some(payload) = payload_bytes(cmd) else {
        return error(9, "FailedToParse", "saslStart needs a payload");
    };
    let Ok(msg) = String::from_utf8(payload) else {
        return failed();
    };
    // gs2 header "n,," (no channel binding), then the bare message
    let mut parts = msg.splitn(3, ',');
    let (Some(cb), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next()) else {
        return failed();
    };
    if !matches!(cb, "n" | "y") || !authzid.is_empty() {
        return failed();
    }
    let (Some(name), Some(client_nonce)) = (attr(bare, 'n'), attr(bare, 'r')) else {
        return failed();
    };
    let name = name.replace("=2C", ",").replace("=3D", "=");
    if name != user.name || client_nonce.is_empty() {
        tracing::info!("SCRAM authentication failed: unknown user");
        return failed();
    }
    let nonce = format!("{client_nonce}{server_nonce}");
    let server_first = format!(
        "r={nonce},s={},i={}",
        B64.encode(&user.salt),
        user.iterations
    );
    let skip = cmd
        .get_document("options")
        .ok()
        .and_then(|o| o.get_bool("skipEmptyExchange").ok())
        .unwrap_or(false);
    auth.conversation = Some(Conversation {
        client_first_bare: bare.to_string(),
        server_first: server_first.clone(),
        nonce,
        gs2_header: format!("{cb},{authzid},"),
        skip_empty_exchange: skip,
        verified: false,
    });
    doc! { "conversationId": 1, "done": false, "payload": binary(&server_first), "ok": 1.0 }
}

/// `saslContinue`: verifies the client proof and answers with the server
/// signature; a wrong password is AuthenticationFailed.
pub fn sasl_continue(user: &ScramUser, auth: &mut ConnAuth, cmd: &Document) -> Document {
    let Some(conv) = auth.conversation.as_mut() else {
        return error(17, "ProtocolError", "No SASL session state found");
    };
    let payload = payload_bytes(cmd).unwrap_or_default();
    if conv.verified {
        // the final empty exchange of a client without skipEmptyExchange
        auth.conversation = None;
        auth.authenticated = true;
        return doc! { "conversationId": 1, "done": true, "payload": binary(""), "ok": 1.0 };
    }
    let Ok(msg) = String::from_utf8(payload) else {
        auth.conversation = None;
        return failed();
    };
    let verified = verify(user, conv, &msg);
    let Some(server_final) = verified else {
        auth.conversation = None;
        tracing::info!("SCRAM authentication failed: bad proof");
        return failed();
    };
    if conv.skip_empty_exchange {
        auth.conversation = None;
        auth.authenticated = true;
        return doc! { "conversationId": 1, "done": true, "payload": binary(&server_final), "ok": 1.0 };
    }
    conv.verified = true;
    doc! { "conversationId": 1, "done": false, "payload": binary(&server_final), "ok": 1.0 }
}

/// Checks client-final (`c=...,r=...,p=...`); the server-final message
/// (`v=ServerSignature`) when the proof is right.
fn verify(user: &ScramUser, conv: &Conversation, client_final: &str) -> Option<String> {
    let (without_proof, proof_b64) = client_final.rsplit_once(",p=")?;
    if attr(without_proof, 'c')? != B64.encode(conv.gs2_header.as_bytes()) {
        return None;
    }
    if attr(without_proof, 'r')? != conv.nonce {
        return None;
    }
    let proof = B64.decode(proof_b64).ok()?;
    if proof.len() != 32 {
        return None;
    }
    let auth_message = format!(
        "{},{},{}",
        conv.client_first_bare, conv.server_first, without_proof
    );
    let client_signature = hmac(&user.stored_key, auth_message.as_bytes());
    let client_key: Vec<u8> = proof
        .iter()
        .zip(client_signature.iter())
        .map(|(a, b)| a ^ b)
        .collect();
    if sha256(&client_key) != user.stored_key {
        return None;
    }
    let server_signature = hmac(&user.server_key, auth_message.as_bytes());
    Some(format!("v={}", B64.encode(server_signature)))
}

/// Commands a connection may run before it authenticates: the handshake,
/// the SASL exchange, and the replication traffic between members (mongod
/// authenticates that with the keyfile; the testbed's members do not).
pub fn allowed_unauthenticated(name: &str, db: &str, cmd: &Document) -> bool {
    match name {
        "hello" | "isMaster" | "ismaster" | "saslStart" | "saslContinue" | "ping" | "buildInfo"
        | "buildinfo" | "endSessions" => true,
        "find" | "getMore" | "killCursors" => {
            db == "local"
                && (cmd.get_str(name).ok() == Some("oplog.rs")
                    || cmd.get_str("collection").ok() == Some("oplog.rs"))
        }
        n => n.starts_with("replSet"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Client side of SCRAM-SHA-256, written from RFC 5802 for the test.
    fn client_final(
        password: &str,
        client_first_bare: &str,
        server_first: &str,
    ) -> (String, String) {
        let r = attr(server_first, 'r').unwrap();
        let salt = B64.decode(attr(server_first, 's').unwrap()).unwrap();
        let i: u32 = attr(server_first, 'i').unwrap().parse().unwrap();
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, i, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored = sha256(&client_key);
        let without = format!("c=biws,r={r}");
        let am = format!("{client_first_bare},{server_first},{without}");
        let sig = hmac(&stored, am.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(sig).map(|(a, b)| a ^ b).collect();
        let server_sig = hmac(&hmac(&salted, b"Server Key"), am.as_bytes());
        (
            format!("{without},p={}", B64.encode(proof)),
            format!("v={}", B64.encode(server_sig)),
        )
    }

    fn exchange(password: &str) -> (Document, String, ConnAuth) {
        let user = ScramUser::new("tidemark", "pencil-7");
        let mut auth = ConnAuth::default();
        let bare = "n=tidemark,r=abcdefNONCE";
        let start = doc! { "saslStart": 1, "mechanism": MECHANISM, "payload": binary(&format!("n,,{bare}")), "options": { "skipEmptyExchange": true } };
        let r = sasl_start(&user, &mut auth, &start);
        let Bson::Binary(sf) = r.get("payload").unwrap() else {
            panic!()
        };
        let sf = String::from_utf8(sf.bytes.clone()).unwrap();
        let (cf, expected_v) = client_final(password, bare, &sf);
        let r = sasl_continue(
            &user,
            &mut auth,
            &doc! { "saslContinue": 1, "conversationId": 1, "payload": binary(&cf) },
        );
        (r, expected_v, auth)
    }

    #[test]
    fn right_password_authenticates_with_server_signature() {
        let (r, v, auth) = exchange("pencil-7");
        assert_eq!(r.get_bool("done").ok(), Some(true), "{r}");
        let Bson::Binary(p) = r.get("payload").unwrap() else {
            panic!()
        };
        assert_eq!(String::from_utf8(p.bytes.clone()).unwrap(), v);
        assert!(auth.authenticated);
    }

    #[test]
    fn garbage_sasl_messages_fail_without_panicking() {
        let user = ScramUser::new("tidemark", "pencil-7");
        let mut auth = ConnAuth::default();
        for payload in [
            "",
            "n,,",
            "x,,n=tidemark,r=a",
            "n,,n=other,r=a",
            "n,,n=tidemark",
            "\u{ff},,",
        ] {
            let cmd = doc! { "saslStart": 1, "mechanism": MECHANISM, "payload": binary(payload) };
            assert_eq!(
                sasl_start(&user, &mut auth, &cmd).get_i32("code").ok(),
                Some(18),
                "{payload}"
            );
        }
        let cmd = doc! { "saslContinue": 1, "payload": binary("c=biws,r=x,p=AAAA") };
        assert_eq!(
            sasl_continue(&user, &mut auth, &cmd).get_i32("code").ok(),
            Some(17)
        );
        assert!(op_msg_body(&[0u8; 3]).is_none());
        let mut bogus = vec![0u8; 30];
        bogus[12..16].copy_from_slice(&2013i32.to_le_bytes());
        bogus[21..25].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(op_msg_body(&bogus).is_none());
        assert!(!auth.authenticated);
    }

    /// The SCRAM-SHA-256 example exchange of RFC 7677 section 3, an
    /// independent reference for every message the server sends.
    #[test]
    fn rfc7677_example_exchange() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let user = ScramUser::with_salt("user", "pencil", salt, 4096);
        let mut auth = ConnAuth::default();
        let start = doc! { "saslStart": 1, "mechanism": MECHANISM, "payload": binary("n,,n=user,r=rOprNGfwEbeRWgbNEkqO") };
        let r = start_with_nonce(&user, &mut auth, &start, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
        let Some(Bson::Binary(p)) = r.get("payload") else {
            panic!("{r}")
        };
        assert_eq!(
            String::from_utf8(p.bytes.clone()).unwrap(),
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let client_final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let r = sasl_continue(
            &user,
            &mut auth,
            &doc! { "saslContinue": 1, "conversationId": 1, "payload": binary(client_final) },
        );
        let Some(Bson::Binary(p)) = r.get("payload") else {
            panic!("{r}")
        };
        assert_eq!(
            String::from_utf8(p.bytes.clone()).unwrap(),
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        // no skipEmptyExchange: one more empty round finishes it
        assert_eq!(r.get_bool("done").ok(), Some(false));
        assert!(!auth.authenticated);
        let r = sasl_continue(
            &user,
            &mut auth,
            &doc! { "saslContinue": 1, "conversationId": 1, "payload": binary("") },
        );
        assert_eq!(r.get_bool("done").ok(), Some(true));
        assert!(auth.authenticated);
    }

    #[test]
    fn only_the_handshake_and_replication_pass_unauthenticated() {
        let ok = |name: &str, db: &str, cmd: Document| allowed_unauthenticated(name, db, &cmd);
        assert!(ok("hello", "admin", doc! { "hello": 1 }));
        assert!(ok("find", "local", doc! { "find": "oplog.rs" }));
        assert!(ok(
            "getMore",
            "local",
            doc! { "getMore": 1i64, "collection": "oplog.rs" }
        ));
        assert!(ok(
            "killCursors",
            "local",
            doc! { "killCursors": "oplog.rs" }
        ));
        assert!(ok(
            "replSetHeartbeat",
            "admin",
            doc! { "replSetHeartbeat": "rs0" }
        ));
        assert!(!ok("find", "local", doc! { "find": "startup_log" }));
        assert!(!ok("find", "shop", doc! { "find": "oplog.rs" }));
        assert!(!ok("insert", "shop", doc! { "insert": "c" }));
        assert!(!ok("listDatabases", "admin", doc! { "listDatabases": 1 }));
    }

    #[test]
    fn wrong_password_fails_with_18() {
        let (r, _, auth) = exchange("pencil-8");
        assert_eq!(r.get_i32("code").ok(), Some(18));
        assert!(!auth.authenticated);
    }
}
/// The recent undecoded bytes of a connection, so that a message the
/// decoder redacted (SASL payloads zeroed) can be read as it was sent. The
/// copy lives only until the message is handled.
#[derive(Debug, Default)]
pub struct RawWindow {
    bytes: std::collections::VecDeque<u8>,
    /// Stream offset of `bytes[0]`.
    start: u64,
}

impl RawWindow {
    pub fn feed(&mut self, data: &[u8]) {
        self.bytes.extend(data);
    }

    /// Restores the body of a redacted, uncompressed OP_MSG from the raw
    /// bytes (drivers never compress authentication commands), and forgets
    /// the bytes up to the end of `msg`. Without fed bytes (a set without
    /// authentication) it leaves `msg` as it is.
    pub fn unredact(&mut self, msg: &mut tidemark_mongo::Message) {
        let from = msg.offset.saturating_sub(self.start) as usize;
        let to = from + msg.wire_length as usize;
        if msg.redacted && msg.compressor.is_none() && to <= self.bytes.len() {
            let raw: Vec<u8> = self.bytes.range(from..to).copied().collect();
            if let (tidemark_mongo::Body::Msg(m), Some(body)) = (&mut msg.body, op_msg_body(&raw)) {
                m.body = tidemark_mongo::Doc::from(body);
            }
        }
        let cut = to.min(self.bytes.len());
        self.bytes.drain(..cut);
        self.start += cut as u64;
    }
}

/// The kind-0 section of a raw OP_MSG (header, flags, sections).
fn op_msg_body(raw: &[u8]) -> Option<tidemark_mongo::bson::RawDocumentBuf> {
    let opcode = i32::from_le_bytes(raw.get(12..16)?.try_into().ok()?);
    if opcode != 2013 {
        return None;
    }
    let mut pos: usize = 20;
    while pos < raw.len() {
        let kind = *raw.get(pos)?;
        let len = u32::from_le_bytes(raw.get(pos + 1..pos + 5)?.try_into().ok()?) as usize;
        let end = pos.checked_add(1)?.checked_add(len)?;
        if kind == 0 {
            let doc = raw.get(pos + 1..end)?;
            return tidemark_mongo::bson::RawDocumentBuf::from_bytes(doc.to_vec()).ok();
        }
        pos = end;
    }
    None
}
