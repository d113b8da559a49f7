//! Reading a source: which windows and pages to request, and the records they hold.
//! `strategy` is the pagination trait; each strategy has its own file.

pub mod answer;
pub mod cursor;
pub mod early;
pub mod lean;
pub mod link;
pub mod next_url;
pub mod numbered;
pub mod paging;
pub mod reader;
pub mod single;
pub mod strategy;
pub mod window;
