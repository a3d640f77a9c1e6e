"""Launcher run as ``python -I _sandbox_child.py CONFIG`` by :mod:`textopt.nn.sandbox` (never imported).

Mode "bwrap": bubblewrap already built the sandbox; this only applies the limits and runs the code.
Mode "namespaces": the same sandbox built here with the kernel's namespaces (no helper binary):
  L0 (this process, outside) drops to uid/gid 65534 when root (so that nothing in the sandbox is uid 0 on the
  host, which /proc/sys and co. would trust), unshares user, mount, pid, net, ipc and uts namespaces, maps its own
  uid and forks P1, PID 1 of the new PID namespace. P1 builds a new root on a tmpfs: the system directories and
  the interpreter bind-mounted read-only, a minimal /dev, a fresh /proc of the new PID namespace, a tmpfs of
  ``disk_mb`` at /tmp as the only writable place, then pivot_root()s into it and drops the old root. P1 forks P2
  and, as init, reaps until P2 exits; when P1 exits the kernel kills everything left in the namespace. P2 drops
  every capability (bounding set too, no_new_privs) and runs the code. No interface is brought up in the network
  namespace, so nothing is reachable, loopback included.
Mode "weak" (opted into): rlimits and the audit hook only.
Always: the files written into the working directory (/tmp), resource limits, an audit hook refusing sockets
and ctypes, then ``main.py`` as ``__main__``.
A failure to build the sandbox is written as ERROR_MARKER + reason on stderr, exit status 125; the code never runs.
"""
import errno
import marshal
import os
import resource
import signal
import sys
import types

ctypes = None  # imported by the namespaces mode only: every import here is paid on each run

MARKER = "#textopt-sandbox-isolation: "
ERROR_MARKER = "#textopt-sandbox-error: "
NOBODY = 65534
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC, MS_PRIVATE = 1024, 2048, 4096, 16384, 1 << 18
MS_RELATIME, MS_STRICTATIME, MNT_DETACH = 1 << 21, 1 << 24, 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38
PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41, "riscv64": 41, "ppc64le": 203, "ppc64": 203,
              "s390x": 217, "i686": 217, "i386": 217}
DEVICES = ["null", "zero", "full", "random", "urandom", "tty"]
_ST_TO_MS = [(os.ST_RDONLY, MS_RDONLY), (os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV),
             (os.ST_NOEXEC, MS_NOEXEC), (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME),
             (os.ST_RELATIME, MS_RELATIME)]


class SetupError(Exception):
    pass


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(err)} (errno {errno.errorcode.get(err, err)})")


def _b(text):
    return None if text is None else os.fsencode(text)


def _mount(libc, src, dst, fstype, flags, data=None):
    _check(libc.mount(_b(src), _b(dst), _b(fstype), ctypes.c_ulong(flags), _b(data)), f"mount {dst}")


def _bind(libc, src, dst, readonly):
    """Bind ``src`` on ``dst`` and remount it read-only (or nosuid,nodev), keeping the flags the kernel
    locks for a less privileged user namespace (nosuid/nodev/noexec/atime of the original mount)."""
    keep = 0
    for st, ms in _ST_TO_MS:
        if os.statvfs(src).f_flag & st:
            keep |= ms
    _mount(libc, src, dst, None, MS_BIND | MS_REC)
    flags = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | keep | (MS_RDONLY if readonly else 0)
    try:
        _mount(libc, None, dst, None, flags)
    except SetupError:  # the original mount used strictatime, which statvfs does not report
        _mount(libc, None, dst, None, (flags & ~MS_RELATIME) | MS_STRICTATIME)


def _touch(path, is_dir):
    if is_dir:
        os.makedirs(path, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "a").close()


def _build_root(libc, cfg):
    """In P1 (new mount namespace): the root described in the module docstring; returns its extra layers."""
    new = cfg["newroot"]
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    _mount(libc, "tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    for kind, src, dst in cfg["view"]:
        target = new + dst
        if kind == "symlink":
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.symlink(src, target)
            continue
        _touch(target, os.path.isdir(src))
        _bind(libc, src, target, readonly=True)
    _touch(new + "/tmp", True)
    _mount(libc, "tmpfs", new + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={cfg['disk_mb']}m")
    _touch(new + "/dev", True)
    _mount(libc, "tmpfs", new + "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k")
    for dev in DEVICES:
        if os.path.exists("/dev/" + dev):
            _touch(f"{new}/dev/{dev}", False)
            _bind(libc, "/dev/" + dev, f"{new}/dev/{dev}", readonly=False)
    for name, target in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")]:
        os.symlink(target, f"{new}/dev/{name}")
    _mount(libc, None, new + "/dev", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC)
    layers = []
    _touch(new + "/proc", True)
    try:  # the new PID namespace's /proc: only the sandbox's own processes
        _mount(libc, "proc", new + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        layers.append("proc")
    except SetupError:
        layers.append("no-proc")  # an empty /proc: nothing of the host to see either
    nr = PIVOT_ROOT.get(os.uname().machine)
    if nr is None:
        raise SetupError(f"pivot_root: unknown system call number on {os.uname().machine}")
    os.chdir(new)
    _check(libc.syscall(ctypes.c_long(nr), b".", b"."), "pivot_root")
    _check(libc.umount2(b".", MNT_DETACH), "detaching the old root")
    _mount(libc, None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir("/tmp")
    return layers


def _drop_capabilities(libc, last_cap):
    for cap in range(last_cap + 1):
        _check(libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0), "dropping the bounding set")
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable = 0 (two 32-bit words each)
    _check(libc.capset(header, data), "capset")


def _wait_for(pid, reap_others):
    """Wait for ``pid`` (as init: reaping any other child too) and exit with its status."""
    while True:
        try:
            done, status = os.waitpid(-1 if reap_others else pid, 0)
        except ChildProcessError:
            os._exit(125)
        if done == pid:
            code = os.waitstatus_to_exitcode(status)
            os._exit(code if code >= 0 else 128 - code)


def _namespaces(cfg):
    global ctypes
    import ctypes
    libc = _libc()
    with open("/proc/sys/kernel/cap_last_cap") as fh:
        last_cap = int(fh.read())
    if os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
        libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # the uid change cleared it: /proc/self/*_map must be ours
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # L0 dies with textopt (set after the uid change)
    uid, gid = os.getuid(), os.getgid()
    _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS),
           "unshare(user, mount, pid, net, ipc, uts)")
    for name, text in [("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")]:
        with open(f"/proc/self/{name}", "w") as fh:
            fh.write(text)
    pid = os.fork()
    if pid:  # L0: outside the PID namespace, relays P1's exit status
        _wait_for(pid, reap_others=False)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # P1 (init of the namespace) dies with L0
    layers = _build_root(libc, cfg)
    pid = os.fork()
    if pid:  # P1: init; when it exits, the kernel kills every process left in the namespace
        _wait_for(pid, reap_others=True)
    _drop_capabilities(libc, last_cap)
    return ["namespaces:user,mount,pid,net,ipc,uts", "ro-system", "private-tmp", *layers, "no-capabilities"]


def _limits(cfg):
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
_WEAK_EVENTS = ["os.kill", "os.killpg"]  # without a PID namespace the parent is a signal away
_PROCESS_EVENTS = ["os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.system", "os.exec",
                   "subprocess.Popen", "os.startfile"]


def _other_process_file(path):
    """/proc/<pid>/environ and co. of another process, however the path is spelled (../ included)."""
    parts = os.path.normpath(os.path.join(os.getcwd(), path)).split("/")
    return (len(parts) >= 4 and parts[1] == "proc" and parts[2] not in ("self", "thread-self")
            and parts[3] in ("environ", "cmdline", "mem", "maps"))


def _audit(event, args):
    if event in _BLOCKED:
        raise PermissionError(f"sandbox: {event} is not allowed (no network, no native calls)")
    if event == "open" and args and isinstance(args[0], (str, bytes)):
        path = args[0] if isinstance(args[0], str) else args[0].decode("utf-8", "replace")
        if _other_process_file(path):  # another process's environment may hold secrets
            raise PermissionError(f"sandbox: reading {path} is not allowed")


def main():
    with open(sys.argv[1], "rb") as fh:
        cfg = marshal.load(fh)
    mode = cfg["mode"]
    try:
        if mode == "namespaces":
            isolation = _namespaces(cfg)
        elif mode == "bwrap":
            isolation = ["bwrap:user,mount,pid,net,ipc,uts", "ro-system", "private-tmp", "proc",
                         "no-capabilities"]
        else:
            isolation = ["weak"]
            _BLOCKED.extend(_WEAK_EVENTS)
            if os.geteuid() == 0:  # root with nothing around it: no process creation at all
                _BLOCKED.extend(_PROCESS_EVENTS)
                isolation.append("no-subprocess")
    except (SetupError, OSError) as exc:
        sys.stderr.write(f"{ERROR_MARKER}{mode} sandbox: {exc}\n")
        sys.stderr.flush()
        os._exit(125)
    for name, text in cfg["files"].items():
        if os.path.dirname(name):
            os.makedirs(os.path.dirname(name), exist_ok=True)
        with open(name, "w", encoding="utf-8") as fh:
            fh.write(text)
    _limits(cfg)
    os.environ.clear()
    os.environ.update(cfg["env"])
    if cfg.get("results_fd") is not None:
        os.environ["TEXTOPT_RESULTS_FD"] = str(cfg["results_fd"])
    sys.addaudithook(_audit)
    sys.argv = ["main.py"]
    sys.path.insert(0, os.getcwd())
    sys.stderr.write(MARKER + ",".join(isolation + ["rlimits", "audit-hook"]) + "\n")
    sys.stderr.flush()
    main_module = types.ModuleType("__main__")
    main_module.__file__ = os.path.abspath("main.py")
    sys.modules["__main__"] = main_module
    with open("main.py", encoding="utf-8") as fh:
        source = fh.read()
    exec(compile(source, main_module.__file__, "exec"), main_module.__dict__)


if __name__ == "__main__":
    main()
