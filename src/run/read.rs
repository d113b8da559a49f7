//! The read stage: the source's windows in order, every new record sent on as it is read.
//!
//! It owns the source client and sees the source side of the flow (through
//! `source::reader`), never the target or the ledger. A full channel makes it wait before the
//! next record, so it never reads more than two pages ahead of the mapping (the next page is
//! fetched while the last one's records wait).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::config::model::Flow;
use crate::error::{Error, ErrorKind, Result};
use crate::http::client::Client;
use crate::request::Env;
use crate::run::Summary;
use crate::run::progress::Progress;
use crate::source::reader::{Read, Reader, Seen};
use crate::source::window::Window;

/// A source without time windows is read once, as this one window.
pub const WHOLE: Window = Window {
    start: DateTime::<Utc>::MIN_UTC,
    end: DateTime::<Utc>::MAX_UTC,
};

/// Where the records come from: an API, or the files of a file connector (`file::source`).
pub enum Input {
    Http(Box<Client>),
    File,
}

pub struct ReadStage {
    pub flow: Arc<Flow>,
    pub input: Input,
    pub env: Env,
    /// The windows to read, in order; empty for a source without windows.
    pub windows: Vec<Window>,
    pub progress: Arc<Progress>,
}

impl ReadStage {
    /// Read every window; the summary holds the repeats dropped and the unsettled windows.
    pub async fn run(self, out: mpsc::Sender<Read>) -> Result<Summary> {
        let client = match &self.input {
            Input::Http(client) => client,
            Input::File => return self.read_files(out).await,
        };
        let lean = crate::source::lean::plan(&self.flow);
        let reader = Reader {
            flow: &self.flow,
            lean: lean.as_ref(),
            client,
            env: &self.env,
            progress: &*self.progress,
        };
        let windows = if self.windows.is_empty() {
            vec![WHOLE]
        } else {
            self.windows.clone()
        };
        let mut seen = Seen::default();
        let mut unsettled = 0;
        for (index, window) in windows.iter().enumerate() {
            let stats = reader
                .read_window(index, windows.len(), *window, &out, &mut seen)
                .await?;
            unsettled += u64::from(stats.unsettled);
        }
        Ok(Summary {
            duplicates: seen.duplicates,
            unsettled,
            ..Summary::default()
        })
    }

    /// A file source, read on a blocking thread.
    async fn read_files(self, out: mpsc::Sender<Read>) -> Result<Summary> {
        let windowed = !self.windows.is_empty();
        let windows = if windowed { self.windows } else { vec![WHOLE] };
        let (flow, progress) = (self.flow, self.progress);
        let read = tokio::task::spawn_blocking(move || {
            crate::file::source::read(&flow, &windows, windowed, &out, &*progress)
        })
        .await
        .map_err(|err| {
            Error::new(ErrorKind::State, "reading the files stopped").with_source(err)
        })??;
        Ok(Summary {
            duplicates: read.duplicates,
            ..Summary::default()
        })
    }
}
