//! Hilbert maps of IPv4 (`summary --plots DIR`): the picture of the Internet-census tradition,
//! one pixel per /24 on a 4096x4096 square, the /24s laid out along a Hilbert curve of order 12.
//! The curve keeps neighbouring blocks neighbours: every /8 fills a 256x256 square, every /16 a
//! 16x16 one, and the /8s themselves follow an order-4 curve (0/8 top left, 255/8 top right).
//!
//! Two maps: /24s coloured by real MPTCP answers (class `mptcp`) and by echoing boxes (`echo`),
//! from the summary's /24 counters ([`Aggregate::v4_24`]). Each is written twice:
//! - `hilbert_<class>.png`: the full map, 4096x4096, one pixel per /24, indexed colour (a PNG,
//!   because 16.7 M pixels are far too many SVG rectangles; mostly background, it compresses to
//!   little);
//! - `hilbert_<class>.svg`: the overview to read and print: a 1024x1024 map (each pixel a /20,
//!   the colour of its busiest /24, drawn as a 3x3 dot so a lone one shows) embedded as a PNG data URI, with a faint /8 grid, every /8's
//!   number, and the legend as SVG text.
//!
//! Colours are logarithmic bins of the count per /24 (answers: one per address, port and probe
//! version), from purple (one) to white (256 or more) on a near-black background.

use crate::summary::Aggregate;
use anyhow::{Context, Result};
use mpscan_schema::Class;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Side of the full map: 2^12 pixels, so 2^24 pixels, one per /24.
pub const SIDE: u32 = 4096;
/// Side of the overview in the SVG (each pixel a /20).
pub const OVERVIEW: u32 = 1024;

/// Position of `d` on a Hilbert curve filling a `side` x `side` square (`side` a power of two,
/// `d < side^2`); x grows rightwards, y downwards. The classic iterative construction.
pub fn d2xy(side: u32, d: u32) -> (u32, u32) {
    let (mut x, mut y) = (0u32, 0u32);
    let mut t = d;
    let mut s = 1;
    while s < side {
        let rx = 1 & (t / 2);
        let ry = 1 & (t ^ rx);
        rot(s, &mut x, &mut y, rx, ry);
        x += s * rx;
        y += s * ry;
        t /= 4;
        s *= 2;
    }
    (x, y)
}

/// Index along the curve of pixel (`x`, `y`): the inverse of [`d2xy`].
pub fn xy2d(side: u32, mut x: u32, mut y: u32) -> u32 {
    let mut d = 0;
    let mut s = side / 2;
    while s > 0 {
        let rx = u32::from(x & s > 0);
        let ry = u32::from(y & s > 0);
        d += s * s * ((3 * rx) ^ ry);
        rot(side, &mut x, &mut y, rx, ry);
        s /= 2;
    }
    d
}

/// Rotate or flip a quadrant so the sub-curve joins its neighbours.
fn rot(n: u32, x: &mut u32, y: &mut u32, rx: u32, ry: u32) {
    if ry == 0 {
        if rx == 1 {
            *x = n.wrapping_sub(1).wrapping_sub(*x);
            *y = n.wrapping_sub(1).wrapping_sub(*y);
        }
        std::mem::swap(x, y);
    }
}

/// Pixel of the /24 holding IPv4 address `a` (host order) on the full map.
pub fn pixel(a: u32) -> (u32, u32) {
    d2xy(SIDE, a >> 8)
}

/// Lower bounds of the colour bins (answers per /24); bin `i + 1` is `BINS[i]..BINS[i + 1]`.
pub const BINS: [u64; 6] = [1, 2, 4, 16, 64, 256];

/// Palette: background, then one colour per bin (plasma-like, brighter = more).
const PALETTE: [[u8; 3]; 7] =
    [[16, 16, 24], [150, 60, 230], [205, 60, 170], [225, 100, 98], [252, 166, 54], [240, 249, 33], [255, 255, 255]];

/// Palette index of a count (0 = none).
pub fn bin(n: u64) -> u8 {
    BINS.iter().rposition(|b| n >= *b).map_or(0, |i| i as u8 + 1)
}

/// Raster of `side` x `side` palette indexes from (/24 number, count) pairs: on the full map one
/// pixel per /24; on a smaller one each pixel takes the highest bin among its /24s.
pub fn raster(counts: impl IntoIterator<Item = (u32, u64)>, side: u32) -> Vec<u8> {
    let shrink = SIDE / side;
    let mut px = vec![0u8; (side * side) as usize];
    for (net, n) in counts {
        let (x, y) = d2xy(SIDE, net & 0xff_ffff);
        let i = ((y / shrink) * side + x / shrink) as usize;
        px[i] = px[i].max(bin(n));
    }
    px
}

/// Each pixel takes the highest index of its 3x3 neighbourhood: a lone /20 becomes a dot of
/// 3x3 pixels, visible on the printed overview (the full map keeps one pixel per /24).
pub fn dilate(px: &[u8], side: u32) -> Vec<u8> {
    let s = side as usize;
    let mut out = px.to_vec();
    for (i, &v) in px.iter().enumerate().filter(|(_, v)| **v > 0) {
        let (x, y) = (i % s, i / s);
        for ny in y.saturating_sub(1)..(y + 2).min(s) {
            for nx in x.saturating_sub(1)..(x + 2).min(s) {
                let o = &mut out[ny * s + nx];
                *o = (*o).max(v);
            }
        }
    }
    out
}

/// An indexed-colour PNG of a square raster.
pub fn png(px: &[u8], side: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, side, side);
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_palette(PALETTE.concat());
        let mut w = enc.write_header()?;
        w.write_image_data(px)?;
    }
    Ok(out)
}

/// Standard base64 (for the data URI).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            if k <= c.len() {
                s.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// The overview SVG: map, /8 grid and numbers, legend.
fn svg(title: &str, overview_png: &[u8], blocks: usize, total: u64) -> String {
    let (m, top) = (20u32, 56u32);
    let legend_x = m + OVERVIEW + 30;
    let (w, h) = (legend_x + 250, top + OVERVIEW + 50);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif">"#
    );
    let _ = write!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = write!(s, r#"<text x="{m}" y="34" font-size="22">{}</text>"#, escape(title));
    let _ = write!(
        s,
        r#"<image x="{m}" y="{top}" width="{OVERVIEW}" height="{OVERVIEW}" style="image-rendering:pixelated" href="data:image/png;base64,{}"/>"#,
        base64(overview_png)
    );
    // /8 grid and numbers: each /8 is a 64x64 square of the overview.
    let cell = OVERVIEW / 16;
    for i in 1..16 {
        let p = i * cell;
        let _ = write!(
            s,
            r##"<path d="M{} {top}v{OVERVIEW}M{m} {}h{OVERVIEW}" stroke="#8a8aa0" stroke-opacity="0.35" stroke-width="1"/>"##,
            m + p,
            top + p
        );
    }
    for a in 0..256u32 {
        let (x, y) = d2xy(SIDE, a << 16);
        let (cx, cy) = (m + (x / 256) * cell + cell / 2, top + (y / 256) * cell + cell / 2 + 5);
        let _ = write!(
            s,
            r##"<text x="{cx}" y="{cy}" font-size="14" text-anchor="middle" fill="#c8c8d8" fill-opacity="0.55">{a}</text>"##
        );
    }
    // Legend.
    let mut y = top + 10;
    let _ = write!(s, r#"<text x="{legend_x}" y="{y}" font-size="15" font-weight="bold">answers per /24</text>"#);
    y += 14;
    let labels = ["none", "1", "2-3", "4-15", "16-63", "64-255", "256 or more"];
    for (c, l) in PALETTE.iter().zip(labels) {
        let _ = write!(
            s,
            r##"<rect x="{legend_x}" y="{y}" width="22" height="16" fill="{}" stroke="#666"/><text x="{}" y="{}" font-size="14">{l}</text>"##,
            hex(*c),
            legend_x + 30,
            y + 13
        );
        y += 24;
    }
    y += 16;
    for line in [
        format!("{} /24s, {} answers", crate::table::thousands(blocks as u64), crate::table::thousands(total)),
        "Hilbert curve: one square".to_string(),
        "per /8 (its number), 0/8".to_string(),
        "top left, 255/8 top right.".to_string(),
        "Each dot here is a /20, in".to_string(),
        "the colour of its busiest".to_string(),
        "/24, drawn 3 pixels wide;".to_string(),
        "the .png beside this file".to_string(),
        "has one pixel per /24.".to_string(),
    ] {
        let _ = write!(s, r#"<text x="{legend_x}" y="{y}" font-size="13">{}</text>"#, escape(&line));
        y += 18;
    }
    s.push_str("</svg>\n");
    s
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Write the two maps (real MPTCP servers, echoing boxes) into `dir`; returns the files.
pub fn maps(agg: &Aggregate, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![];
    for (class, what) in [(Class::Mptcp, "real MPTCP servers"), (Class::Echo, "echoing middleboxes")] {
        let counts: Vec<(u32, u64)> =
            agg.v4_24.iter().map(|(k, c)| (*k, c[class as usize])).filter(|(_, n)| *n > 0).collect();
        let total = counts.iter().map(|c| c.1).sum();
        let name = format!("hilbert_{}", class.label());
        let full = dir.join(format!("{name}.png"));
        std::fs::write(&full, png(&raster(counts.iter().copied(), SIDE), SIDE)?)
            .with_context(|| format!("{}: cannot write the map", full.display()))?;
        let small = png(&dilate(&raster(counts.iter().copied(), OVERVIEW), OVERVIEW), OVERVIEW)?;
        let title = format!("IPv4 /24s with {what} (Hilbert curve)");
        let p = dir.join(format!("{name}.svg"));
        std::fs::write(&p, svg(&title, &small, counts.len(), total))
            .with_context(|| format!("{}: cannot write the map", p.display()))?;
        out.extend([full, p]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_small_curves() {
        // Order 1: the U shape; order 2: the sixteen cells of the classic figure.
        assert_eq!((0..4).map(|d| d2xy(2, d)).collect::<Vec<_>>(), [(0, 0), (0, 1), (1, 1), (1, 0)]);
        let order2: Vec<(u32, u32)> = (0..16).map(|d| d2xy(4, d)).collect();
        assert_eq!(
            order2,
            [
                (0, 0),
                (1, 0),
                (1, 1),
                (0, 1),
                (0, 2),
                (0, 3),
                (1, 3),
                (1, 2),
                (2, 2),
                (2, 3),
                (3, 3),
                (3, 2),
                (3, 1),
                (2, 1),
                (2, 0),
                (3, 0)
            ]
        );
        // The full map starts top left and ends top right.
        assert_eq!(pixel(0), (0, 0));
        assert_eq!(pixel(u32::MAX), (SIDE - 1, 0));
    }

    /// Every /24: the inverse gives it back, and the next /24 is a neighbouring pixel.
    #[test]
    fn round_trip_and_adjacency_over_all_of_ipv4() {
        let mut prev = d2xy(SIDE, 0);
        for d in 0..SIDE * SIDE {
            let (x, y) = d2xy(SIDE, d);
            assert!(x < SIDE && y < SIDE);
            assert_eq!(xy2d(SIDE, x, y), d, "({x}, {y})");
            if d > 0 {
                assert_eq!(x.abs_diff(prev.0) + y.abs_diff(prev.1), 1, "/24 #{d}");
            }
            prev = (x, y);
        }
    }

    #[test]
    fn every_slash8_is_an_aligned_square() {
        for a in [0u32, 17, 128, 255] {
            let (x0, y0) = d2xy(SIDE, a << 16);
            let (bx, by) = (x0 / 256, y0 / 256);
            for d in (a << 16..(a + 1) << 16).step_by(997) {
                let (x, y) = d2xy(SIDE, d);
                assert_eq!((x / 256, y / 256), (bx, by), "/8 {a}");
            }
        }
    }

    #[test]
    fn bins_and_base64() {
        assert_eq!([0, 1, 2, 3, 4, 15, 16, 255, 256, 1 << 40].map(bin), [0, 1, 2, 2, 3, 3, 4, 5, 6, 6]);
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    /// A planted /24 lands on its pixel of the written PNG, in its bin's colour; the SVG is valid
    /// and names every /8.
    #[test]
    fn planted_slash24_lands_on_its_pixel() {
        let dir = tempfile::tempdir().unwrap();
        let mut agg = Aggregate::new(&crate::summary::Options::default());
        let net = u32::from(std::net::Ipv4Addr::new(17, 253, 144, 0)) >> 8;
        let mut c = [0; mpscan_schema::NCLASS];
        c[Class::Mptcp as usize] = 20;
        c[Class::Echo as usize] = 1;
        agg.v4_24.insert(net, c);
        let files = maps(&agg, dir.path()).unwrap();
        assert_eq!(files.len(), 4);
        let (x, y) = pixel(u32::from(std::net::Ipv4Addr::new(17, 253, 144, 9)));
        for (file, want) in [("hilbert_mptcp.png", bin(20)), ("hilbert_echo.png", bin(1))] {
            let dec = png::Decoder::new(std::fs::File::open(dir.path().join(file)).unwrap());
            let mut r = dec.read_info().unwrap();
            let mut buf = vec![0; r.output_buffer_size()];
            let info = r.next_frame(&mut buf).unwrap();
            assert_eq!((info.width, info.height), (SIDE, SIDE));
            assert_eq!(buf[(y * SIDE + x) as usize], want, "{file}");
            assert_eq!(buf.iter().filter(|p| **p != 0).count(), 1, "{file}: one pixel coloured");
        }
        let text = std::fs::read_to_string(dir.path().join("hilbert_mptcp.svg")).unwrap();
        let doc = roxmltree::Document::parse(&text).unwrap();
        let labels: Vec<&str> = doc.descendants().filter(|n| n.has_tag_name("text")).filter_map(|n| n.text()).collect();
        assert!((0..256).all(|a| labels.contains(&a.to_string().as_str())));
        assert!(labels.contains(&"1 /24s, 20 answers") && labels.contains(&"16-63"), "{labels:?}");
        // The overview: that /24's /20 pixel, and its 3x3 dot.
        let small = raster([(net, 20)], OVERVIEW);
        let at = ((y / 4) * OVERVIEW + x / 4) as usize;
        assert_eq!(small[at], bin(20));
        assert_eq!(small.iter().filter(|p| **p != 0).count(), 1);
        let dot = dilate(&small, OVERVIEW);
        assert_eq!(dot.iter().filter(|p| **p != 0).count(), 9);
        assert_eq!([at - 1, at + 1, at + OVERVIEW as usize + 1].map(|i| dot[i]), [bin(20); 3]);
        // At a corner the dot is cut, not wrapped.
        let corner = dilate(&raster([(0, 1)], OVERVIEW), OVERVIEW);
        assert_eq!(corner.iter().filter(|p| **p != 0).count(), 4);
    }
}
