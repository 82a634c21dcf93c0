//! The mpscan result schema, written once: the classes, the probe versions and verify's
//! verdicts; the columns as one ordered list; the row, owned ([`Row`], what writers take) and
//! borrowed ([`RowRef`], what readers parse); the one fast reader ([`reader`]) and the sequential
//! one ([`records`]); the writers
//! (CSV and JSON lines, and Parquet with the `parquet` feature); and the typed scan metadata with its merge
//! ([`metadata`]).
//!
//! It does not depend on the scanner: analysis reads results with this crate alone. Adding a
//! column means touching [`columns`], [`row`], [`row_ref`] and the writers here, and nothing else.
#![forbid(unsafe_code)]

pub mod class;
pub mod columns;
pub mod exact_line;
pub mod line_file;
pub mod metadata;
#[cfg(feature = "parquet")]
pub mod parquet_file;
pub mod probe;
pub mod reader;
pub mod reader_parquet;
pub mod records;
pub mod row;
pub mod row_ref;
pub mod sink;
pub mod trace;
pub mod verdict;

pub use class::{Class, NCLASS};
pub use columns::{Col, Columns, COLUMNS};
pub use metadata::Metadata;
pub use probe::ProbeVersion;
pub use row::Row;
pub use row_ref::{Ip, RowError, RowRef};
pub use sink::RowSink;
pub use verdict::ConfirmVerdict;
