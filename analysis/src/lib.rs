//! Study tables from mpscan result CSVs (placeholder until the analysis issue lands).
pub mod cli;
