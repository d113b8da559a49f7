//! The `none` strategy: one answer holds the whole window. Nothing is followed, so an answer
//! that signals more (a `Link: rel="next"`, `has_more: true` or a next token in a well-known
//! place, a total above its records, a page as full as `max_page_size`) fails the window
//! instead of ending it short. Pure.

use std::collections::HashSet;

use crate::source::strategy::{Answer, Next, Pager, header_total_above, unfollowed_more};

#[derive(Debug)]
pub struct Single {
    max_page_size: Option<u32>,
    next: Next,
}

impl Single {
    pub fn new(max_page_size: Option<u32>) -> Single {
        Single {
            max_page_size,
            next: Next::First,
        }
    }
}

impl Pager for Single {
    fn next(&self) -> Next {
        self.next.clone()
    }

    fn observe(&mut self, answer: &Answer) {
        let held = answer.keys.iter().collect::<HashSet<_>>().len() as u64;
        let why = unfollowed_more(answer, false, true)
            .or_else(|| header_total_above(answer))
            .or_else(|| {
                answer.total.filter(|total| *total > held).map(|total| {
                    format!("the total says {total} record(s) but the answer holds {held}")
                })
            })
            .or_else(|| {
                self.max_page_size
                    .filter(|max| answer.count >= *max as usize)
                    .map(|max| {
                        format!("the answer holds {} records, a full page of `max_page_size` {max}: more were likely cut off", answer.count)
                    })
            });
        self.next = match why {
            Some(why) => Next::Failed(format!(
                "{why}; pagination `none` reads one answer per window (declare the strategy the API pages with)"
            )),
            None => Next::Done,
        };
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::source::strategy::tests::{Headers, answer};

    #[test]
    fn one_answer_that_signals_more_fails_the_window() {
        let link = vec![(
            "link".to_string(),
            "</items?page=2>; rel=\"next\"".to_string(),
        )];
        let plain = json!({"data": []});
        let more = json!({"has_more": true});
        // (headers, body, keys, total, max_page_size, fails)
        type Case<'a> = (
            &'a Headers,
            &'a serde_json::Value,
            &'a [u64],
            Option<u64>,
            Option<u32>,
            bool,
        );
        let total_above = vec![("x-total-count".to_string(), "102".to_string())];
        let total_met = vec![("x-total-count".to_string(), "2".to_string())];
        let cases: [Case; 9] = [
            (&[], &plain, &[1, 2], None, None, false),
            // An offset API read as `none`: its default page, and the total in a header.
            (&total_above, &plain, &[1, 2], None, None, true),
            (&total_met, &plain, &[1, 2], None, None, false),
            (&[], &plain, &[1, 2], Some(2), Some(3), false),
            (&link, &plain, &[1, 2], None, None, true),
            (&[], &more, &[1, 2], None, None, true),
            (&[], &plain, &[1, 2], Some(5), None, true),
            (&[], &plain, &[1, 2, 3], None, Some(3), true),
            (&[], &plain, &[], Some(0), Some(3), false),
        ];
        for (headers, body, keys, total, max, fails) in cases {
            let mut single = Single::new(max);
            assert_eq!(single.next(), Next::First);
            single.observe(&answer(headers, body, keys, total, None));
            assert_eq!(
                matches!(single.next(), Next::Failed(_)),
                fails,
                "{body} {keys:?} {total:?} {max:?}: {:?}",
                single.next()
            );
            if !fails {
                assert_eq!(single.next(), Next::Done);
            }
        }
    }
}
