//! The MP_CAPABLE SYN probe, built the zmap and masscan way: a frame template per address family
//! and MP_CAPABLE version is written once, then per target only the fields that differ are
//! patched in place (destination, ports, sequence number, TSval, v0 key) and the checksums are
//! finished from sums precomputed over the constant bytes. No allocation, no full re-sum.
//!
//! The TCP option list is what Linux sends in a SYN, so that the probe looks like a real
//! client's and middleboxes treat it as one:
//!
//! ```text
//! MSS 1460 | SACK-permitted | Timestamps (TSval, TSecr 0) | NOP | Window scale 7 | MP_CAPABLE
//! 02 04 05 b4  04 02  08 0a <tsval> 00 00 00 00  01  03 03 07  1e 04 01 01              (v1)
//!                                                              1e 0c 00 81 <8-byte key> (v0)
//! ```

use crate::sources::Sources;
use crate::wire::{
    checksum, ethernet, ip, ipv4, ipv6, tcp, tcp_option, EthernetFrame, EthernetRepr, FrameRepr, IpRepr, Ipv4Packet,
    Ipv6Packet, L4Repr, MpCapable, TcpFlags, TcpOption, TcpPacket, TcpRepr,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The MP_CAPABLE version a probe carries (the result schema's `probe` column).
pub use mpscan_schema::ProbeVersion;

/// The MP_CAPABLE option of a probe of each version: what the probe puts on the wire, kept
/// beside the probe (the schema crate knows versions, not wire formats).
pub trait SynOption {
    /// The MP_CAPABLE option this probe carries.
    fn syn_option(self, key: u64) -> MpCapable;
}

impl SynOption for ProbeVersion {
    fn syn_option(self, key: u64) -> MpCapable {
        match self {
            ProbeVersion::V0 => MpCapable::v0_syn(key),
            ProbeVersion::V1 => MpCapable::v1_syn(),
        }
    }
}

/// The per-probe values of one probe, which [`crate::keyed_hash::Validator::tag`] derives
/// from (source, target, port, version). Defined here, where they are written into frames, so
/// that the probe does not depend on the hash (the hash depends on the probe's version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTag {
    /// Our initial sequence number.
    pub seq: u32,
    /// Our source port.
    pub sport: u16,
    /// Our TSval.
    pub tsval: u32,
    /// Our v0 MP_CAPABLE key.
    pub key: u64,
}

/// MSS announced in the probe.
pub const MSS: u16 = 1460;
/// Window-scale shift announced in the probe.
pub const WSCALE: u8 = 7;
/// Receive window of the probe (Linux's initial SYN window).
pub const WINDOW: u16 = 64240;
/// TTL / hop limit of the probe.
pub const TTL: u8 = 64;
/// Longest probe frame: Ethernet + IPv6 + TCP with the v0 option list.
pub const MAX_FRAME_LEN: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN + tcp::HEADER_LEN + 32;
/// Offset of TSval inside the option list.
const TSVAL_AT: usize = 8;
/// Offset of the v0 key inside the option list.
const KEY_AT: usize = 24;

/// Writes the probe's TCP option list for `version` and `tag` into `buf` (40 bytes suffice) and
/// returns its length (24 for v1, 32 for v0). The classifier calls this too, to know byte for
/// byte what a probe carried without having stored it.
pub fn write_options(buf: &mut [u8], version: ProbeVersion, tag: &ProbeTag) -> usize {
    let opts = [
        TcpOption::MaxSegmentSize(MSS),
        TcpOption::SackPermitted,
        TcpOption::Timestamps { tsval: tag.tsval, tsecr: 0 },
        TcpOption::NoOperation,
        TcpOption::WindowScale(WSCALE),
        TcpOption::MpCapable(version.syn_option(tag.key)),
    ];
    tcp_option::emit_all(&opts, buf)
}

/// The probe's option bytes as an owned array and length.
pub fn options_of(version: ProbeVersion, tag: &ProbeTag) -> ([u8; 40], usize) {
    let mut b = [0u8; 40];
    let n = write_options(&mut b, version, tag);
    (b, n)
}

/// Where the addresses and the layer-4 header start in a frame of this family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

/// One pre-built probe frame and the sums of its constant bytes.
#[derive(Debug, Clone)]
struct Template {
    frame: [u8; MAX_FRAME_LEN],
    len: usize,
    family: Family,
    version: ProbeVersion,
    /// Offset of the TCP header.
    l4: usize,
    /// One's-complement sum of the IPv4 header with destination and ident zero (IPv4 only).
    ip_sum: u32,
    /// Sum of the pseudo-header and TCP segment with the per-target fields zero.
    tcp_sum: u32,
    /// [`Template::ip_sum`] without the template's source address: a probe from another source
    /// adds that source's [`Source::sum`] instead.
    ip_sum_bare: u32,
    /// [`Template::tcp_sum`] without the template's source address.
    tcp_sum_bare: u32,
}

/// One source address of a scan with several (`-S`), as a probe from it patches the template:
/// its bytes, and the sum of its 16-bit words, which replaces the template source's in both
/// checksums (precomputed once, so a probe from any source costs one copy and two additions).
#[derive(Debug, Clone, Copy)]
struct Source<const N: usize> {
    bytes: [u8; N],
    sum: u32,
}

impl<const N: usize> Source<N> {
    fn new(bytes: [u8; N]) -> Self {
        Source { bytes, sum: checksum::sum(0, &bytes) }
    }
}

/// The link and source the probes are sent from.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    /// Our MAC.
    pub src_mac: [u8; 6],
    /// The next hop's MAC.
    pub dst_mac: [u8; 6],
    /// Our IPv4 source address, if the scan has IPv4 targets: with several (`-S`), the first,
    /// the key source (`crate::sources`).
    pub src_v4: Option<Ipv4Addr>,
    /// Our IPv6 source address, if the scan has IPv6 targets (the first of several).
    pub src_v6: Option<Ipv6Addr>,
}

/// Builds probe frames: the templates for every (family, version) the scan needs, from the
/// key source of each family, and the other sources' patches.
#[derive(Debug, Clone)]
pub struct ProbeBuilder {
    templates: Vec<Template>,
    /// Index in `templates` of the IPv4 template of each version (`ProbeVersion as usize`): the
    /// send loop's lookup, without a search.
    v4: [Option<usize>; 2],
    /// Every IPv4 source, in index order (the first is the templates').
    src4: Vec<Source<4>>,
    /// Every IPv6 source, in index order.
    src6: Vec<Source<16>>,
}

impl ProbeBuilder {
    /// Prepares the templates (the constant part of every probe) for the given link and versions,
    /// with the link's one source per family.
    pub fn new(link: &Link, versions: &[ProbeVersion]) -> ProbeBuilder {
        ProbeBuilder::with_sources(link, &Sources::one(link.src_v4, link.src_v6), versions)
    }

    /// Prepares the templates for the link's MACs, the versions and every source of `sources`
    /// (the templates carry each family's first source; [`ProbeBuilder::write_from`] patches in
    /// the others).
    pub fn with_sources(link: &Link, sources: &Sources, versions: &[ProbeVersion]) -> ProbeBuilder {
        let mut templates = Vec::new();
        for &v in versions {
            if let Some(&src) = sources.v4.first() {
                templates.push(Template::new(link, src.into(), v));
            }
            if let Some(&src) = sources.v6.first() {
                templates.push(Template::new(link, src.into(), v));
            }
        }
        let mut v4 = [None; 2];
        for (i, t) in templates.iter().enumerate() {
            if t.family == Family::V4 {
                v4[t.version as usize] = Some(i);
            }
        }
        let src4 = sources.v4.iter().map(|a| Source::new(a.octets())).collect();
        let src6 = sources.v6.iter().map(|a| Source::new(a.octets())).collect();
        ProbeBuilder { templates, v4, src4, src6 }
    }

    /// How many sources the family has (the `n` of `crate::keyed_hash::source_index`).
    #[inline]
    pub fn source_count(&self, ipv4: bool) -> usize {
        if ipv4 {
            self.src4.len()
        } else {
            self.src6.len()
        }
    }

    /// Sends the IPv6 probes to `mac` instead of the link's next hop: for a scan of both families
    /// whose IPv4 and IPv6 default routers are different machines on the same link.
    pub fn set_v6_next_hop(&mut self, mac: [u8; 6]) {
        for t in self.templates.iter_mut().filter(|t| t.family == Family::V6) {
            EthernetFrame::new_unchecked(&mut t.frame[..]).set_dst(mac);
        }
    }

    /// [`ProbeBuilder::write`] for an IPv4 target: the send loop's hot path. Returns 0 if the
    /// scan has no IPv4 source.
    #[inline]
    pub fn write_v4(&self, buf: &mut [u8], dst: Ipv4Addr, port: u16, version: ProbeVersion, tag: &ProbeTag) -> usize {
        match self.v4[version as usize] {
            Some(i) => self.templates[i].write(buf, IpAddr::V4(dst), port, tag),
            None => 0,
        }
    }

    /// [`ProbeBuilder::write_v4`] from IPv4 source `source` (an index below
    /// [`ProbeBuilder::source_count`]): the send loop's path with several sources (inlined
    /// there: as a call it cost about 15 instructions per probe of register saves).
    #[inline(always)]
    pub fn write_v4_from(
        &self,
        buf: &mut [u8],
        source: usize,
        dst: Ipv4Addr,
        port: u16,
        version: ProbeVersion,
        tag: &ProbeTag,
    ) -> usize {
        match (self.v4[version as usize], self.src4.get(source)) {
            (Some(i), Some(s)) => self.templates[i].write_from(buf, &s.bytes, s.sum, IpAddr::V4(dst), port, tag),
            _ => 0,
        }
    }

    /// [`ProbeBuilder::write`] from source `source` of `dst`'s family (an index below
    /// [`ProbeBuilder::source_count`]); 0 if there is no such source.
    pub fn write_from(
        &self,
        buf: &mut [u8],
        source: usize,
        dst: IpAddr,
        port: u16,
        version: ProbeVersion,
        tag: &ProbeTag,
    ) -> usize {
        let family = if dst.is_ipv4() { Family::V4 } else { Family::V6 };
        let Some(t) = self.templates.iter().find(|t| t.family == family && t.version == version) else { return 0 };
        match dst {
            IpAddr::V4(_) => self.src4.get(source).map_or(0, |s| t.write_from(buf, &s.bytes, s.sum, dst, port, tag)),
            IpAddr::V6(_) => self.src6.get(source).map_or(0, |s| t.write_from(buf, &s.bytes, s.sum, dst, port, tag)),
        }
    }

    /// Writes the probe for `dst:port` with `version` and `tag` into `buf` (at least
    /// [`MAX_FRAME_LEN`] bytes) and returns the frame length, or 0 if the scan has no source
    /// address of `dst`'s family.
    #[inline]
    pub fn write(&self, buf: &mut [u8], dst: IpAddr, port: u16, version: ProbeVersion, tag: &ProbeTag) -> usize {
        let family = if dst.is_ipv4() { Family::V4 } else { Family::V6 };
        match self.templates.iter().find(|t| t.family == family && t.version == version) {
            Some(t) => t.write(buf, dst, port, tag),
            None => 0,
        }
    }
}

impl Template {
    /// Writes the constant part of every probe of `version` from `src` with the wire layer's
    /// `Repr`s (destination, ports, sequence number, TSval and key zero), then zeroes the
    /// checksums and keeps the sums of the constant bytes, which [`Template::write`] finishes
    /// per target.
    fn new(link: &Link, src: IpAddr, version: ProbeVersion) -> Template {
        let (opts, opts_len) = options_of(version, &ZERO_TAG);
        let tcp = TcpRepr {
            src_port: 0,
            dst_port: 0,
            seq: 0,
            ack: 0,
            flags: TcpFlags(TcpFlags::SYN),
            window: WINDOW,
            options: &opts[..opts_len],
            payload: &[],
        };
        let unspecified: IpAddr = match src {
            IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
            IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
        };
        let mut ip = IpRepr::new(src, unspecified, ipv4::protocol::TCP, tcp.buffer_len(), TTL);
        if let IpRepr::V4(v4) = &mut ip {
            v4.dont_frag = true;
        }
        let ethernet = EthernetRepr { src: link.src_mac, dst: link.dst_mac, ethertype: ip.ethertype() };
        let mut frame = [0u8; MAX_FRAME_LEN];
        let len = FrameRepr { ethernet, ip, l4: L4Repr::Tcp(tcp) }.emit(&mut frame);
        let l4 = ip::l4_offset(&ip);
        let (family, ip_sum) = match ip {
            IpRepr::V4(_) => {
                let mut p = Ipv4Packet::new_unchecked(&mut frame[ethernet::HEADER_LEN..l4]);
                p.set_checksum(0);
                (Family::V4, checksum::sum(0, &frame[ethernet::HEADER_LEN..l4]))
            }
            IpRepr::V6(_) => (Family::V6, 0),
        };
        TcpPacket::new_unchecked(&mut frame[l4..len]).set_checksum(0);
        let pseudo = checksum::pseudo_header(src, unspecified, ipv4::protocol::TCP, len - l4);
        let tcp_sum = checksum::sum(pseudo, &frame[l4..len]);
        // The sums hold the source's words exactly once, unfolded (they are far from u32's
        // limit), so taking them out is a plain subtraction.
        let src_sum = match src {
            IpAddr::V4(a) => checksum::sum(0, &a.octets()),
            IpAddr::V6(a) => checksum::sum(0, &a.octets()),
        };
        let ip_sum_bare = if family == Family::V4 { ip_sum - src_sum } else { 0 };
        let tcp_sum_bare = tcp_sum - src_sum;
        Template { frame, len, family, version, l4, ip_sum, tcp_sum, ip_sum_bare, tcp_sum_bare }
    }

    /// Writes the probe from the template's own source.
    #[inline]
    fn write(&self, buf: &mut [u8], dst: IpAddr, port: u16, tag: &ProbeTag) -> usize {
        self.write_as::<false>(buf, &[], 0, dst, port, tag)
    }

    /// Writes the probe from the source whose address is `src` (4 or 16 bytes, the template's
    /// family) and whose words sum to `src_sum`.
    #[inline]
    fn write_from(&self, buf: &mut [u8], src: &[u8], src_sum: u32, dst: IpAddr, port: u16, tag: &ProbeTag) -> usize {
        self.write_as::<true>(buf, src, src_sum, dst, port, tag)
    }

    /// The one body of [`Template::write`] (`OTHER_SOURCE` false: the source and sums of the
    /// template) and [`Template::write_from`] (true: `src` patched in, its sum added to the
    /// template's bare sums), so that the single-source path is exactly what it was.
    #[inline(always)]
    fn write_as<const OTHER_SOURCE: bool>(
        &self,
        buf: &mut [u8],
        src: &[u8],
        src_sum: u32,
        dst: IpAddr,
        port: u16,
        tag: &ProbeTag,
    ) -> usize {
        let len = self.len;
        // Copy the whole fixed-size template (a constant-length copy the compiler inlines as a
        // few vector moves, where a copy of `len` bytes is a call to memcpy); the bytes past
        // `len` are not part of the frame.
        buf[..MAX_FRAME_LEN].copy_from_slice(&self.frame);
        let frame = &mut buf[..len];
        let l3 = ethernet::HEADER_LEN;
        // Sum of the per-target words of the pseudo-header and segment.
        let (mut sum, ip_sum) = if OTHER_SOURCE {
            (self.tcp_sum_bare + src_sum, self.ip_sum_bare + src_sum)
        } else {
            (self.tcp_sum, self.ip_sum)
        };
        match dst {
            IpAddr::V4(d) => {
                let ident = (tag.seq >> 16) as u16;
                let mut ip = Ipv4Packet::new_unchecked(&mut frame[l3..self.l4]);
                if OTHER_SOURCE {
                    ip.set_src_addr(Ipv4Addr::new(src[0], src[1], src[2], src[3]));
                }
                ip.set_dst_addr(d);
                ip.set_ident(ident);
                let o = d.octets();
                let dst_sum = u16::from_be_bytes([o[0], o[1]]) as u32 + u16::from_be_bytes([o[2], o[3]]) as u32;
                ip.set_checksum(checksum::finish(ip_sum + dst_sum + ident as u32));
                sum += dst_sum;
            }
            IpAddr::V6(d) => {
                let mut ip = Ipv6Packet::new_unchecked(&mut frame[l3..]);
                if OTHER_SOURCE {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(&src[..16]);
                    ip.set_src_addr(Ipv6Addr::from(a));
                }
                ip.set_dst_addr(d);
                sum = checksum::sum(sum, &d.octets());
            }
        }
        let mut t = TcpPacket::new_unchecked(&mut frame[self.l4..]);
        t.set_src_port(tag.sport);
        t.set_dst_port(port);
        t.set_seq(tag.seq);
        let opts = t.options_mut();
        opts[TSVAL_AT..TSVAL_AT + 4].copy_from_slice(&tag.tsval.to_be_bytes());
        sum += tag.sport as u32 + port as u32 + (tag.seq >> 16) + (tag.seq & 0xffff);
        sum += (tag.tsval >> 16) + (tag.tsval & 0xffff);
        if self.version == ProbeVersion::V0 {
            opts[KEY_AT..KEY_AT + 8].copy_from_slice(&tag.key.to_be_bytes());
            let k = tag.key;
            sum += ((k >> 48) & 0xffff) as u32
                + ((k >> 32) & 0xffff) as u32
                + ((k >> 16) & 0xffff) as u32
                + (k & 0xffff) as u32;
        }
        t.set_checksum(checksum::finish(sum));
        len
    }
}

const ZERO_TAG: ProbeTag = ProbeTag { seq: 0, sport: 0, tsval: 0, key: 0 };

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyed_hash::Validator;

    fn link() -> Link {
        Link {
            src_mac: [0x02, 0, 0, 0, 0, 0x02],
            dst_mac: [0x02, 0, 0, 0, 0, 0x01],
            src_v4: Some(Ipv4Addr::new(192, 0, 2, 2)),
            src_v6: Some("2001:db8::2".parse().unwrap()),
        }
    }

    const TAG: ProbeTag = ProbeTag { seq: 0x1234_5678, sport: 40000, tsval: 0x0a0b_0c0d, key: 0x0102_0304_0506_0708 };

    /// The exact v1 probe for 198.18.0.1:443 with TAG. Checksums verified independently by
    /// tshark (tests/lab_probe_tshark.rs decodes the same kind of frame).
    #[rustfmt::skip]
    static V1_FRAME: [u8; 78] = [
        0x02, 0, 0, 0, 0, 0x01,  0x02, 0, 0, 0, 0, 0x02,  0x08, 0x00,
        0x45, 0x00, 0x00, 0x40,  0x12, 0x34, 0x40, 0x00,  0x40, 0x06, 0x00, 0x00,  // checksum patched below
        0xc0, 0x00, 0x02, 0x02,  0xc6, 0x12, 0x00, 0x01,
        0x9c, 0x40, 0x01, 0xbb,  0x12, 0x34, 0x56, 0x78,  0, 0, 0, 0,
        0xb0, 0x02, 0xfa, 0xf0,  0x00, 0x00, 0x00, 0x00,                          // checksum patched below
        0x02, 0x04, 0x05, 0xb4,  0x04, 0x02,  0x08, 0x0a, 0x0a, 0x0b, 0x0c, 0x0d, 0, 0, 0, 0,
        0x01,  0x03, 0x03, 0x07,  0x1e, 0x04, 0x01, 0x01,
    ];

    fn reference(mut f: Vec<u8>) -> Vec<u8> {
        let (src, dst) = (Ipv4Addr::new(192, 0, 2, 2), Ipv4Addr::new(198, 18, 0, 1));
        Ipv4Packet::new_unchecked(&mut f[14..34]).fill_checksum();
        TcpPacket::new_unchecked(&mut f[34..]).fill_checksum_v4(src, dst);
        f
    }

    #[test]
    fn ipv6_probes_can_go_to_their_own_router() {
        let mut b = ProbeBuilder::new(&link(), &[ProbeVersion::V1, ProbeVersion::V0]);
        b.set_v6_next_hop([0x02, 0, 0, 0, 0, 0x66]);
        let mut buf = [0u8; MAX_FRAME_LEN];
        for v in [ProbeVersion::V1, ProbeVersion::V0] {
            let n = b.write(&mut buf, "2001:db8:1::1".parse().unwrap(), 443, v, &TAG);
            assert!(n > 0);
            assert_eq!(buf[..6], [0x02, 0, 0, 0, 0, 0x66], "IPv6 {v:?}");
            assert_eq!(buf[6..12], link().src_mac);
            let n = b.write_v4(&mut buf, Ipv4Addr::new(198, 18, 0, 1), 443, v, &TAG);
            assert!(n > 0);
            assert_eq!(buf[..6], link().dst_mac, "IPv4 {v:?} keeps the link's next hop");
        }
    }

    #[test]
    fn v1_probe_is_byte_exact() {
        let b = ProbeBuilder::new(&link(), &[ProbeVersion::V1]);
        let mut buf = [0u8; MAX_FRAME_LEN];
        let n = b.write(&mut buf, "198.18.0.1".parse().unwrap(), 443, ProbeVersion::V1, &TAG);
        assert_eq!(n, 78);
        assert_eq!(buf[..n].to_vec(), reference(V1_FRAME.to_vec()));
    }

    #[test]
    fn v0_probe_carries_the_key_and_right_checksums() {
        let b = ProbeBuilder::new(&link(), &[ProbeVersion::V0]);
        let mut buf = [0u8; MAX_FRAME_LEN];
        let n = b.write(&mut buf, "198.18.0.1".parse().unwrap(), 443, ProbeVersion::V0, &TAG);
        assert_eq!(n, 86);
        let mut expect = V1_FRAME[..74].to_vec();
        expect[17] = 0x48; // total length 72
        expect[46] = 0xd0; // data offset 13
        expect.extend_from_slice(&[0x1e, 0x0c, 0x00, 0x81, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(buf[..n].to_vec(), reference(expect));
    }

    #[test]
    fn incremental_checksums_match_full_ones_for_many_targets() {
        let b = ProbeBuilder::new(&link(), &[ProbeVersion::V0, ProbeVersion::V1]);
        let v = Validator::from_seed(9);
        let mut buf = [0u8; MAX_FRAME_LEN];
        for i in 0..2000u32 {
            for ver in [ProbeVersion::V0, ProbeVersion::V1] {
                let dst = if i % 2 == 0 {
                    IpAddr::V4(Ipv4Addr::from(0xc612_0000 + i * 7919))
                } else {
                    IpAddr::V6(Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0000u128 + (i as u128) * 104729))
                };
                let port = (i % 65535) as u16 + 1;
                let tag = v.tag(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), dst, port, ver);
                let n = b.write(&mut buf, dst, port, ver, &tag);
                let eth = EthernetFrame::new_checked(&buf[..n]).unwrap();
                match dst {
                    IpAddr::V4(d) => {
                        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
                        assert!(ip.verify_checksum());
                        assert_eq!(ip.dst_addr(), d);
                        let t = TcpPacket::new_checked(ip.payload()).unwrap();
                        assert!(t.verify_checksum_v4(ip.src_addr(), d), "target {d}");
                        assert_eq!((t.src_port(), t.dst_port(), t.seq()), (tag.sport, port, tag.seq));
                        assert_eq!(t.options(), &options_of(ver, &tag).0[..options_of(ver, &tag).1]);
                    }
                    IpAddr::V6(d) => {
                        let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
                        assert_eq!(ip.dst_addr(), d);
                        let t = TcpPacket::new_checked(ip.payload()).unwrap();
                        assert!(t.verify_checksum_v6(ip.src_addr(), d), "target {d}");
                    }
                }
            }
        }
    }

    /// A probe from any source of several carries that source and right checksums (the
    /// per-source sums replace the template source's), and from the first source it is the
    /// template's probe byte for byte.
    #[test]
    fn every_source_gets_its_address_and_right_checksums() {
        let sources = crate::sources::Sources {
            v4: (0..5).map(|i| Ipv4Addr::new(192, 0, 2, 2 + 37 * i)).collect(),
            v6: (0..3).map(|i| Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_fff0u128 + i * 0x1_0001)).collect(),
        };
        let versions = [ProbeVersion::V0, ProbeVersion::V1];
        let b = ProbeBuilder::with_sources(&link(), &sources, &versions);
        assert_eq!((b.source_count(true), b.source_count(false)), (5, 3));
        let v = Validator::from_seed(3);
        let mut buf = [0u8; MAX_FRAME_LEN];
        let mut first = [0u8; MAX_FRAME_LEN];
        for i in 0..300u32 {
            for ver in versions {
                let d4 = Ipv4Addr::from(0xc612_0000 + i * 7919);
                let tag = v.tag(sources.v4[0].into(), d4.into(), 443, ver);
                for (k, s) in sources.v4.iter().enumerate() {
                    let n = b.write_v4_from(&mut buf, k, d4, 443, ver, &tag);
                    let ip = Ipv4Packet::new_checked(&buf[14..n]).unwrap();
                    assert_eq!(ip.src_addr(), *s);
                    assert!(ip.verify_checksum());
                    assert!(TcpPacket::new_checked(ip.payload()).unwrap().verify_checksum_v4(*s, d4));
                    assert_eq!(n, b.write_from(&mut first, k, d4.into(), 443, ver, &tag));
                    assert_eq!(buf[..n], first[..n]);
                }
                let n = b.write_v4(&mut first, d4, 443, ver, &tag);
                b.write_v4_from(&mut buf, 0, d4, 443, ver, &tag);
                assert_eq!(buf[..n], first[..n], "source 0 is the template's");
                let d6 = Ipv6Addr::from(0x2001_0db8_0001_0000_0000_0000_0000_0000u128 + i as u128 * 104729);
                for (k, s) in sources.v6.iter().enumerate() {
                    let n = b.write_from(&mut buf, k, d6.into(), 443, ver, &tag);
                    let ip = Ipv6Packet::new_checked(&buf[14..n]).unwrap();
                    assert_eq!(ip.src_addr(), *s);
                    assert!(TcpPacket::new_checked(ip.payload()).unwrap().verify_checksum_v6(*s, d6));
                }
                assert_eq!(b.write_from(&mut buf, 3, d6.into(), 443, ver, &tag), 0, "no fourth IPv6 source");
            }
        }
    }

    #[test]
    fn no_template_for_a_family_without_source() {
        let mut l = link();
        l.src_v6 = None;
        let b = ProbeBuilder::new(&l, &[ProbeVersion::V1]);
        let mut buf = [0u8; MAX_FRAME_LEN];
        assert_eq!(b.write(&mut buf, "2001:db8::1".parse().unwrap(), 443, ProbeVersion::V1, &TAG), 0);
    }
}
