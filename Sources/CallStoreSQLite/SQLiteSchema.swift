import GRDB

/// The SQLite schema, as GRDB migrations. Times are INTEGER unix milliseconds, JSON is TEXT.
enum SQLiteSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: v1)
        }
        migrator.registerMigration("v2-call-log-origin") { db in
            try db.execute(sql: v2CallLogOrigin)
        }
        return migrator
    }

    /// Who made each part's call log (`created` by callrec, or `given` by the sidecar's
    /// `call_log_id`), and the `skipped` state of a deletion step. Parts recorded before: a call
    /// log whose part carries a marker was created (the marker is written before the create);
    /// one without was given. SQLite cannot change a CHECK constraint, so `deletion_step` is
    /// rebuilt (nothing references it).
    static let v2CallLogOrigin = """
        ALTER TABLE part ADD COLUMN call_log_origin TEXT CHECK (call_log_origin IN ('created','given'));
        UPDATE part SET call_log_origin = CASE WHEN marker IS NOT NULL THEN 'created' ELSE 'given' END
          WHERE call_log_id IS NOT NULL;

        CREATE TABLE deletion_step_v2 (
          deletion_id TEXT    NOT NULL REFERENCES deletion (id) ON DELETE CASCADE,
          target      TEXT    NOT NULL,
          position    INTEGER NOT NULL,
          state       TEXT    NOT NULL CHECK (state IN ('pending','done','failed','skipped')),
          http_status INTEGER,
          detail      TEXT,
          updated_at  INTEGER NOT NULL,
          PRIMARY KEY (deletion_id, target)
        );
        INSERT INTO deletion_step_v2 (deletion_id, target, position, state, http_status, detail, updated_at)
          SELECT deletion_id, target, position, state, http_status, detail, updated_at FROM deletion_step;
        DROP TABLE deletion_step;
        ALTER TABLE deletion_step_v2 RENAME TO deletion_step;
        """

    /// research/queue-and-reconcile.md §(2), SQLite variant, plus `snooze_count`; then the ledger
    /// of CallStore.swift. `AUTOINCREMENT` so that an id is never reused after a prune (as a
    /// PostgreSQL sequence would not).
    static let v1 = """
        CREATE TABLE queue_job (
          id               INTEGER PRIMARY KEY AUTOINCREMENT,
          queue            TEXT    NOT NULL,
          kind             TEXT    NOT NULL,
          args             TEXT    NOT NULL,
          unique_key       TEXT,
          state            TEXT    NOT NULL DEFAULT 'available'
                           CHECK (state IN ('available','running','completed','discarded','cancelled')),
          priority         INTEGER NOT NULL DEFAULT 2 CHECK (priority BETWEEN 1 AND 4),
          attempt          INTEGER NOT NULL DEFAULT 0,
          max_attempts     INTEGER NOT NULL DEFAULT 12,
          rescue_count     INTEGER NOT NULL DEFAULT 0,
          snooze_count     INTEGER NOT NULL DEFAULT 0,
          run_at           INTEGER NOT NULL,
          lease_owner      TEXT,
          lease_token      INTEGER,
          lease_expires_at INTEGER,
          last_error       TEXT,
          errors           TEXT    NOT NULL DEFAULT '[]',
          created_at       INTEGER NOT NULL,
          updated_at       INTEGER NOT NULL,
          finalized_at     INTEGER
        );
        CREATE INDEX queue_job_fetch ON queue_job (queue, priority, run_at, id) WHERE state = 'available';
        CREATE INDEX queue_job_lease ON queue_job (lease_expires_at) WHERE state = 'running';
        CREATE INDEX queue_job_final ON queue_job (finalized_at) WHERE state IN ('completed','discarded','cancelled');
        CREATE UNIQUE INDEX queue_job_live_key ON queue_job (unique_key)
          WHERE unique_key IS NOT NULL AND state IN ('available','running');

        CREATE TABLE recording (
          key           TEXT    PRIMARY KEY NOT NULL,
          path          TEXT    NOT NULL,
          metadata      TEXT,
          state         TEXT    NOT NULL
                        CHECK (state IN ('pending','transcoded','uploaded','failed','deleting','deleted')),
          error_code    TEXT,
          error_message TEXT,
          part_count    INTEGER NOT NULL DEFAULT 0,
          seconds       REAL,
          created_at    INTEGER NOT NULL,
          updated_at    INTEGER NOT NULL
        );
        CREATE INDEX recording_state ON recording (state, key);
        CREATE INDEX recording_path ON recording (path);

        CREATE TABLE part (
          recording_key     TEXT    NOT NULL REFERENCES recording (key),
          idx               INTEGER NOT NULL,
          spool_path        TEXT    NOT NULL,
          bytes             INTEGER NOT NULL,
          seconds           REAL    NOT NULL,
          sha256            TEXT    NOT NULL,
          state             TEXT    NOT NULL CHECK (state IN ('pending','creating','created','attached')),
          call_log_id       TEXT,
          marker            TEXT,
          create_started_at INTEGER,
          attached_at       INTEGER,
          PRIMARY KEY (recording_key, idx)
        );
        CREATE INDEX part_call_log ON part (call_log_id) WHERE call_log_id IS NOT NULL;

        CREATE TABLE provider_ref (
          recording_key TEXT NOT NULL REFERENCES recording (key),
          provider      TEXT NOT NULL,
          reference     TEXT NOT NULL,
          state         TEXT NOT NULL,
          PRIMARY KEY (recording_key, provider)
        );

        CREATE TABLE deletion (
          id            TEXT    PRIMARY KEY NOT NULL,
          recording_key TEXT    NOT NULL,
          reason        TEXT    NOT NULL,
          created_at    INTEGER NOT NULL,
          finished_at   INTEGER
        );
        CREATE INDEX deletion_open ON deletion (created_at, id) WHERE finished_at IS NULL;
        CREATE INDEX deletion_recording ON deletion (recording_key);

        CREATE TABLE deletion_step (
          deletion_id TEXT    NOT NULL REFERENCES deletion (id) ON DELETE CASCADE,
          target      TEXT    NOT NULL,
          position    INTEGER NOT NULL,
          state       TEXT    NOT NULL CHECK (state IN ('pending','done','failed')),
          http_status INTEGER,
          detail      TEXT,
          updated_at  INTEGER NOT NULL,
          PRIMARY KEY (deletion_id, target)
        );

        CREATE TABLE audit (
          id            INTEGER PRIMARY KEY AUTOINCREMENT,
          at            INTEGER NOT NULL,
          recording_key TEXT,
          action        TEXT    NOT NULL,
          target        TEXT,
          http_status   INTEGER,
          detail        TEXT,
          actor         TEXT    NOT NULL
        );
        CREATE INDEX audit_recording ON audit (recording_key, id);

        CREATE TABLE tombstone (
          key        TEXT    PRIMARY KEY NOT NULL,
          path       TEXT    NOT NULL,
          reason     TEXT    NOT NULL,
          deleted_at INTEGER NOT NULL
        );
        """
}
