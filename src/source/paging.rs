//! Pagination: which pages of one window to read, in which order, and when the window is done.
//!
//! The source filters on last-modified time, so while a window is being read, records whose
//! time changes leave it and every record behind them moves one place forward. A pager that
//! walks pages 0, 1, 2 … skips the record that slid from page `k+1` onto page `k` after `k`
//! was read. When the API reports a total, this plan reads the first page (for the total),
//! then the others from the last down to the second, then the first page again: positions
//! only ever decrease, so reading downwards and finishing on the first page meets every
//! record that stays in the window. The pass is then checked against the total the first page
//! gives at its end: if the total grew (a record appeared inside the window), or fewer distinct
//! records were met than the total says (a record moved to a later place inside the window, onto
//! a page already read), the window is read again. A window that will not settle after a few
//! passes is not accepted: the reader leaves it open, so the cursor stays before it. Without a
//! total it pages forwards until a short page, stopping if a full page repeats the previous one.
//! Pure: it decides, the reader fetches.

use std::collections::{HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};

/// What the reader does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Page(u32),
    Done,
}

/// What a fetched page held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub page: u32,
    pub count: usize,
    pub total: Option<u64>,
    /// Hashes of the page's record keys, in page order (to count distinct records in a pass,
    /// and to notice a repeated page when there is no total).
    pub keys: Vec<u64>,
}

/// Something the reader should tell the user about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The total grew while the window was read; it is read again.
    Restarted { before: u64, after: u64 },
    /// A pass met fewer distinct records than the total: some moved onto a page already read.
    Missed { met: u64, total: u64 },
    /// The window kept changing through this many passes; it is left open (not settled).
    GaveUp { attempts: u32 },
    /// A full page repeated the previous one: the API ignores the page parameter.
    RepeatedPage { page: u32 },
}

const MAX_RESTARTS: u32 = 3;
const MAX_PAGES: u32 = 100_000;

#[derive(Debug)]
pub struct Plan {
    first: u32,
    size: u32,
    /// Pages still to fetch, in order.
    queue: VecDeque<u32>,
    state: State,
    restarts: u32,
    /// Distinct records met in the current pass (counted mode).
    met: HashSet<u64>,
    settled: bool,
    notices: Vec<Notice>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the first page.
    Start,
    /// Reading the known pages; `total` from the first page.
    Counted {
        total: u64,
    },
    /// No total: reading forwards; the last full page's fingerprint.
    Forward {
        last: Option<u64>,
    },
    Done,
}

impl Plan {
    pub fn new(first_page: u32, page_size: u32) -> Plan {
        Plan {
            first: first_page,
            size: page_size.max(1),
            queue: VecDeque::from([first_page]),
            state: State::Start,
            restarts: 0,
            met: HashSet::new(),
            settled: true,
            notices: Vec::new(),
        }
    }

    /// Whether the window, once done, was read completely. False when it kept changing and
    /// was given up on: the caller must not treat it as read.
    pub fn settled(&self) -> bool {
        self.settled
    }

    pub fn next(&self) -> Next {
        match (self.state, self.queue.front()) {
            (State::Done, _) | (_, None) => Next::Done,
            (_, Some(page)) => Next::Page(*page),
        }
    }

    /// Notices since the last call.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    pub fn observe(&mut self, observed: &Observed) {
        if self.queue.front() == Some(&observed.page) {
            self.queue.pop_front();
        }
        match self.state {
            State::Start => match observed.total {
                Some(total) => {
                    self.met.clear();
                    self.met.extend(observed.keys.iter().copied());
                    let pages = total
                        .div_ceil(u64::from(self.size))
                        .max(1)
                        .min(u64::from(MAX_PAGES)) as u32;
                    self.state = State::Counted { total };
                    if pages <= 1 {
                        self.end_of_pass(total, total, None);
                    } else {
                        self.queue
                            .extend((1..pages).rev().map(|offset| self.first + offset));
                        self.queue.push_back(self.first);
                    }
                }
                None => self.forward(observed, None),
            },
            State::Counted { total } => {
                self.met.extend(observed.keys.iter().copied());
                if observed.page != self.first || !self.queue.is_empty() {
                    return;
                }
                self.end_of_pass(total, observed.total.unwrap_or(total), Some(observed));
            }
            State::Forward { last } => self.forward(observed, last),
            State::Done => {}
        }
    }

    /// The first page was read again at the end of a pass (or was the only page): settle the
    /// window or read it again. `before` is the total the pass was planned on; `reread` is the
    /// closing read of the first page, which then opens the next pass (a lone first page is
    /// fetched anew instead).
    fn end_of_pass(&mut self, before: u64, after: u64, reread: Option<&Observed>) {
        let met = self.met.len() as u64;
        let notice = if after > before {
            Notice::Restarted { before, after }
        } else if met < after {
            // Not `met < before`: orders that leave the window before they are read (the usual
            // drift, to a time after the window) would then force pass after pass. The price: an
            // order that moves inside the window while another leaves it can go unnoticed;
            // the lookback usually reads it again.
            Notice::Missed { met, total: after }
        } else {
            self.state = State::Done;
            return;
        };
        if self.restarts >= MAX_RESTARTS {
            self.notices.push(Notice::GaveUp {
                attempts: self.restarts + 1,
            });
            self.settled = false;
            self.state = State::Done;
            return;
        }
        self.restarts += 1;
        self.notices.push(notice);
        self.state = State::Start;
        match reread {
            Some(observed) => self.observe(observed),
            None => self.queue.push_back(self.first),
        }
    }

    fn forward(&mut self, observed: &Observed, last: Option<u64>) {
        let full = observed.count >= self.size as usize;
        if !full || observed.page.saturating_sub(self.first) >= MAX_PAGES {
            self.state = State::Done;
            return;
        }
        let fingerprint = {
            let mut hasher = DefaultHasher::new();
            observed.keys.hash(&mut hasher);
            hasher.finish()
        };
        if last == Some(fingerprint) {
            self.notices.push(Notice::RepeatedPage {
                page: observed.page,
            });
            self.state = State::Done;
            return;
        }
        self.state = State::Forward {
            last: Some(fingerprint),
        };
        self.queue.push_back(observed.page + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drive a plan against `source(page, reads so far) -> (keys, total)`; return the pages read.
    fn drive(
        plan: &mut Plan,
        mut source: impl FnMut(u32, usize) -> (Vec<u64>, Option<u64>),
    ) -> Vec<u32> {
        let mut pages = Vec::new();
        while let Next::Page(page) = plan.next() {
            let (keys, total) = source(page, pages.len());
            pages.push(page);
            plan.observe(&Observed {
                page,
                count: keys.len(),
                total,
                keys,
            });
            assert!(pages.len() < 50, "the plan terminates");
        }
        pages
    }

    /// A source holding `rows` (keys in sort order), paged by `size`, with the total on the
    /// first page only, as WDT does.
    fn page_of(rows: &[u64], first: u32, size: usize, page: u32) -> (Vec<u64>, Option<u64>) {
        let offset = (page - first) as usize * size;
        let keys = rows.iter().skip(offset).take(size).copied().collect();
        (keys, (page == first).then_some(rows.len() as u64))
    }

    #[test]
    fn with_a_total_pages_are_read_last_to_first_and_the_first_again() {
        let rows: Vec<u64> = (0..250).collect();
        let mut plan = Plan::new(0, 100);
        let pages = drive(&mut plan, |page, _| page_of(&rows, 0, 100, page));
        assert_eq!(pages, vec![0, 2, 1, 0]);
        assert!(plan.settled());
        assert_eq!(plan.take_notices(), vec![]);
    }

    #[test]
    fn one_page_of_results_is_read_once() {
        let rows: Vec<u64> = (0..40).collect();
        let mut plan = Plan::new(0, 100);
        assert_eq!(
            drive(&mut plan, |page, _| page_of(&rows, 0, 100, page)),
            vec![0]
        );
        let mut plan = Plan::new(0, 100);
        assert_eq!(
            drive(&mut plan, |page, _| page_of(&[], 0, 100, page)),
            vec![0]
        );
        assert!(plan.settled());
    }

    #[test]
    fn pages_can_count_from_one() {
        let rows: Vec<u64> = (0..30).collect();
        let mut plan = Plan::new(1, 10);
        assert_eq!(
            drive(&mut plan, |page, _| page_of(&rows, 1, 10, page)),
            vec![1, 3, 2, 1]
        );
    }

    #[test]
    fn a_record_leaving_the_window_after_it_was_read_needs_no_second_pass() {
        // Record 220 is modified after page 2 was read: it leaves the window and everything
        // behind it moves one place forward. Reading downwards still meets every other record.
        let mut rows: Vec<u64> = (0..250).collect();
        let mut plan = Plan::new(0, 100);
        let pages = drive(&mut plan, |page, reads| {
            if reads == 2 {
                rows.retain(|row| *row != 220);
            }
            page_of(&rows, 0, 100, page)
        });
        assert_eq!(pages, vec![0, 2, 1, 0]);
        assert_eq!(plan.take_notices(), vec![]);
    }

    #[test]
    fn a_record_leaving_before_it_was_read_needs_no_second_pass() {
        // Record 150 leaves before page 1 is read: the pass meets 249 records, as many as the
        // closing total; the one that left is read by the next run.
        let mut rows: Vec<u64> = (0..250).collect();
        let mut plan = Plan::new(0, 100);
        let pages = drive(&mut plan, |page, reads| {
            if reads == 2 {
                rows.retain(|row| *row != 150);
            }
            page_of(&rows, 0, 100, page)
        });
        assert_eq!(pages, vec![0, 2, 1, 0]);
        assert!(plan.settled());
    }

    #[test]
    fn a_total_that_grows_while_reading_restarts_the_window() {
        let mut rows: Vec<u64> = (0..150).collect();
        let mut plan = Plan::new(0, 100);
        // A record appears inside the window before the first page is read again.
        let pages = drive(&mut plan, |page, reads| {
            if reads == 2 {
                rows.insert(10, 1_000);
            }
            page_of(&rows, 0, 100, page)
        });
        assert_eq!(pages, vec![0, 1, 0, 1, 0]);
        assert_eq!(
            plan.take_notices(),
            vec![Notice::Restarted {
                before: 150,
                after: 151
            }]
        );
    }

    #[test]
    fn a_window_that_keeps_changing_is_given_up_on_and_not_settled() {
        let mut rows: Vec<u64> = (0..150).collect();
        let mut plan = Plan::new(0, 100);
        let pages = drive(&mut plan, |page, _| {
            rows.insert(0, 1_000 + rows.len() as u64);
            page_of(&rows, 0, 100, page)
        });
        assert_eq!(pages.iter().filter(|p| **p == 0).count(), 5);
        assert!(
            plan.take_notices()
                .contains(&Notice::GaveUp { attempts: 4 })
        );
        assert!(!plan.settled());
    }

    #[test]
    fn a_lone_page_short_of_its_total_is_fetched_again() {
        // The first answer lists 39 of the 40 records it counts; the second is complete.
        let rows: Vec<u64> = (0..40).collect();
        let mut plan = Plan::new(0, 100);
        let pages = drive(&mut plan, |page, reads| {
            let (mut keys, total) = page_of(&rows, 0, 100, page);
            if reads == 0 {
                keys.pop();
            }
            (keys, total)
        });
        assert_eq!(pages, vec![0, 0]);
        assert!(plan.settled());
    }

    #[test]
    fn a_shrinking_total_needs_no_restart() {
        let mut rows: Vec<u64> = (0..150).collect();
        let mut plan = Plan::new(0, 100);
        let pages = drive(&mut plan, |page, reads| {
            if reads == 1 {
                rows.remove(5);
            }
            page_of(&rows, 0, 100, page)
        });
        assert_eq!(pages, vec![0, 1, 0]);
        assert_eq!(plan.take_notices(), vec![]);
    }

    fn unnumbered(rows: &[u64], size: usize, page: u32) -> (Vec<u64>, Option<u64>) {
        (page_of(rows, 0, size, page).0, None)
    }

    #[test]
    fn without_a_total_pages_go_forward_until_a_short_page() {
        let rows: Vec<u64> = (0..34).collect();
        let mut plan = Plan::new(0, 10);
        assert_eq!(
            drive(&mut plan, |page, _| unnumbered(&rows, 10, page)),
            vec![0, 1, 2, 3]
        );
    }

    #[test]
    fn without_a_total_an_exactly_full_last_page_ends_on_the_empty_one_after_it() {
        let rows: Vec<u64> = (0..20).collect();
        let mut plan = Plan::new(0, 10);
        assert_eq!(
            drive(&mut plan, |page, _| unnumbered(&rows, 10, page)),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn without_a_total_a_repeated_full_page_stops_the_loop() {
        let rows: Vec<u64> = (0..10).collect();
        let mut plan = Plan::new(0, 10);
        assert_eq!(
            drive(&mut plan, |_, _| unnumbered(&rows, 10, 0)),
            vec![0, 1]
        );
        assert_eq!(plan.take_notices(), vec![Notice::RepeatedPage { page: 1 }]);
    }
}
