//! Client-side encryption of repository objects (`--encrypt-key-file`): object
//! stores are shared, and a backup holds every row.
//!
//! AES-256-GCM (ring) with a fresh random 96-bit nonce per object; the object's name
//! is the associated data, so an object moved or swapped under another name fails
//! to open. The stored object is `ENC_MAGIC`, the nonce, then ciphertext and tag;
//! manifests keep their length and CRC-32C over these stored bytes, so `repo verify`
//! checks integrity even without the key (and decodes everything with it). The key
//! is never printed or stored: only its id (a digest prefix) goes in manifests, so
//! a wrong key is named as such.

use std::path::Path;

use anyhow::{bail, Context};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

/// First bytes of an encrypted object.
pub const ENC_MAGIC: &[u8; 8] = b"TMENC\0\0\x01";

/// The algorithm as manifests name it.
pub const ALGORITHM: &str = "aes-256-gcm";

/// A repository key.
pub struct Key {
    key: LessSafeKey,
    /// Names the key in manifests without revealing it.
    pub id: String,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.id)
    }
}

impl Key {
    /// Reads a key file: 32 raw bytes, or 64 hexadecimal digits (a trailing newline
    /// allowed). The message on a bad file never repeats its contents.
    pub fn from_file(path: &Path) -> anyhow::Result<Key> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("--encrypt-key-file {}", path.display()))?;
        let key = match bytes.len() {
            32 => bytes,
            _ => {
                let text = std::str::from_utf8(&bytes).unwrap_or("").trim();
                match hex(text) {
                    Some(k) if k.len() == 32 => k,
                    _ => bail!(
                        "--encrypt-key-file {}: a key file holds 32 bytes or 64 hexadecimal digits (e.g. `head -c 32 /dev/urandom > FILE`)",
                        path.display()
                    ),
                }
            }
        };
        Key::from_bytes(&key)
    }

    pub fn from_bytes(key: &[u8]) -> anyhow::Result<Key> {
        let unbound = UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| anyhow::anyhow!("an AES-256 key is 32 bytes"))?;
        let digest = twox_hash::XxHash3_128::oneshot_with_seed(0x7469_6465, key);
        Ok(Key {
            key: LessSafeKey::new(unbound),
            id: format!("{:016x}", digest as u64),
        })
    }

    /// What manifests record of an object sealed with this key.
    pub fn label(&self) -> String {
        format!("{ALGORITHM}:{}", self.id)
    }

    /// Encrypts `plain` as the object named `name`.
    pub fn seal(&self, name: &str, plain: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| anyhow::anyhow!("no randomness for a nonce"))?;
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut buf,
            )
            .map_err(|_| anyhow::anyhow!("encrypting {name}"))?;
        let mut out = Vec::with_capacity(ENC_MAGIC.len() + NONCE_LEN + buf.len());
        out.extend_from_slice(ENC_MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Decrypts the object named `name`; any tampering, another name or another key
    /// is an error.
    pub fn open(&self, name: &str, sealed: &[u8]) -> Result<Vec<u8>, String> {
        let head = ENC_MAGIC.len() + NONCE_LEN;
        if sealed.len() < head || !sealed.starts_with(ENC_MAGIC) {
            return Err("not an encrypted tidemark object".into());
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[ENC_MAGIC.len()..head]);
        let mut buf = sealed[head..].to_vec();
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut buf,
            )
            .map_err(|_| {
                "does not decrypt with this key (wrong key, or the object was altered or renamed)"
                    .to_string()
            })?;
        Ok(plain.to_vec())
    }
}

/// Checks that `key` can open an object a manifest says was sealed with `label`
/// (`None`: not encrypted), and says what is wrong otherwise.
pub fn check_label<'k>(
    label: Option<&str>,
    key: Option<&'k Key>,
) -> Result<Option<&'k Key>, String> {
    match (label, key) {
        (None, _) => Ok(None),
        (Some(l), None) => Err(format!("encrypted ({l}): give --encrypt-key-file")),
        (Some(l), Some(k)) if l == k.label() => Ok(Some(k)),
        (Some(l), Some(k)) => Err(format!(
            "encrypted with key {l}, not with the key given ({})",
            k.label()
        )),
    }
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_objects_open_only_with_their_key_and_name() {
        let k = Key::from_bytes(&[7; 32]).unwrap();
        let other = Key::from_bytes(&[8; 32]).unwrap();
        let sealed = k.seal("a.seg", b"rows and rows").unwrap();
        assert!(
            !sealed.windows(4).any(|w| w == b"rows"),
            "plaintext visible"
        );
        assert_eq!(k.open("a.seg", &sealed).unwrap(), b"rows and rows");
        assert!(k.open("b.seg", &sealed).is_err(), "another name");
        assert!(other.open("a.seg", &sealed).is_err(), "another key");
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(k.open("a.seg", &flipped).is_err(), "tampered");
        assert_ne!(
            k.seal("a.seg", b"x").unwrap(),
            k.seal("a.seg", b"x").unwrap(),
            "fresh nonces"
        );
    }

    #[test]
    fn key_files_hold_raw_or_hex_keys_and_bad_ones_are_not_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw");
        std::fs::write(&raw, [1u8; 32]).unwrap();
        let hexed = dir.path().join("hex");
        std::fs::write(&hexed, format!("{}\n", to_hex(&[1u8; 32]))).unwrap();
        assert_eq!(
            Key::from_file(&raw).unwrap().id,
            Key::from_file(&hexed).unwrap().id
        );
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "hunter2-secret").unwrap();
        let e = Key::from_file(&bad).unwrap_err().to_string();
        assert!(
            e.contains("32 bytes or 64 hexadecimal digits") && !e.contains("hunter2"),
            "{e}"
        );
    }
}
