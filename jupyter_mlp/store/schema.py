"""The store's schema: one version number and forward migrations, one description for both
engines.

MIGRATIONS is written in SQLite's DDL, as SQLite stores have always been made (their version is
`PRAGMA user_version`). `ddl(statement, POSTGRES)` turns each statement into PostgreSQL's by a
few fixed rules, so that one text describes both:

- INTEGER -> BIGINT (steps, counts, pids, sizes pass int32), REAL -> DOUBLE PRECISION (a float4
  would round timestamps), BLOB -> BYTEA, TEXT -> TEXT COLLATE "C" (byte order, as SQLite's
  BINARY collation: sorting, id-prefix ranges and indexes agree with SQLite's);
- `INTEGER PRIMARY KEY AUTOINCREMENT` -> an identity column, `WITHOUT ROWID` dropped;
- the column `user` (a reserved word on PostgreSQL) is quoted wherever it is named;
- a table whose insertion order is read (ROWID_TABLES: a metric's chunks, `ORDER BY rowid`)
  gets a `rowid` identity column on PostgreSQL.

So migration text must stay within that subset: types in upper case, identifiers in lower
case, `--` comments only. PG_ONLY adds statements that only PostgreSQL needs after a step
(indexes its planner wants). PostgreSQL keeps its version in the table `mlp_schema` and migrates
under an advisory lock (several servers may start at once)."""

from __future__ import annotations

import re
import sqlite3

from .db import POSTGRES, SQLITE, Connection, Dialect, StoreUnavailable, dialect

# Each entry migrates from version i to i + 1. Never edit a released entry: append a new one.
MIGRATIONS: list[str] = [
    # 0 -> 1: the first schema.
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        project TEXT NOT NULL DEFAULT 'default',
        name TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL,
        kind TEXT NOT NULL DEFAULT 'interactive',
        parent_id TEXT,
        pipeline_run_id TEXT,
        stage TEXT,
        notebook TEXT,
        snapshot TEXT,
        end_snapshot TEXT,
        kernel TEXT,
        host TEXT,
        user TEXT,
        pid INTEGER,
        git TEXT,
        env TEXT,
        gpu TEXT,
        created_at REAL NOT NULL,
        started_at REAL,
        ended_at REAL,
        heartbeat_at REAL,
        pinned INTEGER NOT NULL DEFAULT 0,
        tags TEXT NOT NULL DEFAULT '[]',
        notes TEXT NOT NULL DEFAULT '',
        error TEXT
    );
    CREATE INDEX runs_project_created ON runs(project, created_at);
    CREATE INDEX runs_status ON runs(status);
    CREATE INDEX runs_created ON runs(created_at);
    CREATE INDEX runs_parent ON runs(parent_id);

    CREATE TABLE params (
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,      -- JSON
        type TEXT NOT NULL,       -- Python type name
        num REAL,                 -- numeric value, for filters and sorting
        text TEXT,                -- string value, for filters
        source TEXT NOT NULL,     -- parameters | magic | api | job
        PRIMARY KEY (run_id, key)
    ) WITHOUT ROWID;
    CREATE INDEX params_key_num ON params(key, num);

    -- A metric's history in packed chunks: one row per (run, key, batch) holding arrays, so that
    -- a million points cost a handful of rows. NaN and the infinities survive bit-exact.
    CREATE TABLE metrics (
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        first_step INTEGER NOT NULL,
        last_step INTEGER NOT NULL,
        count INTEGER NOT NULL,
        steps BLOB NOT NULL,      -- int64, native order as written by array('q')
        vals BLOB NOT NULL,       -- float64
        times BLOB NOT NULL       -- float64 unix seconds
    );
    CREATE INDEX metrics_run_key ON metrics(run_id, key, first_step);

    CREATE TABLE metrics_latest (
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        step INTEGER NOT NULL,
        value REAL,
        time REAL NOT NULL,
        PRIMARY KEY (run_id, key)
    ) WITHOUT ROWID;
    CREATE INDEX metrics_latest_key_value ON metrics_latest(key, value);

    CREATE TABLE texts (
        hash TEXT PRIMARY KEY,
        text TEXT NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE cells (
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        cell_id TEXT,
        execution_count INTEGER,
        source TEXT,              -- texts.hash
        started_at REAL NOT NULL,
        duration REAL NOT NULL,
        status TEXT NOT NULL,     -- ok | error | interrupted
        error TEXT,               -- JSON {ename, evalue, traceback}
        gpu TEXT,                 -- JSON per-GPU figures of this cell
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;

    CREATE TABLE gpu_samples (
        run_id TEXT NOT NULL, gpu INTEGER NOT NULL, time REAL NOT NULL,
        span REAL NOT NULL DEFAULT 0,
        util REAL, util_min REAL, util_max REAL,
        mem_used REAL, mem_used_max REAL, proc_mem REAL, proc_mem_max REAL,
        power REAL, power_max REAL, temp REAL, sm_clock REAL, energy REAL
    );
    CREATE INDEX gpu_samples_run ON gpu_samples(run_id, gpu, time);

    CREATE TABLE outputs (
        run_id TEXT NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,       -- value | artifact
        value TEXT,               -- JSON: the value, or an artifact's metadata
        num REAL,
        text TEXT,
        blob TEXT,                -- sha256 of the artifact's content
        size INTEGER,
        filename TEXT,
        created_at REAL NOT NULL,
        PRIMARY KEY (run_id, name)
    ) WITHOUT ROWID;

    -- Per-run write tokens for remote trackers (stored hashed; valid while the run is live).
    CREATE TABLE run_tokens (
        hash TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        created_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX run_tokens_run ON run_tokens(run_id);

    -- Batches applied from remote trackers, so that a replayed batch is not applied twice.
    CREATE TABLE ingested (
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        time REAL NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;

    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time REAL NOT NULL,
        run_id TEXT,
        type TEXT NOT NULL,
        data TEXT NOT NULL DEFAULT '{}'
    );
    """,
    # 1 -> 2: jobs (reruns and notebook jobs) and the executed notebook of a run.
    """
    ALTER TABLE runs ADD COLUMN output_notebook TEXT;

    CREATE TABLE jobs (
        run_id TEXT PRIMARY KEY,
        executor TEXT NOT NULL,
        state TEXT NOT NULL,              -- queued | running | finished | failed | cancelled
        params TEXT NOT NULL DEFAULT '{}',  -- JSON: the values papermill injects
        kernel TEXT NOT NULL,
        notebook TEXT,                    -- the run's notebook path and snapshot blob, as submitted
        snapshot TEXT,
        cwd TEXT,                         -- requested working directory (NULL: the notebook's)
        gpus_requested INTEGER NOT NULL DEFAULT 0,
        gpus TEXT,                        -- JSON list of the devices handed out
        options TEXT NOT NULL DEFAULT '{}', -- JSON: executor-specific settings
        pid INTEGER,                      -- the job process (leader of its own session)
        pgid INTEGER,
        proc_start TEXT,                  -- the process's start time, so a reused pid is not it
        kernel_pid INTEGER,
        kernel_pgid INTEGER,
        host TEXT,
        cells_total INTEGER,
        note TEXT,
        submitted_at REAL NOT NULL,
        started_at REAL,
        ended_at REAL,
        error TEXT                        -- JSON {ename, evalue}
    ) WITHOUT ROWID;
    CREATE INDEX jobs_state ON jobs(executor, state, submitted_at);
    """,
    # 2 -> 3: pipeline runs and the state of their stages.
    """
    CREATE TABLE pipeline_runs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        path TEXT,                        -- the .mlpipe file, as given
        version TEXT NOT NULL,            -- hash of the spec that ran
        spec TEXT NOT NULL,               -- JSON: the spec that ran
        params TEXT NOT NULL DEFAULT '{}',
        executor TEXT NOT NULL,
        options TEXT NOT NULL DEFAULT '{}', -- JSON: no_cache, concurrency, resumed_from
        status TEXT NOT NULL,             -- queued | running | succeeded | failed | cancelling | cancelled
        pid INTEGER,                      -- the driver process
        host TEXT,
        created_at REAL NOT NULL,
        started_at REAL,
        ended_at REAL,
        error TEXT
    );
    CREATE INDEX pipeline_runs_path ON pipeline_runs(path, created_at);

    CREATE TABLE pipeline_stages (
        pipeline_run_id TEXT NOT NULL,
        stage TEXT NOT NULL,
        status TEXT NOT NULL,             -- pending | queued | running | cached | succeeded | failed | skipped | cancelled
        run_id TEXT,
        cached_from TEXT,                 -- the pipeline run whose stage run was reused
        cache_key TEXT,
        params TEXT,                      -- JSON: the resolved parameters
        attempt INTEGER NOT NULL DEFAULT 0,
        started_at REAL,
        ended_at REAL,
        error TEXT,
        PRIMARY KEY (pipeline_run_id, stage)
    ) WITHOUT ROWID;
    CREATE INDEX pipeline_stages_cache ON pipeline_stages(cache_key, status);
    """,
    # 3 -> 4: the blobs each run uploaded over HTTP (a token may name only those).
    """
    CREATE TABLE run_uploads (
        run_id TEXT NOT NULL,
        hash TEXT NOT NULL,
        time REAL NOT NULL,
        PRIMARY KEY (run_id, hash)
    ) WITHOUT ROWID;
    """,
    # 4 -> 5: sweeps (a parameter search over a template run) and their trials; a trial is an
    # ordinary job run that carries its sweep's id.
    """
    ALTER TABLE runs ADD COLUMN sweep_id TEXT;
    CREATE INDEX runs_sweep ON runs(sweep_id);

    CREATE TABLE sweeps (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        template_id TEXT NOT NULL,        -- the run whose notebook every trial reruns
        space TEXT NOT NULL,              -- JSON: {param: {kind, low, high, log, step, choices, value}}
        objective TEXT NOT NULL,          -- JSON: {direction, source, key, agg, text}
        sampler TEXT NOT NULL,            -- grid | random | tpe
        seed INTEGER,
        budget INTEGER NOT NULL,          -- trials at most
        timeout_s REAL,                   -- no new trial after this many seconds
        concurrency INTEGER NOT NULL,
        executor TEXT NOT NULL,
        gpus INTEGER,                     -- per trial (NULL: as many as the template had)
        options TEXT NOT NULL DEFAULT '{}', -- JSON: pruner, kernel, ...
        status TEXT NOT NULL,             -- queued | running | finished | failed | cancelling | cancelled
        user TEXT,
        pid INTEGER,                      -- the driver process
        host TEXT,
        best_trial INTEGER,
        best_run_id TEXT,
        best_value REAL,
        note TEXT,
        created_at REAL NOT NULL,
        started_at REAL,
        ended_at REAL,
        error TEXT
    );
    CREATE INDEX sweeps_created ON sweeps(created_at);

    CREATE TABLE sweep_trials (
        sweep_id TEXT NOT NULL,
        number INTEGER NOT NULL,          -- Optuna's trial number
        run_id TEXT,
        status TEXT NOT NULL,             -- running | finished | pruned | failed | cancelled
        params TEXT NOT NULL,             -- JSON: the searched values, as the sampler chose them
        system TEXT NOT NULL DEFAULT '{}', -- JSON: the sampler's own marks (the grid point)
        value REAL,                       -- the objective
        step INTEGER,                     -- the last intermediate step reported (pruning)
        error TEXT,
        started_at REAL NOT NULL,
        ended_at REAL,
        PRIMARY KEY (sweep_id, number)
    ) WITHOUT ROWID;
    CREATE INDEX sweep_trials_run ON sweep_trials(run_id);
    """,
    # 5 -> 6: owners (team mode): who made a run, a pipeline run, a sweep. Only the owner and the
    # team's admins change it. Older rows: the user the run was recorded as.
    """
    ALTER TABLE runs ADD COLUMN owner TEXT;
    UPDATE runs SET owner = user WHERE owner IS NULL;
    CREATE INDEX runs_owner ON runs(owner, created_at);
    ALTER TABLE pipeline_runs ADD COLUMN owner TEXT;
    ALTER TABLE sweeps ADD COLUMN owner TEXT;
    UPDATE sweeps SET owner = user WHERE owner IS NULL;
    """,
    # 6 -> 7: who dispatches a job (team mode): the user of the process that queued it (a
    # server, a pipeline's or sweep's driver, the CLI). On a shared store each server starts
    # and watches only its own jobs. Older rows: NULL (dispatched where the store is not shared).
    """
    ALTER TABLE jobs ADD COLUMN dispatcher TEXT;
    CREATE INDEX jobs_dispatcher ON jobs(dispatcher, executor, state);
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)

# Statements PostgreSQL alone runs after the step of that index (same rule: never edit a
# released entry). Keyset pages sorted by (value, id) walk these indexes in order (SQLite's carry
# the rowid, and its planner sorts ties itself).
PG_ONLY: dict[int, list[str]] = {
    0: [
        "CREATE INDEX runs_created_id ON runs(created_at, id)",
        "CREATE INDEX runs_started_id ON runs(started_at, id)",
        "CREATE INDEX runs_name_id ON runs(name, id)",
        "CREATE INDEX params_key_num_run ON params(key, num, run_id)",
        "CREATE INDEX metrics_latest_key_value_run ON metrics_latest(key, value, run_id)",
        # a metric's packed arrays are stored as they are (as SQLite stores them): compressing
        # them (pglz, TOAST's default) made ingest ten times slower for little space
        "ALTER TABLE metrics ALTER COLUMN steps SET STORAGE EXTERNAL, "
        "ALTER COLUMN vals SET STORAGE EXTERNAL, ALTER COLUMN times SET STORAGE EXTERNAL",
    ],
}

# Tables whose rows are read in insertion order (`ORDER BY rowid`): a rowid column on PostgreSQL.
ROWID_TABLES = frozenset({"metrics"})
PG_VERSION_TABLE = "mlp_schema"
MIGRATE_LOCK = 0x6D6C_7001  # pg_advisory_xact_lock key: one migrator at a time


class SchemaTooNew(StoreUnavailable):
    """The store was written by a newer jupyter-mlp: this code never writes into it."""


def _statements(script: str) -> list[str]:
    """Split a script into statements (executescript would commit our transaction)."""
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current)
            current = ""
    if current.strip():
        raise ValueError(f"incomplete statement in migration: {current[:80]!r}")
    return out


def ddl(statement: str, to: Dialect = SQLITE) -> str:
    """A statement of MIGRATIONS in the dialect `to` (see the module's docstring)."""
    if to is SQLITE:
        return statement
    sql = re.sub(r"--[^\n]*", "", statement)
    sql = re.sub(
        r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b",
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        sql,
    )
    sql = re.sub(r"\bINTEGER\b", "BIGINT", sql)
    sql = re.sub(r"\bREAL\b", "DOUBLE PRECISION", sql)
    sql = re.sub(r"\bBLOB\b", "BYTEA", sql)
    sql = re.sub(r"\bTEXT\b", 'TEXT COLLATE "C"', sql)
    sql = re.sub(r"\)\s*WITHOUT ROWID", ")", sql)
    sql = re.sub(r'(?<!["\w.])user\b(?!")', '"user"', sql)
    match = re.match(r"\s*CREATE TABLE (\w+) \(", sql)
    if match and match.group(1) in ROWID_TABLES:
        sql = (
            sql[: match.end()]
            + "\n        rowid BIGINT GENERATED ALWAYS AS IDENTITY,"
            + sql[match.end() :]
        )
    return sql


def statements(index: int, to: Dialect = SQLITE) -> list[str]:
    """The statements of the step from version `index` to `index + 1`, in dialect `to`."""
    out = [ddl(s, to) for s in _statements(MIGRATIONS[index])]
    if to is POSTGRES:
        out.extend(PG_ONLY.get(index, []))
    return out


def migrate(conn: Connection) -> int:
    """Bring the store to SCHEMA_VERSION; safe when several processes open it at once."""
    if type(conn) is not sqlite3.Connection and dialect(conn) is POSTGRES:
        return _migrate_pg(conn)
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return version
    if version > SCHEMA_VERSION:
        path = conn.execute("PRAGMA database_list").fetchone()[2] or "(in memory)"
        raise SchemaTooNew(
            path,
            f"has schema version {version}, newer than this jupyter-mlp understands "
            f"({SCHEMA_VERSION}); nothing was written to it",
            "upgrade jupyter-mlp (pip install -U jupyter-mlp) or point MLP_HOME elsewhere",
        )
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated meanwhile.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for index in range(version, SCHEMA_VERSION):
            for statement in statements(index):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={index + 1}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION


def pg_version(conn: Connection) -> int:
    """The schema version of a PostgreSQL store (0: none made yet). Reads only."""
    if not conn.execute(f"SELECT to_regclass('{PG_VERSION_TABLE}') IS NOT NULL").fetchone()[0]:
        return 0
    row = conn.execute(f"SELECT MAX(version) FROM {PG_VERSION_TABLE}").fetchone()
    return int(row[0] or 0)


def _too_new(location: str, version: int) -> SchemaTooNew:
    return SchemaTooNew(
        location,
        f"has schema version {version}, newer than this jupyter-mlp understands "
        f"({SCHEMA_VERSION}); nothing was written to it",
        "upgrade jupyter-mlp (pip install -U jupyter-mlp) or point MLP_STORE_URL elsewhere",
    )


def _migrate_pg(conn: Connection) -> int:
    """PostgreSQL: the version in `mlp_schema`; every step in one transaction (DDL is
    transactional there) under an advisory lock, the version read again once it is held."""
    location = str(getattr(conn, "location", "(postgresql)"))
    version = pg_version(conn)
    if version == SCHEMA_VERSION:
        return version
    if version > SCHEMA_VERSION:
        raise _too_new(location, version)
    conn.execute("BEGIN")
    try:
        conn.execute(f"SELECT pg_advisory_xact_lock({MIGRATE_LOCK})")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {PG_VERSION_TABLE} (version BIGINT NOT NULL)")
        version = pg_version(conn)
        if version > SCHEMA_VERSION:
            raise _too_new(location, version)
        for index in range(version, SCHEMA_VERSION):
            for statement in statements(index, POSTGRES):
                conn.execute(statement)
        conn.execute(f"DELETE FROM {PG_VERSION_TABLE}")
        conn.execute(f"INSERT INTO {PG_VERSION_TABLE} (version) VALUES (?)", (SCHEMA_VERSION,))
        conn.execute("COMMIT")
    except BaseException:
        rollback = getattr(conn, "rollback_quietly", None)
        if rollback is not None:
            rollback()
        raise
    return SCHEMA_VERSION
