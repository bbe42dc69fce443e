//! Experiments end to end: what `dmo run` writes (`summary.json`,
//! `rounds.csv`, `report.html`) and `dmo report` re-renders.

pub mod report;
pub mod summary;

pub use summary::{JobSummary, Summary};
