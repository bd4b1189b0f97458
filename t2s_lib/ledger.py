"""The results ledger: every measurement the study's figures are computed from, as small JSON-lines
records keyed by identity, so a study can be measured over several sittings and machines and its
figures regenerated from the records alone.

Layout (``<root>/<profile>/``, root = ``T2S_LEDGER`` or ``<runs>/ledger``; the committed one is
``results/``)::

    <kind>.jsonl      one record per line: {"format", "kind", "key", "numerics", "identity", "value", "provenance"}

* **identity**: everything that determines the number (setting, recipe, seed, task and split,
  evaluation options) plus the kind's **numerics version**, which is raised whenever code that
  changes the kind's numbers changes. ``key`` is a digest of both; a record is found by it.
* **provenance**: where and how it was measured (commit, CPU model, torch version and threads, date,
  CPU-seconds and wall seconds). Never part of the identity: the same experiment on another machine
  is the same experiment, and the difference is what ``reproduction.md`` reports.
* **modes** (``T2S_LEDGER_MODE``): ``measure`` (default: use a record with the identity, else measure
  and append), ``recompute`` (always measure and append: the newest record wins), ``replay`` (use
  records only: a missing one is an error; what ``make figures`` runs).

Records of an older numerics version are *stale*: never used, listed by ``t2s ledger stale``. A record
of a newer numerics version than this code knows is refused (the code is older than the ledger).
Appends take an exclusive ``flock`` and write one whole line in one ``write``, so two processes
appending at once both keep their records and neither is torn.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import functools
import hashlib
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import T2SError
from .paths import PROJECT_ROOT, ledger_root

#: the layout of one record line; a ledger of a newer format is refused
LEDGER_FORMAT = 1
MODES = ("measure", "recompute", "replay")
RECORD_FIELDS = ("format", "kind", "key", "numerics", "identity", "value", "provenance")


@dataclass(frozen=True)
class Kind:
    """One kind of measurement: its numerics version and the value fields it must carry (with ranges)."""

    name: str
    numerics: int
    #: value field -> (low, high) for numbers, or None for any JSON value
    fields: dict[str, tuple[float, float] | None] = field(default_factory=dict)
    doc: str = ""

    def check_value(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise T2SError(f"{where}: the value of a {self.name} record is not a JSON object", _FIX_RECORD)
        for name, bounds in self.fields.items():
            if name not in value:
                raise T2SError(f"{where}: the {self.name} record has no value field {name!r}", _FIX_RECORD)
            if bounds is None:
                continue
            v = value[name]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or not bounds[0] <= v <= bounds[1]:
                raise T2SError(f"{where}: {self.name} value {name}={v!r} is outside {bounds[0]}..{bounds[1]}",
                               _FIX_RECORD)


_FIX_RECORD = ("remove that line (the unit is then measured again), or rerun the stage with --recompute to "
               "append a fresh record")
PERCENT = (0.0, 100.0)
KINDS: dict[str, Kind] = {}


def register_kind(name: str, numerics: int, fields: dict[str, tuple[float, float] | None], doc: str) -> Kind:
    """Declare a kind of measurement (one list per fact: the stages name their kind, not its version)."""
    if name in KINDS:
        raise ValueError(f"ledger kind {name!r} registered twice")
    KINDS[name] = Kind(name, numerics, fields, doc)
    return KINDS[name]


def get_kind(name: str) -> Kind:
    if name not in KINDS:
        raise T2SError(f"unknown ledger kind {name!r}", f"use one of: {', '.join(sorted(KINDS))}")
    return KINDS[name]


# The reward cells (notebooks 03, 07, 09). Raise a kind's numerics when code that changes its numbers
# changes (rendering, the pre-training loop, the 5-NN): its old records become stale, not wrong answers.
register_kind("reward.pretrain", 1, {"final_epoch": None, "epochs": None, "images": (1, 1e9), "classes": (1, 1e6)},
              "one reward cell's render + pre-training: per-epoch metrics and the final epoch")
register_kind("reward.knn", 1, {"value": PERCENT}, "5-NN top-1 % of one cell's backbone on a task's test split")
register_kind("reward.knn_val", 1, {"value": PERCENT}, "5-NN top-1 % on a validation split of a task's training data")
register_kind("reward.linear", 1, {"value": PERCENT}, "linear-probe top-1 % of one cell's backbone on a task")
# the renderer's speed (notebook 01): a measurement of the machine, recorded like any other
register_kind("render.throughput", 1, {"img_per_s": (0.0, 1e9), "cpu_ms_per_img": (0.0, 1e9)},
              "end-to-end render_dataset images/s at one image size and worker count")
# linear probes and fine-tuning of the comparison backbones (notebook 04)
register_kind("evaluate.protocol", 1, {"value": PERCENT, "options": None},
              "linear-probe or fine-tuning top-1 % of one backbone on one task")
# the policy methods (notebooks 05 and 09): one run of a method over seeds (+ leave-one-task-out) on one problem
register_kind("policy.run", 1, {"summary": None, "curves": None},
              "one policy method fitted and scored over its seeds (and leave-one-task-out) on one problem")
# CKA between backbones (notebook 06): one task's stage x backbone x backbone matrix
register_kind("cka.task", 1, {"matrix": None}, "linear CKA between backbones at each ResNet stage on one task's images")
# Task2Vec (notebooks 02 and 05): one vector per (task, probe, options), float32 as base64
register_kind("task2vec.vector", 1, {"dim": (1, 1e7), "hessian": None, "scale": None, "meta": None},
              "one task's Task2Vec vector (diagonal Fisher per filter) and its embedding run's metadata")


def encode_array(array: Any) -> dict[str, Any]:
    """A float32 vector as JSON: exact (its bytes in base64), ~4/3 of its binary size."""
    import base64

    import numpy as np

    a = np.ascontiguousarray(array, dtype="<f4").ravel()
    return {"dtype": "float32", "shape": [int(a.size)], "b64": base64.b64encode(a.tobytes()).decode("ascii")}


def decode_array(data: dict[str, Any], where: str = "ledger record") -> Any:
    import base64
    import binascii

    import numpy as np

    try:
        a = np.frombuffer(base64.b64decode(data["b64"], validate=True), dtype="<f4")
        if a.size != int(data["shape"][0]):
            raise ValueError(f"{a.size} values, shape says {data['shape']}")
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise T2SError(f"{where}: a vector that does not decode ({exc})", _FIX_RECORD) from None
    return a.astype(np.float32)


def _plain(obj: Any) -> Any:
    """NumPy scalars as Python numbers (``np.int64(3)`` -> 3, not "3"); anything else by its text."""
    return obj.item() if hasattr(obj, "item") and hasattr(obj, "dtype") else str(obj)


def canonical(obj: Any) -> str:
    """The JSON text an identity is hashed by: sorted keys, no spaces, numbers as JSON writes them."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_plain, allow_nan=False)


def identity_key(kind: str, identity: dict[str, Any], numerics: int | None = None) -> str:
    """The digest a record is found by: its kind, the kind's numerics version and the identity."""
    numerics = get_kind(kind).numerics if numerics is None else numerics
    text = canonical({"kind": kind, "numerics": numerics, "identity": identity})
    return hashlib.sha256(text.encode()).hexdigest()[:24]


# -- provenance ------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The project's commit (``<hash>`` or ``<hash>+dirty``), or ``unknown`` outside a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        # what a study run writes (figures, the ledger) does not make the code dirty
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!figures",
                                ":!results"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head + ("+dirty" if dirty else "")) if head else "unknown"


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _torch_facts() -> dict[str, Any]:
    try:
        version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        version = None
    torch = sys.modules.get("torch")  # only when the stage loaded it: the ledger does not import torch
    return {"torch": version, "threads": torch.get_num_threads() if torch is not None else None}


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (a pool of workers, once shut down)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def provenance(cpu_seconds: float, wall_seconds: float) -> dict[str, Any]:
    """Where and how a measurement was made (never part of its identity)."""
    return {"commit": git_commit(), "cpu": cpu_model(), **_torch_facts(), "host_cores": os.cpu_count(),
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "cpu_seconds": round(cpu_seconds, 2), "wall_seconds": round(wall_seconds, 2)}


# -- the ledger ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Record:
    kind: str
    key: str
    numerics: int
    identity: dict[str, Any]
    value: dict[str, Any]
    provenance: dict[str, Any]
    where: str  # file:line

    def line(self) -> str:
        """The record as one JSON line: the identity with sorted keys (as hashed), the value in the order
        the stage wrote it (a table built from it keeps its row order)."""
        return json.dumps({"format": LEDGER_FORMAT, "kind": self.kind, "key": self.key, "numerics": self.numerics,
                           "identity": json.loads(canonical(self.identity)), "value": self.value,
                           "provenance": self.provenance}, separators=(",", ":"), default=_plain, allow_nan=False)


def parse_line(text: str, where: str) -> Record:
    """One record line, checked: valid JSON, every field, a known kind, a key that matches its identity,
    a value inside its kind's ranges, and a format and numerics version this code can read."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise T2SError(f"{where}: not a valid ledger record ({exc})", _FIX_RECORD) from None
    if not isinstance(data, dict):
        raise T2SError(f"{where}: a ledger record must be a JSON object", _FIX_RECORD)
    missing = [f for f in RECORD_FIELDS if f not in data]
    if missing:
        raise T2SError(f"{where}: the ledger record has no {', '.join(missing)}", _FIX_RECORD)
    if data["format"] != LEDGER_FORMAT:
        raise T2SError(f"{where}: ledger format {data['format']!r}; this code reads format {LEDGER_FORMAT}",
                       "update the code (git pull) to read this ledger, or measure into another ledger (T2S_LEDGER)")
    kind = get_kind(data["kind"]) if data["kind"] in KINDS else None
    if kind is None:
        raise T2SError(f"{where}: unknown ledger kind {data['kind']!r} (written by newer code?)",
                       "update the code (git pull), or remove the line")
    numerics = data["numerics"]
    if isinstance(numerics, bool) or not isinstance(numerics, int) or numerics < 1:
        raise T2SError(f"{where}: numerics version {numerics!r} is not a positive integer", _FIX_RECORD)
    if numerics > kind.numerics:
        raise T2SError(f"{where}: the {kind.name} record was measured by numerics version {numerics}; this code has "
                       f"version {kind.numerics} and cannot reproduce it",
                       "update the code (git pull) to the version that wrote the ledger, or measure into another "
                       "ledger (T2S_LEDGER)")
    if not isinstance(data["identity"], dict) or not isinstance(data["provenance"], dict):
        raise T2SError(f"{where}: identity and provenance must be JSON objects", _FIX_RECORD)
    try:
        key = identity_key(kind.name, data["identity"], numerics)
    except ValueError as exc:
        raise T2SError(f"{where}: the identity does not parse ({exc})", _FIX_RECORD) from None
    if key != data["key"]:
        raise T2SError(f"{where}: the record's key {data['key']!r} does not match its identity (edited by hand?)",
                       _FIX_RECORD)
    kind.check_value(data["value"], where)
    return Record(kind.name, key, numerics, data["identity"], data["value"], data["provenance"], where)


class Ledger:
    """The records of one profile (``<root>/<profile>/<kind>.jsonl``): read, look up by identity,
    append atomically, list stale records. Each file is parsed once and re-read when it changes."""

    def __init__(self, folder: str | os.PathLike, mode: str = "measure"):
        if mode not in MODES:
            raise T2SError(f"unknown ledger mode {mode!r}", f"use one of: {', '.join(MODES)}")
        self.folder = Path(folder)
        self.mode = mode
        # kind -> ((mtime_ns, size) read, lines read, records): a file that only grew is read from its old end
        self._cache: dict[str, tuple[tuple[int, int], int, list[Record]]] = {}

    def __repr__(self) -> str:
        return f"Ledger({str(self.folder)!r}, mode={self.mode!r})"

    def path(self, kind: str) -> Path:
        return self.folder / f"{get_kind(kind).name}.jsonl"

    def records(self, kind: str) -> list[Record]:
        """Every record of ``kind`` in file order (stale ones included); a damaged line is an error
        naming its file and line. A file that only grew since it was last read is parsed from where
        that read ended (appends are the only writes; any other change is read whole)."""
        path = self.path(kind)
        try:
            st = path.stat()
        except FileNotFoundError:
            return []
        cached = self._cache.get(kind)
        if cached is not None and cached[0] == (st.st_mtime_ns, st.st_size):
            return cached[2]
        grew = cached is not None and st.st_size > cached[0][1]
        offset, lines_before, known = (cached[0][1], cached[1], cached[2]) if grew else (0, 0, [])
        with open(path, "rb") as fh:  # a shared lock: never half of a line another process is appending
            fcntl.flock(fh, fcntl.LOCK_SH)
            try:
                if offset:
                    fh.seek(offset - 1)
                    if fh.read(1) != b"\n":  # not the end of a line we read: the file changed, read it whole
                        offset, lines_before, known = 0, 0, []
                fh.seek(offset)
                data = fh.read()
                stamp = (os.fstat(fh.fileno()).st_mtime_ns, offset + len(data))
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        text = data.decode("utf-8", errors="replace")
        lines = text.splitlines()
        if text and not text.endswith("\n"):
            raise T2SError(f"{path}:{lines_before + len(lines)}: the last record is incomplete (a write was cut off)",
                           f"remove that last line of {path}; the unit is then measured again")
        out = known + [parse_line(line, f"{path}:{lines_before + n}") for n, line in enumerate(lines, 1) if line.strip()]
        self._cache[kind] = (stamp, lines_before + len(lines), out)
        return out

    def current(self, kind: str) -> dict[str, Record]:
        """key -> the newest record of ``kind`` of this code's numerics version (what lookups answer from)."""
        version = get_kind(kind).numerics
        return {r.key: r for r in self.records(kind) if r.numerics == version}

    def lookup(self, kind: str, identity: dict[str, Any]) -> Record | None:
        """The newest current record with this identity, or None (also in ``recompute`` mode)."""
        if self.mode == "recompute":
            return None
        return self.current(kind).get(identity_key(kind, identity))

    def holds(self, kind: str, identity: dict[str, Any]) -> bool:
        """Whether :meth:`lookup` would answer (never in ``recompute`` mode)."""
        return self.lookup(kind, identity) is not None

    def append(self, kind: str, identity: dict[str, Any], value: dict[str, Any], prov: dict[str, Any]) -> Record:
        """Add one record (checked as a reader would check it) in one locked, whole-line write."""
        k = get_kind(kind)
        record = Record(k.name, identity_key(kind, identity), k.numerics, json.loads(canonical(identity)),
                        json.loads(json.dumps(value, default=_plain, allow_nan=False)), prov, "")
        k.check_value(record.value, f"new {kind} record")
        line = (record.line() + "\n").encode()
        path = self.path(kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                written = os.write(fd, line)
                if written != len(line):  # a short write (disk full): take it back so no torn line stays
                    os.ftruncate(fd, os.fstat(fd).st_size - written)
                    raise OSError(28, "short write to the ledger", str(path))
                os.fsync(fd)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        return record

    def measure(self, kind: str, identity: dict[str, Any], compute: Callable[[], dict[str, Any]],
                *, what: str = "", budget: bool = True) -> dict[str, Any]:
        """The unit's value: from the ledger when it holds the identity (and the mode allows), else
        ``compute()`` (after the budget check, unless the caller checked for a larger unit), appended
        with its provenance."""
        found = self.lookup(kind, identity)
        if found is not None:
            return found.value
        self.require_measuring(kind, what or canonical(identity)[:200])
        if budget:
            check_budget(kind, self)
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        value = compute()
        self.append(kind, identity, value, provenance(cpu_seconds() - cpu0, time.perf_counter() - wall0))
        return value

    def require_measuring(self, kind: str, what: str) -> None:
        """Refuse to measure in ``replay`` mode (``make figures`` computes nothing)."""
        if self.mode == "replay":
            raise T2SError(f"the ledger {self.folder} holds no current {kind} record for {what}",
                           "measure it first (t2s study --profile P --record --budget-minutes M), then commit the "
                           "ledger and regenerate the figures")

    def stale(self) -> list[Record]:
        """Records of an older numerics version than this code's (never used; listed for removal)."""
        out = []
        for kind in self.kinds_present():
            out += [r for r in self.records(kind) if r.numerics < get_kind(kind).numerics]
        return out

    def kinds_present(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.glob("*.jsonl") if p.stem in KINDS)



#: the profile whose ledger library code records into when it is not told one (set by notebook.setup)
PROFILE_ENV = "T2S_LEDGER_PROFILE"


def current() -> Ledger | None:
    """The ledger of the study this process runs in (``T2S_LEDGER_PROFILE``, set by :func:`t2s_lib.notebook.setup`
    and inherited by workers), or None outside a study (a command line run measures without recording)."""
    profile = os.environ.get(PROFILE_ENV)
    return active(profile) if profile else None


def ledger_dir(profile: str) -> Path:
    """The ledger folder of a profile: ``<T2S_LEDGER or runs/ledger>/<profile>``."""
    return ledger_root() / profile


def active(profile: str) -> Ledger:
    """The ledger this process measures into for ``profile`` (``T2S_LEDGER``, ``T2S_LEDGER_MODE``): the
    environment carries it across papermill kernels and submitit workers."""
    return Ledger(ledger_dir(profile), os.environ.get("T2S_LEDGER_MODE", "measure"))


# -- budgets -----------------------------------------------------------------------------------

class BudgetSpent(T2SError):
    """The study's time budget does not leave room for another unit: stop cleanly, run again to continue."""


DEADLINE_ENV = "T2S_DEADLINE"


def deadline() -> float | None:
    """The wall-clock time (epoch seconds) after which no new unit starts, or None without a budget."""
    text = os.environ.get(DEADLINE_ENV)
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise T2SError(f"{DEADLINE_ENV}={text!r} is not a time in seconds", f"unset {DEADLINE_ENV} or use "
                       "t2s study --budget-minutes") from None


@contextlib.contextmanager
def budget(minutes: float | None) -> Iterator[float | None]:
    """Set the deadline for everything started inside the block (child processes inherit it)."""
    if minutes is None:
        yield None
        return
    if not minutes > 0:
        raise T2SError(f"--budget-minutes {minutes} must be positive", "give the minutes this run may take, e.g. 40")
    old = os.environ.get(DEADLINE_ENV)
    os.environ[DEADLINE_ENV] = repr(time.time() + 60.0 * minutes)
    try:
        yield float(os.environ[DEADLINE_ENV])
    finally:
        if old is None:
            os.environ.pop(DEADLINE_ENV, None)
        else:
            os.environ[DEADLINE_ENV] = old


def unit_estimate(kind: str, ledger: Ledger | None) -> float:
    """Seconds one unit of ``kind`` is expected to take: the median wall time of its records."""
    if ledger is None:
        return 0.0
    walls = sorted(float(r.provenance.get("wall_seconds", 0.0)) for r in ledger.current(kind).values())
    return walls[len(walls) // 2] if walls else 0.0


def check_budget(kind: str, ledger: Ledger | None = None, estimate_s: float | None = None) -> None:
    """Refuse to start a unit that would not finish before the deadline (no half-measured units)."""
    end = deadline()
    if end is None:
        return
    need = unit_estimate(kind, ledger) if estimate_s is None else estimate_s
    left = end - time.time()
    if left <= need:
        raise BudgetSpent(f"the time budget is spent ({max(left, 0) / 60:.1f} min left, a {kind} unit takes "
                          f"~{need / 60:.1f} min): stopped before starting another",
                          "every finished unit is in the ledger; run the same command again to continue")
