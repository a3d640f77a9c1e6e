"""Run untrusted (LLM-written) Python in a sandbox: ``run_python(code) -> SandboxResult``.

What contains it:
- a separate process, ``python -I`` (isolated mode: no user site, no PYTHON* variables), started in a new
  session, with a temporary directory as its cwd and HOME (deleted afterwards);
- an environment stripped to PATH/HOME/LANG: no inherited variable, so no API key, reaches the code;
- a wall-clock timeout (the whole process group is SIGKILLed), plus RLIMIT_CPU as a backstop;
- RLIMIT_AS (memory), RLIMIT_NPROC (fork bombs), RLIMIT_FSIZE (stdout/stderr and files), RLIMIT_NOFILE;
- no network: when the parent runs as root (containers, CI) the child enters a fresh NETWORK namespace (no
  interface but a down loopback) and a PID namespace (everything it forks dies with it), then drops to uid
  ``nobody`` so RLIMIT_NPROC applies and the parent's /proc environ is unreadable. Otherwise (not root) an
  audit hook in the child refuses socket creation. The audit hook (sockets, ctypes, reading another
  process's /proc environ) is installed in both cases. As root, when this interpreter is not readable by
  ``nobody`` (a Python under /root), the sandbox runs ``/usr/bin/python3`` (standard library only); with no
  such Python the child stays root and process creation is refused instead. ``SandboxResult.isolation``
  lists the layers that were active (e.g. "netns,pidns,uid-nobody,rlimits,audit-hook").
This stops accidents and naive hostile code; it is not a security boundary against a determined attacker
with a kernel exploit. Run untrusted code from the internet in a VM.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import SandboxError

CHILD = Path(__file__).with_name("_sandbox_child.py")
MARKER = "#textopt-sandbox-isolation: "  # first stderr line of the child, written before the code runs


@dataclass
class SandboxResult:
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    duration: float
    isolation: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def _read(path: Path, limit: int) -> str:
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    text = data[:limit].decode("utf-8", "replace")
    return text + ("\n[... output truncated ...]" if len(data) > limit else "")


def run_python(code: str, *, timeout: float = 10.0, memory_mb: int = 512, max_processes: int = 32,
               max_output: int = 64_000, max_file_bytes: int = 16 * 1024 * 1024,
               files: dict[str, str] | None = None, isolate: bool = True) -> SandboxResult:
    """Run ``code`` as ``main.py`` in a fresh sandbox (see the module docstring). ``files``: extra files to put
    next to it. ``isolate=False`` skips the namespaces and uid change (the audit-hook-only layer a non-root
    parent gets; as root it then also refuses process creation). Never raises for what the code does; raises
    :class:`SandboxError` if it cannot start."""
    if not isinstance(code, str):
        raise SandboxError(f"sandbox code must be a str, got {type(code).__name__}")
    if timeout <= 0 or memory_mb < 64:
        raise SandboxError("sandbox timeout must be > 0 and memory_mb >= 64")
    work = Path(tempfile.mkdtemp(prefix="textopt-sandbox-"))
    outdir = Path(tempfile.mkdtemp(prefix="textopt-sandbox-out-"))
    try:
        (work / "main.py").write_text(code, encoding="utf-8")
        for name, text in (files or {}).items():
            target = (work / name).resolve()
            if work.resolve() not in target.parents:
                raise SandboxError(f"sandbox file name {name!r} escapes the sandbox directory")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work), "LANG": "C.UTF-8",
               "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
        python, drop = interpreter() if isolate else (sys.executable, False)
        cfg = {"memory_mb": memory_mb, "max_processes": max_processes, "timeout": timeout,
               "max_file_bytes": max_file_bytes, "env": env, "drop_to_nobody": drop,
               "isolate": isolate}
        cfg_path = outdir / "config.json"
        cfg_path.write_text(json.dumps(cfg))
        if drop:  # the child becomes nobody: let it use its directory
            for p in [work, *work.rglob("*")]:
                os.chown(p, 65534, 65534)
            os.chmod(outdir, 0o755)
            os.chmod(cfg_path, 0o644)
        out_path, err_path = outdir / "stdout", outdir / "stderr"
        t0 = time.monotonic()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            try:
                proc = subprocess.Popen([python, "-I", str(CHILD), str(cfg_path)], cwd=work, env=env,
                                        stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
            except OSError as exc:
                raise SandboxError(f"could not start the sandbox interpreter {python}: {exc}") from exc
            timed_out = False
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_group(proc.pid)
                proc.wait()
        duration = time.monotonic() - t0
        stderr, isolation = _read(err_path, max_output), ""
        if stderr.startswith(MARKER):
            first, _, stderr = stderr.partition("\n")
            isolation = first[len(MARKER):]
        return SandboxResult(proc.returncode, _read(out_path, max_output), stderr, timed_out, duration, isolation)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(outdir, ignore_errors=True)


def _world_readable(path: Path) -> bool:
    path = path.resolve()
    if not path.exists() or not path.stat().st_mode & stat.S_IROTH:
        return False
    return all(p.stat().st_mode & stat.S_IXOTH for p in path.parents)


def interpreter() -> tuple[str, bool]:
    """(python executable for the sandbox, whether the child drops to uid nobody). As root we want a Python
    that nobody can read (this one, else /usr/bin/python3); without one the child stays root with process
    creation refused. Not root: this Python, no privilege change."""
    if os.geteuid() != 0:
        return sys.executable, False
    candidates = [sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"]
    for exe in candidates:
        exe_path = Path(exe)
        if not exe_path.exists():
            continue
        real = exe_path.resolve()
        stdlib = real.parent.parent / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "os.py"
        libs = list(real.parent.parent.glob("lib/python3*/os.py"))
        if _world_readable(real) and any(_world_readable(p) for p in [stdlib, *libs]):
            return str(exe_path), True
    return sys.executable, False


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
