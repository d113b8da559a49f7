//! The `page` and `offset` strategies: numbered pages read in the drift-safe order of
//! `paging` (an offset is the page number times the page size, so both share the plan).
//! A `Link: rel="next"` beside numbered pages is expected and ignored: the plan reaches every
//! page by number. Pure.

use crate::source::paging::{Failure, MAX_PAGES, Next as PlanNext, Notice, Observed, Plan};
use crate::source::strategy::{Answer, Next, Pager};

#[derive(Debug)]
pub struct Numbered {
    plan: Plan,
    /// The page the reader is fetching.
    page: u32,
}

impl Numbered {
    pub fn new(first_page: u32, page_size: u32) -> Numbered {
        Numbered {
            plan: Plan::new(first_page, page_size),
            page: first_page,
        }
    }
}

impl Pager for Numbered {
    fn next(&self) -> Next {
        match self.plan.next() {
            PlanNext::Page(page) => Next::Page(page),
            PlanNext::Done => Next::Done,
            PlanNext::Failed(failure) => Next::Failed(failure_text(failure)),
        }
    }

    fn observe(&mut self, answer: &Answer) {
        if let PlanNext::Page(page) = self.plan.next() {
            self.page = page;
        }
        self.plan.observe(&Observed {
            page: self.page,
            count: answer.count,
            total: answer.total,
            keys: answer.keys.clone(),
        });
    }

    fn notices(&mut self, span: &str) -> Vec<String> {
        self.plan
            .take_notices()
            .into_iter()
            .map(|notice| describe(notice, span))
            .collect()
    }

    fn settled(&self) -> bool {
        self.plan.settled()
    }
}

fn failure_text(failure: Failure) -> String {
    match failure {
        Failure::BelowTotal { page, held, total } => format!(
            "page {page} held {held} record(s) although the total says {total}, through several fresh reads of the first page"
        ),
        Failure::TooManyPages { total, pages } => format!(
            "the total {total} needs {pages} pages, more than one window may read ({MAX_PAGES}); a shorter `source.window.max_span` splits it"
        ),
        Failure::RepeatedPage { page } => format!(
            "page {page} repeated the page before it: the API seems to ignore the page number, so the pages behind it cannot be read"
        ),
        Failure::Endless { page } => format!(
            "full pages went on up to page {page}, more than one window may read ({MAX_PAGES})"
        ),
    }
}

/// A plan's notice as the user reads it.
fn describe(notice: Notice, span: &str) -> String {
    match notice {
        Notice::Restarted { before, after } => format!(
            "the window {span} grew from {before} to {after} records while being read; reading it again"
        ),
        Notice::Missed { met, total } => format!(
            "reading the window {span} met {met} of its {total} records (some moved while it was read); reading it again"
        ),
        Notice::GaveUp { attempts } => format!(
            "the window {span} kept changing through {attempts} reads; the cursor stays before it and the next run reads it again"
        ),
        Notice::RepeatedPage { page } => format!(
            "page {page} repeated the previous page; the API seems to ignore the page parameter"
        ),
        Notice::Short { page, held, total } => format!(
            "page {page} of the window {span} held {held} record(s) although the total says {total}; reading the first page again for a fresh total"
        ),
        Notice::TotalTooSmall { held, total } => format!(
            "the pages of the window {span} hold at least {held} records, more than the total of {total} the API gives; paging on until a short page and reading the pages again downwards"
        ),
    }
}
