//! The application exchange that proves data flows: an HTTP `HEAD /` (port 80) or a TLS
//! ClientHello far enough to get a ServerHello (port 443), and the recognisers of their answers.
//!
//! The ClientHello is built by hand rather than with a TLS library: verify needs only the first
//! record of the server's answer (a handshake record whose first message is ServerHello, type 2),
//! never a finished handshake, so a few hundred bytes of fixed layout do and no dependency is
//! needed. Layout (RFC 8446 section 4.1.2, sent in a TLS 1.0 record header as clients do):
//!
//! ```text
//! record:    16 03 01 <len u16>
//! handshake: 01 <len u24> 03 03 <random 32> <session id len 32, 32 bytes> <suites len u16, suites>
//!            01 00 <extensions len u16> supported_versions, supported_groups, signature_algorithms,
//!            ec_point_formats, key_share (x25519, 32 bytes)
//! ```

use std::net::IpAddr;

/// Which exchange to run after connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AppArg {
    /// By port: 80 and 8080 HTTP, 443 and 8443 TLS, other ports none.
    Auto,
    /// HTTP HEAD / on every port.
    Http,
    /// TLS ClientHello on every port.
    Tls,
    /// Connect only; no data is exchanged.
    None,
}

/// The exchange chosen for one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    /// `HEAD / HTTP/1.1`.
    Http,
    /// A TLS 1.3 ClientHello (also offering 1.2).
    Tls,
    /// No exchange.
    None,
}

impl App {
    /// The exchange `arg` means for `port`.
    pub fn choose(arg: AppArg, port: u16) -> App {
        match arg {
            AppArg::Http => App::Http,
            AppArg::Tls => App::Tls,
            AppArg::None => App::None,
            AppArg::Auto => match port {
                80 | 8080 => App::Http,
                443 | 8443 => App::Tls,
                _ => App::None,
            },
        }
    }

    /// The CSV spelling.
    pub fn label(self) -> &'static str {
        match self {
            App::Http => "http",
            App::Tls => "tls",
            App::None => "none",
        }
    }

    /// The request bytes to send to `ip`; `random` fills the ClientHello's random, session id
    /// and key share (96 bytes).
    pub fn request(self, ip: IpAddr, random: &[u8; 96]) -> Vec<u8> {
        match self {
            App::Http => http_head(ip),
            App::Tls => client_hello(random),
            App::None => Vec::new(),
        }
    }

    /// Reads what has arrived so far: `None` if more bytes are needed to decide.
    pub fn judge(self, got: &[u8]) -> Option<AppResult> {
        match self {
            App::Http => judge_http(got),
            App::Tls => judge_tls(got),
            App::None => Some(AppResult::Ok),
        }
    }
}

/// What the answer to the exchange was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppResult {
    /// The expected answer: an HTTP status line, or a ServerHello.
    Ok,
    /// Something else came back: the string says what.
    Unexpected(String),
}

/// `HEAD / HTTP/1.1` with a Host header of the address (no `Connection: close`, so the server
/// keeps the connection open while the path manager may open subflows).
pub fn http_head(ip: IpAddr) -> Vec<u8> {
    let host = match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    };
    format!(
        "HEAD / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: mpscan-verify/{} (MPTCP research)\r\nAccept: */*\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes()
}

fn judge_http(got: &[u8]) -> Option<AppResult> {
    const PREFIX: &[u8] = b"HTTP/";
    let n = got.len().min(PREFIX.len());
    if got[..n] != PREFIX[..n] {
        return Some(AppResult::Unexpected(format!("not-http:{}", hex_prefix(got))));
    }
    // "HTTP/1.1 200" is enough to call it an HTTP answer.
    if got.len() < 12 {
        return None;
    }
    Some(AppResult::Ok)
}

/// TLS record content types and handshake message types we recognise.
mod tls {
    pub const HANDSHAKE: u8 = 0x16;
    pub const ALERT: u8 = 0x15;
    pub const CLIENT_HELLO: u8 = 1;
    pub const SERVER_HELLO: u8 = 2;
}

fn judge_tls(got: &[u8]) -> Option<AppResult> {
    // Record header (5 bytes) + the first handshake message type (1 byte).
    let &ctype = got.first()?;
    match ctype {
        tls::HANDSHAKE | tls::ALERT if got.len() >= 2 && got[1] != 3 => {
            Some(AppResult::Unexpected(format!("not-tls:{}", hex_prefix(got))))
        }
        tls::HANDSHAKE if got.len() < 6 => None,
        tls::HANDSHAKE if got[5] == tls::SERVER_HELLO => Some(AppResult::Ok),
        tls::HANDSHAKE => Some(AppResult::Unexpected(format!("tls-handshake-type-{}", got[5]))),
        tls::ALERT if got.len() < 7 => None,
        tls::ALERT => Some(AppResult::Unexpected(format!("tls-alert-{}-{}", got[5], got[6]))),
        _ => Some(AppResult::Unexpected(format!("not-tls:{}", hex_prefix(got)))),
    }
}

fn hex_prefix(b: &[u8]) -> String {
    crate::wire::to_hex(&b[..b.len().min(8)])
}

/// Appends a TLS extension: type, length, body.
fn ext(out: &mut Vec<u8>, typ: u16, body: &[u8]) {
    out.extend_from_slice(&typ.to_be_bytes());
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
}

/// A TLS ClientHello record offering TLS 1.3 and 1.2 with common suites and groups, no SNI
/// (verify knows only an address, and SNI may not carry one). `random` gives the 32-byte random,
/// the 32-byte legacy session id and the x25519 key share.
pub fn client_hello(random: &[u8; 96]) -> Vec<u8> {
    const SUITES: [u16; 9] = [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8];
    let mut exts = Vec::new();
    ext(&mut exts, 0x002b, &[4, 0x03, 0x04, 0x03, 0x03]); // supported_versions: 1.3, 1.2
    ext(&mut exts, 0x000a, &[0, 4, 0x00, 0x1d, 0x00, 0x17]); // supported_groups: x25519, secp256r1
    ext(&mut exts, 0x000d, &[0, 10, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x05, 0x03, 0x08, 0x05]); // signature_algorithms
    ext(&mut exts, 0x000b, &[1, 0]); // ec_point_formats: uncompressed
    let mut ks = vec![0, 36, 0x00, 0x1d, 0, 32];
    ks.extend_from_slice(&random[64..96]);
    ext(&mut exts, 0x0033, &ks); // key_share: x25519

    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&random[..32]);
    body.push(32);
    body.extend_from_slice(&random[32..64]);
    body.extend_from_slice(&((SUITES.len() * 2) as u16).to_be_bytes());
    for s in SUITES {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);

    let mut hs = vec![tls::CLIENT_HELLO];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![tls::HANDSHAKE, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_by_port() {
        assert_eq!(App::choose(AppArg::Auto, 80), App::Http);
        assert_eq!(App::choose(AppArg::Auto, 443), App::Tls);
        assert_eq!(App::choose(AppArg::Auto, 22), App::None);
        assert_eq!(App::choose(AppArg::Tls, 80), App::Tls);
        assert_eq!(App::choose(AppArg::None, 443), App::None);
    }

    #[test]
    fn http_head_is_well_formed() {
        let r = String::from_utf8(http_head("198.18.0.1".parse().unwrap())).unwrap();
        assert!(r.starts_with("HEAD / HTTP/1.1\r\nHost: 198.18.0.1\r\n"));
        assert!(r.ends_with("\r\n\r\n"));
        let r6 = String::from_utf8(http_head("2001:db8::1".parse().unwrap())).unwrap();
        assert!(r6.contains("Host: [2001:db8::1]\r\n"));
    }

    #[test]
    fn client_hello_lengths_are_consistent() {
        let r = client_hello(&[7u8; 96]);
        assert_eq!(&r[..3], &[0x16, 0x03, 0x01]);
        let rec_len = u16::from_be_bytes([r[3], r[4]]) as usize;
        assert_eq!(rec_len, r.len() - 5);
        assert_eq!(r[5], 1, "ClientHello");
        let hs_len = u32::from_be_bytes([0, r[6], r[7], r[8]]) as usize;
        assert_eq!(hs_len, r.len() - 9);
        // Walk the body to the extensions and check they add up.
        let b = &r[9..];
        let mut at = 2 + 32;
        at += 1 + b[at] as usize; // session id
        at += 2 + u16::from_be_bytes([b[at], b[at + 1]]) as usize; // suites
        at += 1 + b[at] as usize; // compression
        let ext_len = u16::from_be_bytes([b[at], b[at + 1]]) as usize;
        assert_eq!(at + 2 + ext_len, b.len());
        let mut e = at + 2;
        let mut types = Vec::new();
        while e < b.len() {
            types.push(u16::from_be_bytes([b[e], b[e + 1]]));
            e += 4 + u16::from_be_bytes([b[e + 2], b[e + 3]]) as usize;
        }
        assert_eq!(e, b.len());
        assert_eq!(types, vec![0x002b, 0x000a, 0x000d, 0x000b, 0x0033]);
    }

    #[test]
    fn tls_answers() {
        let sh = [0x16, 0x03, 0x03, 0x00, 0x30, 0x02, 0x00, 0x00, 0x2c];
        assert_eq!(App::Tls.judge(&sh), Some(AppResult::Ok));
        assert_eq!(App::Tls.judge(&sh[..5]), None, "need the handshake type");
        assert_eq!(App::Tls.judge(&[]), None);
        let alert = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];
        assert_eq!(App::Tls.judge(&alert), Some(AppResult::Unexpected("tls-alert-2-40".into())));
        assert_eq!(App::Tls.judge(b"HTTP/1.1 400"), Some(AppResult::Unexpected("not-tls:485454502f312e31".into())));
        assert!(matches!(App::Tls.judge(&[0x16, 0x03, 0x03, 0, 4, 0x0b]), Some(AppResult::Unexpected(_))));
        assert!(matches!(App::Tls.judge(&[0x16, 0x47]), Some(AppResult::Unexpected(_))));
    }

    #[test]
    fn http_answers() {
        assert_eq!(App::Http.judge(b"HTTP/1.1 200 OK\r\n"), Some(AppResult::Ok));
        assert_eq!(App::Http.judge(b"HTT"), None);
        assert_eq!(App::Http.judge(b"HTTP/1.1 2"), None);
        assert!(matches!(App::Http.judge(b"SSH-2.0-OpenSSH"), Some(AppResult::Unexpected(_))));
        assert!(matches!(App::Http.judge(&[0x16, 3, 3]), Some(AppResult::Unexpected(_))));
        assert_eq!(App::None.judge(b""), Some(AppResult::Ok));
    }
}
