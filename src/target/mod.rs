//! Writing to a target: batches or one record per call, per-record outcomes, finding what was
//! already written, and updating what changed since.

pub mod results;
#[cfg(test)]
mod tests_writer;
pub mod update;
pub mod writer;
