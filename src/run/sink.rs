//! The target end of a run: an API (`target::writer::Writer`) or files
//! (`file::target::FileTarget`), chosen once where the run starts.
//!
//! The stages, the recovery and `engine retry` see only this: write a batch, look keys up,
//! settle refusals. Each variant keeps its own exactly-once protocol.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::config::model::Flow;
use crate::error::{Error, ErrorKind, Result};
use crate::file::target::FileTarget;
use crate::run::settle::Verifier;
use crate::run::write::BatchWriter;
use crate::state::{Outcome, Store};
use crate::target::writer::{Found, Outgoing, Refused, Settled, Writer};
use crate::time::Clock;

pub enum Sink {
    Http(Box<Writer>),
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

    /// The API writer, when the target is an API (updates are sent through it).
    pub fn http(&self) -> Option<&Writer> {
        match self {
            Sink::Http(writer) => Some(writer),
            Sink::File(_) => None,
        }
    }

    /// Send changed versions of written records as updates (`target::update`); a file target
    /// takes none.
    pub async fn update_changes(&self, batch: Vec<Outgoing>) -> Result<Vec<Settled>> {
        match self {
            Sink::Http(writer) => crate::target::update::update_batch(writer, batch).await,
            Sink::File(_) => Err(Error::new(
                ErrorKind::State,
                format!(
                    "a file target takes no updates ({} changed record(s) asked)",
                    batch.len()
                ),
            )),
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

    async fn update(&self, batch: Vec<Outgoing>) -> Result<Vec<Settled>> {
        self.update_changes(batch).await
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
                        // The ledger has kept it since the record was marked in flight.
                        source: None,
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

#[cfg(test)]
mod tests {
    use crate::state::Doc;

    use serde_json::json;

    use super::*;
    use crate::config;
    use crate::record;
    use crate::run::progress::Progress;
    use crate::run::recover::recover;
    use crate::state::Source;
    use crate::state::{Pending, Status};
    use crate::time::{Clock, SystemClock};

    /// A flow from `{id, name}` records to a file connector with `file` as its `file:` section.
    fn file_flow(dir: &std::path::Path, file: &str) -> Arc<Flow> {
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "connectors/people_in.yaml",
            "name: people_in\nfile: { path: ../in.jsonl, format: jsonl }\n",
        );
        write(
            "connectors/people_out.yaml",
            &format!("name: people_out\nfile: {file}\n"),
        );
        write(
            "people.yaml",
            "source: { connector: people_in, operation: read }\ntarget: { connector: people_out, operation: write }\nkey: { source: \"{{ id }}\", target: id }\nmapping: { id: \"{{ id }}\", name: \"{{ name }}\" }\n",
        );
        let loaded = config::load_flow(&dir.join("people.yaml"));
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        Arc::new(loaded.value.unwrap())
    }

    fn outgoing(flow: &Flow, source: Json) -> Outgoing {
        let source = Arc::new(source);
        Outgoing {
            mapped: record::map(flow, Arc::clone(&source)).unwrap(),
            source: Source::Json(source),
            window: None,
        }
    }

    fn sink(flow: &Arc<Flow>, store: &Store) -> Sink {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let target = FileTarget::new(
            Arc::clone(flow),
            store.clone(),
            Arc::clone(&clock),
            clock.now(),
        );
        Sink::File(Arc::new(target.unwrap()))
    }

    #[tokio::test]
    async fn a_record_in_the_file_but_left_in_flight_is_found_and_the_others_are_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let flow = file_flow(dir.path(), "{ path: out.jsonl, format: jsonl }");
        let store = Store::in_memory().unwrap();
        let records = [
            json!({"id": "A", "name": "Ann"}),
            json!({"id": "B", "name": "Bo"}),
        ];
        let pending: Vec<Pending> = records
            .iter()
            .map(|source| {
                let o = outgoing(&flow, source.clone());
                let target = o.mapped.target();
                Pending {
                    key: o.mapped.key,
                    hash: o.mapped.hash,
                    source: Source::from(source.clone()),
                    target: Some(Doc::from(target)),
                    modified: None,
                }
            })
            .collect();
        // A crash after A's batch was renamed into the file, before the ledger heard of it;
        // B's batch never reached the file.
        store
            .mark_in_flight(&flow.name, &pending, chrono::Utc::now())
            .unwrap();
        let out = dir.path().join("connectors/out.jsonl");
        std::fs::write(&out, "{\"id\":\"A\",\"name\":\"Ann\"}\n").unwrap();
        let recovery = recover(&sink(&flow, &store), &Progress::plain())
            .await
            .unwrap();
        assert_eq!((recovery.written, recovery.failed), (2, 0));
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"id\":\"A\",\"name\":\"Ann\"}\n{\"id\":\"B\",\"name\":\"Bo\"}\n"
        );
        for key in ["A", "B"] {
            let entry = store.entry(&flow.name, key).unwrap().unwrap();
            assert_eq!(entry.status, Status::Done, "{key}");
            assert_eq!(entry.target_id.as_deref(), Some("out.jsonl"), "{key}");
        }
    }

    #[tokio::test]
    async fn a_csv_record_with_a_field_its_header_lacks_is_parked_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let flow = file_flow(dir.path(), "{ path: out.csv, format: csv }");
        let store = Store::in_memory().unwrap();
        let sink = sink(&flow, &store);
        let first = vec![outgoing(&flow, json!({"id": "A", "name": "Ann"}))];
        sink.write_now(first).await.unwrap();
        // Written before by another mapping: the header has no `name`.
        let out = dir.path().join("connectors/out.csv");
        std::fs::write(&out, "id\r\nZ\r\n").unwrap();
        let settled = sink
            .write_now(vec![outgoing(&flow, json!({"id": "B", "name": "Bo"}))])
            .await
            .unwrap();
        assert!(
            matches!(&settled[0], Settled::Failed { key, message } if key == "B" && message.starts_with("field `name` is not a column of `out.csv`")),
            "{settled:?}"
        );
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "id\r\nZ\r\n");
        let entry = store.entry(&flow.name, "B").unwrap().unwrap();
        assert_eq!(entry.status, Status::Failed);
        assert_eq!(
            store.entry(&flow.name, "A").unwrap().unwrap().status,
            Status::Done
        );
    }

    #[tokio::test]
    async fn under_replace_each_run_that_writes_starts_the_file_afresh_and_its_batches_add_up() {
        let dir = tempfile::tempdir().unwrap();
        let flow = file_flow(
            dir.path(),
            "{ path: out.jsonl, format: jsonl, mode: replace }",
        );
        let store = Store::in_memory().unwrap();
        let out = dir.path().join("connectors/out.jsonl");
        let person = |id: &str| outgoing(&flow, json!({"id": id, "name": id.to_lowercase()}));
        let first_run = sink(&flow, &store);
        first_run.write_now(vec![person("A")]).await.unwrap();
        first_run.write_now(vec![person("B")]).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"id\":\"A\",\"name\":\"a\"}\n{\"id\":\"B\",\"name\":\"b\"}\n"
        );
        let second_run = sink(&flow, &store);
        second_run.write_now(vec![person("C")]).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"id\":\"C\",\"name\":\"c\"}\n"
        );
        // A run that writes nothing leaves the last run's file as it is.
        let _third_run = sink(&flow, &store);
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"id\":\"C\",\"name\":\"c\"}\n"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("connectors"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".engine-tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
