//! IP and TCP header parsing (etherparse), from a network-layer packet to a
//! [`TcpSegment`] the reassembler can use.
//!
//! Parsing is lax on purpose: a packet cut short by the snaplen still yields its
//! headers, and the number of payload bytes the IP header promised but the capture
//! lacks is carried as `missing`, so the reassembler can turn them into a gap instead
//! of losing them silently. Checksums are not verified: captures taken on the sending
//! host routinely carry unfinished checksums (offload), and tshark does not verify
//! them by default either.

use std::net::{IpAddr, SocketAddr};

use etherparse::{ip_number, Ipv6ExtensionSlice, LaxIpSlice, TcpHeaderSlice};

use super::defrag::{FragKey, Fragment};

/// The TCP flags the reassembler acts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpFlags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

/// One TCP segment, borrowed from the packet it came in.
#[derive(Debug, Clone, Copy)]
pub struct TcpSegment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    /// Acknowledgment number; meaningful only when `flags.ack`.
    pub ack: u32,
    pub flags: TcpFlags,
    /// The payload bytes that were captured.
    pub payload: &'a [u8],
    /// Payload bytes that followed `payload` on the wire but were not captured.
    pub missing: u32,
}

/// What an IP packet turned out to be.
#[derive(Debug)]
pub enum IpPacket<'a> {
    /// A whole (unfragmented) TCP datagram.
    Tcp {
        src: IpAddr,
        dst: IpAddr,
        /// The TCP header and payload as captured.
        transport: &'a [u8],
        /// Bytes of the datagram beyond what was captured.
        missing: u32,
    },
    /// A fragment of a TCP datagram, for the defragmenter.
    Fragment(Fragment<'a>),
    /// A whole or fragmented datagram of another protocol.
    NotTcp,
    /// The IP header could not be parsed.
    Malformed,
}

/// Parses the IP header of `packet`.
pub fn parse_ip(packet: &[u8]) -> IpPacket<'_> {
    let Ok((ip, _ext_err)) = LaxIpSlice::from_slice(packet) else {
        return IpPacket::Malformed;
    };
    let payload = ip.payload();
    if payload.ip_number != ip_number::TCP {
        return IpPacket::NotTcp;
    }
    let start = payload.payload.as_ptr() as usize - packet.as_ptr() as usize;
    let (src, dst, declared_end, frag) = match &ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            let frag = h.is_fragmenting_payload().then(|| {
                (
                    u32::from(h.identification()),
                    u32::from(h.fragments_offset().byte_offset()),
                    h.more_fragments(),
                )
            });
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                usize::from(h.total_len()),
                frag,
            )
        }
        LaxIpSlice::Ipv6(v6) => {
            let h = v6.header();
            let frag = v6.extensions().clone().into_iter().find_map(|e| match e {
                Ipv6ExtensionSlice::Fragment(f) if f.is_fragmenting_payload() => Some((
                    f.identification(),
                    u32::from(f.fragment_offset().byte_offset()),
                    f.more_fragments(),
                )),
                _ => None,
            });
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                40 + usize::from(h.payload_length()),
                frag,
            )
        }
    };
    let missing = if payload.incomplete {
        declared_end.saturating_sub(start + payload.payload.len()) as u32
    } else {
        0
    };
    match frag {
        Some((id, offset, more)) => IpPacket::Fragment(Fragment {
            key: FragKey {
                src,
                dst,
                id,
                proto: ip_number::TCP.0,
            },
            offset,
            more,
            payload: payload.payload,
            truncated: missing > 0,
        }),
        None => IpPacket::Tcp {
            src,
            dst,
            transport: payload.payload,
            missing,
        },
    }
}

/// Parses a TCP header; `None` when it is cut short or invalid.
pub fn parse_tcp(
    src: IpAddr,
    dst: IpAddr,
    transport: &[u8],
    missing: u32,
) -> Option<TcpSegment<'_>> {
    let h = TcpHeaderSlice::from_slice(transport).ok()?;
    let payload = &transport[h.slice().len()..];
    Some(TcpSegment {
        src: SocketAddr::new(src, h.source_port()),
        dst: SocketAddr::new(dst, h.destination_port()),
        seq: h.sequence_number(),
        ack: h.acknowledgment_number(),
        flags: TcpFlags {
            syn: h.syn(),
            ack: h.ack(),
            fin: h.fin(),
            rst: h.rst(),
        },
        payload,
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp_v4(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 9042, 1000, 65535)
            .ack(77);
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    #[test]
    fn whole_segment() {
        let p = tcp_v4(b"hello");
        let IpPacket::Tcp {
            src,
            dst,
            transport,
            missing,
        } = parse_ip(&p)
        else {
            panic!("not tcp");
        };
        assert_eq!(missing, 0);
        let s = parse_tcp(src, dst, transport, missing).unwrap();
        assert_eq!(s.payload, b"hello");
        assert_eq!(s.seq, 1000);
        assert_eq!(s.ack, 77);
        assert!(s.flags.ack && !s.flags.syn);
        assert_eq!(s.dst.port(), 9042);
    }

    #[test]
    fn truncated_segment_reports_missing_bytes() {
        let p = tcp_v4(&[7u8; 100]);
        let cut = &p[..p.len() - 30];
        let IpPacket::Tcp {
            src,
            dst,
            transport,
            missing,
        } = parse_ip(cut)
        else {
            panic!("not tcp");
        };
        assert_eq!(missing, 30);
        let s = parse_tcp(src, dst, transport, missing).unwrap();
        assert_eq!(s.payload.len(), 70);
        // Cut inside the TCP header: no segment.
        let IpPacket::Tcp {
            src,
            dst,
            transport,
            missing,
        } = parse_ip(&p[..30])
        else {
            panic!("not tcp");
        };
        assert!(parse_tcp(src, dst, transport, missing).is_none());
    }

    #[test]
    fn garbage_is_malformed_or_not_tcp() {
        assert!(matches!(parse_ip(&[]), IpPacket::Malformed));
        assert!(matches!(parse_ip(&[0x45, 0, 0]), IpPacket::Malformed));
        let mut udp = Vec::new();
        PacketBuilder::ipv6([1; 16], [2; 16], 5)
            .udp(1, 2)
            .write(&mut udp, b"x")
            .unwrap();
        assert!(matches!(parse_ip(&udp), IpPacket::NotTcp));
    }
}
