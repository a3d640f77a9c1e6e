"""Run a program in the sandbox from a separate parent process, as this user or as an ordinary (non-root) one.

The parent is a small driver script (DRIVER) with a secret in its environment, so a program that reaches the
parent (signals, /proc/<pid>/environ) is seen failing the test rather than killing pytest. As the ordinary
user, the driver runs ``/usr/bin/python3`` via ``setpriv`` on a copy of the three files the sandbox is made of
(textopt/errors.py, nn/sandbox.py, nn/_sandbox_child.py) in a folder that user can read, with empty package
``__init__`` files, since this project's venv may live where that user cannot read (e.g. under /root).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
USER = "textopt-sbx"
SECRET = "sk-textopt-test-secret-" + os.urandom(6).hex()
SYSTEM_PYTHON = "/usr/bin/python3"

DRIVER = r'''
import dataclasses, json, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from textopt.errors import SandboxError
from textopt.nn.sandbox import run_python
args = json.loads(sys.argv[1])
code = args["code"].replace("PARENT_PID", str(os.getpid()))
try:
    result = run_python(code, mode=args["mode"], timeout=args["timeout"], max_processes=args["max_processes"])
except SandboxError as exc:
    print(json.dumps({"error": str(exc)}))
else:
    print(json.dumps(dataclasses.asdict(result)))
'''


def _copy_sandbox(dest: Path) -> None:
    for rel in ["textopt/errors.py", "textopt/nn/sandbox.py", "textopt/nn/_sandbox_child.py"]:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, dest / rel)
    for pkg in ["textopt", "textopt/nn"]:
        (dest / pkg / "__init__.py").write_text("")
    (dest / "driver.py").write_text(DRIVER)
    (dest / "project-secret.txt").write_text(SECRET)  # readable by the user, but not from the sandbox
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def ordinary_user_missing() -> str | None:
    """Why the ordinary-user runs cannot happen here (None: they can); creates the user when root."""
    if os.geteuid() != 0:
        return "not root: these tests already run as an ordinary user (see the 'this-user' cases)"
    for tool in ("setpriv", "useradd"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"no {SYSTEM_PYTHON} for the ordinary user to run the driver with"
    if subprocess.run(["id", "-u", USER], capture_output=True).returncode != 0:
        made = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
                              capture_output=True, text=True)
        if made.returncode != 0:
            return f"could not create the user {USER}: {made.stderr.strip()}"
    return None


class Parent:
    """A driver folder; ``run(code, mode)`` returns the SandboxResult as a dict plus the driver's exit."""

    def __init__(self, who: str):
        self.who = who
        self.dir = Path(tempfile.mkdtemp(prefix="textopt-hostile-"))
        self.dir.chmod(0o755)
        _copy_sandbox(self.dir)
        self.secret_file = self.dir / "project-secret.txt"

    def command(self, code: str, mode: str, *, timeout: float = 30, max_processes: int = 32) -> list[str]:
        args = json.dumps({"code": code, "mode": mode, "timeout": timeout, "max_processes": max_processes})
        python = SYSTEM_PYTHON if self.who == "ordinary-user" else sys.executable
        cmd = ["env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin", "TMPDIR=/tmp", f"OPENAI_API_KEY={SECRET}",
               f"TEXTOPT_TEST_SECRET={SECRET}", python, "-I", str(self.dir / "driver.py"), args]
        user = ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups", "--"]  # execs: same pid
        return user + cmd if self.who == "ordinary-user" else cmd

    def run(self, code: str, mode: str, *, timeout: float = 30, max_processes: int = 32) -> dict:
        cmd = self.command(code, mode, timeout=timeout, max_processes=max_processes)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 60, cwd=self.dir)
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            return {"parent_died": True, "parent_returncode": proc.returncode, "parent_stderr": proc.stderr}
        out = json.loads(lines[-1])
        if "error" in out:
            pytest.skip(f"the {mode} sandbox is not available to {self.who}: {out['error']}")
        out["parent_died"] = False
        return out

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
