"""The run store: an append-only SQLite record of every script attempt and every LLM call of a run.

Reports, the benchmark and step-wise RL read it, so its schema is versioned and documented in docs/run_store.md.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, task_name TEXT NOT NULL, task_type TEXT, metric TEXT, maximize INTEGER,
    task_json TEXT, started_at REAL NOT NULL, finished_at REAL, status TEXT NOT NULL DEFAULT 'running',
    result_json TEXT);
CREATE TABLE IF NOT EXISTS attempts (
    attempt_id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, node TEXT NOT NULL, parent_id INTEGER,
    plan TEXT, code TEXT NOT NULL, code_hash TEXT NOT NULL, cache_key TEXT, cached INTEGER NOT NULL DEFAULT 0,
    fidelity TEXT, status TEXT NOT NULL, score REAL, reported_score REAL, error_tail TEXT, seconds REAL,
    started_at REAL NOT NULL, finished_at REAL, workdir TEXT, info TEXT);
CREATE INDEX IF NOT EXISTS attempts_by_run ON attempts (run_id, node);
CREATE TABLE IF NOT EXISTS llm_calls (
    call_id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, node TEXT, role TEXT NOT NULL, model TEXT,
    prompt TEXT NOT NULL, reply TEXT, ok INTEGER NOT NULL, error TEXT, tokens_in INTEGER, tokens_out INTEGER,
    seconds REAL, started_at REAL NOT NULL);
"""

ATTEMPT_FIELDS = ("attempt_id", "run_id", "node", "parent_id", "plan", "code", "code_hash", "cache_key", "cached",
                  "fidelity", "status", "score", "reported_score", "error_tail", "seconds", "started_at",
                  "finished_at", "workdir", "info")


class StoreError(RuntimeError):
    pass


class RunStore:
    """One SQLite file; safe to share between the worker threads of one process."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                self._db.execute("INSERT INTO meta VALUES ('created_at', ?)", (str(time.time()),))
            elif int(row[0]) != SCHEMA_VERSION:
                raise StoreError(f"{self.path}: run store schema version {row[0]}, this mlestar reads "
                                 f"{SCHEMA_VERSION}; use a new output folder")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _exec(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    # runs
    def start_run(self, run_id: str, task_name: str, *, task_type: str = "", metric: str = "",
                  maximize: bool = True, task_json: str = "") -> None:
        self._exec("INSERT OR IGNORE INTO runs (run_id, task_name, task_type, metric, maximize, task_json, "
                   "started_at) VALUES (?,?,?,?,?,?,?)",
                   (run_id, task_name, task_type, metric, int(maximize), task_json, time.time()))

    def finish_run(self, run_id: str, status: str, result: dict | None = None) -> None:
        self._exec("UPDATE runs SET finished_at=?, status=?, result_json=? WHERE run_id=?",
                   (time.time(), status, json.dumps(result) if result is not None else None, run_id))

    def runs(self) -> list[dict]:
        return [dict(r) for r in self._exec("SELECT * FROM runs ORDER BY started_at")]

    # attempts
    def add_attempt(self, **fields: Any) -> int:
        unknown = set(fields) - set(ATTEMPT_FIELDS)
        if unknown:
            raise StoreError(f"unknown attempt fields {sorted(unknown)}")
        if isinstance(fields.get("info"), (dict, list)):
            fields["info"] = json.dumps(fields["info"])
        fields.setdefault("started_at", time.time())
        cols = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        cur = self._exec(f"INSERT INTO attempts ({cols}) VALUES ({marks})", tuple(fields.values()))
        return int(cur.lastrowid)

    def update_attempt(self, attempt_id: int, **fields: Any) -> None:
        if not fields:
            return
        unknown = set(fields) - set(ATTEMPT_FIELDS)
        if unknown:
            raise StoreError(f"unknown attempt fields {sorted(unknown)}")
        if isinstance(fields.get("info"), (dict, list)):
            fields["info"] = json.dumps(fields["info"])
        sets = ", ".join(f"{k}=?" for k in fields)
        self._exec(f"UPDATE attempts SET {sets} WHERE attempt_id=?", (*fields.values(), attempt_id))

    def attempt(self, attempt_id: int) -> dict | None:
        row = self._exec("SELECT * FROM attempts WHERE attempt_id=?", (attempt_id,)).fetchone()
        return _decoded(row) if row else None

    def attempts(self, run_id: str | None = None, node: str | None = None) -> list[dict]:
        sql, args = "SELECT * FROM attempts WHERE 1=1", []
        if run_id is not None:
            sql, args = sql + " AND run_id=?", [*args, run_id]
        if node is not None:
            sql, args = sql + " AND node=?", [*args, node]
        return [_decoded(r) for r in self._exec(sql + " ORDER BY attempt_id", tuple(args))]

    # LLM calls
    def add_llm_call(self, **fields: Any) -> int:
        fields.setdefault("started_at", time.time())
        cols = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        cur = self._exec(f"INSERT INTO llm_calls ({cols}) VALUES ({marks})", tuple(fields.values()))
        return int(cur.lastrowid)

    def llm_calls(self, run_id: str | None = None) -> list[dict]:
        if run_id is None:
            return [dict(r) for r in self._exec("SELECT * FROM llm_calls ORDER BY call_id")]
        return [dict(r) for r in self._exec("SELECT * FROM llm_calls WHERE run_id=? ORDER BY call_id", (run_id,))]

    def schema_version(self) -> int:
        return int(self._exec("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])


def _decoded(row: sqlite3.Row) -> dict:
    d = dict(row)
    if d.get("info"):
        d["info"] = json.loads(d["info"])
    return d
