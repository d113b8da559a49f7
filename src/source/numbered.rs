//! The `page` and `offset` strategies: numbered pages read in the drift-safe order of
//! `paging` (an offset is the page number times the page size, so both share the plan).
//! A `Link: rel="next"` beside numbered pages is expected: the plan reaches every page by
//! number. But when the window ends on the highest page read (a short page, paging forwards),
//! that page must not say more follows: an API that caps the page below the size asked for
//! answers a short page with `has_more: true` or a next link, and ending there would lose the
//! rest. Pure.

use crate::source::paging::{Failure, MAX_PAGES, Next as PlanNext, Notice, Observed, Plan};
use crate::source::strategy::{Answer, Next, Pager, unfollowed_more};

#[derive(Debug)]
pub struct Numbered {
    plan: Plan,
    /// The page the reader is fetching.
    page: u32,
    /// The highest page read in this window.
    highest: u32,
    /// Why the window cannot end where the plan ends it.
    failed: Option<String>,
}

impl Numbered {
    pub fn new(first_page: u32, page_size: u32) -> Numbered {
        Numbered {
            plan: Plan::new(first_page, page_size),
            page: first_page,
            highest: first_page,
            failed: None,
        }
    }
}

impl Pager for Numbered {
    fn next(&self) -> Next {
        if let Some(why) = &self.failed {
            return Next::Failed(why.clone());
        }
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
        self.highest = self.highest.max(self.page);
        self.plan.observe(&Observed {
            page: self.page,
            count: answer.count,
            total: answer.total,
            keys: answer.keys.clone(),
        });
        if self.plan.next() == PlanNext::Done
            && self.page == self.highest
            && let Some(why) = unfollowed_more(answer, false, true)
        {
            self.failed = Some(format!(
                "page {} ended the window as a short page, but {why}: the API may give fewer records per page than asked for (lower `page_size`)",
                self.page
            ));
        }
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

    fn closing(&self) -> bool {
        self.failed.is_none() && self.plan.closing()
    }

    fn predicted(&self) -> Option<Next> {
        if self.failed.is_some() {
            return None;
        }
        self.plan.predicted().map(Next::Page)
    }
}

fn failure_text(failure: Failure) -> String {
    match failure {
        Failure::BelowTotal { page, held, total } => format!(
            "page {page} held {held} record(s) although the total says {total}, through several fresh reads of the first page{}",
            if held > 0 {
                " (an API that gives fewer records per page than `page_size` asks does this: lower `page_size` to what it gives)"
            } else {
                ""
            }
        ),
        Failure::TooManyPages { total, pages } => format!(
            "the total {total} needs {pages} pages, more than one window may read ({MAX_PAGES}); a shorter `source.window.max_span` splits it"
        ),
        Failure::RepeatedPage { page } => format!(
            "page {page} repeated the page before it: the API seems to ignore the page number, so the pages behind it cannot be read"
        ),
        Failure::ShortNotLast { page, held, size } => format!(
            "page {page} held {held} record(s), fewer than the {size} `page_size` asks, yet the page after it held more: the API gives fewer records per page than asked, so a short page does not end the window; lower `page_size` to what it gives (or `max_page_size` in the connector)"
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::source::strategy::tests::answer;

    #[test]
    fn a_page_short_of_its_total_suggests_a_lower_page_size() {
        let capped = failure_text(Failure::BelowTotal {
            page: 1,
            held: 40,
            total: 300,
        });
        assert!(
            capped.ends_with("lower `page_size` to what it gives)"),
            "{capped}"
        );
        let empty = failure_text(Failure::BelowTotal {
            page: 10,
            held: 0,
            total: 1050,
        });
        assert!(!empty.contains("page_size"), "{empty}");
    }

    #[test]
    fn a_short_last_page_that_says_more_follows_fails_the_window() {
        // The API gives 5 records a page where 10 were asked for, and says there are more:
        // the page after the short one is read, holds more, and the window fails.
        let more = json!({"has_more": true});
        let mut pager = Numbered::new(1, 10);
        pager.observe(&answer(&[], &more, &[1, 2, 3, 4, 5], None, None));
        assert_eq!(pager.next(), Next::Page(2));
        pager.observe(&answer(&[], &more, &[6, 7, 8, 9, 10], None, None));
        assert!(matches!(pager.next(), Next::Failed(why) if why.contains("lower `page_size`")));
        // An empty page after a short one saying more follows fails the window too.
        let mut pager = Numbered::new(1, 10);
        pager.observe(&answer(&[], &more, &[1, 2, 3, 4, 5], None, None));
        pager.observe(&answer(&[], &more, &[], None, None));
        assert!(matches!(pager.next(), Next::Failed(why) if why.contains("lower `page_size`")));
        // The same short page saying nothing more, and an empty page after it: done.
        let last = json!({"has_more": false});
        let mut pager = Numbered::new(1, 10);
        pager.observe(&answer(&[], &last, &[1, 2, 3, 4, 5], None, None));
        assert_eq!(pager.next(), Next::Page(2));
        pager.observe(&answer(&[], &last, &[], None, None));
        assert_eq!(pager.next(), Next::Done);
        // Counted: the first page, read again last, may say more follows; it is not the end.
        let mut pager = Numbered::new(0, 2);
        let pages: [&[u64]; 3] = [&[1, 2], &[3], &[1, 2]];
        for keys in pages {
            pager.observe(&answer(&[], &more, keys, Some(3), None));
        }
        assert_eq!(pager.next(), Next::Done);
    }
}
