//! The flow table: flows in a slab (stable indices, compact), found through a hash
//! index of compact address-pair keys. One hash lookup per packet; the index stays
//! small and cache-friendly however large the per-flow state grows.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
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

/// Index of a flow in the table; stable until the flow is removed.
pub(crate) type Slot = u32;

#[derive(Default)]
pub(crate) struct FlowTable {
    index: HashMap<FlowKey, Slot>,
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
        self.slab.iter().enumerate().filter_map(|(i, e)| e.as_ref().map(|(_, f)| (i as Slot, f)))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (Slot, &mut Flow)> {
        self.slab.iter_mut().enumerate().filter_map(|(i, e)| e.as_mut().map(|(_, f)| (i as Slot, f)))
    }

    pub fn clear(&mut self) {
        self.index.clear();
        self.slab.clear();
        self.free.clear();
    }
}
