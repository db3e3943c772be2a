//! The flow table: flows in a slab (stable indices, compact), found through a hash
//! index of compact address-pair keys. One hash lookup per packet; the index stays
//! small and cache-friendly however large the per-flow state grows.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::{IpAddr, SocketAddr};

use super::flow::Flow;

/// A flow's address pair in canonical order, so both directions find it. IPv4 is
/// stored v4-mapped; `v6` keeps the families apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FlowKey {
    a: [u8; 16],
    b: [u8; 16],
    ports: [u16; 2],
    v6: bool,
}

fn endpoint(s: &SocketAddr) -> ([u8; 16], u16) {
    let ip = match s.ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    };
    (ip, s.port())
}

impl FlowKey {
    pub fn new(x: SocketAddr, y: SocketAddr) -> Self {
        let (ex, ey) = (endpoint(&x), endpoint(&y));
        let (lo, hi) = if ex <= ey { (ex, ey) } else { (ey, ex) };
        FlowKey {
            a: lo.0,
            b: hi.0,
            ports: [lo.1, hi.1],
            v6: x.is_ipv6(),
        }
    }
}

impl Hash for FlowKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // One write of 37 bytes instead of field-by-field calls.
        let mut buf = [0u8; 37];
        buf[..16].copy_from_slice(&self.a);
        buf[16..32].copy_from_slice(&self.b);
        buf[32..34].copy_from_slice(&self.ports[0].to_ne_bytes());
        buf[34..36].copy_from_slice(&self.ports[1].to_ne_bytes());
        buf[36] = u8::from(self.v6);
        state.write(&buf);
    }
}

/// A keyed hash for flow keys: 64-bit words folded through 128-bit multiplies with
/// per-table random seeds (the construction of foldhash/wyhash). Several times cheaper
/// than SipHash on a 37-byte key, which shows at a million packets a second; keyed,
/// so an attacker cannot precompute colliding address pairs, and the table it protects
/// is bounded by `max_flows` anyway.
#[derive(Clone, Copy)]
pub(crate) struct FlowHashBuilder {
    seed: [u64; 2],
}

impl Default for FlowHashBuilder {
    fn default() -> Self {
        let rs = std::collections::hash_map::RandomState::new();
        FlowHashBuilder {
            seed: [rs.hash_one(0x746964u64) | 1, rs.hash_one(0x6d61726bu64)],
        }
    }
}

pub(crate) struct FlowHasher {
    acc: u64,
    seed: u64,
}

#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let m = u128::from(a).wrapping_mul(u128::from(b));
    (m as u64) ^ ((m >> 64) as u64)
}

impl BuildHasher for FlowHashBuilder {
    type Hasher = FlowHasher;
    fn build_hasher(&self) -> FlowHasher {
        FlowHasher {
            acc: self.seed[0],
            seed: self.seed[1],
        }
    }
}

impl Hasher for FlowHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.acc = fold(self.acc ^ w, self.seed ^ 0x9e37_79b9_7f4a_7c15);
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        self.acc = fold(
            self.acc ^ u64::from_le_bytes(tail),
            self.seed ^ rest.len() as u64,
        );
    }

    fn finish(&self) -> u64 {
        fold(self.acc, self.seed ^ 0x2d35_8dcc_aa6c_78a5)
    }
}

/// Index of a flow in the table; stable until the flow is removed.
pub(crate) type Slot = u32;

#[derive(Default)]
pub(crate) struct FlowTable {
    index: HashMap<FlowKey, Slot, FlowHashBuilder>,
    slab: Vec<Option<(FlowKey, Flow)>>,
    free: Vec<Slot>,
}

impl FlowTable {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn find(&self, key: &FlowKey) -> Option<Slot> {
        self.index.get(key).copied()
    }

    pub fn get(&self, slot: Slot) -> Option<&Flow> {
        self.slab.get(slot as usize)?.as_ref().map(|(_, f)| f)
    }

    pub fn get_mut(&mut self, slot: Slot) -> Option<&mut Flow> {
        self.slab.get_mut(slot as usize)?.as_mut().map(|(_, f)| f)
    }

    pub fn insert(&mut self, key: FlowKey, flow: Flow) -> Slot {
        let slot = match self.free.pop() {
            Some(s) => {
                self.slab[s as usize] = Some((key, flow));
                s
            }
            None => {
                self.slab.push(Some((key, flow)));
                (self.slab.len() - 1) as Slot
            }
        };
        self.index.insert(key, slot);
        slot
    }

    pub fn remove(&mut self, slot: Slot) -> Option<Flow> {
        let (key, flow) = self.slab.get_mut(slot as usize)?.take()?;
        self.index.remove(&key);
        self.free.push(slot);
        Some(flow)
    }

    /// Every flow with its slot.
    pub fn iter(&self) -> impl Iterator<Item = (Slot, &Flow)> {
        self.slab
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|(_, f)| (i as Slot, f)))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (Slot, &mut Flow)> {
        self.slab
            .iter_mut()
            .enumerate()
            .filter_map(|(i, e)| e.as_mut().map(|(_, f)| (i as Slot, f)))
    }

    pub fn clear(&mut self) {
        self.index.clear();
        self.slab.clear();
        self.free.clear();
    }
}
