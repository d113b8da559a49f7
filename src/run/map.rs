//! The map stage: each record read, mapped into the target's shape.
//!
//! Pure work on one record at a time (`record::map_keyed`, with the key and last-modified time
//! the reader read), counted as read; it sees the mapping side of the flow, not the clients or
//! the ledger. A mapping failure travels on with its
//! record: whether it is parked depends on the ledger, which the batch stage checks.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::config::model::Flow;
use crate::error::Result;
use crate::record;
use crate::run::Summary;
use crate::run::progress::Progress;
use crate::run::stage::{ToBatch, send};
use crate::source::reader::Read;

pub struct MapStage {
    pub flow: Arc<Flow>,
    pub progress: Arc<Progress>,
}

impl MapStage {
    /// Map records until the reader is done; the summary holds the number read.
    pub async fn run(
        self,
        mut input: mpsc::Receiver<Read>,
        out: mpsc::Sender<ToBatch>,
    ) -> Result<Summary> {
        let mut read = 0;
        while let Some(item) = input.recv().await {
            let message = match item {
                Read::Record(record) => {
                    self.progress.read(1);
                    read += 1;
                    // The reader has evaluated the key and the last-modified time already.
                    let source = Arc::clone(&record.record);
                    let mapped = match record.keys() {
                        Some(keys) => record::map_keyed(&self.flow, source, keys),
                        None => record::map(&self.flow, source),
                    };
                    ToBatch::Record { record, mapped }
                }
                Read::WindowDone { index, .. } => ToBatch::WindowRead(index),
                Read::Closing => ToBatch::Closing,
            };
            send(&out, message).await?;
        }
        Ok(Summary {
            read,
            ..Summary::default()
        })
    }
}
