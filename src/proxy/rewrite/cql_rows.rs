//! CQL message-level rewrite: the address columns of `system.local`,
//! `system.peers` and `system.peers_v2` rows, and the node of TOPOLOGY_CHANGE and
//! STATUS_CHANGE events. Only cells holding a mapped node's address (and the port
//! cells paired with them, when they hold that node's port) change.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use tidemark_cql::message::{Event, ResultBody, Rows};
use tidemark_cql::{ColumnType, Message};

use super::map::AddrMap;

/// Address columns and the port column that goes with each, if any.
const ADDRESS_COLUMNS: &[(&str, &[&str])] = &[
    ("rpc_address", &["rpc_port", "native_transport_port"]),
    ("native_address", &["native_port"]),
    ("broadcast_address", &[]),
    ("peer", &[]),
];

fn is_topology_table(keyspace: &str, table: &str) -> bool {
    keyspace == "system" && matches!(table, "local" | "peers" | "peers_v2")
}

/// Rewrites `msg` in place; returns how many values changed.
pub fn rewrite_message(msg: &mut Message, map: &AddrMap) -> usize {
    match msg {
        Message::Result(ResultBody::Rows(rows)) => rewrite_rows(rows, map),
        Message::Event(Event::TopologyChange { node, .. } | Event::StatusChange { node, .. }) => {
            match map.by_ip(node.ip(), Some(node.port())) {
                Some(m) => {
                    let port = match m.node_addr {
                        Some(a) if a.port() == node.port() => m.sidecar.port(),
                        _ => node.port(),
                    };
                    let new = SocketAddr::new(m.sidecar.ip(), port);
                    let changed = usize::from(new != *node);
                    *node = new;
                    changed
                }
                None => 0,
            }
        }
        _ => 0,
    }
}

fn ip_of(cell: &Option<Bytes>) -> Option<IpAddr> {
    let b = cell.as_ref()?;
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(&b[..]).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(&b[..]).ok()?)),
        _ => None,
    }
}

fn ip_cell(ip: IpAddr) -> Bytes {
    match ip {
        IpAddr::V4(v4) => Bytes::copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => Bytes::copy_from_slice(&v6.octets()),
    }
}

fn int_of(cell: &Option<Bytes>) -> Option<i32> {
    Some(i32::from_be_bytes(cell.as_ref()?[..].try_into().ok()?))
}

fn rewrite_rows(rows: &mut Rows, map: &AddrMap) -> usize {
    let md = &rows.metadata;
    if md.no_metadata || md.columns.len() != md.columns_count {
        return 0;
    }
    // (address column, its port column) indexes, for columns of the topology tables.
    let find = |name: &str, ty: &ColumnType| {
        md.columns.iter().position(|c| {
            c.name.as_str() == name
                && &c.ty == ty
                && is_topology_table(c.keyspace.as_str(), c.table.as_str())
        })
    };
    let pairs: Vec<(usize, Option<usize>)> = ADDRESS_COLUMNS
        .iter()
        .filter_map(|(addr, ports)| {
            let a = find(addr, &ColumnType::Inet)?;
            let p = ports.iter().find_map(|p| find(p, &ColumnType::Int));
            Some((a, p))
        })
        .collect();
    if pairs.is_empty() {
        return 0;
    }
    let mut cells: Vec<Vec<Option<Bytes>>> = Vec::with_capacity(rows.rows_count.min(4096));
    for row in rows.rows() {
        match row {
            Ok(r) => cells.push(r),
            Err(_) => return 0,
        }
    }
    let mut changed = 0;
    for row in &mut cells {
        for &(a, p) in &pairs {
            let Some(ip) = ip_of(&row[a]) else { continue };
            let port = p.and_then(|p| int_of(&row[p]));
            let Some(m) = map.by_ip(ip, port.and_then(|p| u16::try_from(p).ok())) else {
                continue;
            };
            if m.sidecar.ip() != ip {
                row[a] = Some(ip_cell(m.sidecar.ip()));
                changed += 1;
            }
            if let (Some(p), Some(old), Some(node)) = (p, port, m.node_addr) {
                if old == i32::from(node.port()) && old != i32::from(m.sidecar.port()) {
                    row[p] = Some(Bytes::copy_from_slice(
                        &i32::from(m.sidecar.port()).to_be_bytes(),
                    ));
                    changed += 1;
                }
            }
        }
    }
    if changed > 0 {
        let paging = rows.metadata.clone();
        *rows = Rows::from_cells(paging, &cells);
    }
    changed
}
