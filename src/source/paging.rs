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
//! total it pages forwards until a short page; a full page that repeats the previous one fails
//! the window (the API ignores the page number, so the pages behind cannot be reached), and so
//! does a short page before any full one that the page after it does not prove the last (the
//! API caps its pages below the size asked).
//!
//! A total is a hint, never a licence to stop: a pass always reaches a short page. The last
//! page a total plans is the one where it says the short page is (after a full last page, the
//! empty page behind it), so a total that is too small shows as records past it. Such a total
//! is not trusted for the window: the plan pages forwards until a short page, then reads every
//! page again downwards to the first, which keeps the drift guarantee without the total. A
//! total that is too large shows as an empty page before it (or a first page short of it):
//! records that left the window can explain that, so the first page is read again for a fresh
//! total; if the pages still do not hold what the total says, the window fails (the reader
//! returns an error, the cursor stays before the window) rather than requesting thousands of
//! empty pages or guessing where the records end. Pure: it decides, the reader fetches.

use std::collections::{HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};

/// What the reader does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Page(u32),
    Done,
    /// The window cannot be read completely: the reader fails it, the cursor stays before it.
    Failed(Failure),
}

/// Why a window cannot be read completely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Page `page` held `held` records where the total `total` says there are more, through
    /// every fresh read of the first page (an empty page before the total, or a short first page).
    BelowTotal { page: u32, held: u64, total: u64 },
    /// The total needs more pages than one window may take.
    TooManyPages { total: u64, pages: u64 },
    /// A full page repeated the one read before it: the API ignores the page number, so the
    /// pages behind it cannot be reached.
    RepeatedPage { page: u32 },
    /// Full pages went on past the most one window may take.
    Endless { page: u32 },
    /// Page `page` held `held` records, fewer than the `size` asked, yet the page after it
    /// held more: the API gives fewer records per page than asked, so a short page is not
    /// its last.
    ShortNotLast { page: u32, held: u64, size: u32 },
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

impl Observed {
    /// Distinct records on the page (a page may list one twice).
    fn distinct(&self) -> u64 {
        self.keys.iter().collect::<HashSet<_>>().len() as u64
    }

    fn fingerprint(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.keys.hash(&mut hasher);
        hasher.finish()
    }
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
    /// A full page repeated the previous page: the API ignores the page parameter.
    RepeatedPage { page: u32 },
    /// Page `page` held fewer records than the total `total` says; the window is read again.
    Short { page: u32, held: u64, total: u64 },
    /// The pages hold `held` records, more than the total `total`: it is not trusted for this
    /// window, which is paged until a short page and read again downwards.
    TotalTooSmall { held: u64, total: u64 },
}

const MAX_RESTARTS: u32 = 3;
/// The most pages one window may take (10 million records at 100 a page).
pub const MAX_PAGES: u32 = 100_000;

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
    /// How far into the window the pages of the current pass reached: the largest
    /// offset plus distinct records of a page (counted mode).
    extent: u64,
    /// The fingerprint of the highest page of the current pass, when it was full (counted mode).
    top_full: Option<u64>,
    /// The fingerprint of the last full page read (to notice an API ignoring the page number).
    last_full: Option<u64>,
    /// Paging forwards, a short page that held records before any page was full: (its
    /// number, its count). The page after it is read to prove it the last.
    probe: Option<(u32, u64)>,
    /// A page of this window held `size` records: the API does not cap its pages below the
    /// size asked, so a short page is its last.
    seen_full: bool,
    settled: bool,
    notices: Vec<Notice>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the first page.
    Start,
    /// Reading the known pages; `total` from the first page, `top` the last page it plans.
    Counted {
        total: u64,
        top: u32,
    },
    /// No total: reading forwards.
    Forward,
    /// A total too small: reading forwards until a short page, then downwards again.
    Untrusted,
    /// A total too small: reading downwards after the short page was found.
    Confirming,
    Done,
    Failed(Failure),
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
            extent: 0,
            top_full: None,
            last_full: None,
            probe: None,
            seen_full: false,
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
            (State::Failed(failure), _) => Next::Failed(failure),
            (State::Done, _) | (_, None) => Next::Done,
            (_, Some(page)) => Next::Page(*page),
        }
    }

    /// The page after the one in flight (the front of the queue), when the plan knows it:
    /// while reading a counted pass's pages, the next in its queue. An answer that changes the
    /// plan (a restart, a failure) makes [`Plan::next`] differ, and that decides.
    pub fn predicted(&self) -> Option<u32> {
        match self.state {
            State::Counted { .. } | State::Confirming => self.queue.get(1).copied(),
            _ => None,
        }
    }

    /// Whether the next page is the counted pass's closing look at its first page: the pages
    /// it planned are read, and no restart or failure came between.
    pub fn closing(&self) -> bool {
        matches!(self.state, State::Counted { .. })
            && self.queue.len() == 1
            && self.queue.front() == Some(&self.first)
    }

    /// Notices since the last call.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    pub fn observe(&mut self, observed: &Observed) {
        self.seen_full |= observed.count >= self.size as usize;
        if self.queue.front() == Some(&observed.page) {
            self.queue.pop_front();
        }
        match self.state {
            State::Start => match observed.total {
                Some(total) => self.start_pass(observed, total),
                None => {
                    self.state = State::Forward;
                    self.forward(observed);
                }
            },
            State::Counted { total, top } => {
                self.met.extend(observed.keys.iter().copied());
                if observed.page != self.first || !self.queue.is_empty() {
                    self.counted_page(observed, total, top);
                    return;
                }
                self.end_of_pass(total, observed.total.unwrap_or(total), Some(observed));
            }
            State::Forward | State::Untrusted => self.forward(observed),
            State::Confirming => {
                if self.queue.is_empty() {
                    self.state = State::Done;
                }
            }
            State::Done | State::Failed(_) => {}
        }
    }

    /// The offset of `page` in the window, in records.
    fn offset(&self, page: u32) -> u64 {
        u64::from(page.saturating_sub(self.first)) * u64::from(self.size)
    }

    /// The first page of a pass, with its total: plan the pass, or judge the total.
    fn start_pass(&mut self, observed: &Observed, total: u64) {
        self.met.clear();
        self.met.extend(observed.keys.iter().copied());
        let held = observed.distinct();
        if held > total {
            // One answer contradicts itself: no drift explains it.
            self.distrust(held, total, observed);
            return;
        }
        if held < total.min(u64::from(self.size)) {
            self.read_again(observed.page, held, total);
            return;
        }
        // The pass ends on the page where the total says the short page is: after a full last
        // page, the empty one behind it.
        let pages = total / u64::from(self.size) + 1;
        if pages > u64::from(MAX_PAGES) {
            self.state = State::Failed(Failure::TooManyPages { total, pages });
            return;
        }
        let pages = pages as u32;
        let top = self.first + pages - 1;
        self.extent = held;
        self.top_full =
            (pages == 1 && observed.count >= self.size as usize).then(|| observed.fingerprint());
        self.last_full = None;
        self.state = State::Counted { total, top };
        if pages == 1 {
            self.end_of_pass(total, total, None);
        } else {
            self.queue
                .extend((1..pages).rev().map(|offset| self.first + offset));
            self.queue.push_back(self.first);
        }
    }

    /// A page of a counted pass other than its closing first page.
    fn counted_page(&mut self, observed: &Observed, total: u64, top: u32) {
        let offset = self.offset(observed.page);
        let full = observed.count >= self.size as usize;
        self.extent = self.extent.max(offset + observed.distinct());
        if observed.page == top {
            self.top_full = full.then(|| observed.fingerprint());
        }
        if observed.count == 0 && offset < total {
            // Records that left the window since the first page was read explain this as well
            // as a total that is too large: a fresh total tells which.
            self.read_again(observed.page, 0, total);
            return;
        }
        if full {
            let fingerprint = observed.fingerprint();
            if self.last_full == Some(fingerprint) {
                self.state = State::Failed(Failure::RepeatedPage {
                    page: observed.page,
                });
                return;
            }
            self.last_full = Some(fingerprint);
        }
    }

    /// Page `page` held fewer records than `total` says: read the first page again for a
    /// fresh total, or fail the window once that has been done often enough.
    fn read_again(&mut self, page: u32, held: u64, total: u64) {
        if self.restarts >= MAX_RESTARTS {
            self.state = State::Failed(Failure::BelowTotal { page, held, total });
            return;
        }
        self.restarts += 1;
        self.notices.push(Notice::Short { page, held, total });
        self.state = State::Start;
        self.queue.clear();
        self.queue.push_back(self.first);
    }

    /// The pages hold more than the total: page forwards from behind the highest page read
    /// (unless it was short already), then read every page again downwards.
    fn distrust(&mut self, held: u64, total: u64, observed: &Observed) {
        self.notices.push(Notice::TotalTooSmall { held, total });
        let (top, top_full) = match self.state {
            State::Counted { top, .. } => (top, self.top_full),
            _ => (
                observed.page,
                (observed.count >= self.size as usize).then(|| observed.fingerprint()),
            ),
        };
        self.queue.clear();
        if top_full.is_some() {
            // Compared with the next page, to notice an API that ignores the page number.
            self.last_full = top_full;
            self.state = State::Untrusted;
            self.queue.push_back(top + 1);
        } else {
            // A short first page holds the whole window; a downward pass from a short page
            // to the first met every record that stayed in the window, whatever the total says.
            self.state = State::Done;
        }
    }

    /// The first page was read again at the end of a pass (or was the only page): settle the
    /// window or read it again. `before` is the total the pass was planned on; `reread` is the
    /// closing read of the first page, which then opens the next pass (a lone first page is
    /// fetched anew instead).
    fn end_of_pass(&mut self, before: u64, after: u64, reread: Option<&Observed>) {
        let met = self.met.len() as u64;
        // Records that left while the pass was read lower the closing total below what the
        // pages held: only reaching past both totals is a contradiction.
        if self.extent > before.max(after) {
            let observed = reread.cloned().unwrap_or(Observed {
                page: self.first,
                count: 0,
                total: Some(after),
                keys: Vec::new(),
            });
            self.distrust(self.extent, after, &observed);
            return;
        }
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

    /// Paging forwards (no total, or one too small) until a short page; after a total too
    /// small, every page below the short one is then read again, downwards.
    ///
    /// A short page that held records, before any page of the window was full, is not believed
    /// to be the last until the page after it is empty: an API that caps its pages below
    /// `page_size` answers short pages throughout, and ending on the first would skip every
    /// page behind it. (One more request for a window of one short page.)
    fn forward(&mut self, observed: &Observed) {
        if let Some((page, held)) = self.probe.take() {
            if observed.count > 0 {
                self.state = State::Failed(Failure::ShortNotLast {
                    page,
                    held,
                    size: self.size,
                });
            } else {
                self.end_forward(page);
            }
            return;
        }
        let full = observed.count >= self.size as usize;
        if !full {
            if observed.count > 0 && !self.seen_full {
                self.probe = Some((observed.page, observed.count as u64));
                self.queue.push_back(observed.page + 1);
            } else {
                self.end_forward(observed.page);
            }
            return;
        }
        if observed.page.saturating_sub(self.first) >= MAX_PAGES {
            self.state = State::Failed(Failure::Endless {
                page: observed.page,
            });
            return;
        }
        let fingerprint = observed.fingerprint();
        if self.last_full == Some(fingerprint) {
            // The pages behind cannot be reached: stopping here as if done would lose them.
            if self.state == State::Forward {
                self.notices.push(Notice::RepeatedPage {
                    page: observed.page,
                });
            }
            self.state = State::Failed(Failure::RepeatedPage {
                page: observed.page,
            });
            return;
        }
        self.last_full = Some(fingerprint);
        self.queue.push_back(observed.page + 1);
    }

    /// The forward pass ended on the short page `short`. Without a trustworthy total nothing
    /// shows a record that slid onto a page already read: reading every page below it again,
    /// downwards, meets it (positions only move forward).
    fn end_forward(&mut self, short: u32) {
        self.queue = (self.first..short).rev().collect();
        self.state = if self.queue.is_empty() {
            State::Done
        } else {
            State::Confirming
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drive a plan against `source(page, reads so far) -> (keys, total)`; return the pages read.
    fn drive(
        plan: &mut Plan,
        source: impl FnMut(u32, usize) -> (Vec<u64>, Option<u64>),
    ) -> Vec<u32> {
        drive_noting_closing(plan, source).0
    }

    /// [`drive`], also returning the pages after which the plan said its next page is the
    /// pass's closing look at its first page.
    fn drive_noting_closing(
        plan: &mut Plan,
        mut source: impl FnMut(u32, usize) -> (Vec<u64>, Option<u64>),
    ) -> (Vec<u32>, Vec<u32>) {
        let (mut pages, mut closing) = (Vec::new(), Vec::new());
        while let Next::Page(page) = plan.next() {
            let (keys, total) = source(page, pages.len());
            pages.push(page);
            plan.observe(&Observed {
                page,
                count: keys.len(),
                total,
                keys,
            });
            if plan.closing() {
                closing.push(page);
            }
            assert!(pages.len() < 50, "the plan terminates");
        }
        (pages, closing)
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
        let rows: Vec<u64> = (0..25).collect();
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
    fn without_a_total_pages_go_forward_until_a_short_page_then_back_down() {
        let rows: Vec<u64> = (0..34).collect();
        let mut plan = Plan::new(0, 10);
        assert_eq!(
            drive(&mut plan, |page, _| unnumbered(&rows, 10, page)),
            vec![0, 1, 2, 3, 2, 1, 0]
        );
        // One short page is the whole window once the page after it is empty: nothing to
        // read again.
        let mut plan = Plan::new(0, 10);
        assert_eq!(
            drive(&mut plan, |page, _| unnumbered(&rows[..4], 10, page)),
            vec![0, 1]
        );
    }

    #[test]
    fn without_a_total_an_api_capping_its_pages_below_the_size_asked_fails_the_window() {
        // 300 records, 40 a page where 100 were asked: before, page 0 (short) ended the window
        // and 260 records were never read.
        let rows: Vec<u64> = (0..300).collect();
        let mut plan = Plan::new(0, 100);
        let pages = drive(&mut plan, |page, _| unnumbered(&rows, 40, page));
        assert_eq!(pages, vec![0, 1]);
        assert_eq!(
            plan.next(),
            Next::Failed(Failure::ShortNotLast {
                page: 0,
                held: 40,
                size: 100
            })
        );
    }

    #[test]
    fn without_a_total_an_exactly_full_last_page_ends_on_the_empty_one_after_it() {
        let rows: Vec<u64> = (0..20).collect();
        let mut plan = Plan::new(0, 10);
        assert_eq!(
            drive(&mut plan, |page, _| unnumbered(&rows, 10, page)),
            vec![0, 1, 2, 1, 0]
        );
    }

    #[test]
    fn without_a_total_a_record_sliding_onto_a_page_already_read_is_met() {
        // While the pages are walked forwards, record 5 leaves the window and record 10 slides
        // onto page 0, already read: the downward pass meets it.
        let mut rows: Vec<u64> = (0..25).collect();
        let mut plan = Plan::new(0, 10);
        let (pages, met) = drive_keys(&mut plan, |page, reads| {
            if reads == 1 {
                rows.retain(|row| *row != 5);
            }
            unnumbered(&rows, 10, page)
        });
        assert_eq!(pages, vec![0, 1, 2, 1, 0]);
        assert_eq!(met, (0..25).collect());
        assert!(plan.settled());
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
        assert_eq!(
            plan.next(),
            Next::Failed(Failure::RepeatedPage { page: 1 }),
            "the pages behind the repeated one cannot be read: the window fails"
        );
    }

    /// `drive`, also returning every key met.
    fn drive_keys(
        plan: &mut Plan,
        mut source: impl FnMut(u32, usize) -> (Vec<u64>, Option<u64>),
    ) -> (Vec<u32>, HashSet<u64>) {
        let mut met = HashSet::new();
        let pages = drive(plan, |page, reads| {
            let (keys, total) = source(page, reads);
            met.extend(keys.iter().copied());
            (keys, total)
        });
        (pages, met)
    }

    /// `page_of`, but the first page counts `total` records, whatever it holds.
    fn lying(rows: &[u64], total: u64, page: u32) -> (Vec<u64>, Option<u64>) {
        let (keys, counted) = page_of(rows, 0, 100, page);
        (keys, counted.map(|_| total))
    }

    #[test]
    fn a_full_last_page_is_followed_by_the_empty_page_behind_it() {
        let rows: Vec<u64> = (0..200).collect();
        let mut plan = Plan::new(0, 100);
        let pages = drive(&mut plan, |page, _| page_of(&rows, 0, 100, page));
        assert_eq!(pages, vec![0, 2, 1, 0]);
        assert!(plan.settled());
        assert_eq!(plan.take_notices(), vec![]);
    }

    #[test]
    fn a_total_smaller_than_the_pages_hold_is_paged_until_a_short_page() {
        // (records, the total the first page claims, the pages read)
        let cases: [(u64, u64, &[u32]); 6] = [
            (180, 0, &[0, 1, 0]),
            (180, 1, &[0, 1, 0]),
            (180, 99, &[0, 1, 0]),
            (180, 100, &[0, 1, 0]),
            (380, 150, &[0, 1, 0, 2, 3, 2, 1, 0]),
            (300, 0, &[0, 1, 2, 3, 2, 1, 0]),
        ];
        for (records, total, expected) in cases {
            let rows: Vec<u64> = (0..records).collect();
            let mut plan = Plan::new(0, 100);
            let (pages, met) = drive_keys(&mut plan, |page, _| lying(&rows, total, page));
            assert_eq!(pages, expected, "{records} records counted as {total}");
            assert_eq!(met.len() as u64, records, "{records} counted as {total}");
            assert_eq!(plan.next(), Next::Done);
            assert!(plan.settled());
            assert!(
                plan.take_notices()
                    .iter()
                    .any(|n| matches!(n, Notice::TotalTooSmall { .. })),
                "{records} counted as {total}"
            );
        }
    }

    #[test]
    fn a_record_sliding_onto_a_page_read_while_paging_past_a_small_total_is_met() {
        // The total says 0; while the pages are walked forwards, record 50 leaves the window
        // and record 100 slides onto page 0, already read: the downward pass meets it.
        let mut rows: Vec<u64> = (0..250).collect();
        let mut plan = Plan::new(0, 100);
        let (pages, met) = drive_keys(&mut plan, |page, reads| {
            if reads == 1 {
                rows.retain(|row| *row != 50);
            }
            lying(&rows, 0, page)
        });
        assert_eq!(pages, vec![0, 1, 2, 1, 0]);
        // Record 50 was met before it left; record 100 only by the downward pass.
        assert_eq!(met, (0..250).collect());
        assert!(plan.settled());
    }

    #[test]
    fn an_empty_page_before_the_total_fails_the_window_after_fresh_totals() {
        // 180 records, but the total says 100,050 (1,001 pages): the empty page 1,000 is read
        // four times, each after a fresh first page, not 1,000 pages.
        let rows: Vec<u64> = (0..180).collect();
        let mut plan = Plan::new(0, 100);
        let pages = drive(&mut plan, |page, _| lying(&rows, 100_050, page));
        assert_eq!(pages, vec![0, 1000, 0, 1000, 0, 1000, 0, 1000]);
        assert_eq!(
            plan.next(),
            Next::Failed(Failure::BelowTotal {
                page: 1000,
                held: 0,
                total: 100_050
            })
        );
        // Empty pages all the way and a total of 10^12: the first page already contradicts it.
        let mut plan = Plan::new(0, 100);
        let pages = drive(&mut plan, |page, _| lying(&[], 1_000_000_000_000, page));
        assert_eq!(pages, vec![0, 0, 0, 0]);
        assert_eq!(
            plan.next(),
            Next::Failed(Failure::BelowTotal {
                page: 0,
                held: 0,
                total: 1_000_000_000_000
            })
        );
    }

    #[test]
    fn a_total_beyond_what_one_window_may_read_fails_at_once() {
        let rows: Vec<u64> = (0..180).collect();
        let mut plan = Plan::new(0, 100);
        let pages = drive(&mut plan, |page, _| lying(&rows, 1_000_000_000_000, page));
        assert_eq!(pages, vec![0]);
        assert!(matches!(
            plan.next(),
            Next::Failed(Failure::TooManyPages { .. })
        ));
    }

    #[test]
    fn an_empty_last_page_after_records_left_reads_a_fresh_total_and_settles() {
        // 201 records: one leaves after the first page is read, emptying page 2.
        let mut rows: Vec<u64> = (0..201).collect();
        let mut plan = Plan::new(0, 100);
        let pages = drive(&mut plan, |page, reads| {
            if reads == 1 {
                rows.remove(7);
            }
            page_of(&rows, 0, 100, page)
        });
        assert_eq!(pages, vec![0, 2, 0, 2, 1, 0]);
        assert_eq!(plan.next(), Next::Done);
        assert!(plan.settled());
        assert_eq!(
            plan.take_notices(),
            vec![Notice::Short {
                page: 2,
                held: 0,
                total: 201
            }]
        );
    }

    #[test]
    fn only_the_last_planned_page_of_a_counted_pass_closes_it() {
        let rows: Vec<u64> = (0..250).collect();
        let pass = |rows: &[u64]| {
            let mut plan = Plan::new(0, 100);
            drive_noting_closing(&mut plan, |page, _| page_of(rows, 0, 100, page)).1
        };
        // 0, 2, 1, then 0 again: page 1 closes.
        assert_eq!(pass(&rows), vec![1]);
        // One page: nothing to close.
        assert_eq!(pass(&rows[..40]), Vec::<u32>::new());
        // 0, 2 (emptied by a record leaving), 0 again for a fresh total, 2, 1, 0: the first
        // pass is restarted, not closed; the second closes after page 1.
        let mut rows: Vec<u64> = (0..201).collect();
        let mut plan = Plan::new(0, 100);
        let (_, closing) = drive_noting_closing(&mut plan, |page, reads| {
            if reads == 1 {
                rows.remove(7);
            }
            page_of(&rows, 0, 100, page)
        });
        assert_eq!(closing, vec![1]);
        // A total too small (150 of 250): the pass it planned (0, 1, 0) closes after page 1,
        // as far as the plan knows then; the pages read after the total is found wrong
        // (forwards, then downwards again) close nothing.
        let rows: Vec<u64> = (0..250).collect();
        let mut plan = Plan::new(0, 100);
        let (_, closing) = drive_noting_closing(&mut plan, |page, _| {
            let (keys, total) = page_of(&rows, 0, 100, page);
            (keys, total.map(|_| 150))
        });
        assert_eq!(closing, vec![1]);
    }

    #[test]
    fn an_api_that_ignores_the_page_number_fails_the_window() {
        let rows: Vec<u64> = (0..100).collect();
        // Counted: the total says ten pages, every page is the first.
        let mut plan = Plan::new(0, 100);
        let pages = drive(&mut plan, |_, _| lying(&rows, 1_000, 0));
        assert_eq!(pages, vec![0, 10, 9]);
        assert_eq!(plan.next(), Next::Failed(Failure::RepeatedPage { page: 9 }));
        // A total too small, then the same page again and again.
        let mut plan = Plan::new(0, 100);
        let pages = drive(&mut plan, |_, _| lying(&rows, 0, 0));
        assert_eq!(pages, vec![0, 1]);
        assert_eq!(plan.next(), Next::Failed(Failure::RepeatedPage { page: 1 }));
    }
}
