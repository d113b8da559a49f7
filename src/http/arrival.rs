//! The moment a call's answer arrives, told to whoever waits for it: a reader sends the next
//! page's request as soon as the answer before it is in (HTTP 2xx, read whole), while that
//! answer is still parsed and its records taken, instead of after. The request sent on it
//! follows the arrival ([`Arrival::following`]) until it ends. If the answer then turns out
//! not to be the call's last (refused as too frequent or busy, unreadable, a lost session), or
//! the call fails, the call withdraws its arrival ([`Arrival::withdraw`]): what was sent on it
//! must not be used, and the call waits until it has ended before it tries again, so that the
//! server still sees one request at a time; a request following a withdrawn arrival makes no
//! further attempt of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use tokio::sync::Notify;

const WAITING: u8 = 0;
const ARRIVED: u8 = 1;
const SPOILED: u8 = 2;

/// One call's arrival: waiting, arrived, or spoiled (for good); and the requests sent on it
/// that have not ended.
#[derive(Debug, Default)]
pub struct Arrival {
    state: AtomicU8,
    followers: AtomicUsize,
    notify: Notify,
}

/// A request sent on an arrival, until it ends (dropped).
#[derive(Debug)]
pub struct Following(Arc<Arrival>);

impl Drop for Following {
    fn drop(&mut self) {
        if self.0.followers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.wake();
        }
    }
}

impl Arrival {
    fn wake(&self) {
        self.notify.notify_waiters();
        self.notify.notify_one();
    }

    /// The answer of the call's current attempt is in.
    pub(crate) fn arrive(&self) {
        if self
            .state
            .compare_exchange(WAITING, ARRIVED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.wake();
        }
    }

    /// Nothing sent on the arrival may be used (the call failed or tries again).
    pub(crate) fn spoil(&self) {
        if self.state.swap(SPOILED, Ordering::AcqRel) != SPOILED {
            self.wake();
        }
    }

    /// Spoil the arrival and wait until every request sent on it has ended.
    pub(crate) async fn withdraw(&self) {
        self.spoil();
        loop {
            let notified = self.notify.notified();
            if self.followers.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// A request is about to go out on the arrival: it follows it until the [`Following`] is
    /// dropped; `None` (send nothing) when the arrival is not usable.
    pub fn following(self: &Arc<Self>) -> Option<Following> {
        self.followers.fetch_add(1, Ordering::AcqRel);
        let following = Following(Arc::clone(self));
        self.usable().then_some(following)
    }

    /// Wait until the answer arrived (true) or the arrival was spoiled before it (false).
    pub async fn arrived(&self) -> bool {
        loop {
            let notified = self.notify.notified();
            match self.state.load(Ordering::Acquire) {
                ARRIVED => return true,
                SPOILED => return false,
                _ => notified.await,
            }
        }
    }

    /// Whether the answer has neither arrived nor been spoiled yet (nothing was sent on it).
    pub fn pending(&self) -> bool {
        self.state.load(Ordering::Acquire) == WAITING
    }

    /// Whether what was sent on the arrival may be used: it arrived and was not spoiled since.
    pub fn usable(&self) -> bool {
        self.state.load(Ordering::Acquire) == ARRIVED
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn a_waiter_learns_of_the_arrival_and_of_a_spoiled_one() {
        let arrival = Arc::new(Arrival::default());
        let waiter = tokio::spawn({
            let arrival = Arc::clone(&arrival);
            async move { arrival.arrived().await }
        });
        tokio::task::yield_now().await;
        arrival.arrive();
        assert!(waiter.await.unwrap());
        assert!(arrival.usable());
        // A later attempt spoils it for good; arriving again changes nothing.
        arrival.spoil();
        arrival.arrive();
        assert!(!arrival.usable());
        assert!(!arrival.arrived().await);

        let spoiled = Arc::new(Arrival::default());
        let waiter = tokio::spawn({
            let spoiled = Arc::clone(&spoiled);
            async move { spoiled.arrived().await }
        });
        spoiled.spoil();
        assert!(!waiter.await.unwrap());
    }

    #[tokio::test]
    async fn a_withdrawn_arrival_waits_for_the_request_that_follows_it() {
        let arrival = Arc::new(Arrival::default());
        arrival.arrive();
        let following = arrival.following().expect("usable");
        let ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let request = tokio::spawn({
            let ended = Arc::clone(&ended);
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(30)).await;
                ended.store(true, Ordering::SeqCst);
                drop(following);
            }
        });
        arrival.withdraw().await;
        assert!(
            ended.load(Ordering::SeqCst),
            "withdraw returned before the request ended"
        );
        assert!(!arrival.usable());
        assert!(
            arrival.following().is_none(),
            "nothing goes out on a withdrawn arrival"
        );
        arrival.withdraw().await;
        request.await.unwrap();
    }
}
