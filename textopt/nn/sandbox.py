"""Run untrusted (LLM-written) Python in a sandbox: ``run_python(code) -> SandboxResult``.

Modes (``mode=`` or the ``TEXTOPT_SANDBOX`` environment variable; default "auto"):
- "bwrap": bubblewrap (Debian package ``bubblewrap``) builds the sandbox;
- "namespaces": the same sandbox built by textopt itself with the kernel's namespaces (no helper binary);
- "auto": bwrap when it works here, else namespaces, else a :class:`SandboxError` saying how to get one;
- "weak": only the rlimits and the audit hook below; never chosen unless asked for.
bwrap and namespaces give the same guarantees, as root and as an ordinary user (unprivileged user namespaces):
- a read-only view of the system directories (/usr, /bin, /lib*, a few /etc files for the dynamic loader) and
  of this Python's installation, nothing else: no home, no project, no /etc/passwd, no host /tmp or /dev/shm;
- one writable place, the sandbox's private ``/tmp`` (its cwd and HOME, holding ``main.py`` and ``files``): a
  tmpfs of ``disk_mb``, gone afterwards;
- new user, mount, PID, network, IPC and UTS namespaces: no network interface that leads anywhere (the host's
  loopback included, from subprocesses too), no view of other processes (their /proc, environ included), no
  way to signal them; when the code's first process exits, every process it started (setsid too) is killed;
- no capabilities, no_new_privs; as root the code runs as the real uid 65534 (bwrap is started as it, the
  namespaces launcher drops to it before unsharing): a uid 0 kept in a user namespace, even without
  capabilities, still passes /proc/sys's owner check and could change kernel settings;
- an environment stripped to PATH/HOME/LANG; rlimits (memory, processes, CPU, file size, open files); a
  wall-clock timeout; an audit hook refusing sockets and ctypes in the code's own interpreter.
The code runs on this Python's base installation (standard library and its site-packages, not a venv's); as
root, on the first of it, /usr/bin/python3, /usr/local/bin/python3 that uid 65534 can read.
The result channel (``SandboxResult.results``) is a file the parent opened; the code gets only a descriptor
(``TEXTOPT_RESULTS_FD``) and no path to it. It is as trustworthy as the code that writes it: code set on
fooling its own tests can, so callers must parse it defensively (see :mod:`.code_tests`).
Not a boundary against kernel exploits: for code from the internet use a VM.
"""
from __future__ import annotations

import functools
import marshal
import os
import select
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
ERROR_MARKER = "#textopt-sandbox-error: "  # the sandbox could not be built; the code did not run
MODES = ("auto", "bwrap", "namespaces", "weak")
ENV_VAR = "TEXTOPT_SANDBOX"
SYSTEM_DIRS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]
ETC_FILES = ["ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime"]
NOBODY = 65534


@dataclass
class SandboxResult:
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    duration: float
    isolation: str = ""
    mode: str = ""
    results: str = ""  # what the code wrote on the result channel (TEXTOPT_RESULTS_FD)

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
               files: dict[str, str] | None = None, mode: str | None = None, disk_mb: int = 64) -> SandboxResult:
    """Run ``code`` as ``main.py`` in a fresh sandbox (see the module docstring). ``files``: extra files to put
    next to it. Never raises for what the code does; raises :class:`SandboxError` for bad arguments or when no
    sandbox can be built (the code then never ran)."""
    if not isinstance(code, str):
        raise SandboxError(f"sandbox code must be a str, got {type(code).__name__}")
    if not timeout > 0 or memory_mb < 64 or disk_mb < 1:
        raise SandboxError("sandbox timeout must be > 0, memory_mb >= 64 and disk_mb >= 1")
    files = _checked_files(code, files or {})
    return _run(files, resolve_mode(mode), timeout=timeout, memory_mb=memory_mb, max_processes=max_processes,
                max_output=max_output, max_file_bytes=max_file_bytes, disk_mb=disk_mb)


def resolve_mode(mode: str | None = None) -> str:
    """The mode a run gets: "bwrap", "namespaces" or "weak" (see the module docstring)."""
    asked = mode if mode is not None else (os.environ.get(ENV_VAR) or "auto")
    if asked not in MODES:
        source = "mode" if mode is not None else ENV_VAR
        raise SandboxError(f"unknown sandbox {source} {asked!r}: use one of {', '.join(MODES)}")
    if asked == "weak":
        return "weak"
    problems = []
    for candidate in ("bwrap", "namespaces"):
        if asked in ("auto", candidate):
            why = unavailable(candidate)
            if why is None:
                return candidate
            problems.append(f"{candidate}: {why}")
    raise SandboxError(
        f"no sandbox for untrusted code is available here ({'; '.join(problems)}). Install bubblewrap "
        "(apt-get install bubblewrap) or allow unprivileged user namespaces (sysctl "
        "kernel.unprivileged_userns_clone=1, or kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu); "
        f"or accept running it with only rlimits and an audit hook, with no filesystem, process or network "
        f"isolation, by passing mode='weak' or setting {ENV_VAR}=weak.")


@functools.lru_cache(maxsize=None)
def unavailable(mode: str) -> str | None:
    """Why ``mode`` cannot sandbox code on this machine (None: it works); decided once per process. A failed trial
    run is tried again (twice, a second apart): the answer is cached for the process, so one transient failure
    on a loaded machine (a fork refused, a slow start) must not cost it its sandbox."""
    if mode == "bwrap" and shutil.which("bwrap") is None:
        return "the bwrap program is not installed"
    why = None
    for attempt in range(3):
        if attempt:
            time.sleep(1.0)
        try:
            result = _run({"main.py": "pass"}, mode, timeout=60, memory_mb=256, max_processes=32,
                          max_output=4000, max_file_bytes=1 << 20, disk_mb=1)
        except SandboxError as exc:
            why = str(exc)
            continue
        if result.ok and result.isolation.startswith(mode + ":"):
            return None
        why = f"a trial run failed (exit {result.returncode}): {result.stderr.strip()[-300:]}"
    return why


def base_python() -> str:
    """This Python's base interpreter (outside any venv)."""
    exe = getattr(sys, "_base_executable", None) or sys.executable
    return os.path.realpath(exe)


def _reachable_by_nobody(path: str) -> bool:
    try:
        st = os.stat(path)
        return bool(st.st_mode & stat.S_IROTH) and all(
            os.stat(p).st_mode & stat.S_IXOTH for p in Path(path).parents)
    except OSError:
        return False


def interpreter() -> str:
    """The Python the sandbox runs: this one's base interpreter; as root (the sandbox then runs as uid 65534),
    the first of it, /usr/bin/python3 and /usr/local/bin/python3 that uid 65534 can read, with its library."""
    if os.geteuid() != 0:
        return base_python()
    tried = []
    for exe in [base_python(), "/usr/bin/python3", "/usr/local/bin/python3"]:
        real = os.path.realpath(exe)
        prefix = os.path.dirname(os.path.dirname(real))
        libs = list(Path(prefix).glob("lib/python3*/os.py"))
        if _reachable_by_nobody(real) and any(_reachable_by_nobody(str(p)) for p in libs):
            return real
        tried.append(real)
    raise SandboxError(f"as root the sandbox runs code as uid 65534, which can read none of these Pythons: "
                       f"{', '.join(tried)}; install python3 under /usr or make one readable by all users")


def system_view(python: str) -> list[list[str]]:
    """The read-only part of the sandbox: [kind, source, destination], kind "ro" (bind) or "symlink"."""
    view = []
    for top in SYSTEM_DIRS:
        if os.path.islink(top):
            view.append(["symlink", os.readlink(top), top])
        elif os.path.isdir(top):
            view.append(["ro", top, top])
    view += [["ro", f"/etc/{name}", f"/etc/{name}"] for name in ETC_FILES if os.path.exists(f"/etc/{name}")]
    covered = [v[2] for v in view if v[0] == "ro"]
    for path in {os.path.dirname(os.path.dirname(python)), os.path.dirname(python)}:
        real = [os.path.realpath(c) for c in covered]
        if not any(path == c or path.startswith(c.rstrip("/") + "/") for c in real):
            view.append(["ro", path, path])
            covered.append(path)
    return view


@functools.lru_cache(maxsize=None)
def _bwrap_supports(flag: str) -> bool:
    try:
        return flag in subprocess.run(["bwrap", "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False


def _bwrap_argv(python: str, view: list[list[str]], launcher: Path, cfg_path: Path, disk_mb: int) -> list[str]:
    argv = [shutil.which("bwrap") or "bwrap", "--unshare-all", "--unshare-user", "--die-with-parent",
            "--new-session", "--cap-drop", "ALL"]
    if _bwrap_supports("--disable-userns"):
        argv.append("--disable-userns")
    for kind, src, dst in view:
        argv += ["--symlink", src, dst] if kind == "symlink" else ["--ro-bind", src, dst]
    return argv + ["--dev", "/dev", "--remount-ro", "/dev", "--proc", "/proc", "--perms", "01777", "--size",
                   str(disk_mb << 20), "--tmpfs", "/tmp", "--ro-bind", str(launcher), "/.textopt/launcher.py",
                   "--ro-bind", str(cfg_path), "/.textopt/config.json", "--remount-ro", "/", "--chdir", "/tmp",
                   python, "-I", "/.textopt/launcher.py", "/.textopt/config.json"]


def _checked_files(code: str, files: dict[str, str]) -> dict[str, str]:
    """{relative path: text} the launcher writes into the sandbox's /tmp, main.py first."""
    if not isinstance(files, dict):
        raise SandboxError(f"sandbox files must be a dict of relative path -> text, got {type(files).__name__}")
    out = {"main.py": code}
    for name, text in files.items():
        norm = os.path.normpath(name) if isinstance(name, str) else ""
        if not norm or os.path.isabs(norm) or norm == ".." or norm.startswith("../") or norm == ".":
            raise SandboxError(f"sandbox file name {name!r} escapes the sandbox directory: give a relative path")
        if not isinstance(text, str):
            raise SandboxError(f"sandbox file {name!r} must be a str, got {type(text).__name__}")
        out[norm] = text
    return out


def _run(files: dict[str, str], mode: str, *, timeout: float, memory_mb: int, max_processes: int, max_output: int,
         max_file_bytes: int, disk_mb: int) -> SandboxResult:
    """One run; the files travel in the configuration and the launcher writes them into its /tmp (its host
    folder in weak mode). As root, bwrap runs as uid 65534 and the namespaces launcher drops to it itself."""
    outdir = Path(tempfile.mkdtemp(prefix="textopt-sandbox-"))
    outdir.chmod(0o711)  # uid 65534 (root's sandbox user) passes through to its empty mount point "root"
    results_fd = None
    try:
        cwd = outdir / "work" if mode == "weak" else Path("/")
        home = str(cwd) if mode == "weak" else "/tmp"
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8",
               "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
        python = interpreter() if mode != "weak" else sys.executable
        (outdir / "root").mkdir()
        (outdir / "work").mkdir()
        results_path = outdir / "results"
        results_fd = os.open(results_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        cfg = {"mode": mode, "memory_mb": memory_mb, "max_processes": max_processes, "timeout": timeout,
               "max_file_bytes": max_file_bytes, "env": env, "results_fd": results_fd, "files": files,
               "newroot": str(outdir / "root"), "view": system_view(python), "disk_mb": disk_mb}
        cfg_path = outdir / "config.json"
        cfg_path.write_bytes(marshal.dumps(cfg, 2))  # read without importing json; version 2: any Python 3
        user = {}
        if mode == "bwrap":
            launcher = outdir / "launcher.py"  # a copy uid 65534 can read wherever the project lives
            shutil.copyfile(CHILD, launcher)
            for path in (launcher, cfg_path):
                path.chmod(0o644)
            argv = _bwrap_argv(python, cfg["view"], launcher, cfg_path, disk_mb)
            if os.geteuid() == 0:  # never uid 0 in the sandbox, not even mapped: /proc/sys and co. trust it
                setpriv = shutil.which("setpriv")  # execs as 65534; Popen(user=) could not vfork (+40 ms)
                if setpriv:
                    argv = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", *argv]
                else:
                    user = {"user": NOBODY, "group": NOBODY, "extra_groups": []}
        else:
            argv = [python, "-I", str(CHILD), str(cfg_path)]
        out_path, err_path = outdir / "stdout", outdir / "stderr"
        t0 = time.monotonic()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            try:
                proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                        start_new_session=True, pass_fds=(results_fd,), **user)
            except OSError as exc:
                raise SandboxError(f"could not start the {mode} sandbox ({argv[0]}): {exc}") from exc
            try:
                timed_out = _wait(proc, timeout)
            finally:
                _kill_group(proc.pid)
                proc.wait()
        duration = time.monotonic() - t0
        stderr, isolation = _read(err_path, max_output), ""
        if stderr.startswith(MARKER):
            first, _, stderr = stderr.partition("\n")
            isolation = first[len(MARKER):]
        elif ERROR_MARKER in stderr or (mode == "bwrap" and stderr.startswith("bwrap:")):
            reason = stderr.replace(ERROR_MARKER, "").strip()[-500:]
            raise SandboxError(f"could not build the {mode} sandbox, the code did not run: {reason}")
        return SandboxResult(proc.returncode, _read(out_path, max_output), stderr, timed_out, duration, isolation,
                             mode, _read(results_path, max_output))
    finally:
        if results_fd is not None:
            os.close(results_fd)
        shutil.rmtree(outdir, ignore_errors=True)


def _wait(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait for ``proc`` to exit; True when ``timeout`` passed first. A pidfd wakes up the moment it exits
    (Popen.wait(timeout) polls with sleeps of up to 50 ms, a third of a sandboxed run)."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        try:
            proc.wait(timeout=timeout)
            return False
        except subprocess.TimeoutExpired:
            return True
    try:
        return not select.select([fd], [], [], timeout)[0]
    finally:
        os.close(fd)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
