"""The tuning database: every measured candidate of every tuned workload, in SQLite.

One file (stdlib `sqlite3`, WAL journal, so a reader never waits for a writer and a killed
writer leaves the last committed state), with a schema version in `convir_tuning_schema`.
Tables:

- `targets`: each target's fingerprint (`Target.fingerprint()`: CPU model, ISA features, cache
  sizes, cores), its ISA class (architecture, vector width, vector registers, FMA: what
  `--nearest-target` requires to match) and its fields as JSON;
- `workloads`: one row per (target fingerprint, threads, workload key, kernel code version:
  `kernel_version()`, convir's release and a digest of the code that generates kernels), the
  workload as JSON, the winner (algorithm, schedule, median seconds), the heuristic's median,
  whether every candidate was measured (`complete`: 0 when a time budget stopped it; resuming
  tunes it again), when and in how many seconds;
- `candidates`: every candidate's result, not only the winner's: status (`ok`, `slower` =
  stopped early as clearly slower than the best, `rejected` = output beyond tolerance,
  `failed` = crashed, hung or did not compile, `skipped` = budget ran out), median and spread
  of its samples, max relative error and tolerance, workspace bytes, and a message.

A workload's rows are replaced in one transaction (`record`), so a reader sees a workload either
tuned or not, never half; two tuners on one file serialise their transactions (SQLite's lock,
waited for up to `BUSY_TIMEOUT_S`) and lose nothing. A file that is not SQLite, or an SQLite file
of another schema or schema version, is refused with one `TuningDatabaseError` naming it; it is
never written to.

The default file is `tuning.sqlite` beside the object cache (`$CONVIR_CACHE_DIR`, else
~/.cache/convir); `$CONVIR_TUNING_DB` overrides that, and an explicit path overrides both.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import convir
from convir.target import Target

SCHEMA_VERSION = 1
TUNING_DB_ENV = "CONVIR_TUNING_DB"
#: How long a writer waits for another process's transaction to finish.
BUSY_TIMEOUT_S = 60.0

_SCHEMA = """
CREATE TABLE convir_tuning_schema (version INTEGER NOT NULL);
CREATE TABLE targets (
    fingerprint TEXT PRIMARY KEY,
    isa TEXT NOT NULL,
    description TEXT NOT NULL
);
CREATE TABLE workloads (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL REFERENCES targets(fingerprint),
    threads INTEGER NOT NULL,
    workload TEXT NOT NULL,
    convir_version TEXT NOT NULL,
    description TEXT NOT NULL,
    best_algorithm TEXT,
    best_schedule TEXT,
    best_median_s REAL,
    heuristic_median_s REAL,
    complete INTEGER NOT NULL,
    tuned_at REAL NOT NULL,
    seconds REAL NOT NULL,
    UNIQUE (fingerprint, threads, workload, convir_version)
);
CREATE TABLE candidates (
    id INTEGER PRIMARY KEY,
    workload_id INTEGER NOT NULL REFERENCES workloads(id) ON DELETE CASCADE,
    algorithm TEXT NOT NULL,
    schedule TEXT NOT NULL,
    status TEXT NOT NULL,
    median_s REAL,
    spread REAL,
    samples INTEGER,
    max_rel_error REAL,
    tolerance REAL,
    workspace_bytes INTEGER,
    message TEXT
);
CREATE INDEX candidates_of_workload ON candidates(workload_id);
"""


class TuningDatabaseError(Exception):
    """A tuning database that cannot be used; the message names the file and what to do."""


@dataclass(frozen=True)
class CandidateResult:
    """One candidate's measurement (see the module doc for `status`)."""

    algorithm: str
    schedule: dict[str, int]
    status: str
    median_s: float | None = None
    spread: float | None = None
    samples: int | None = None
    max_rel_error: float | None = None
    tolerance: float | None = None
    workspace_bytes: int | None = None
    message: str = ""


@dataclass(frozen=True)
class Record:
    """The tuned choice for one workload: the winner, its runner-up (another algorithm or
    schedule, when one was measured), the heuristic's time, and whose target it was tuned on
    (`nearest`: a compatible target's, used only when asked). `ranked`: every candidate that
    measured ok, fastest first (the winner among them), for a reader that cannot run the winner
    any more (its algorithm no longer applies, or its schedule changed shape)."""

    algorithm: str
    schedule: dict[str, int]
    median_s: float
    heuristic_median_s: float | None
    runner_up: CandidateResult | None
    complete: bool
    nearest: bool
    target_cpu: str
    ranked: tuple[CandidateResult, ...] = ()


@functools.cache
def kernel_version() -> str:
    """The version a record is kept under: convir's release, then a digest of the kernel
    generators (the `lowering` package's sources) and of llvmlite's version. A record's times
    belong to the machine code they measured, so records of other kernel code are kept but not
    used (`other_versions` counts them, so a report can ask for a new tune)."""
    import llvmlite

    import lowering

    root = Path(lowering.__file__).parent
    digest = hashlib.sha256(llvmlite.__version__.encode())
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return f"{convir.__version__}+{digest.hexdigest()[:12]}"


def default_path() -> Path:
    """`$CONVIR_TUNING_DB`, else tuning.sqlite in the object cache directory (module doc)."""
    from lowering.jit import CACHE_DIR_ENV

    chosen = os.environ.get(TUNING_DB_ENV)
    if chosen:
        return Path(chosen)
    cache = os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "convir"
    return Path(cache) / "tuning.sqlite"


def isa_class(target: Target) -> str:
    """What two targets must share for one's records to serve the other (`--nearest-target`)."""
    arch = target.triple.split("-")[0]
    return f"{arch}:{target.vector_bits}:{target.vector_registers}:fma={int(target.has_fma)}"


class TuningDatabase:
    """An open tuning database (module doc); a missing file is created when `create` (the
    tuner), else it is an error (a reader that names a file means that file)."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, create: bool = True) -> None:
        self.path = Path(path) if path is not None else default_path()
        if self.path.is_dir():
            raise TuningDatabaseError(f"tuning database '{self.path}' is a directory")
        if not create and not self.path.exists():
            raise TuningDatabaseError(
                f"no tuning database at '{self.path}'; `convir tune MODEL --db {self.path}` "
                "makes one"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            self._db.execute("PRAGMA foreign_keys = ON")
            self._check_or_create()
            self._db.execute("PRAGMA journal_mode = WAL")
        except sqlite3.DatabaseError as error:
            raise self._unusable(f"SQLite says: {error}") from None
        except OSError as error:
            raise TuningDatabaseError(
                f"cannot open tuning database '{self.path}': {error.strerror}"
            ) from None

    def _unusable(self, why: str) -> TuningDatabaseError:
        return TuningDatabaseError(
            f"'{self.path}' is not a convir tuning database ({why}); it was left untouched: "
            "pass another --tuning-db/--db path or remove the file"
        )

    def _check_or_create(self) -> None:
        with self._transaction():
            tables = {
                row[0]
                for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if not tables:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute("INSERT INTO convir_tuning_schema VALUES (?)", (SCHEMA_VERSION,))
                return
            if "convir_tuning_schema" not in tables:
                raise self._unusable(
                    f"an SQLite file with other tables: {', '.join(sorted(tables))}"
                )
            versions = [
                row[0] for row in self._db.execute("SELECT version FROM convir_tuning_schema")
            ]
            if versions != [SCHEMA_VERSION]:
                raise self._unusable(
                    f"schema version {versions[0] if versions else 'missing'}, this convir reads "
                    f"version {SCHEMA_VERSION}"
                )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction, taken at once (BEGIN IMMEDIATE) so that two writers queue."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> TuningDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def has(self, target: Target, threads: int, workload_key: str) -> bool:
        """Whether a complete record of this workload exists for this target and version."""
        row = self._db.execute(
            "SELECT complete FROM workloads WHERE fingerprint = ? AND threads = ? "
            "AND workload = ? AND convir_version = ?",
            (target.fingerprint(), threads, workload_key, kernel_version()),
        ).fetchone()
        return row is not None and bool(row[0])

    def record(
        self,
        target: Target,
        threads: int,
        workload_key: str,
        description: dict,
        results: Sequence[CandidateResult],
        *,
        heuristic: CandidateResult | None,
        complete: bool,
        seconds: float,
        winner: CandidateResult | None = None,
    ) -> None:
        """Replace the record of one workload by `results`, in one transaction. The winner is
        `winner` (one of `results`), by default the fastest that measured ok."""
        accepted = [r for r in results if r.status == "ok" and r.median_s is not None]
        best = min(accepted, key=lambda r: r.median_s or 0.0) if accepted else None
        best = winner or best
        fingerprint = target.fingerprint()
        with self._transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO targets VALUES (?, ?, ?)",
                (fingerprint, isa_class(target), json.dumps(dataclasses.asdict(target))),
            )
            self._db.execute(
                "DELETE FROM workloads WHERE fingerprint = ? AND threads = ? AND workload = ? "
                "AND convir_version = ?",
                (fingerprint, threads, workload_key, kernel_version()),
            )
            cursor = self._db.execute(
                "INSERT INTO workloads (fingerprint, threads, workload, convir_version, "
                "description, best_algorithm, best_schedule, best_median_s, "
                "heuristic_median_s, complete, tuned_at, seconds) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    fingerprint,
                    threads,
                    workload_key,
                    kernel_version(),
                    json.dumps(description),
                    best.algorithm if best else None,
                    json.dumps(best.schedule) if best else None,
                    best.median_s if best else None,
                    heuristic.median_s if heuristic and heuristic.status == "ok" else None,
                    int(complete),
                    time.time(),
                    seconds,
                ),
            )
            workload_id = cursor.lastrowid
            self._db.executemany(
                "INSERT INTO candidates (workload_id, algorithm, schedule, status, median_s, "
                "spread, samples, max_rel_error, tolerance, workspace_bytes, message) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        workload_id,
                        r.algorithm,
                        json.dumps(r.schedule),
                        r.status,
                        r.median_s,
                        r.spread,
                        r.samples,
                        r.max_rel_error,
                        r.tolerance,
                        r.workspace_bytes,
                        r.message,
                    )
                    for r in results
                ],
            )

    def lookup(
        self, target: Target, threads: int, workload_key: str, *, nearest: bool = False
    ) -> Record | None:
        """The record of this workload for `target` at `threads` threads and this convir
        version; with `nearest`, failing that, the newest of a target of the same ISA class
        (`isa_class`: same architecture, vector width, registers and FMA)."""
        query = (
            "SELECT w.id, w.best_algorithm, w.best_schedule, w.best_median_s, "
            "w.heuristic_median_s, w.complete, t.description, w.fingerprint "
            "FROM workloads w JOIN targets t ON t.fingerprint = w.fingerprint "
            "WHERE w.threads = ? AND w.workload = ? AND w.convir_version = ? "
            "AND w.best_algorithm IS NOT NULL AND "
        )
        arguments: tuple = (threads, workload_key, kernel_version())
        row = self._db.execute(
            query + "w.fingerprint = ?", (*arguments, target.fingerprint())
        ).fetchone()
        if row is None and nearest:
            row = self._db.execute(
                query + "t.isa = ? ORDER BY w.tuned_at DESC", (*arguments, isa_class(target))
            ).fetchone()
        if row is None:
            return None
        workload_id, algorithm, schedule, median_s, heuristic_s, complete, description, fp = row
        ranked = self._ranked(workload_id)
        winner = (algorithm, json.loads(schedule))
        others = [c for c in ranked if (c.algorithm, c.schedule) != winner]
        return Record(
            algorithm=algorithm,
            schedule=winner[1],
            median_s=median_s,
            heuristic_median_s=heuristic_s,
            runner_up=others[0] if others else None,
            complete=bool(complete),
            nearest=fp != target.fingerprint(),
            target_cpu=json.loads(description)["cpu"],
            ranked=tuple(ranked),
        )

    def _ranked(self, workload_id: int) -> list[CandidateResult]:
        """The candidates of a workload that measured ok, fastest first."""
        rows = self._db.execute(
            "SELECT algorithm, schedule, median_s, spread, samples, max_rel_error, tolerance, "
            "workspace_bytes FROM candidates WHERE workload_id = ? AND status = 'ok' "
            "ORDER BY median_s",
            (workload_id,),
        )
        return [CandidateResult(row[0], json.loads(row[1]), "ok", *row[2:]) for row in rows]

    def candidates(self, target: Target, threads: int, workload_key: str) -> list[CandidateResult]:
        """Every stored candidate result of one workload (for reports and tests)."""
        rows = self._db.execute(
            "SELECT c.algorithm, c.schedule, c.status, c.median_s, c.spread, c.samples, "
            "c.max_rel_error, c.tolerance, c.workspace_bytes, c.message FROM candidates c "
            "JOIN workloads w ON w.id = c.workload_id WHERE w.fingerprint = ? AND "
            "w.threads = ? AND w.workload = ? AND w.convir_version = ? ORDER BY c.id",
            (target.fingerprint(), threads, workload_key, kernel_version()),
        )
        return [CandidateResult(r[0], json.loads(r[1]), *r[2:]) for r in rows]

    def other_versions(self, target: Target, threads: int) -> int:
        """How many records of `target` at `threads` threads belong to other kernel code
        (`kernel_version`): kept, never used."""
        return self._db.execute(
            "SELECT COUNT(*) FROM workloads WHERE fingerprint = ? AND threads = ? "
            "AND convir_version != ?",
            (target.fingerprint(), threads, kernel_version()),
        ).fetchone()[0]

    def workload_count(self) -> int:
        """How many workload records the file holds (any target)."""
        return self._db.execute("SELECT COUNT(*) FROM workloads").fetchone()[0]
