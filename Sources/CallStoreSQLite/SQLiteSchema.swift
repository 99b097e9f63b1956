import CallStore
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
        migrator.registerMigration("v3-source-ledger") { db in
            try db.execute(sql: v3SourceLedger)
        }
        migrator.registerMigration("v4-telnyx-events") { db in
            try db.execute(sql: v4TelnyxEvents)
        }
        migrator.registerMigration("v5-crm-index") { db in
            try db.execute(sql: v5CRMIndex)
        }
        migrator.registerMigration("v6-console") { db in
            try db.execute(sql: v6Console)
        }
        migrator.registerMigration("v7-console-spend-warnings") { db in
            try db.execute(sql: v7SpendWarnings)
        }
        migrator.registerMigration("v8-recording-numbers") { db in
            try db.execute(sql: v8RecordingNumbers)
            // The recordings there are: their numbers, as a commit would have written them.
            let recordings = try Row.fetchCursor(db, sql: "SELECT key, path, metadata FROM recording")
            while let row = try recordings.next() {
                try SQLiteStore.insertNumbers(key: row["key"], RecordingNumbers.reversed(path: row["path"], metadata: row["metadata"]), db)
            }
        }
        return migrator
    }

    /// The migrations this callrec knows, in order.
    static let identifiers = migrator.migrations

    /// The console's Pipedrive spend and warning filter (issue 19; ConsoleStore.swift): the tokens
    /// every process sharing the account booked per budget day (PipedriveSpend), and each
    /// recording's warning codes, keyed by code first, with the recording's `created_at` (the
    /// list's filter walks one code's recordings newest first, as the list pages, and stops at
    /// the page's end: reading every recording of a common code was 40 ms at a million).
    static let v7SpendWarnings = """
        CREATE TABLE pipedrive_spend (
          budget_day   INTEGER PRIMARY KEY NOT NULL,
          tokens       INTEGER NOT NULL,
          daily_tokens INTEGER NOT NULL,
          resets_at    INTEGER NOT NULL,
          updated_at   INTEGER NOT NULL
        );
        CREATE TABLE recording_warning (
          code              TEXT    NOT NULL,
          recording_key     TEXT    NOT NULL,
          recording_created INTEGER NOT NULL,
          PRIMARY KEY (code, recording_key)
        ) WITHOUT ROWID;
        CREATE INDEX recording_warning_key ON recording_warning (recording_key);
        CREATE INDEX recording_warning_created ON recording_warning (code, recording_created, recording_key);
        """

    /// The phone numbers each recording is found by (RecordingNumbers.swift), reversed: the
    /// console's phone filter reads the numbers ending with the digits typed as one range of the
    /// primary key, not a scan of every path and sidecar (200 ms at a million recordings). And a
    /// recording's jobs by their unique key, whatever their state (a recording's page).
    static let v8RecordingNumbers = """
        CREATE TABLE recording_number (
          reversed      TEXT NOT NULL,
          recording_key TEXT NOT NULL,
          PRIMARY KEY (reversed, recording_key)
        ) WITHOUT ROWID;
        CREATE INDEX queue_job_unique_key ON queue_job (unique_key) WHERE unique_key IS NOT NULL;
        """

    /// The console's reads (issue 19; ConsoleStore.swift), measured at a million recordings: the
    /// recordings list newest first, by state or by error code, with keyset pagination on
    /// (created_at, key); the throughput count of recordings that reached a state since an
    /// instant; failures by code (`recording_state_error`, read covering with `INDEXED BY`: the
    /// planner prefers the error index, then reads every row); when each source last delivered;
    /// each recording's waveform (Waveform: base64 levels).
    static let v6Console = """
        CREATE INDEX recording_created ON recording (created_at, key);
        CREATE INDEX recording_state_created ON recording (state, created_at, key);
        CREATE INDEX recording_error_created ON recording (error_code, created_at, key) WHERE error_code IS NOT NULL;
        CREATE INDEX recording_state_updated ON recording (state, updated_at);
        CREATE INDEX recording_state_error ON recording (state, error_code);
        CREATE INDEX source_file_seen ON source_file (pbx, seen_at);
        CREATE INDEX telnyx_event_received ON telnyx_event (received_at);

        CREATE TABLE recording_waveform (
          recording_key     TEXT PRIMARY KEY NOT NULL,
          seconds_per_point REAL NOT NULL,
          levels            TEXT NOT NULL
        );
        """

    /// The local phone index of the CRM (issue 17; CRMIndex.swift): persons, organizations,
    /// deals, leads and users as the last listing saw them, each row stamped with the generation
    /// (`pass`) of the full pass that wrote it; every phone number in `crm_phone` (its primary key
    /// leads with `e164`: the lookup; `crm_phone_owner` replaces an owner's numbers and reads them
    /// back in the CRM's order, `position`); deals and leads by person and by organization, open
    /// ones only (the lookup reads no other). `crm_sync`: where each listing stands.
    static let v5CRMIndex = """
        CREATE TABLE crm_person (
          id         INTEGER PRIMARY KEY NOT NULL,
          name       TEXT    NOT NULL,
          org_id     INTEGER,
          owner_id   INTEGER,
          updated_at INTEGER,
          pass       INTEGER NOT NULL
        );
        CREATE TABLE crm_organization (
          id         INTEGER PRIMARY KEY NOT NULL,
          name       TEXT    NOT NULL,
          updated_at INTEGER,
          pass       INTEGER NOT NULL
        );
        CREATE TABLE crm_deal (
          id         INTEGER PRIMARY KEY NOT NULL,
          title      TEXT    NOT NULL,
          person_id  INTEGER,
          org_id     INTEGER,
          status     TEXT    NOT NULL,
          updated_at INTEGER,
          pass       INTEGER NOT NULL
        );
        CREATE INDEX crm_deal_person ON crm_deal (person_id, status);
        CREATE INDEX crm_deal_org ON crm_deal (org_id, status);
        CREATE TABLE crm_lead (
          id         TEXT    PRIMARY KEY NOT NULL,
          title      TEXT    NOT NULL,
          person_id  INTEGER,
          org_id     INTEGER,
          archived   INTEGER NOT NULL,
          updated_at INTEGER,
          pass       INTEGER NOT NULL
        );
        CREATE INDEX crm_lead_person ON crm_lead (person_id, archived);
        CREATE INDEX crm_lead_org ON crm_lead (org_id, archived);
        CREATE TABLE crm_user (
          id     INTEGER PRIMARY KEY NOT NULL,
          name   TEXT    NOT NULL,
          email  TEXT    NOT NULL,
          active INTEGER NOT NULL,
          pass   INTEGER NOT NULL
        );
        CREATE INDEX crm_user_email ON crm_user (email);
        CREATE TABLE crm_phone (
          e164     TEXT    NOT NULL,
          kind     TEXT    NOT NULL CHECK (kind IN ('person','organization')),
          owner_id INTEGER NOT NULL,
          position INTEGER NOT NULL,
          PRIMARY KEY (e164, kind, owner_id)
        ) WITHOUT ROWID;
        CREATE INDEX crm_phone_owner ON crm_phone (kind, owner_id, position);
        CREATE TABLE crm_sync (
          entity            TEXT    PRIMARY KEY NOT NULL,
          cursor            TEXT,
          full_pass         INTEGER NOT NULL,
          pass              INTEGER NOT NULL,
          updated_since     INTEGER,
          last_refresh_at   INTEGER,
          last_full_pass_at INTEGER
        );
        """

    /// Telnyx webhook events (issue 16), the ledger of TelnyxLedger.swift: one row per event id,
    /// read back by call session in the order the events occurred.
    static let v4TelnyxEvents = """
        CREATE TABLE telnyx_event (
          event_id        TEXT    PRIMARY KEY NOT NULL,
          event_type      TEXT    NOT NULL,
          call_session_id TEXT,
          call_leg_id     TEXT,
          occurred_at     INTEGER,
          received_at     INTEGER NOT NULL,
          document        TEXT    NOT NULL,
          recording_key   TEXT
        );
        CREATE INDEX telnyx_event_session ON telnyx_event (call_session_id, occurred_at);
        """

    /// PBX sources (issue 15): the `skipped` state of a recording, and the source ledger of
    /// SourceLedger.swift. `recording` is rebuilt to change its CHECK constraint (SQLite cannot
    /// alter one): `part` and `provider_ref` name it by name, and GRDB runs the migration with
    /// foreign keys off and checks them before it commits. Device and inode numbers are stored
    /// as the signed 64-bit integers with the same bits; an empty join key is stored as NULL.
    static let v3SourceLedger = """
        CREATE TABLE recording_v3 (
          key           TEXT    PRIMARY KEY NOT NULL,
          path          TEXT    NOT NULL,
          metadata      TEXT,
          state         TEXT    NOT NULL
                        CHECK (state IN ('pending','transcoded','uploaded','failed','skipped','deleting','deleted')),
          error_code    TEXT,
          error_message TEXT,
          part_count    INTEGER NOT NULL DEFAULT 0,
          seconds       REAL,
          created_at    INTEGER NOT NULL,
          updated_at    INTEGER NOT NULL
        );
        INSERT INTO recording_v3 (key, path, metadata, state, error_code, error_message, part_count, seconds,
                                  created_at, updated_at)
          SELECT key, path, metadata, state, error_code, error_message, part_count, seconds, created_at, updated_at
          FROM recording;
        DROP TABLE recording;
        ALTER TABLE recording_v3 RENAME TO recording;
        CREATE INDEX recording_state ON recording (state, key);
        CREATE INDEX recording_path ON recording (path);

        CREATE TABLE source_file (
          path          TEXT    PRIMARY KEY NOT NULL,
          directory     TEXT    NOT NULL,
          pbx           TEXT    NOT NULL,
          device        INTEGER NOT NULL,
          inode         INTEGER NOT NULL,
          size          INTEGER NOT NULL,
          modified_ns   INTEGER NOT NULL,
          changed_ns    INTEGER NOT NULL,
          recording_key TEXT,
          audio_sha256  TEXT,
          verdict       TEXT    NOT NULL,
          reason        TEXT,
          policy_digest TEXT,
          seen_at       INTEGER NOT NULL
        );
        CREATE INDEX source_file_directory ON source_file (directory, path);
        CREATE INDEX source_file_recording ON source_file (recording_key) WHERE recording_key IS NOT NULL;

        CREATE TABLE cdr_row (
          id          INTEGER PRIMARY KEY AUTOINCREMENT,
          pbx         TEXT    NOT NULL,
          row_key     TEXT    NOT NULL,
          uniqueid    TEXT,
          linkedid    TEXT,
          stem        TEXT,
          day         TEXT,
          document    TEXT    NOT NULL,
          ingested_at INTEGER NOT NULL,
          UNIQUE (pbx, row_key)
        );
        CREATE INDEX cdr_row_uniqueid ON cdr_row (pbx, uniqueid);
        CREATE INDEX cdr_row_linkedid ON cdr_row (pbx, linkedid);
        CREATE INDEX cdr_row_stem ON cdr_row (pbx, stem);
        CREATE INDEX cdr_row_day ON cdr_row (pbx, day);

        CREATE TABLE cdr_cursor (
          pbx         TEXT    NOT NULL,
          path        TEXT    NOT NULL,
          device      INTEGER NOT NULL,
          inode       INTEGER NOT NULL,
          byte_offset INTEGER NOT NULL CHECK (byte_offset >= 0),
          kind        TEXT    NOT NULL,
          header      TEXT,
          PRIMARY KEY (pbx, path)
        );
        """

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
