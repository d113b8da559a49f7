//! Compiles `target.concurrency` and `target.max_concurrency` into a `Concurrency`.
//!
//! `adaptive` is the default: it starts at the operation's `batch.concurrency` (never above
//! the maximum) and the run's controller moves it between 1 and `max_concurrency`.

use super::Compiler;
use crate::config::model::Concurrency;
use crate::config::raw::{RawConcurrency, RawTarget};
use crate::config::yaml::{Document, YamlPath};

/// The most write calls in flight under `concurrency: adaptive` unless the flow says otherwise.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 16;

pub(super) fn target_concurrency(
    cx: &mut Compiler,
    doc: &Document,
    root: &YamlPath,
    target: &RawTarget,
    initial: u32,
) -> Concurrency {
    let at = |key: &str| doc.locate(&root.key("target").key(key));
    let max = match target.max_concurrency {
        Some(0) => {
            cx.error(
                "`max_concurrency` must be at least 1",
                at("max_concurrency"),
                None,
            );
            DEFAULT_MAX_CONCURRENCY
        }
        Some(max) => max,
        None => DEFAULT_MAX_CONCURRENCY,
    };
    match target.concurrency {
        Some(RawConcurrency::Fixed(0)) => {
            cx.error(
                "`concurrency` must be at least 1",
                at("concurrency"),
                Some("give a number of write calls, or `adaptive`".to_string()),
            );
            Concurrency::Fixed(1)
        }
        Some(RawConcurrency::Fixed(n)) => {
            if target.max_concurrency.is_some() {
                cx.warning(
                    "`max_concurrency` only applies to `concurrency: adaptive`",
                    at("max_concurrency"),
                );
            }
            Concurrency::Fixed(n)
        }
        Some(RawConcurrency::Mode(_)) | None => Concurrency::Adaptive {
            initial: initial.clamp(1, max),
            max,
        },
    }
}
