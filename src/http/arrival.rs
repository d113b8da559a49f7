//! The moment a call's answer arrives, told to whoever waits for it: a reader sends the next
//! page's request as soon as the answer before it is in and accepted (its envelope says
//! success: no other attempt of the call follows), while the reader is still taking that
//! answer's records, instead of after. A call that fails spoils its arrival: nothing is sent
//! on it. The server so still sees one request at a time.

use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::Notify;

const WAITING: u8 = 0;
const ARRIVED: u8 = 1;
const SPOILED: u8 = 2;

/// One call's arrival: waiting, arrived, or spoiled (for good).
#[derive(Debug, Default)]
pub struct Arrival {
    state: AtomicU8,
    notify: Notify,
}

impl Arrival {
    /// The call's answer is in and accepted.
    pub(crate) fn arrive(&self) {
        if self
            .state
            .compare_exchange(WAITING, ARRIVED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.notify.notify_waiters();
            self.notify.notify_one();
        }
    }

    /// The call failed (or, for a caller's own use, must not be followed early): nothing sent
    /// on its arrival may be used.
    pub(crate) fn spoil(&self) {
        if self.state.swap(SPOILED, Ordering::AcqRel) != SPOILED {
            self.notify.notify_waiters();
            self.notify.notify_one();
        }
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
}
