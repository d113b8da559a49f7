//! Writing to a target: batches, per-record outcomes, and finding what was already written.

pub mod results;
pub mod writer;
