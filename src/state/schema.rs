//! The state database's schema and its migrations.
//!
//! The schema version lives in SQLite's `PRAGMA user_version`. Each entry of [`MIGRATIONS`]
//! takes the database from version `n` to `n + 1` and runs in one transaction together with
//! the version bump, so a crash mid-migration leaves the previous version intact. Migrations
//! are only ever appended: a released one is never edited.
//!
//! This module knows tables, not records: reading and writing rows is the business of
//! `state` itself.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Error, ErrorKind, Result};

/// One SQL script per schema version; index 0 creates version 1.
///
/// Every table is `STRICT`, so a value of the wrong type is an error instead of being stored
/// silently. Times are RFC 3339 UTC text of fixed width (nanoseconds, `Z`), so text order is
/// time order and `sqlite3` users can pass them to `datetime()`; since version 4 the ledger's
/// own times are integer nanoseconds since the Unix epoch, a third of the bytes.
pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE cursors (
    flow    TEXT PRIMARY KEY NOT NULL CHECK (flow <> ''),
    value   TEXT NOT NULL,
    updated TEXT NOT NULL
) STRICT;

CREATE TABLE ledger (
    flow          TEXT NOT NULL CHECK (flow <> ''),
    key           TEXT NOT NULL CHECK (key <> ''),
    status        TEXT NOT NULL CHECK (status IN ('in_flight', 'done', 'failed', 'conflict')),
    hash          TEXT,
    target_id     TEXT,
    target_number TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error    TEXT,
    error_field   TEXT,
    source        TEXT CHECK (source IS NULL OR json_valid(source)),
    modified      TEXT,
    first_seen    TEXT NOT NULL,
    updated       TEXT NOT NULL,
    -- When the target first confirmed the key. Set once, never cleared: from then on the
    -- key is in the target and must never be sent as a new record again.
    done_at       TEXT,
    PRIMARY KEY (flow, key),
    CHECK (status <> 'done' OR done_at IS NOT NULL),
    -- A written key can only be done, or done and reported as changed since (conflict).
    CHECK (done_at IS NULL OR status IN ('done', 'conflict'))
) STRICT;

CREATE INDEX ledger_by_status ON ledger (flow, status, first_seen);

-- The ledger is the exactly-once guarantee, so "once done, done" holds here and not only in
-- the Rust that writes it: a late failure report, a release or a resend mark for a written
-- key is skipped (RAISE(IGNORE) drops that one change and keeps the transaction going).
CREATE TRIGGER ledger_done_is_never_downgraded
BEFORE UPDATE OF status, done_at ON ledger
WHEN OLD.done_at IS NOT NULL
 AND (NEW.status NOT IN ('done', 'conflict') OR NEW.done_at IS NOT OLD.done_at)
BEGIN
    SELECT RAISE(IGNORE);
END;

CREATE TRIGGER ledger_done_is_never_deleted
BEFORE DELETE ON ledger
WHEN OLD.done_at IS NOT NULL
BEGIN
    SELECT RAISE(IGNORE);
END;

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    flow        TEXT NOT NULL CHECK (flow <> ''),
    kind        TEXT NOT NULL CHECK (kind IN ('run', 'dry_run', 'backfill', 'retry')),
    started     TEXT NOT NULL,
    -- NULL while running, and forever for a run that crashed.
    finished    TEXT,
    outcome     TEXT CHECK (outcome IN ('ok', 'partial', 'failed')),
    window_from TEXT,
    window_to   TEXT,
    read        INTEGER CHECK (read >= 0),
    written     INTEGER CHECK (written >= 0),
    skipped     INTEGER CHECK (skipped >= 0),
    failed      INTEGER CHECK (failed >= 0),
    message     TEXT,
    CHECK ((finished IS NULL) = (outcome IS NULL))
) STRICT;

CREATE INDEX runs_by_flow ON runs (flow, id);
"#,
    // Version 2, the slim ledger: a record's source moves to its own table and lives only
    // while the key is not done, so ledger rows stay about 250 bytes and deleting sources
    // frees whole pages of `sources` instead of leaving holes in the ledger's pages. The
    // ledger is keyed by (flow, key) without a rowid (one b-tree instead of a table and its
    // key index), and indexed by status only where the status is not done: the listings look
    // for keys in flight or parked, which stay few while done keys grow with every run.
    r#"
CREATE TABLE ledger_v2 (
    flow          TEXT NOT NULL CHECK (flow <> ''),
    key           TEXT NOT NULL CHECK (key <> ''),
    status        TEXT NOT NULL CHECK (status IN ('in_flight', 'done', 'failed', 'conflict')),
    hash          TEXT,
    target_id     TEXT,
    target_number TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error    TEXT,
    error_field   TEXT,
    modified      TEXT,
    first_seen    TEXT NOT NULL,
    updated       TEXT NOT NULL,
    -- When the target first confirmed the key. Set once, never cleared: from then on the
    -- key is in the target and must never be sent as a new record again.
    done_at       TEXT,
    PRIMARY KEY (flow, key),
    CHECK (status <> 'done' OR done_at IS NOT NULL),
    -- A written key can only be done, or done and reported as changed since (conflict).
    CHECK (done_at IS NULL OR status IN ('done', 'conflict'))
) STRICT, WITHOUT ROWID;

INSERT INTO ledger_v2 (flow, key, status, hash, target_id, target_number, attempts, last_error,
                       error_field, modified, first_seen, updated, done_at)
SELECT flow, key, status, hash, target_id, target_number, attempts, last_error, error_field,
       modified, first_seen, updated, done_at
FROM ledger;

-- The source record of a key in flight or parked, so that a resend, a lookup that finds
-- nothing and `retry` can map it again. A rowid table: sources are a few KB each, too large
-- for the pages of a table without rowid.
CREATE TABLE sources (
    flow   TEXT NOT NULL,
    key    TEXT NOT NULL,
    source TEXT NOT NULL CHECK (json_valid(source)),
    PRIMARY KEY (flow, key)
) STRICT;

INSERT INTO sources (flow, key, source)
SELECT flow, key, source FROM ledger WHERE source IS NOT NULL AND status <> 'done';

DROP TABLE ledger;
ALTER TABLE ledger_v2 RENAME TO ledger;

CREATE INDEX ledger_by_status ON ledger (flow, status, first_seen) WHERE status <> 'done';

CREATE TRIGGER ledger_done_is_never_downgraded
BEFORE UPDATE OF status, done_at ON ledger
WHEN OLD.done_at IS NOT NULL
 AND (NEW.status NOT IN ('done', 'conflict') OR NEW.done_at IS NOT OLD.done_at)
BEGIN
    SELECT RAISE(IGNORE);
END;

CREATE TRIGGER ledger_done_is_never_deleted
BEFORE DELETE ON ledger
WHEN OLD.done_at IS NOT NULL
BEGIN
    SELECT RAISE(IGNORE);
END;

-- A source is kept only while it may be needed: a key that becomes done, or whose row goes
-- away, takes its source with it, whichever code path (or `sqlite3` user) made the change.
CREATE TRIGGER ledger_done_drops_its_source
AFTER UPDATE OF status ON ledger
WHEN NEW.status = 'done'
BEGIN
    DELETE FROM sources WHERE flow = NEW.flow AND key = NEW.key;
END;

CREATE TRIGGER ledger_deleted_drops_its_source
AFTER DELETE ON ledger
BEGIN
    DELETE FROM sources WHERE flow = OLD.flow AND key = OLD.key;
END;
"#,
    // Version 3, changes carried to records already written. `kept` holds, for every key, the
    // newest source record read and the mapped record last sent, as one zlib-compressed JSON
    // document `{"source": …, "sent": …}` (see `state::kept`): `engine resend` re-maps the
    // source offline and diffs the result against what the target has. Unlike `sources` it
    // stays once the key is done. `updates` holds the updates under way, one per key, with the
    // step about to be sent; a crash leaves the row, and the next run finishes it from there.
    // An update only ever concerns a key the target confirmed: the database refuses any other.
    r#"
CREATE TABLE kept (
    flow   TEXT NOT NULL CHECK (flow <> ''),
    key    TEXT NOT NULL CHECK (key <> ''),
    packed BLOB NOT NULL,
    PRIMARY KEY (flow, key)
) STRICT;

CREATE TRIGGER ledger_deleted_drops_its_kept_record
AFTER DELETE ON ledger
BEGIN
    DELETE FROM kept WHERE flow = OLD.flow AND key = OLD.key;
END;

CREATE TABLE updates (
    flow     TEXT NOT NULL CHECK (flow <> ''),
    key      TEXT NOT NULL CHECK (key <> ''),
    -- The content hash of the mapped record being sent: the ledger's once it is applied.
    hash     TEXT NOT NULL,
    -- The call about to be sent: `update`, `upsert`, `unaudit:<n>`, `update_after_unaudit`
    -- or `reaudit:<n>`.
    step     TEXT NOT NULL CHECK (step IN ('update', 'upsert', 'update_after_unaudit')
                                  OR step GLOB 'unaudit:[0-9]*' OR step GLOB 'reaudit:[0-9]*'),
    -- The mapped record and its source, packed as in `kept`.
    packed   BLOB NOT NULL,
    modified TEXT,
    -- The target's refusal of the update after un-auditing: the record is audited again,
    -- then the change is parked with this message.
    refused  TEXT,
    sends    INTEGER NOT NULL DEFAULT 0 CHECK (sends >= 0),
    started  TEXT NOT NULL,
    updated  TEXT NOT NULL,
    PRIMARY KEY (flow, key)
) STRICT;

CREATE TRIGGER updates_are_for_written_keys
BEFORE INSERT ON updates
WHEN NOT EXISTS (SELECT 1 FROM ledger
                 WHERE flow = NEW.flow AND key = NEW.key AND done_at IS NOT NULL)
BEGIN
    SELECT RAISE(ABORT, 'an update needs a key the target confirmed');
END;
"#,
    // Version 4, ≤ 600 bytes a ledger row with kept records (#13). Kept documents are packed
    // with zstd against a dictionary trained per flow (`state::packing`), stored once in
    // `dictionaries`; each packed row names its dictionary (NULL: zlib, written before this
    // version; 0: none). `kept` rows are numbered and the ledger row names its kept row, so a
    // kept row carries neither the flow nor the key, has no index of its own, and rows are
    // appended to full pages. A source of a key in flight or parked is packed the same way
    // (`source` keeps the JSON text of rows written before). In the ledger, the content hash
    // is its 16 bytes when it is lowercase hex (text otherwise), and its times are integer
    // nanoseconds since the Unix epoch, UTC: `datetime(first_seen / 1e9, 'unixepoch')`.
    r#"
DROP TRIGGER updates_are_for_written_keys;

CREATE TABLE dictionaries (
    id      INTEGER PRIMARY KEY,
    flow    TEXT NOT NULL CHECK (flow <> ''),
    -- How many documents it was trained on, and when.
    samples INTEGER NOT NULL CHECK (samples > 0),
    made    TEXT NOT NULL,
    -- Packed ÷ raw bytes of the first documents packed with it, once measured.
    ratio   REAL,
    bytes   BLOB NOT NULL
) STRICT;

CREATE INDEX dictionaries_by_flow ON dictionaries (flow, id);

CREATE TABLE kept_v4 (
    id         INTEGER PRIMARY KEY,
    dictionary INTEGER CHECK (dictionary >= 0),
    packed     BLOB NOT NULL
) STRICT;

INSERT INTO kept_v4 (id, packed)
SELECT k.rowid, k.packed FROM kept AS k
WHERE EXISTS (SELECT 1 FROM ledger AS l WHERE l.flow = k.flow AND l.key = k.key);

CREATE TABLE ledger_v4 (
    flow          TEXT NOT NULL CHECK (flow <> ''),
    key           TEXT NOT NULL CHECK (key <> ''),
    status        TEXT NOT NULL CHECK (status IN ('in_flight', 'done', 'failed', 'conflict')),
    hash          ANY CHECK (hash IS NULL OR typeof(hash) IN ('blob', 'text')),
    target_id     TEXT,
    target_number TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error    TEXT,
    error_field   TEXT,
    modified      TEXT,
    first_seen    INTEGER NOT NULL,
    updated       INTEGER NOT NULL,
    -- When the target first confirmed the key. Set once, never cleared: from then on the
    -- key is in the target and must never be sent as a new record again.
    done_at       INTEGER,
    -- The key's row in `kept`, if it has one.
    kept          INTEGER,
    PRIMARY KEY (flow, key),
    CHECK (status <> 'done' OR done_at IS NOT NULL),
    -- A written key can only be done, or done and reported as changed since (conflict).
    CHECK (done_at IS NULL OR status IN ('done', 'conflict'))
) STRICT, WITHOUT ROWID;

-- Times were RFC 3339 text of fixed width (nanoseconds, `Z`); any other form SQLite can read
-- counts to the millisecond, and one it cannot read fails the migration.
INSERT INTO ledger_v4 (flow, key, status, hash, target_id, target_number, attempts, last_error,
                       error_field, modified, first_seen, updated, done_at, kept)
SELECT l.flow, l.key, l.status,
       CASE WHEN l.hash <> '' AND length(l.hash) % 2 = 0 AND l.hash NOT GLOB '*[^0-9a-f]*'
            THEN unhex(l.hash) ELSE l.hash END,
       l.target_id, l.target_number, l.attempts, l.last_error, l.error_field, l.modified,
       CASE WHEN length(l.first_seen) = 30 AND substr(l.first_seen, 20, 1) = '.'
            THEN unixepoch(substr(l.first_seen, 1, 19)) * 1000000000
                 + CAST(substr(l.first_seen, 21, 9) AS INTEGER)
            ELSE CAST(unixepoch(l.first_seen, 'subsec') * 1000 AS INTEGER) * 1000000 END,
       CASE WHEN length(l.updated) = 30 AND substr(l.updated, 20, 1) = '.'
            THEN unixepoch(substr(l.updated, 1, 19)) * 1000000000
                 + CAST(substr(l.updated, 21, 9) AS INTEGER)
            ELSE CAST(unixepoch(l.updated, 'subsec') * 1000 AS INTEGER) * 1000000 END,
       CASE WHEN l.done_at IS NULL THEN NULL
            WHEN length(l.done_at) = 30 AND substr(l.done_at, 20, 1) = '.'
            THEN unixepoch(substr(l.done_at, 1, 19)) * 1000000000
                 + CAST(substr(l.done_at, 21, 9) AS INTEGER)
            ELSE CAST(unixepoch(l.done_at, 'subsec') * 1000 AS INTEGER) * 1000000 END,
       (SELECT k.rowid FROM kept AS k WHERE k.flow = l.flow AND k.key = l.key)
FROM ledger AS l;

-- A source is packed, or JSON text kept before version 4, or neither: then it is the source
-- of the key's kept row, written with it when the key was marked in flight (see `kept`).
CREATE TABLE sources_v4 (
    flow       TEXT NOT NULL,
    key        TEXT NOT NULL,
    source     TEXT CHECK (source IS NULL OR json_valid(source)),
    dictionary INTEGER CHECK (dictionary >= 0),
    packed     BLOB,
    PRIMARY KEY (flow, key),
    CHECK (source IS NULL OR packed IS NULL),
    CHECK ((dictionary IS NULL) = (packed IS NULL))
) STRICT;

INSERT INTO sources_v4 (flow, key, source) SELECT flow, key, source FROM sources;

DROP TABLE ledger;
DROP TABLE kept;
DROP TABLE sources;
ALTER TABLE ledger_v4 RENAME TO ledger;
ALTER TABLE kept_v4 RENAME TO kept;
ALTER TABLE sources_v4 RENAME TO sources;

CREATE INDEX ledger_by_status ON ledger (flow, status, first_seen) WHERE status <> 'done';

CREATE TRIGGER ledger_done_is_never_downgraded
BEFORE UPDATE OF status, done_at ON ledger
WHEN OLD.done_at IS NOT NULL
 AND (NEW.status NOT IN ('done', 'conflict') OR NEW.done_at IS NOT OLD.done_at)
BEGIN
    SELECT RAISE(IGNORE);
END;

CREATE TRIGGER ledger_done_is_never_deleted
BEFORE DELETE ON ledger
WHEN OLD.done_at IS NOT NULL
BEGIN
    SELECT RAISE(IGNORE);
END;

CREATE TRIGGER ledger_done_drops_its_source
AFTER UPDATE OF status ON ledger
WHEN NEW.status = 'done'
BEGIN
    DELETE FROM sources WHERE flow = NEW.flow AND key = NEW.key;
END;

CREATE TRIGGER ledger_deleted_drops_its_source
AFTER DELETE ON ledger
BEGIN
    DELETE FROM sources WHERE flow = OLD.flow AND key = OLD.key;
END;

CREATE TRIGGER ledger_deleted_drops_its_kept_record
AFTER DELETE ON ledger
WHEN OLD.kept IS NOT NULL
BEGIN
    DELETE FROM kept WHERE id = OLD.kept;
END;

ALTER TABLE updates ADD COLUMN dictionary INTEGER CHECK (dictionary >= 0);

CREATE TRIGGER updates_are_for_written_keys
BEFORE INSERT ON updates
WHEN NOT EXISTS (SELECT 1 FROM ledger
                 WHERE flow = NEW.flow AND key = NEW.key AND done_at IS NOT NULL)
BEGIN
    SELECT RAISE(ABORT, 'an update needs a key the target confirmed');
END;
"#,
    // Version 5, the ledger's status checked without an `IN` list. SQLite checks
    // `status IN (four values)` by building a temporary b-tree of the four values for every
    // row it writes (a list of more than two constants is not compared one by one): a
    // temporary database opened and a page zeroed for each in-flight mark and each outcome,
    // about 5% of a run's instructions. The same values, compared one by one, check the same.
    r#"
DROP TRIGGER updates_are_for_written_keys;

CREATE TABLE ledger_v5 (
    flow          TEXT NOT NULL CHECK (flow <> ''),
    key           TEXT NOT NULL CHECK (key <> ''),
    status        TEXT NOT NULL CHECK (status = 'in_flight' OR status = 'done'
                                       OR status = 'failed' OR status = 'conflict'),
    hash          ANY CHECK (hash IS NULL OR typeof(hash) IN ('blob', 'text')),
    target_id     TEXT,
    target_number TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error    TEXT,
    error_field   TEXT,
    modified      TEXT,
    first_seen    INTEGER NOT NULL,
    updated       INTEGER NOT NULL,
    -- When the target first confirmed the key. Set once, never cleared: from then on the
    -- key is in the target and must never be sent as a new record again.
    done_at       INTEGER,
    -- The key's row in `kept`, if it has one.
    kept          INTEGER,
    PRIMARY KEY (flow, key),
    CHECK (status <> 'done' OR done_at IS NOT NULL),
    -- A written key can only be done, or done and reported as changed since (conflict).
    CHECK (done_at IS NULL OR status IN ('done', 'conflict'))
) STRICT, WITHOUT ROWID;

INSERT INTO ledger_v5 (flow, key, status, hash, target_id, target_number, attempts, last_error,
                       error_field, modified, first_seen, updated, done_at, kept)
SELECT flow, key, status, hash, target_id, target_number, attempts, last_error, error_field,
       modified, first_seen, updated, done_at, kept
FROM ledger;

DROP TABLE ledger;
ALTER TABLE ledger_v5 RENAME TO ledger;

CREATE INDEX ledger_by_status ON ledger (flow, status, first_seen) WHERE status <> 'done';

CREATE TRIGGER ledger_done_is_never_downgraded
BEFORE UPDATE OF status, done_at ON ledger
WHEN OLD.done_at IS NOT NULL
 AND (NEW.status NOT IN ('done', 'conflict') OR NEW.done_at IS NOT OLD.done_at)
BEGIN
    SELECT RAISE(IGNORE);
END;

CREATE TRIGGER ledger_done_is_never_deleted
BEFORE DELETE ON ledger
WHEN OLD.done_at IS NOT NULL
BEGIN
    SELECT RAISE(IGNORE);
END;

CREATE TRIGGER ledger_done_drops_its_source
AFTER UPDATE OF status ON ledger
WHEN NEW.status = 'done'
BEGIN
    DELETE FROM sources WHERE flow = NEW.flow AND key = NEW.key;
END;

CREATE TRIGGER ledger_deleted_drops_its_source
AFTER DELETE ON ledger
BEGIN
    DELETE FROM sources WHERE flow = OLD.flow AND key = OLD.key;
END;

CREATE TRIGGER ledger_deleted_drops_its_kept_record
AFTER DELETE ON ledger
WHEN OLD.kept IS NOT NULL
BEGIN
    DELETE FROM kept WHERE id = OLD.kept;
END;

CREATE TRIGGER updates_are_for_written_keys
BEFORE INSERT ON updates
WHEN NOT EXISTS (SELECT 1 FROM ledger
                 WHERE flow = NEW.flow AND key = NEW.key AND done_at IS NOT NULL)
BEGIN
    SELECT RAISE(ABORT, 'an update needs a key the target confirmed');
END;
"#,
    // Version 6, no row that only says "the kept record is the source". A key not yet written
    // whose source is its kept row's has no `sources` row at all: marking a new key in flight
    // wrote such a row and writing the key deleted it again (two of a record's seven b-tree
    // changes, and their pages in both of a batch's commits).
    r#"
DELETE FROM sources WHERE source IS NULL AND packed IS NULL;
"#,
    // Version 7, the ledger in the order its keys were first marked, not in key order: a rowid
    // table, `(flow, key)` unique through the index SQLite makes for the primary key. Keys
    // arrive in no order of theirs (the source's by time), so each key of a batch sat on a
    // page of its own, written to the log at its mark and again at its outcome; now a batch's
    // rows share a few pages and only the key index is written page by page at the mark. On
    // `api 20000` (batches of 50): 84 → 38 pages written to the log a batch (30,245 → 13,831
    // in all) and 4,458 → 3,254 to the file, 7% less of the run's CPU, for about 25 bytes a
    // row more (the key is in the index as well as in the row: 563 → 589 bytes a row).
    // Copies the ledger once, in the order its rows were first seen.
    r#"
DROP TRIGGER updates_are_for_written_keys;

CREATE TABLE ledger_v7 (
    flow          TEXT NOT NULL CHECK (flow <> ''),
    key           TEXT NOT NULL CHECK (key <> ''),
    status        TEXT NOT NULL CHECK (status = 'in_flight' OR status = 'done'
                                       OR status = 'failed' OR status = 'conflict'),
    hash          ANY CHECK (hash IS NULL OR typeof(hash) IN ('blob', 'text')),
    target_id     TEXT,
    target_number TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error    TEXT,
    error_field   TEXT,
    modified      TEXT,
    first_seen    INTEGER NOT NULL,
    updated       INTEGER NOT NULL,
    -- When the target first confirmed the key. Set once, never cleared: from then on the
    -- key is in the target and must never be sent as a new record again.
    done_at       INTEGER,
    -- The key's row in `kept`, if it has one.
    kept          INTEGER,
    PRIMARY KEY (flow, key),
    CHECK (status <> 'done' OR done_at IS NOT NULL),
    -- A written key can only be done, or done and reported as changed since (conflict).
    CHECK (done_at IS NULL OR status IN ('done', 'conflict'))
) STRICT;

INSERT INTO ledger_v7 (flow, key, status, hash, target_id, target_number, attempts, last_error,
                       error_field, modified, first_seen, updated, done_at, kept)
SELECT flow, key, status, hash, target_id, target_number, attempts, last_error, error_field,
       modified, first_seen, updated, done_at, kept
FROM ledger ORDER BY first_seen, key;

DROP TABLE ledger;
ALTER TABLE ledger_v7 RENAME TO ledger;

CREATE INDEX ledger_by_status ON ledger (flow, status, first_seen) WHERE status <> 'done';

CREATE TRIGGER ledger_done_is_never_downgraded
BEFORE UPDATE OF status, done_at ON ledger
WHEN OLD.done_at IS NOT NULL
 AND (NEW.status NOT IN ('done', 'conflict') OR NEW.done_at IS NOT OLD.done_at)
BEGIN
    SELECT RAISE(IGNORE);
END;

CREATE TRIGGER ledger_done_is_never_deleted
BEFORE DELETE ON ledger
WHEN OLD.done_at IS NOT NULL
BEGIN
    SELECT RAISE(IGNORE);
END;

CREATE TRIGGER ledger_done_drops_its_source
AFTER UPDATE OF status ON ledger
WHEN NEW.status = 'done'
BEGIN
    DELETE FROM sources WHERE flow = NEW.flow AND key = NEW.key;
END;

CREATE TRIGGER ledger_deleted_drops_its_source
AFTER DELETE ON ledger
BEGIN
    DELETE FROM sources WHERE flow = OLD.flow AND key = OLD.key;
END;

CREATE TRIGGER ledger_deleted_drops_its_kept_record
AFTER DELETE ON ledger
WHEN OLD.kept IS NOT NULL
BEGIN
    DELETE FROM kept WHERE id = OLD.kept;
END;

CREATE TRIGGER updates_are_for_written_keys
BEFORE INSERT ON updates
WHEN NOT EXISTS (SELECT 1 FROM ledger
                 WHERE flow = NEW.flow AND key = NEW.key AND done_at IS NOT NULL)
BEGIN
    SELECT RAISE(ABORT, 'an update needs a key the target confirmed');
END;
"#,
    // Version 8, a ledger row names its flow by number: `flows` holds each flow's name once,
    // and the ledger and its key index hold the flow's id (1 for the first flow, which SQLite
    // stores in no byte at all) instead of its name. The bundled flow, `refund`, saves 14
    // bytes a row (6 in the row, 6 in the index, and fuller pages: on `api 20000` the ledger
    // and its key index took 763 pages, now 700), and a flow's name no longer costs anything
    // per record, however long it is. The key index has a quarter fewer pages, so a batch's
    // marks write fewer of them. The column is `flow_id`, not `flow`: a statement still
    // comparing it with a name fails when prepared instead of matching nothing. Since this version a target number that is the key is stored as `''`
    // (`state::ledger::number_as_stored`); the engine never stored an empty number before, and
    // one typed in by hand becomes no number (NULL), so that `''` means only that.
    // Copies the ledger once, in the order of its rows.
    r#"
CREATE TABLE flows (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> '')
) STRICT;

INSERT INTO flows (name) SELECT DISTINCT flow FROM ledger ORDER BY flow;

DROP TRIGGER updates_are_for_written_keys;

CREATE TABLE ledger_v8 (
    flow_id       INTEGER NOT NULL REFERENCES flows (id),
    key           TEXT NOT NULL CHECK (key <> ''),
    status        TEXT NOT NULL CHECK (status = 'in_flight' OR status = 'done'
                                       OR status = 'failed' OR status = 'conflict'),
    hash          ANY CHECK (hash IS NULL OR typeof(hash) IN ('blob', 'text')),
    target_id     TEXT,
    target_number TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error    TEXT,
    error_field   TEXT,
    modified      TEXT,
    first_seen    INTEGER NOT NULL,
    updated       INTEGER NOT NULL,
    -- When the target first confirmed the key. Set once, never cleared: from then on the
    -- key is in the target and must never be sent as a new record again.
    done_at       INTEGER,
    -- The key's row in `kept`, if it has one.
    kept          INTEGER,
    PRIMARY KEY (flow_id, key),
    CHECK (status <> 'done' OR done_at IS NOT NULL),
    -- A written key can only be done, or done and reported as changed since (conflict).
    CHECK (done_at IS NULL OR status IN ('done', 'conflict'))
) STRICT;

INSERT INTO ledger_v8 (flow_id, key, status, hash, target_id, target_number, attempts,
                       last_error, error_field, modified, first_seen, updated, done_at, kept)
SELECT f.id, l.key, l.status, l.hash, l.target_id, NULLIF(l.target_number, ''), l.attempts,
       l.last_error, l.error_field, l.modified, l.first_seen, l.updated, l.done_at, l.kept
FROM ledger AS l JOIN flows AS f ON f.name = l.flow ORDER BY l.rowid;

DROP TABLE ledger;
ALTER TABLE ledger_v8 RENAME TO ledger;

CREATE INDEX ledger_by_status ON ledger (flow_id, status, first_seen) WHERE status <> 'done';

CREATE TRIGGER ledger_done_is_never_downgraded
BEFORE UPDATE OF status, done_at ON ledger
WHEN OLD.done_at IS NOT NULL
 AND (NEW.status NOT IN ('done', 'conflict') OR NEW.done_at IS NOT OLD.done_at)
BEGIN
    SELECT RAISE(IGNORE);
END;

CREATE TRIGGER ledger_done_is_never_deleted
BEFORE DELETE ON ledger
WHEN OLD.done_at IS NOT NULL
BEGIN
    SELECT RAISE(IGNORE);
END;

CREATE TRIGGER ledger_done_drops_its_source
AFTER UPDATE OF status ON ledger
WHEN NEW.status = 'done'
BEGIN
    DELETE FROM sources
    WHERE flow = (SELECT name FROM flows WHERE id = NEW.flow_id) AND key = NEW.key;
END;

CREATE TRIGGER ledger_deleted_drops_its_source
AFTER DELETE ON ledger
BEGIN
    DELETE FROM sources
    WHERE flow = (SELECT name FROM flows WHERE id = OLD.flow_id) AND key = OLD.key;
END;

CREATE TRIGGER ledger_deleted_drops_its_kept_record
AFTER DELETE ON ledger
WHEN OLD.kept IS NOT NULL
BEGIN
    DELETE FROM kept WHERE id = OLD.kept;
END;

CREATE TRIGGER updates_are_for_written_keys
BEFORE INSERT ON updates
WHEN NOT EXISTS (SELECT 1 FROM ledger
                 WHERE flow_id = (SELECT id FROM flows WHERE name = NEW.flow)
                   AND key = NEW.key AND done_at IS NOT NULL)
BEGIN
    SELECT RAISE(ABORT, 'an update needs a key the target confirmed');
END;
"#,
];

/// The schema version this build of `engine` writes.
pub(crate) const LATEST: u32 = MIGRATIONS.len() as u32;

/// The database's schema version (0 for a new, empty database).
pub(crate) fn version(connection: &Connection) -> rusqlite::Result<u32> {
    connection.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// The refusal of a database written by a newer engine.
pub(crate) fn newer_than_this_engine(name: &str, version: u32) -> Error {
    Error::new(
        ErrorKind::State,
        format!(
            "the state database `{name}` has schema version `{version}`, newer than version \
             `{LATEST}` of this engine"
        ),
    )
    .with_hint("use the engine release that wrote it, or a newer one")
}

/// Bring the database up to [`LATEST`]; returns how many migrations ran (0 when it was
/// already up to date, in which case nothing was written and no write lock was taken).
pub(crate) fn migrate(connection: &mut Connection, name: &str) -> Result<usize> {
    let failed = |source: rusqlite::Error| super::open::database_error(name, "migrate", source);
    // Reading the version needs no write lock, so `engine state` works while another process
    // writes; only a database that needs a migration waits for the write lock.
    let current = version(connection).map_err(failed)?;
    if current > LATEST {
        return Err(newer_than_this_engine(name, current));
    }
    if current == LATEST {
        return Ok(0);
    }
    let mut applied = 0;
    loop {
        // IMMEDIATE takes the write lock before reading the version, so two processes opening
        // the same new file cannot both run the same migration.
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed)?;
        let current = version(&tx).map_err(failed)?;
        if current > LATEST {
            return Err(newer_than_this_engine(name, current));
        }
        let Some(script) = MIGRATIONS.get(current as usize) else {
            // Up to date: dropping `tx` rolls back a transaction that wrote nothing.
            return Ok(applied);
        };
        tx.execute_batch(script).map_err(failed)?;
        tx.pragma_update(None, "user_version", current + 1)
            .map_err(failed)?;
        tx.commit().map_err(failed)?;
        applied += 1;
    }
}

/// SQLite's `auto_vacuum` value for INCREMENTAL.
const AUTO_VACUUM_INCREMENTAL: u32 = 2;

/// Rewrite a file made before version 2 once so that incremental auto-vacuum is on (SQLite
/// applies it to a file with tables only through a `VACUUM`). A file made since, or converted already, is left alone, so this costs one read.
/// A crash during the rewrite leaves the file as it was, and the next open does it again.
pub(crate) fn vacuum_once(connection: &Connection, name: &str) -> Result<()> {
    let failed = |source: rusqlite::Error| super::open::database_error(name, "migrate", source);
    let mode: u32 = connection
        .pragma_query_value(None, "auto_vacuum", |row| row.get(0))
        .map_err(failed)?;
    if mode == AUTO_VACUUM_INCREMENTAL {
        return Ok(());
    }
    connection
        .execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")
        .map_err(failed)
}
