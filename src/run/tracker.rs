//! When the cursor may move: after every record of a window is written or parked.
//!
//! Windows are read in order but their records are written by concurrent batches, so a later
//! window can finish before an earlier one. The cursor moves to the end of the longest prefix
//! of complete windows (read to the end, nothing outstanding), never past a window with a
//! record still in flight. Pure.

use chrono::{DateTime, Utc};

use crate::source::window::Window;

#[derive(Debug)]
pub struct Tracker {
    windows: Vec<Window>,
    outstanding: Vec<u64>,
    read: Vec<bool>,
    /// The first window not yet committed.
    next: usize,
}

impl Tracker {
    pub fn new(windows: Vec<Window>) -> Tracker {
        let count = windows.len();
        Tracker {
            windows,
            outstanding: vec![0; count],
            read: vec![false; count],
            next: 0,
        }
    }

    /// The tracker of a run reading `windows`. A source without windows is read as one
    /// window that ends where time begins, so the cursor never passes it.
    pub fn for_windows(windows: &[Window]) -> Tracker {
        if windows.is_empty() {
            Tracker::new(vec![Window {
                start: DateTime::<Utc>::MIN_UTC,
                end: DateTime::<Utc>::MIN_UTC,
            }])
        } else {
            Tracker::new(windows.to_vec())
        }
    }

    /// A record of window `index` is on its way to the target.
    pub fn add(&mut self, index: usize) {
        self.outstanding[index] += 1;
    }

    /// A record of window `index` was written or parked.
    pub fn settle(&mut self, index: usize) {
        self.outstanding[index] = self.outstanding[index].saturating_sub(1);
    }

    /// Every record of window `index` has been read.
    pub fn read(&mut self, index: usize) {
        self.read[index] = true;
    }

    /// The instant the cursor may move to now, if it may move.
    pub fn advance(&mut self) -> Option<DateTime<Utc>> {
        let before = self.next;
        while self.next < self.windows.len()
            && self.read[self.next]
            && self.outstanding[self.next] == 0
        {
            self.next += 1;
        }
        (self.next > before).then(|| self.windows[self.next - 1].end)
    }

    /// Whether the cursor waits on window `index` alone for `count` records: it is the first
    /// window not yet committed, read to the end, with exactly `count` records outstanding.
    pub fn waits_on(&self, index: usize, count: u64) -> bool {
        count > 0
            && self.next == index
            && index < self.windows.len()
            && self.read[index]
            && self.outstanding[index] == count
    }

    /// The first window not yet committed.
    pub fn head(&self) -> usize {
        self.next
    }

    /// Whether every window is complete.
    pub fn finished(&self) -> bool {
        self.next == self.windows.len()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn windows(n: i64) -> Vec<Window> {
        (0..n)
            .map(|i| Window {
                start: Utc.timestamp_opt(i * 100, 0).unwrap(),
                end: Utc.timestamp_opt((i + 1) * 100, 0).unwrap(),
            })
            .collect()
    }

    #[test]
    fn the_cursor_moves_over_complete_windows_in_order_only() {
        let mut tracker = Tracker::new(windows(3));
        tracker.add(0);
        tracker.read(0);
        tracker.add(1);
        tracker.read(1);
        tracker.read(2);
        assert_eq!(
            tracker.advance(),
            None,
            "window 0 still has a record in flight"
        );
        tracker.settle(1);
        assert_eq!(
            tracker.advance(),
            None,
            "window 1 is done but window 0 is not"
        );
        tracker.settle(0);
        assert_eq!(
            tracker.advance(),
            Some(Utc.timestamp_opt(300, 0).unwrap()),
            "all three at once"
        );
        assert!(tracker.finished());
        assert_eq!(tracker.advance(), None);
    }

    #[test]
    fn an_unread_window_holds_the_cursor_even_when_empty() {
        let mut tracker = Tracker::new(windows(2));
        tracker.read(0);
        assert_eq!(tracker.advance(), Some(Utc.timestamp_opt(100, 0).unwrap()));
        assert_eq!(tracker.advance(), None);
        assert!(!tracker.finished());
    }
}
