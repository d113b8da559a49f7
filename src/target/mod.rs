//! Writing to a target: batches, per-record outcomes, finding what was already written, and
//! updating what changed since.

pub mod results;
pub mod update;
pub mod writer;
