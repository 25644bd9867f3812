"""Checkpoints, restore and savepoints (see docs/checkpoints.md).

Options are given to :meth:`sabot.Environment.execute` / ``start`` /
:meth:`sabot.DataStream.to_table`::

    env.execute(checkpoint_dir="/data/ckpt", checkpoint_interval_ms=1000)
    env.execute(checkpoint_dir="/data/ckpt", restore="latest")

A running job's handle takes savepoints (``handle.savepoint(path)``,
``handle.stop_with_savepoint(path)``); ``sabot savepoint <checkpoint_dir>``
asks a job run by ``sabot run`` for one through its checkpoint directory.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from sabot import _sabot

#: Option name -> accepted Python type(s).
OPTIONS: dict[str, tuple[type, ...]] = {
    "checkpoint_dir": (str, os.PathLike),
    "checkpoint_interval_ms": (int,),
    "retain_checkpoints": (int,),
    "tolerable_checkpoint_failures": (int,),
    "unaligned_checkpoints": (bool,),
    "restore": (str, os.PathLike),
    "allow_non_restored_state": (bool,),
    "job_name": (str,),
    "state_backend": (str,),
    "state_dir": (str, os.PathLike),
}

#: What a checkpoint option is when a job is started without it (job_name,
#: state_backend and state_dir keep the environment's setting unless given).
DEFAULTS: dict[str, Any] = {
    "checkpoint_dir": "",
    "checkpoint_interval_ms": 0,
    "retain_checkpoints": 3,
    "tolerable_checkpoint_failures": 3,
    "unaligned_checkpoints": False,
    "restore": "",
    "allow_non_restored_state": False,
}

#: ``sabot run --restore PATH`` passes PATH to every job the script starts
#: through this environment variable (an explicit ``restore=`` wins).
RESTORE_ENV = "SABOT_RESTORE"

REQUEST_FILE = "_savepoint_request"
RESPONSE_PREFIX = "_savepoint_response-"


def normalize_options(options: dict[str, Any]) -> dict[str, Any]:
    """Checks names, types and values of checkpoint options; returns them with
    paths as strings (and ``restore`` defaulted from ``$SABOT_RESTORE``)."""
    out: dict[str, Any] = {}
    for name, value in options.items():
        if name not in OPTIONS:
            known = ", ".join(sorted(OPTIONS))
            raise TypeError(f"unknown job option {name!r}; known options: {known}")
        if value is None:
            continue
        types = OPTIONS[name]
        if bool in types:
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
        elif int in types:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        elif not isinstance(value, types):
            raise TypeError(f"{name} must be a str or path, not {type(value).__name__}")
        out[name] = os.fspath(value) if isinstance(value, os.PathLike) else value
    if out.get("checkpoint_interval_ms", 0) < 0:
        raise ValueError("checkpoint_interval_ms must be >= 0 (0: no periodic checkpoints)")
    if out.get("retain_checkpoints", 1) < 1:
        raise ValueError("retain_checkpoints must be at least 1")
    if out.get("tolerable_checkpoint_failures", 0) < 0:
        raise ValueError("tolerable_checkpoint_failures must be >= 0")
    if out.get("state_backend", "memory") not in ("memory", "rocksdb"):
        raise ValueError("state_backend must be 'memory' or 'rocksdb'")
    if out.get("checkpoint_interval_ms", 0) > 0 and not out.get("checkpoint_dir"):
        raise ValueError("checkpoint_interval_ms needs checkpoint_dir")
    if "restore" not in out and os.environ.get(RESTORE_ENV):
        out["restore"] = os.environ[RESTORE_ENV]
    if out.get("restore") == "latest" and not out.get("checkpoint_dir"):
        raise ValueError("restore='latest' needs checkpoint_dir")
    return out


def configure(env: Any, options: dict[str, Any]) -> None:
    """Sets the job options of the next job ``env`` (an :class:`~sabot.Environment`)
    starts: the given ones, the defaults for the other checkpoint options."""
    _sabot.configure_checkpoints(env._native, {**DEFAULTS, **normalize_options(options)})


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``_metadata`` of a checkpoint or savepoint directory, as a dict."""
    p = Path(path)
    if p.is_dir():
        p = p / "_metadata"
    return json.loads(p.read_text())


def verify(path: str | os.PathLike[str]) -> str:
    """Checks that every file the checkpoint at ``path`` names exists with its
    recorded size and CRC-32; returns the checkpoint directory or raises
    :class:`sabot.JobError` naming the bad file."""
    return str(_sabot.verify_checkpoint(os.fspath(path)))


def latest_checkpoint(checkpoint_dir: str | os.PathLike[str]) -> str | None:
    """The newest completed checkpoint (``chk-<id>`` with ``_metadata``) in
    ``checkpoint_dir``, unverified, or None."""
    best: tuple[int, Path] | None = None
    root = Path(checkpoint_dir)
    if not root.is_dir():
        return None
    for child in root.iterdir():
        name = child.name
        if name.startswith("chk-") and name[4:].isdigit() and (child / "_metadata").exists():
            if best is None or int(name[4:]) > best[0]:
                best = (int(name[4:]), child)
    return str(best[1]) if best else None


def request_savepoint(
    checkpoint_dir: str | os.PathLike[str],
    *,
    path: str | os.PathLike[str] | None = None,
    stop: bool = False,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Asks the job running with ``checkpoint_dir`` for a savepoint (what
    ``sabot savepoint`` does): writes the request file the job polls and waits
    for its answer. Returns ``{"path", "checkpoint_id", ...}``; raises
    RuntimeError when the savepoint failed or no job answered in time."""
    root = Path(checkpoint_dir)
    if not root.is_dir():
        raise RuntimeError(f"checkpoint directory {str(root)!r} does not exist")
    request_id = uuid.uuid4().hex[:16]
    request = {"id": request_id, "path": os.fspath(path) if path else "", "stop": stop}
    tmp = root / f".{REQUEST_FILE}.{request_id}"
    tmp.write_text(json.dumps(request))
    os.replace(tmp, root / REQUEST_FILE)
    response = root / f"{RESPONSE_PREFIX}{request_id}.json"
    deadline = time.monotonic() + timeout
    while not response.exists():
        if time.monotonic() > deadline:
            pending = root / REQUEST_FILE
            if pending.exists():
                pending.unlink(missing_ok=True)
                raise RuntimeError(
                    f"no running job took the savepoint request in {timeout:g} s "
                    f"(is a job running with checkpoint_dir={str(root)!r}?)"
                )
            raise RuntimeError(f"the savepoint did not complete within {timeout:g} s")
        time.sleep(0.05)
    answer = json.loads(response.read_text())
    response.unlink(missing_ok=True)
    if answer.get("status") != "ok":
        raise RuntimeError(f"savepoint failed: {answer.get('message')}")
    return answer
