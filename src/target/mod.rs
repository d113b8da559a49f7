//! Writing to a target: batches or one record per call, per-record outcomes, and finding what
//! was already written.

pub mod results;
pub mod writer;
