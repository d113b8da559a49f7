//! Flow and connector files: reading, checking and compiling them.

pub mod raw;
pub mod shape;
pub mod yaml;
