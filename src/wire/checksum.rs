//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Probes are built from a template whose checksums are computed once; per target only a few
//! 16-bit words change (addresses, ports, sequence number, key, timestamp), so the sender patches
//! the checksum with [`update`] instead of summing the whole header again.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Adds `data` to a running one's-complement sum (not yet folded). Odd lengths are padded with
/// a zero byte, as the RFC says.
pub fn sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc = acc.wrapping_add(u16::from_be_bytes([c[0], c[1]]) as u32);
        // Fold early enough that a 64 KiB packet cannot overflow.
        if acc >= 0xffff_0000 {
            acc = (acc & 0xffff) + (acc >> 16);
        }
    }
    if let [last] = chunks.remainder() {
        acc = acc.wrapping_add((*last as u32) << 8);
    }
    acc
}

/// Folds a running sum to 16 bits and complements it: the value to store in a header.
pub fn finish(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The checksum of `data` alone.
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(0, data))
}

/// The sum of the IPv4 pseudo-header (RFC 793 §3.1) for a transport segment of `len` bytes.
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16) -> u32 {
    let mut acc = sum(0, &src.octets());
    acc = sum(acc, &dst.octets());
    acc + protocol as u32 + len as u32
}

/// The sum of the IPv6 pseudo-header (RFC 8200 §8.1) for an upper-layer packet of `len` bytes.
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: u32) -> u32 {
    let mut acc = sum(0, &src.octets());
    acc = sum(acc, &dst.octets());
    acc = acc.wrapping_add(len >> 16).wrapping_add(len & 0xffff);
    acc + next_header as u32
}

/// Sum of the pseudo-header of either family: `src` and `dst` must be of the same family (a
/// caller building a packet chooses both; mixing them is a bug, and panics).
pub fn pseudo_header(src: std::net::IpAddr, dst: std::net::IpAddr, protocol: u8, len: usize) -> u32 {
    use std::net::IpAddr::{V4, V6};
    match (src, dst) {
        (V4(s), V4(d)) => pseudo_header_v4(s, d, protocol, len as u16),
        (V6(s), V6(d)) => pseudo_header_v6(s, d, protocol, len as u32),
        _ => panic!("pseudo-header of mixed address families: {src} -> {dst}"),
    }
}

/// RFC 1624 eqn. 3: the new checksum after a 16-bit word of the covered data changed from `old`
/// to `new`. `HC' = ~(~HC + ~m + m')`.
#[inline]
pub fn update(check: u16, old: u16, new: u16) -> u16 {
    let mut acc = (!check as u32) + (!old as u32) + new as u32;
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    !(acc as u16)
}

/// [`update`] for a 32-bit field (two words).
#[inline]
pub fn update32(check: u16, old: u32, new: u32) -> u16 {
    let c = update(check, (old >> 16) as u16, (new >> 16) as u16);
    update(c, old as u16, new as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 1071 §3 worked example: the words 0001 f203 f4f5 f6f7 sum to ddf2 (folded).
    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(finish(sum(0, &data)), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(checksum(&[0xab]), checksum(&[0xab, 0x00]));
    }

    #[test]
    fn incremental_update_matches_full_recompute() {
        let mut data: Vec<u8> = (0..40u8).map(|b| b.wrapping_mul(37)).collect();
        let before = checksum(&data);
        let old = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
        let new: u32 = 0xdead_beef;
        data[8..12].copy_from_slice(&new.to_be_bytes());
        assert_eq!(update32(before, old, new), checksum(&data));
    }

    #[test]
    fn checksum_of_data_with_its_checksum_is_zero() {
        let mut data = vec![
            0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0, 0, 0xac, 0x10, 0x0a, 0x63, 0xac, 0x10, 0x0a,
            0x0c,
        ];
        let c = checksum(&data);
        data[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&data), 0);
        // The classic example header's checksum is b1e6.
        assert_eq!(c, 0xb1e6);
    }
}
