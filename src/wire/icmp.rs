//! ICMP (RFC 792) and ICMPv6 (RFC 4443) error messages: the common 8-byte header and the quoted
//! original datagram.
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! |             unused (or next-hop MTU, or pointer)              |
//! |      Internet Header + 64 bits of Original Data Datagram      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Both versions share this layout for destination-unreachable errors, so one view serves both;
//! the caller knows which it is from the IP layer.

use super::{checksum, need, Result};

mod field {
    use std::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST: Range<usize> = 4..8;
    pub const QUOTE: usize = 8;
}

/// Length of the ICMP header before the quoted datagram.
pub const HEADER_LEN: usize = field::QUOTE;

/// ICMPv4 destination unreachable.
pub const V4_DEST_UNREACHABLE: u8 = 3;
/// ICMPv6 destination unreachable.
pub const V6_DEST_UNREACHABLE: u8 = 1;
/// ICMPv4 echo request (used by tests and the lab).
pub const V4_ECHO_REQUEST: u8 = 8;

/// A view of an ICMP or ICMPv6 message.
#[derive(Debug, Clone, Copy)]
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    /// Wraps a buffer without checks (for emitting).
    pub fn new_unchecked(buffer: T) -> Self {
        IcmpPacket { buffer }
    }

    /// Wraps a received message: the 8-byte header must be there.
    pub fn new_checked(buffer: T) -> Result<Self> {
        need("icmp header", HEADER_LEN, buffer.as_ref().len())?;
        Ok(IcmpPacket { buffer })
    }

    /// Message type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Message code.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes(self.buffer.as_ref()[field::CHECKSUM].try_into().unwrap())
    }

    /// The four bytes after the checksum.
    pub fn rest_of_header(&self) -> [u8; 4] {
        self.buffer.as_ref()[field::REST].try_into().unwrap()
    }

    /// The quoted datagram (for error messages) or the echo data.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::QUOTE..]
    }

    /// Whether an ICMPv4 checksum is right (ICMPv6 includes a pseudo-header; not checked here).
    pub fn verify_checksum_v4(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
    }
}

impl<'a> IcmpPacket<&'a [u8]> {
    /// The quoted datagram, borrowed for as long as the underlying buffer (not the view).
    pub fn into_payload(self) -> &'a [u8] {
        &self.buffer[field::QUOTE..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    /// Sets type and code.
    pub fn set_type_code(&mut self, t: u8, c: u8) {
        let b = self.buffer.as_mut();
        b[field::TYPE] = t;
        b[field::CODE] = c;
    }

    /// Sets the four bytes after the checksum.
    pub fn set_rest_of_header(&mut self, r: [u8; 4]) {
        self.buffer.as_mut()[field::REST].copy_from_slice(&r);
    }

    /// The bytes after the header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::QUOTE..]
    }

    /// Computes and stores the ICMPv4 checksum over the whole buffer.
    pub fn fill_checksum_v4(&mut self) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(self.buffer.as_ref());
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn construct_then_deconstruct() {
        let mut buf = [0u8; 12];
        let mut p = IcmpPacket::new_unchecked(&mut buf[..]);
        p.set_type_code(V4_DEST_UNREACHABLE, 13); // communication administratively prohibited
        p.payload_mut().copy_from_slice(&[0x45, 0, 0, 0x3c]);
        p.fill_checksum_v4();
        let p = IcmpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!((p.msg_type(), p.code()), (3, 13));
        assert_eq!(p.payload(), &[0x45, 0, 0, 0x3c]);
        assert!(p.verify_checksum_v4());
        // 030d + 4500 + 003c = 4849, complemented b7b6.
        assert_eq!(&buf[..4], &[3, 13, 0xb7, 0xb6]);
    }

    #[test]
    fn truncated() {
        assert!(IcmpPacket::new_checked(&[3u8, 1, 0, 0, 0, 0, 0][..]).is_err());
    }
}
