//! The target end of a run: an API (`target::writer::Writer`) or files
//! (`file::target::FileTarget`), chosen once where the run starts.
//!
//! The stages, the recovery and `engine retry` see only this: write a batch, look keys up,
//! settle refusals. Each variant keeps its own exactly-once protocol.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::config::model::Flow;
use crate::error::Result;
use crate::file::target::FileTarget;
use crate::run::settle::Verifier;
use crate::run::write::BatchWriter;
use crate::state::{Outcome, Store};
use crate::target::writer::{Found, Outgoing, Refused, Settled, Writer};
use crate::time::Clock;

pub enum Sink {
    Http(Writer),
    File(Arc<FileTarget>),
}

impl Sink {
    pub fn flow(&self) -> &Arc<Flow> {
        match self {
            Sink::Http(writer) => &writer.flow,
            Sink::File(target) => &target.flow,
        }
    }

    pub fn store(&self) -> &Store {
        match self {
            Sink::Http(writer) => &writer.store,
            Sink::File(target) => &target.store,
        }
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        match self {
            Sink::Http(writer) => &writer.clock,
            Sink::File(target) => &target.clock,
        }
    }

    /// Whether a record whose write was interrupted can be looked up (a file target reads
    /// its files; an API needs the flow's `target.lookup`).
    pub fn can_look_up(&self) -> bool {
        match self {
            Sink::Http(writer) => writer.flow.target.lookup.is_some(),
            Sink::File(_) => true,
        }
    }

    /// Look keys up in the target. Keys not in the map were not found.
    pub async fn lookup(&self, keys: &[String]) -> Result<HashMap<String, Found>> {
        match self {
            Sink::Http(writer) => writer.lookup(keys).await,
            Sink::File(target) => target.lookup(keys).await,
        }
    }

    /// Write one batch and settle every record of it before returning.
    pub async fn write_now(&self, batch: Vec<Outgoing>) -> Result<Vec<Settled>> {
        match self {
            Sink::Http(writer) => writer.write_now(batch).await,
            Sink::File(target) => target.write(batch).await,
        }
    }
}

impl BatchWriter for Sink {
    fn body(&self, batch: &[Outgoing]) -> Result<Json> {
        match self {
            Sink::Http(writer) => writer.body(batch),
            Sink::File(target) => Ok(target.body(batch)),
        }
    }

    async fn write(&self, batch: Vec<Outgoing>) -> Result<Vec<Settled>> {
        match self {
            Sink::Http(writer) => writer.write(batch).await,
            Sink::File(target) => target.write(batch).await,
        }
    }

    fn pauses(&self) -> u64 {
        match self {
            Sink::Http(writer) => writer.client.pauses(),
            Sink::File(_) => 0,
        }
    }
}

impl Verifier for Sink {
    fn max_keys(&self) -> usize {
        match self {
            Sink::Http(writer) => writer.max_keys(),
            Sink::File(_) => 1,
        }
    }

    async fn verify(&self, refused: Vec<Refused>) -> Result<Vec<Settled>> {
        match self {
            Sink::Http(writer) => writer.verify(refused).await,
            // A file target refuses nothing it has to look up; should a refusal come, it is
            // parked with its message rather than lost.
            Sink::File(target) => {
                let outcomes: Vec<Outcome> = refused
                    .iter()
                    .map(|r| Outcome::Failed {
                        key: r.key.clone(),
                        message: r.message.clone(),
                        field: r.field.clone(),
                        hash: Some(r.hash.clone()),
                        source: Some((*r.source).clone()),
                        modified: r.modified.clone(),
                    })
                    .collect();
                target
                    .store
                    .record_outcomes(&target.flow.name, &outcomes, target.clock.now())?;
                Ok(refused
                    .into_iter()
                    .map(|r| Settled::Failed {
                        key: r.key,
                        message: r.message,
                    })
                    .collect())
            }
        }
    }
}
