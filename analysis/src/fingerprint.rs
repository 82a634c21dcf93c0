//! Middlebox fingerprints: what an echoing responder looks like on the wire, reduced to a key that
//! boxes of one make and configuration share (p0f-style): the initial TTL it most likely used, its
//! TCP window, the layout of its TCP options (kinds in order, MPTCP with its length), and whether it
//! mirrored the whole option list and our timestamp.

use mpscan_schema::row_ref::hex_val;
use std::fmt;

/// Fingerprint of one answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint {
    /// Initial TTL guess: the smallest of 32, 64, 128, 255 at or above the observed TTL.
    pub ttl_bucket: u8,
    /// TCP window of the answer.
    pub window: u16,
    /// Option layout, see [`layout`].
    pub layout: String,
    /// Whole option list came back byte-identical.
    pub mirrored: bool,
    /// Our TSval came back as TSval.
    pub ts_echoed: bool,
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ttl<={} win={} opts={} mirrored={} ts_echoed={}",
            self.ttl_bucket, self.window, self.layout, self.mirrored, self.ts_echoed
        )
    }
}

/// Initial TTL guess for an observed TTL.
pub fn ttl_bucket(ttl: u8) -> u8 {
    match ttl {
        0..=32 => 32,
        33..=64 => 64,
        65..=128 => 128,
        _ => 255,
    }
}

/// Option layout of a hex option list: kinds in order, comma-separated, named as p0f does
/// (`mss`, `sok` SACK permitted, `sack`, `ts`, `nop`, `ws`, `eol`), MPTCP as `mp<length>`
/// (`mp4` is a v1 SYN's option, `mp12` a key-carrying one) and others as `k<kind>`. An option that
/// runs past the end is shown as `trunc`. Errors only on text that is not hex.
pub fn layout(hex: &[u8]) -> Result<String, String> {
    if !hex.len().is_multiple_of(2) {
        return Err(format!("options hex has odd length {}", hex.len()));
    }
    let mut bytes = Vec::with_capacity(hex.len() / 2);
    for pair in hex.chunks_exact(2) {
        match (hex_val(pair[0]), hex_val(pair[1])) {
            (Some(h), Some(l)) => bytes.push(h << 4 | l),
            _ => return Err(format!("options is not hex: {:?}", String::from_utf8_lossy(pair))),
        }
    }
    let mut out: Vec<String> = vec![];
    let mut i = 0;
    while i < bytes.len() {
        let kind = bytes[i];
        match kind {
            0 => {
                out.push("eol".into());
                break;
            }
            1 => {
                out.push("nop".into());
                i += 1;
                continue;
            }
            _ => {}
        }
        let Some(&len) = bytes.get(i + 1) else {
            out.push("trunc".into());
            break;
        };
        // A length under 2 would loop forever (an old tool's bug); a length past the end is cut off.
        if len < 2 || i + len as usize > bytes.len() {
            out.push("trunc".into());
            break;
        }
        out.push(match kind {
            2 => "mss".into(),
            3 => "ws".into(),
            4 => "sok".into(),
            5 => "sack".into(),
            8 => "ts".into(),
            30 => format!("mp{len}"),
            k => format!("k{k}"),
        });
        i += len as usize;
    }
    Ok(if out.is_empty() { "none".into() } else { out.join(",") })
}

impl Fingerprint {
    /// Fingerprint of an answer from its wire-visible fields.
    pub fn of(
        ttl: u8,
        window: u16,
        options_hex: &[u8],
        mirrored: bool,
        ts_echoed: bool,
    ) -> Result<Fingerprint, String> {
        Ok(Fingerprint { ttl_bucket: ttl_bucket(ttl), window, layout: layout(options_hex)?, mirrored, ts_echoed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        // Linux SYN-ACK to a v1 probe: mss, sackOK, ts, nop, ws, MP_CAPABLE 12 bytes.
        let linux = b"020405b40402080a0000000100000002010303071e0c0101aabbccddeeff0011";
        assert_eq!(layout(linux).unwrap(), "mss,sok,ts,nop,ws,mp12");
        assert_eq!(layout(b"020405b41e040101").unwrap(), "mss,mp4");
        assert_eq!(layout(b"").unwrap(), "none");
        assert_eq!(layout(b"0101000000").unwrap(), "nop,nop,eol");
        assert_eq!(layout(b"2203aabb").unwrap(), "k34,trunc");
        assert_eq!(layout(b"0200").unwrap(), "trunc");
        assert_eq!(layout(b"02").unwrap(), "trunc");
        assert!(layout(b"0g").unwrap_err().contains("not hex"));
        assert!(layout(b"020").unwrap_err().contains("odd"));
    }

    #[test]
    fn ttl_buckets() {
        assert_eq!(
            [
                ttl_bucket(1),
                ttl_bucket(32),
                ttl_bucket(33),
                ttl_bucket(64),
                ttl_bucket(65),
                ttl_bucket(128),
                ttl_bucket(129),
                ttl_bucket(255)
            ],
            [32, 32, 64, 64, 128, 128, 255, 255]
        );
    }
}
