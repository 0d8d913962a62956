-- Times are milliseconds since the Unix epoch (INTEGER), portable to PostgreSQL BIGINT.

CREATE TABLE clusters (
    id              TEXT    PRIMARY KEY,
    name            TEXT    NOT NULL UNIQUE,
    profile         TEXT    NOT NULL,
    -- building | ready | leased | recycling | failed | deleted | gone
    state           TEXT    NOT NULL,
    -- The CI host that owns the cluster (a fleet may share one database one day).
    host            TEXT    NOT NULL,
    kubeconfig      TEXT,
    created_at      INTEGER NOT NULL,
    ready_at        INTEGER,
    state_changed_at INTEGER NOT NULL,
    error           TEXT
);
CREATE INDEX clusters_profile_state ON clusters (profile, state);

CREATE TABLE leases (
    id          TEXT    PRIMARY KEY,
    -- Secret; the database file is mode 0600. Kept so that an idempotent retry gets it back.
    token       TEXT    NOT NULL,
    cluster_id  TEXT    NOT NULL REFERENCES clusters (id),
    profile     TEXT    NOT NULL,
    holder      TEXT    NOT NULL,
    request_id  TEXT,
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    ended_at    INTEGER,
    -- released | expired | gone | abandoned
    end_reason  TEXT
);
-- At most one live lease per cluster, enforced by the database itself.
CREATE UNIQUE INDEX leases_one_live_per_cluster ON leases (cluster_id) WHERE ended_at IS NULL;
CREATE UNIQUE INDEX leases_request_id ON leases (profile, holder, request_id) WHERE request_id IS NOT NULL;
CREATE INDEX leases_live_expiry ON leases (expires_at) WHERE ended_at IS NULL;

CREATE TABLE pipeline_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster_id  TEXT    NOT NULL REFERENCES clusters (id),
    profile     TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER,
    -- running | succeeded | failed
    outcome     TEXT    NOT NULL,
    fail_phase  TEXT,
    fail_step   TEXT,
    exit_code   INTEGER,
    error       TEXT
);
CREATE INDEX pipeline_runs_profile ON pipeline_runs (profile, started_at);

CREATE TABLE run_steps (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      INTEGER NOT NULL REFERENCES pipeline_runs (id),
    phase       TEXT    NOT NULL,
    step        TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER,
    -- running | succeeded | failed
    outcome     TEXT    NOT NULL
);
CREATE INDEX run_steps_run ON run_steps (run_id);
