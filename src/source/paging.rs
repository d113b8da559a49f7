//! Pagination: which pages of one window to read, in which order, and when the window is done.
//!
//! The source filters on last-modified time, so while a window is being read, records whose
//! time changes leave it and every record behind them moves one place forward. A pager that
//! walks pages 0, 1, 2 … skips the record that slid from page `k+1` onto page `k` after `k`
//! was read. When the API reports a total, this plan reads the first page (for the total),
//! then the others from the last down to the second, then the first page again: positions
//! only ever decrease, so reading downwards and finishing on the first page meets every
//! record that stays in the window. If the total grew meanwhile (a record appeared inside
//! the window) the window is read again. Without a total it pages forwards until a short
//! page, stopping if a full page repeats the previous one. Pure: it decides, the reader fetches.

use std::collections::VecDeque;

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
    /// A fingerprint of the page's keys (to notice a repeated page when there is no total).
    pub fingerprint: u64,
}

/// Something the reader should tell the user about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The total grew while the window was read; it is read again.
    Restarted { before: u64, after: u64 },
    /// The total kept growing; the window was accepted as read after this many attempts.
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
            notices: Vec::new(),
        }
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
                    let pages = total
                        .div_ceil(u64::from(self.size))
                        .max(1)
                        .min(u64::from(MAX_PAGES)) as u32;
                    if pages <= 1 {
                        self.state = State::Done;
                    } else {
                        self.state = State::Counted { total };
                        self.queue
                            .extend((1..pages).rev().map(|offset| self.first + offset));
                        self.queue.push_back(self.first);
                    }
                }
                None => self.forward(observed, None),
            },
            State::Counted { total } => {
                if observed.page != self.first || !self.queue.is_empty() {
                    return;
                }
                match observed.total {
                    Some(after) if after > total && self.restarts < MAX_RESTARTS => {
                        self.restarts += 1;
                        self.notices.push(Notice::Restarted {
                            before: total,
                            after,
                        });
                        self.state = State::Start;
                        self.observe(observed);
                    }
                    Some(after) if after > total => {
                        self.notices.push(Notice::GaveUp {
                            attempts: self.restarts + 1,
                        });
                        self.state = State::Done;
                    }
                    _ => self.state = State::Done,
                }
            }
            State::Forward { last } => self.forward(observed, last),
            State::Done => {}
        }
    }

    fn forward(&mut self, observed: &Observed, last: Option<u64>) {
        let full = observed.count >= self.size as usize;
        if !full || observed.page.saturating_sub(self.first) >= MAX_PAGES {
            self.state = State::Done;
            return;
        }
        if last == Some(observed.fingerprint) {
            self.notices.push(Notice::RepeatedPage {
                page: observed.page,
            });
            self.state = State::Done;
            return;
        }
        self.state = State::Forward {
            last: Some(observed.fingerprint),
        };
        self.queue.push_back(observed.page + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drive a plan against a function giving (count, total, fingerprint) per page; return the pages read.
    fn drive(
        plan: &mut Plan,
        mut source: impl FnMut(u32, usize) -> (usize, Option<u64>, u64),
    ) -> Vec<u32> {
        let mut pages = Vec::new();
        while let Next::Page(page) = plan.next() {
            let (count, total, fingerprint) = source(page, pages.len());
            pages.push(page);
            plan.observe(&Observed {
                page,
                count,
                total,
                fingerprint,
            });
            assert!(pages.len() < 50, "the plan terminates");
        }
        pages
    }

    #[test]
    fn with_a_total_pages_are_read_last_to_first_and_the_first_again() {
        let mut plan = Plan::new(0, 100);
        let pages = drive(&mut plan, |page, _| {
            (
                if page == 2 { 50 } else { 100 },
                (page == 0).then_some(250),
                u64::from(page),
            )
        });
        assert_eq!(pages, vec![0, 2, 1, 0]);
    }

    #[test]
    fn one_page_of_results_is_read_once() {
        let mut plan = Plan::new(0, 100);
        assert_eq!(drive(&mut plan, |_, _| (40, Some(40), 1)), vec![0]);
        let mut plan = Plan::new(0, 100);
        assert_eq!(drive(&mut plan, |_, _| (0, Some(0), 1)), vec![0]);
    }

    #[test]
    fn pages_can_count_from_one() {
        let mut plan = Plan::new(1, 10);
        assert_eq!(
            drive(&mut plan, |page, _| (10, (page == 1).then_some(30), 1)),
            vec![1, 3, 2, 1]
        );
    }

    #[test]
    fn a_total_that_grows_while_reading_restarts_the_window() {
        let mut plan = Plan::new(0, 100);
        // The second read of page 0 reports one more record than the first.
        let pages = drive(&mut plan, |page, reads| {
            (
                100,
                (page == 0).then_some(if reads == 0 { 150 } else { 151 }),
                1,
            )
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
    fn a_total_that_keeps_growing_is_given_up_on_after_a_few_restarts() {
        let mut plan = Plan::new(0, 100);
        let pages = drive(&mut plan, |page, reads| {
            (100, (page == 0).then_some(150 + reads as u64), 1)
        });
        assert_eq!(pages.iter().filter(|p| **p == 0).count(), 5);
        assert!(
            plan.take_notices()
                .contains(&Notice::GaveUp { attempts: 4 })
        );
    }

    #[test]
    fn a_shrinking_total_needs_no_restart() {
        let mut plan = Plan::new(0, 100);
        let pages = drive(&mut plan, |page, reads| {
            (
                100,
                (page == 0).then_some(if reads == 0 { 150 } else { 149 }),
                1,
            )
        });
        assert_eq!(pages, vec![0, 1, 0]);
        assert_eq!(plan.take_notices(), vec![]);
    }

    #[test]
    fn without_a_total_pages_go_forward_until_a_short_page() {
        let mut plan = Plan::new(0, 10);
        assert_eq!(
            drive(&mut plan, |page, _| (
                if page < 3 { 10 } else { 4 },
                None,
                u64::from(page)
            )),
            vec![0, 1, 2, 3]
        );
    }

    #[test]
    fn without_a_total_an_exactly_full_last_page_ends_on_the_empty_one_after_it() {
        let mut plan = Plan::new(0, 10);
        assert_eq!(
            drive(&mut plan, |page, _| (
                if page < 2 { 10 } else { 0 },
                None,
                u64::from(page)
            )),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn without_a_total_a_repeated_full_page_stops_the_loop() {
        let mut plan = Plan::new(0, 10);
        assert_eq!(drive(&mut plan, |_, _| (10, None, 42)), vec![0, 1]);
        assert_eq!(plan.take_notices(), vec![Notice::RepeatedPage { page: 1 }]);
    }
}
