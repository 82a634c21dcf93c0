//! Support for mpscan's fuzz targets: the receive path under test ([`harness`]), shared with the
//! main crate's regression test.
pub mod harness;
