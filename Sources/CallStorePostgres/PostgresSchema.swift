import CallStore

/// The PostgreSQL schema, as numbered migrations recorded in `callrec_schema`.
///
/// ``PostgresStore/migrate()`` applies them in one transaction under an advisory lock, so that
/// several processes may migrate at once: the first applies, the others find them applied.
enum PostgresSchema {
    struct Migration: Sendable {
        var version: Int
        /// One statement each (the extended query protocol runs one statement per query).
        var statements: [String]
    }

    /// `pg_advisory_xact_lock` key of migrations (any constant unique among callrec's locks).
    static let migrationLock: Int64 = 0x6361_6C6C_7265_6301 // "callrec" 0x01
    /// `pg_try_advisory_xact_lock` key of the rescuer: one rescue pass at a time in a database.
    static let rescueLock: Int64 = 0x6361_6C6C_7265_6302 // "callrec" 0x02
    /// `pg_advisory_xact_lock` key of the CRM index's writes: one page or sweep at a time, each
    /// statement after the lock with a snapshot that sees the writes before it.
    static let crmLock: Int64 = 0x6361_6C6C_7265_6303 // "callrec" 0x03

    static let versionTable = """
        CREATE TABLE IF NOT EXISTS callrec_schema (
          version    INTEGER     PRIMARY KEY,
          applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """

    static var latestVersion: Int { migrations.map(\.version).max() ?? 0 }

    static let migrations: [Migration] = [
        Migration(version: 1, statements: v1),
        Migration(version: 2, statements: v2),
        Migration(version: 3, statements: v3),
        Migration(version: 4, statements: v4),
        Migration(version: 5, statements: v5),
        Migration(version: 6, statements: v6),
        Migration(version: 7, statements: v7),
        Migration(version: 8, statements: v8),
        Migration(version: 9, statements: v9),
    ]

    /// The console's Pipedrive spend and warning filter, as in the SQLite schema: the tokens every
    /// worker sharing the account booked per budget day (PipedriveSpend), and each recording's
    /// warning codes, keyed by code first, with the recording's `created_at` (the list walks one
    /// code's recordings newest first).
    static let v7: [String] = [
        """
        CREATE TABLE pipedrive_spend (
          budget_day   BIGINT      PRIMARY KEY,
          tokens       BIGINT      NOT NULL,
          daily_tokens BIGINT      NOT NULL,
          resets_at    TIMESTAMPTZ NOT NULL,
          updated_at   TIMESTAMPTZ NOT NULL
        )
        """,
        """
        CREATE TABLE recording_warning (
          code              TEXT COLLATE "C" NOT NULL,
          recording_key     TEXT COLLATE "C" NOT NULL,
          recording_created TIMESTAMPTZ      NOT NULL,
          PRIMARY KEY (code, recording_key)
        )
        """,
        "CREATE INDEX recording_warning_key ON recording_warning (recording_key)",
        "CREATE INDEX recording_warning_created ON recording_warning (code, recording_created, recording_key)",
    ]

    /// The phone numbers each recording is found by (RecordingNumbers.swift), reversed, as in the
    /// SQLite schema; the recordings there are get theirs from the same digit runs. And a
    /// recording's jobs by their unique key, whatever their state (a recording's page).
    static let v8: [String] = [
        """
        CREATE TABLE recording_number (
          reversed      TEXT COLLATE "C" NOT NULL,
          recording_key TEXT COLLATE "C" NOT NULL,
          PRIMARY KEY (reversed, recording_key)
        )
        """,
        RecordingNumbers.backfillPostgresSQL,
        "CREATE INDEX queue_job_unique_key ON queue_job (unique_key) WHERE unique_key IS NOT NULL",
    ]

    /// The numbers of the recordings that webhooks registered since v8: the set-based
    /// registrations wrote no `recording_number` rows before this version, so the console's
    /// phone filter did not find them. The v8 backfill again (one pass over the recordings), a
    /// number already there left as it is.
    static let v9: [String] = [
        RecordingNumbers.backfillPostgresSQL + "\nON CONFLICT DO NOTHING",
    ]

    /// The console's reads (issue 19; ConsoleStore.swift), the same indexes as the SQLite schema:
    /// the recordings list newest first, by state or by error code, with keyset pagination on
    /// (created_at, key); the throughput count of recordings that reached a state since an instant; when each source last delivered;
    /// each recording's waveform (Waveform: base64 levels).
    static let v6: [String] = [
        "CREATE INDEX recording_created ON recording (created_at, key)",
        "CREATE INDEX recording_state_created ON recording (state, created_at, key)",
        "CREATE INDEX recording_error_created ON recording (error_code, created_at, key) WHERE error_code IS NOT NULL",
        "CREATE INDEX recording_state_updated ON recording (state, updated_at)",
        "CREATE INDEX recording_state_error ON recording (state, error_code)",
        "CREATE INDEX source_file_seen ON source_file (pbx, seen_at)",
        "CREATE INDEX telnyx_event_received ON telnyx_event (received_at)",
        """
        CREATE TABLE recording_waveform (
          recording_key     TEXT COLLATE "C" PRIMARY KEY,
          seconds_per_point DOUBLE PRECISION NOT NULL,
          levels            TEXT             NOT NULL
        )
        """,
    ]

    /// The local phone index of the CRM (issue 17; CRMIndex.swift), the same tables and indexes
    /// as the SQLite schema: rows stamped with the generation (`pass`) of the full pass that
    /// wrote them; every phone number in `crm_phone` (its primary key leads with `e164`: the
    /// lookup; `crm_phone_owner` replaces an owner's numbers and reads them back in order);
    /// deals and leads by person and by organization. Numbers, lead ids and e-mails collate as
    /// "C" (byte order, as in SQLite).
    static let v5: [String] = [
        """
        CREATE TABLE crm_person (
          id         BIGINT      PRIMARY KEY,
          name       TEXT        NOT NULL,
          org_id     BIGINT,
          owner_id   BIGINT,
          updated_at TIMESTAMPTZ,
          pass       BIGINT      NOT NULL
        )
        """,
        """
        CREATE TABLE crm_organization (
          id         BIGINT      PRIMARY KEY,
          name       TEXT        NOT NULL,
          updated_at TIMESTAMPTZ,
          pass       BIGINT      NOT NULL
        )
        """,
        """
        CREATE TABLE crm_deal (
          id         BIGINT      PRIMARY KEY,
          title      TEXT        NOT NULL,
          person_id  BIGINT,
          org_id     BIGINT,
          status     TEXT        NOT NULL,
          updated_at TIMESTAMPTZ,
          pass       BIGINT      NOT NULL
        )
        """,
        "CREATE INDEX crm_deal_person ON crm_deal (person_id, status)",
        "CREATE INDEX crm_deal_org ON crm_deal (org_id, status)",
        """
        CREATE TABLE crm_lead (
          id         TEXT COLLATE "C" PRIMARY KEY,
          title      TEXT        NOT NULL,
          person_id  BIGINT,
          org_id     BIGINT,
          archived   BOOLEAN     NOT NULL,
          updated_at TIMESTAMPTZ,
          pass       BIGINT      NOT NULL
        )
        """,
        "CREATE INDEX crm_lead_person ON crm_lead (person_id, archived)",
        "CREATE INDEX crm_lead_org ON crm_lead (org_id, archived)",
        """
        CREATE TABLE crm_user (
          id     BIGINT  PRIMARY KEY,
          name   TEXT    NOT NULL,
          email  TEXT COLLATE "C" NOT NULL,
          active BOOLEAN NOT NULL,
          pass   BIGINT  NOT NULL
        )
        """,
        "CREATE INDEX crm_user_email ON crm_user (email)",
        """
        CREATE TABLE crm_phone (
          e164     TEXT COLLATE "C" NOT NULL,
          kind     TEXT    NOT NULL CHECK (kind IN ('person','organization')),
          owner_id BIGINT  NOT NULL,
          position INTEGER NOT NULL,
          PRIMARY KEY (e164, kind, owner_id)
        )
        """,
        "CREATE INDEX crm_phone_owner ON crm_phone (kind, owner_id, position)",
        """
        CREATE TABLE crm_sync (
          entity            TEXT COLLATE "C" PRIMARY KEY,
          cursor            TEXT,
          full_pass         BOOLEAN     NOT NULL,
          pass              BIGINT      NOT NULL,
          updated_since     TIMESTAMPTZ,
          last_refresh_at   TIMESTAMPTZ,
          last_full_pass_at TIMESTAMPTZ
        )
        """,
    ]

    /// Telnyx webhook events (issue 16), the ledger of TelnyxLedger.swift (the same table and
    /// index as the SQLite schema): one row per event id, read back by call session in the order
    /// the events occurred; ids collate as "C" (byte order, as in SQLite); `document` is TEXT,
    /// kept byte for byte.
    static let v4: [String] = [
        """
        CREATE TABLE telnyx_event (
          event_id        TEXT COLLATE "C" PRIMARY KEY,
          event_type      TEXT        NOT NULL,
          call_session_id TEXT COLLATE "C",
          call_leg_id     TEXT COLLATE "C",
          occurred_at     TIMESTAMPTZ,
          received_at     TIMESTAMPTZ NOT NULL,
          document        TEXT        NOT NULL,
          recording_key   TEXT COLLATE "C"
        )
        """,
        "CREATE INDEX telnyx_event_session ON telnyx_event (call_session_id, occurred_at)",
    ]

    /// PBX sources (issue 15): the `skipped` state of a recording, and the source ledger of
    /// SourceLedger.swift (the same tables and indexes as the SQLite schema). Device and inode
    /// numbers are stored as the signed 64-bit integers with the same bits; an empty join key is
    /// stored as NULL; `document` is TEXT, kept byte for byte (the store does not read it).
    static let v3: [String] = [
        "ALTER TABLE recording DROP CONSTRAINT recording_state_check",
        """
        ALTER TABLE recording ADD CONSTRAINT recording_state_check
          CHECK (state IN ('pending','transcoded','uploaded','failed','skipped','deleting','deleted'))
        """,
        """
        CREATE TABLE source_file (
          path          TEXT COLLATE "C" PRIMARY KEY,
          directory     TEXT COLLATE "C" NOT NULL,
          pbx           TEXT        NOT NULL,
          device        BIGINT      NOT NULL,
          inode         BIGINT      NOT NULL,
          size          BIGINT      NOT NULL,
          modified_ns   BIGINT      NOT NULL,
          changed_ns    BIGINT      NOT NULL,
          recording_key TEXT COLLATE "C",
          audio_sha256  TEXT,
          verdict       TEXT        NOT NULL,
          reason        TEXT,
          policy_digest TEXT,
          seen_at       TIMESTAMPTZ NOT NULL
        )
        """,
        "CREATE INDEX source_file_directory ON source_file (directory, path)",
        "CREATE INDEX source_file_recording ON source_file (recording_key) WHERE recording_key IS NOT NULL",
        """
        CREATE TABLE cdr_row (
          id          BIGSERIAL   PRIMARY KEY,
          pbx         TEXT COLLATE "C" NOT NULL,
          row_key     TEXT COLLATE "C" NOT NULL,
          uniqueid    TEXT COLLATE "C",
          linkedid    TEXT COLLATE "C",
          stem        TEXT COLLATE "C",
          day         TEXT COLLATE "C",
          document    TEXT        NOT NULL,
          ingested_at TIMESTAMPTZ NOT NULL,
          UNIQUE (pbx, row_key)
        )
        """,
        "CREATE INDEX cdr_row_uniqueid ON cdr_row (pbx, uniqueid)",
        "CREATE INDEX cdr_row_linkedid ON cdr_row (pbx, linkedid)",
        "CREATE INDEX cdr_row_stem ON cdr_row (pbx, stem)",
        "CREATE INDEX cdr_row_day ON cdr_row (pbx, day)",
        """
        CREATE TABLE cdr_cursor (
          pbx         TEXT COLLATE "C" NOT NULL,
          path        TEXT COLLATE "C" NOT NULL,
          device      BIGINT NOT NULL,
          inode       BIGINT NOT NULL,
          byte_offset BIGINT NOT NULL CHECK (byte_offset >= 0),
          kind        TEXT   NOT NULL,
          header      TEXT,
          PRIMARY KEY (pbx, path)
        )
        """,
    ]

    /// Who made each part's call log (`created` by callrec, or `given` by the sidecar's
    /// `call_log_id`), and the `skipped` state of a deletion step. Parts recorded before: a call
    /// log whose part carries a marker was created (the marker is written before the create);
    /// one without was given.
    static let v2: [String] = [
        "ALTER TABLE part ADD COLUMN call_log_origin TEXT CHECK (call_log_origin IN ('created','given'))",
        """
        UPDATE part SET call_log_origin = CASE WHEN marker IS NOT NULL THEN 'created' ELSE 'given' END
          WHERE call_log_id IS NOT NULL
        """,
        "ALTER TABLE deletion_step DROP CONSTRAINT deletion_step_state_check",
        "ALTER TABLE deletion_step ADD CONSTRAINT deletion_step_state_check CHECK (state IN ('pending','done','failed','skipped'))",
    ]

    /// research/queue-and-reconcile.md §(2) plus `snooze_count`, then the ledger of CallStore.swift
    /// (the same tables, constraints and indexes as the SQLite schema; text keys collate as "C",
    /// so that key order and paging are byte order as in SQLite). `args` is TEXT (the
    /// protocol carries JSON text, kept byte for byte); `errors` is a JSONB array of
    /// `{"at": unix ms, "attempt", "error", "kind"}`. `attempt` and `max_attempts` are INTEGER
    /// rather than SMALLINT so that no `maxAttempts` the protocol accepts overflows.
    static let v1: [String] = [
        """
        CREATE TABLE queue_job (
          id               BIGSERIAL   PRIMARY KEY,
          queue            TEXT        NOT NULL,
          kind             TEXT        NOT NULL,
          args             TEXT        NOT NULL,
          unique_key       TEXT,
          state            TEXT        NOT NULL DEFAULT 'available'
                           CHECK (state IN ('available','running','completed','discarded','cancelled')),
          priority         SMALLINT    NOT NULL DEFAULT 2 CHECK (priority BETWEEN 1 AND 4),
          attempt          INTEGER     NOT NULL DEFAULT 0,
          max_attempts     INTEGER     NOT NULL DEFAULT 12,
          rescue_count     SMALLINT    NOT NULL DEFAULT 0,
          snooze_count     SMALLINT    NOT NULL DEFAULT 0,
          run_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
          lease_owner      TEXT,
          lease_token      BIGINT,
          lease_expires_at TIMESTAMPTZ,
          last_error       TEXT,
          errors           JSONB       NOT NULL DEFAULT '[]',
          created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
          updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
          finalized_at     TIMESTAMPTZ
        ) WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000)
        """,
        "CREATE SEQUENCE queue_lease_seq AS BIGINT",
        "CREATE INDEX queue_job_fetch ON queue_job (queue, priority, run_at, id) WHERE state = 'available'",
        "CREATE INDEX queue_job_lease ON queue_job (lease_expires_at) WHERE state = 'running'",
        "CREATE INDEX queue_job_final ON queue_job (finalized_at) WHERE state IN ('completed','discarded','cancelled')",
        """
        CREATE UNIQUE INDEX queue_job_live_key ON queue_job (unique_key)
          WHERE unique_key IS NOT NULL AND state IN ('available','running')
        """,

        """
        CREATE TABLE recording (
          key           TEXT COLLATE "C" PRIMARY KEY,
          path          TEXT             NOT NULL,
          metadata      TEXT,
          state         TEXT             NOT NULL
                        CHECK (state IN ('pending','transcoded','uploaded','failed','deleting','deleted')),
          error_code    TEXT,
          error_message TEXT,
          part_count    INTEGER          NOT NULL DEFAULT 0,
          seconds       DOUBLE PRECISION,
          created_at    TIMESTAMPTZ      NOT NULL,
          updated_at    TIMESTAMPTZ      NOT NULL
        )
        """,
        "CREATE INDEX recording_state ON recording (state, key)",
        "CREATE INDEX recording_path ON recording (path)",

        """
        CREATE TABLE part (
          recording_key     TEXT COLLATE "C" NOT NULL REFERENCES recording (key),
          idx               INTEGER          NOT NULL,
          spool_path        TEXT             NOT NULL,
          bytes             BIGINT           NOT NULL,
          seconds           DOUBLE PRECISION NOT NULL,
          sha256            TEXT             NOT NULL,
          state             TEXT             NOT NULL CHECK (state IN ('pending','creating','created','attached')),
          call_log_id       TEXT,
          marker            TEXT,
          create_started_at TIMESTAMPTZ,
          attached_at       TIMESTAMPTZ,
          PRIMARY KEY (recording_key, idx)
        )
        """,
        "CREATE INDEX part_call_log ON part (call_log_id) WHERE call_log_id IS NOT NULL",

        """
        CREATE TABLE provider_ref (
          recording_key TEXT COLLATE "C" NOT NULL REFERENCES recording (key),
          provider      TEXT COLLATE "C" NOT NULL,
          reference     TEXT NOT NULL,
          state         TEXT NOT NULL,
          PRIMARY KEY (recording_key, provider)
        )
        """,

        """
        CREATE TABLE deletion (
          id            TEXT COLLATE "C" PRIMARY KEY,
          recording_key TEXT COLLATE "C" NOT NULL,
          reason        TEXT        NOT NULL,
          created_at    TIMESTAMPTZ NOT NULL,
          finished_at   TIMESTAMPTZ
        )
        """,
        "CREATE INDEX deletion_open ON deletion (created_at, id) WHERE finished_at IS NULL",
        "CREATE INDEX deletion_recording ON deletion (recording_key)",

        """
        CREATE TABLE deletion_step (
          deletion_id TEXT COLLATE "C" NOT NULL REFERENCES deletion (id) ON DELETE CASCADE,
          target      TEXT COLLATE "C" NOT NULL,
          position    INTEGER     NOT NULL,
          state       TEXT        NOT NULL CHECK (state IN ('pending','done','failed')),
          http_status INTEGER,
          detail      TEXT,
          updated_at  TIMESTAMPTZ NOT NULL,
          PRIMARY KEY (deletion_id, target)
        )
        """,

        """
        CREATE TABLE audit (
          id            BIGSERIAL   PRIMARY KEY,
          at            TIMESTAMPTZ NOT NULL,
          recording_key TEXT COLLATE "C",
          action        TEXT        NOT NULL,
          target        TEXT,
          http_status   INTEGER,
          detail        TEXT,
          actor         TEXT        NOT NULL
        )
        """,
        "CREATE INDEX audit_recording ON audit (recording_key, id)",

        """
        CREATE TABLE tombstone (
          key        TEXT COLLATE "C" PRIMARY KEY,
          path       TEXT        NOT NULL,
          reason     TEXT        NOT NULL,
          deleted_at TIMESTAMPTZ NOT NULL
        )
        """,
    ]
}
