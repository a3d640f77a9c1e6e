"""Launcher run as ``python -I _sandbox_child.py CONFIG`` by :mod:`textopt.nn.sandbox` (never imported).

As root: unshare a fresh network namespace (no interface but a down loopback) and a PID namespace, fork
(the child is PID 1 of the new namespace, so when it dies the kernel kills everything it spawned), drop to
uid/gid ``nobody`` when the interpreter is readable by it (so RLIMIT_NPROC is enforced and the parent's
files/environ are unreadable; otherwise process creation is refused by the audit hook), arm
PR_SET_PDEATHSIG. Always: resource limits, then an audit hook that refuses sockets, ctypes and reading other
processes' /proc files, then run ``main.py`` as ``__main__``.
"""
import ctypes
import json
import os
import re
import resource
import signal
import sys

CLONE_NEWNET, CLONE_NEWPID, PR_SET_PDEATHSIG = 0x40000000, 0x20000000, 1
NOBODY = 65534
MARKER = "#textopt-sandbox-isolation: "


def _isolate(drop: bool) -> list:
    done = []
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET | CLONE_NEWPID) == 0:
        done += ["netns", "pidns"]
    elif libc.unshare(CLONE_NEWNET) == 0:
        done.append("netns")
    pid = os.fork()
    if pid:  # the launcher stays outside, waits, and relays the exit status
        signal.signal(signal.SIGTERM, lambda *a: os.kill(pid, signal.SIGKILL))
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        os._exit(code if code >= 0 else 128 - code)
    if not drop:
        return done
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    done.append("uid-nobody")
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # after setuid: credential changes clear it
    return done


def _limits(cfg: dict) -> None:
    mem = cfg["memory_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_NPROC, (cfg["max_processes"], cfg["max_processes"]))
    cpu = int(cfg["timeout"]) + 2
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    resource.setrlimit(resource.RLIMIT_FSIZE, (cfg["max_file_bytes"], cfg["max_file_bytes"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


_BLOCKED = ["socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto",
            "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "ctypes.call_function"]
_PROCESS_EVENTS = ["os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.system", "os.exec",
                   "subprocess.Popen", "os.startfile"]


_OTHER_PROC = re.compile(r"/proc/(?!self/|thread-self/)[^/]+/(environ|cmdline|mem|maps)")


def _audit(event, args):
    if event in _BLOCKED:
        raise PermissionError(f"sandbox: {event} is not allowed (no network, no native calls)")
    if event == "open" and args and isinstance(args[0], (str, bytes)):
        path = args[0] if isinstance(args[0], str) else args[0].decode("utf-8", "replace")
        if _OTHER_PROC.search(path):  # another process's environment may hold secrets
            raise PermissionError(f"sandbox: reading {path} is not allowed")


def main() -> None:
    with open(sys.argv[1]) as fh:
        cfg = json.load(fh)
    isolation = _isolate(cfg["drop_to_nobody"]) if os.geteuid() == 0 and cfg["isolate"] else []
    if os.geteuid() == 0:  # still root (the interpreter is unreadable to nobody): forbid process creation
        _BLOCKED.extend(_PROCESS_EVENTS)
        isolation.append("no-subprocess")
    _limits(cfg)
    os.environ.clear()
    os.environ.update(cfg["env"])
    sys.addaudithook(_audit)
    sys.argv = ["main.py"]
    sys.path.insert(0, os.getcwd())
    sys.stderr.write(MARKER + ",".join(isolation + ["rlimits", "audit-hook"]) + "\n")
    sys.stderr.flush()
    import runpy
    runpy.run_path("main.py", run_name="__main__")


if __name__ == "__main__":
    main()
