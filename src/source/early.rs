//! Requests sent early: when the pager can tell the request after the one in flight (numbered
//! pages read in a planned order), the reader sends it as soon as the answer before it has
//! arrived whole (`http::arrival`), while that answer is parsed and its records taken and
//! keyed, instead of after. The server still sees one request at a time, in the order the
//! pager asks for them: a call whose answer is then refused waits for the early request to end
//! before it tries again. An early answer is used only if the pager, having read the answer
//! before it, asks for exactly that request and that answer stayed the call's last; otherwise
//! it is waited for and dropped unread (a read changes nothing on the server, so the only cost
//! is one request).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::Result;
use crate::http::arrival::Arrival;
use crate::source::strategy::Next;

/// A fetch under way, owned.
pub type Fetching<'f, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'f>>;

/// A request sent on the arrival of the answer before it.
pub struct Early<'f, T> {
    request: Next,
    /// The arrival it waits for: its answer is used only if that arrival stays usable.
    after: Arc<Arrival>,
    /// Its own arrival, for the request after it.
    arrival: Arc<Arrival>,
    fetching: Fetching<'f, T>,
    /// Its answer, when it came before the answer it follows was read.
    answer: Option<Result<T>>,
}

impl<'f, T: Send + 'f> Early<'f, T> {
    /// `fetch` (given this request's own arrival and `after`) once `after` has arrived,
    /// following it until the fetch ends; nothing is sent if `after` is spoiled first.
    pub fn new<F, Fut>(request: Next, after: &Arc<Arrival>, fetch: F) -> Early<'f, T>
    where
        F: FnOnce(Arc<Arrival>, Arc<Arrival>) -> Fut + Send + 'f,
        Fut: Future<Output = Result<T>> + Send + 'f,
    {
        let arrival = Arc::new(Arrival::default());
        let waited = Arc::clone(after);
        let own = Arc::clone(&arrival);
        let fetching: Fetching<'f, T> = Box::pin(async move {
            let withdrawn = || {
                Err(crate::error::Error::new(
                    crate::error::ErrorKind::Network,
                    "an early request withdrawn: the answer before it was not the last",
                ))
            };
            if !waited.arrived().await {
                return withdrawn();
            }
            let Some(_following) = waited.following() else {
                return withdrawn();
            };
            fetch(own, waited).await
        });
        Early {
            request,
            after: Arc::clone(after),
            arrival,
            fetching,
            answer: None,
        }
    }

    /// Whether this is the `wanted` request and the answer it followed stayed the one read.
    pub fn is_for(&self, wanted: &Next) -> bool {
        self.request == *wanted && self.after.usable()
    }

    /// Its answer (under way or in) and its arrival, for the request after it.
    pub fn into_parts(self) -> (Fetching<'f, T>, Arc<Arrival>) {
        let fetching = match self.answer {
            Some(answer) => Box::pin(std::future::ready(answer)),
            None => self.fetching,
        };
        (fetching, self.arrival)
    }

    /// An early request not wanted: if it may have been sent, wait for its answer and drop it
    /// unread, so that the server still sees one request at a time and the calls counted
    /// are the calls it answered; if it was not, just drop it.
    pub async fn finish(self) {
        if self.after.pending() || self.answer.is_some() {
            return;
        }
        let _ = self.fetching.await;
    }
}

/// The answer of `fetching`, the early request after it (if any) going on meanwhile.
pub async fn until_answered<'f, T>(
    mut fetching: Fetching<'f, T>,
    early: Option<&mut Early<'f, T>>,
) -> Result<T> {
    let Some(early) = early else {
        return fetching.await;
    };
    loop {
        tokio::select! {
            biased;
            answer = &mut fetching => return answer,
            answer = &mut early.fetching, if early.answer.is_none() => {
                early.answer = Some(answer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    /// A fetch that says when it was sent and answers after `delay`, telling its arrival.
    fn fetch(
        log: &Arc<Mutex<Vec<String>>>,
        name: &'static str,
        delay: u64,
        arrival: Arc<Arrival>,
    ) -> Fetching<'static, &'static str> {
        let log = Arc::clone(log);
        Box::pin(async move {
            log.lock().unwrap().push(format!("sent {name}"));
            tokio::time::sleep(Duration::from_millis(delay)).await;
            arrival.arrive();
            tokio::task::yield_now().await;
            log.lock().unwrap().push(format!("read {name}"));
            Ok(name)
        })
    }

    #[tokio::test]
    async fn the_next_request_goes_out_when_the_answer_before_it_arrives_and_is_used_if_wanted() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let first = Arc::new(Arrival::default());
        let fetching = fetch(&log, "page 3", 20, Arc::clone(&first));
        let early_log = Arc::clone(&log);
        let mut early = Early::new(Next::Page(2), &first, move |arrival, _| {
            fetch(&early_log, "page 2", 20, arrival)
        });
        assert_eq!(
            until_answered(fetching, Some(&mut early)).await.unwrap(),
            "page 3"
        );
        // Page 2 went out on page 3's arrival, before page 3 was read.
        assert_eq!(
            *log.lock().unwrap(),
            ["sent page 3", "sent page 2", "read page 3"]
        );
        assert!(early.is_for(&Next::Page(2)));
        let (fetching, _arrival) = early.into_parts();
        assert_eq!(fetching.await.unwrap(), "page 2");
    }

    #[tokio::test]
    async fn an_early_request_is_dropped_when_another_is_wanted_or_its_predecessor_tried_again() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let first = Arc::new(Arrival::default());
        let early_log = Arc::clone(&log);
        let early = Early::new(Next::Page(2), &first, move |arrival, _| {
            fetch(&early_log, "page 2", 1, arrival)
        });
        first.arrive();
        assert!(!early.is_for(&Next::Page(0)), "another page wanted");
        // It went out on the arrival: its answer is waited for, then dropped.
        early.finish().await;
        assert_eq!(*log.lock().unwrap(), ["sent page 2", "read page 2"]);

        let spoiled = Arc::new(Arrival::default());
        let early_log = Arc::clone(&log);
        let mut early = Early::new(Next::Page(2), &spoiled, move |arrival, _| {
            fetch(&early_log, "page 2", 1, arrival)
        });
        let fetching: Fetching<'static, &str> = Box::pin({
            let spoiled = Arc::clone(&spoiled);
            async move {
                spoiled.arrive();
                tokio::task::yield_now().await;
                // Spoiled after it arrived: what went out on it must not be used.
                spoiled.spoil();
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok("page 3")
            }
        });
        assert_eq!(
            until_answered(fetching, Some(&mut early)).await.unwrap(),
            "page 3"
        );
        assert!(!early.is_for(&Next::Page(2)), "sent too early");
        early.finish().await;

        // An answer that never arrived (not 2xx, yet read): nothing was sent on it, nor is.
        let never = Arc::new(Arrival::default());
        let sent_before = log.lock().unwrap().len();
        let early_log = Arc::clone(&log);
        let early = Early::new(Next::Page(2), &never, move |arrival, _| {
            fetch(&early_log, "page 2", 1, arrival)
        });
        assert!(!early.is_for(&Next::Page(2)));
        early.finish().await;
        assert_eq!(log.lock().unwrap().len(), sent_before);
    }
}
