//! Link layers: from a captured frame to the IP packet inside it.
//!
//! Only the layers seen in front of database traffic are handled: Ethernet with any
//! number (up to four) of 802.1Q/802.1ad tags, BSD loopback (DLT_NULL and DLT_LOOP),
//! Linux cooked capture v1 and v2, and raw IP. Ethernet and VLAN tags are parsed with
//! etherparse; the 4-byte loopback header, SLL and SLL2 by hand (see [`sll`]).

use etherparse::{EtherType, Ethernet2HeaderSlice, SingleVlanHeaderSlice};

/// The link-layer header types tidemark can read, by what libpcap calls them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// DLT_EN10MB.
    Ethernet,
    /// DLT_NULL: 4-byte address family in the capturing host's byte order.
    Null,
    /// DLT_LOOP: 4-byte address family in network byte order (OpenBSD).
    Loop,
    /// DLT_LINUX_SLL: Linux cooked capture v1 (16-byte header).
    LinuxSll,
    /// DLT_LINUX_SLL2: Linux cooked capture v2 (20-byte header).
    LinuxSll2,
    /// DLT_RAW: IPv4 or IPv6, told apart by the version nibble.
    RawIp,
    /// LINKTYPE_IPV4.
    Ipv4,
    /// LINKTYPE_IPV6.
    Ipv6,
}

impl LinkType {
    /// Maps a DLT value as libpcap reports it (`pcap_datalink`) to a link type.
    /// DLT_RAW is 12 on most systems, 14 on OpenBSD, and LINKTYPE_RAW is 101 in files.
    pub fn from_dlt(dlt: i32) -> Option<LinkType> {
        Some(match dlt {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::RawIp,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            _ => return None,
        })
    }

    /// The LINKTYPE_ value written in a pcap file header for this link type.
    pub fn linktype(self) -> u32 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::RawIp => 101,
            LinkType::Loop => 108,
            LinkType::LinuxSll => 113,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll2 => 276,
        }
    }
}

/// What the link layer carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network<'a> {
    /// An IPv4 or IPv6 packet (possibly cut short by the snaplen).
    Ip(&'a [u8]),
    /// Something else (ARP, LLDP, IPX, …): counted, not decoded.
    NotIp,
    /// The link header itself was cut short or inconsistent.
    Malformed,
}

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
/// 802.1Q, 802.1ad and the two pre-standard QinQ tag types.
const VLAN_TYPES: [u16; 4] = [0x8100, 0x88a8, 0x9100, 0x9200];
/// Stacked tags beyond this are treated as malformed rather than followed forever.
const MAX_VLAN_TAGS: usize = 4;

/// Returns the network-layer packet inside `frame`.
pub fn network_layer(link: LinkType, frame: &[u8]) -> Network<'_> {
    match link {
        LinkType::Ethernet => ethernet(frame),
        LinkType::Null | LinkType::Loop => loopback(frame),
        LinkType::LinuxSll => sll(frame),
        LinkType::LinuxSll2 => sll2(frame),
        LinkType::RawIp | LinkType::Ipv4 | LinkType::Ipv6 => raw_ip(frame),
    }
}

fn ethernet(frame: &[u8]) -> Network<'_> {
    let Ok(eth) = Ethernet2HeaderSlice::from_slice(frame) else {
        return Network::Malformed;
    };
    let mut ether_type = eth.ether_type();
    let mut rest = &frame[eth.slice().len()..];
    for _ in 0..MAX_VLAN_TAGS {
        if !VLAN_TYPES.contains(&ether_type.0) {
            return by_ether_type(ether_type, rest);
        }
        let Ok(vlan) = SingleVlanHeaderSlice::from_slice(rest) else {
            return Network::Malformed;
        };
        ether_type = vlan.ether_type();
        rest = &rest[vlan.slice().len()..];
    }
    if VLAN_TYPES.contains(&ether_type.0) {
        Network::Malformed
    } else {
        by_ether_type(ether_type, rest)
    }
}

fn by_ether_type(ether_type: EtherType, rest: &[u8]) -> Network<'_> {
    match ether_type.0 {
        ETH_IPV4 | ETH_IPV6 => Network::Ip(rest),
        _ => Network::NotIp,
    }
}

/// BSD loopback: a 4-byte address family. DLT_NULL writes it in the capturing host's
/// byte order, which the file does not record, so both orders are accepted: a value
/// above 0xffff can only be a byte-swapped small number.
fn loopback(frame: &[u8]) -> Network<'_> {
    let Some((head, rest)) = frame.split_first_chunk::<4>() else {
        return Network::Malformed;
    };
    let mut af = u32::from_le_bytes(*head);
    if af > 0xffff {
        af = af.swap_bytes();
    }
    match af {
        // AF_INET everywhere; AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD, macOS.
        2 | 10 | 24 | 28 | 30 => Network::Ip(rest),
        _ => Network::NotIp,
    }
}

/// Linux cooked v1: packet type (2), ARPHRD type (2), address length (2), address
/// (8), protocol (2). Parsed by hand: etherparse's SLL parser rejects ARPHRD types it
/// does not list, such as ARPHRD_LOOPBACK (772), which is what capturing `lo` with
/// `-i any` produces.
fn sll(frame: &[u8]) -> Network<'_> {
    if frame.len() < 16 {
        return Network::Malformed;
    }
    let hatype = u16::from_be_bytes([frame[2], frame[3]]);
    if hatype == ARPHRD_NETLINK {
        return Network::NotIp;
    }
    let proto = u16::from_be_bytes([frame[14], frame[15]]);
    by_ether_type(EtherType(proto), &frame[16..])
}

const ARPHRD_NETLINK: u16 = 824;

/// Linux cooked v2: protocol (2), reserved (2), ifindex (4), hatype (2), pkttype (1),
/// address length (1), address (8); 20 bytes, all big-endian.
fn sll2(frame: &[u8]) -> Network<'_> {
    if frame.len() < 20 {
        return Network::Malformed;
    }
    let proto = u16::from_be_bytes([frame[0], frame[1]]);
    by_ether_type(EtherType(proto), &frame[20..])
}

fn raw_ip(frame: &[u8]) -> Network<'_> {
    match frame.first().map(|b| b >> 4) {
        Some(4) | Some(6) => Network::Ip(frame),
        Some(_) => Network::NotIp,
        None => Network::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: [u8; 4] = [0x45, 0, 0, 20];

    #[test]
    fn null_accepts_both_byte_orders() {
        let mut le = vec![2, 0, 0, 0];
        le.extend_from_slice(&IP);
        let mut be = vec![0, 0, 0, 2];
        be.extend_from_slice(&IP);
        assert_eq!(network_layer(LinkType::Null, &le), Network::Ip(&IP));
        assert_eq!(network_layer(LinkType::Loop, &be), Network::Ip(&IP));
        assert_eq!(network_layer(LinkType::Null, &[7, 0, 0, 0]), Network::NotIp);
        assert_eq!(network_layer(LinkType::Null, &[2, 0]), Network::Malformed);
    }

    #[test]
    fn ethernet_with_stacked_vlans() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x88, 0xa8, 0, 10, 0x81, 0x00, 0, 20, 0x08, 0x00]);
        f.extend_from_slice(&IP);
        assert_eq!(network_layer(LinkType::Ethernet, &f), Network::Ip(&IP));
        // Tags without end are malformed, not an endless loop.
        let mut g = vec![0u8; 12];
        for _ in 0..6 {
            g.extend_from_slice(&[0x81, 0x00, 0, 1]);
        }
        g.extend_from_slice(&[0x81, 0x00]);
        assert_eq!(network_layer(LinkType::Ethernet, &g), Network::Malformed);
    }

    #[test]
    fn sll2_and_raw() {
        let mut sll = vec![0, 0, 0x03, 0x04, 0, 6];
        sll.extend_from_slice(&[0u8; 8]);
        sll.extend_from_slice(&[0x08, 0x00, 0x45]);
        assert_eq!(
            network_layer(LinkType::LinuxSll, &sll),
            Network::Ip(&[0x45])
        );
        let mut f = vec![0x86, 0xdd];
        f.extend_from_slice(&[0u8; 18]);
        f.push(0x60);
        assert_eq!(network_layer(LinkType::LinuxSll2, &f), Network::Ip(&[0x60]));
        assert_eq!(network_layer(LinkType::RawIp, &[0x20]), Network::NotIp);
        assert_eq!(network_layer(LinkType::RawIp, &[]), Network::Malformed);
    }
}
