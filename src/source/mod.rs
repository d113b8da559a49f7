//! Reading a source: which windows and pages to request, and the records they hold.

pub mod paging;
pub mod reader;
pub mod window;
