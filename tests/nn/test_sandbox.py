"""The sandbox contains hostile code: infinite loop, fork bomb, huge allocation, env secrets, sockets; choosing a
mode. Issue 15's escapes, per mode and user, are in test_sandbox_hostile.py."""
import os
import subprocess
import time

import pytest

from textopt.errors import SandboxError
from textopt.nn import sandbox
from textopt.nn.sandbox import resolve_mode, run_python


def _procs_with(tag: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if tag in l and "ps -eo" not in l]


def _sandbox_procs() -> list[str]:
    return _procs_with("_sandbox_child.py") + _procs_with("/.textopt/launcher.py")


def _mode(name: str) -> str:
    why = sandbox.unavailable(name)
    if why:
        pytest.skip(f"the {name} sandbox is not available here: {why}")
    return name


@pytest.fixture(params=["bwrap", "namespaces"])
def mode(request):
    return _mode(request.param)


def test_normal_code_runs_in_a_private_tmp(mode):
    r = run_python("import os; print('hello', os.getcwd()); open('made-here', 'w').write('x')", mode=mode)
    assert r.ok and r.stdout == "hello /tmp\n" and r.mode == mode
    assert r.isolation.startswith(r.mode + ":") and "ro-system" in r.isolation and "rlimits" in r.isolation
    assert not os.path.exists("/tmp/made-here")  # the sandbox's /tmp is private


def test_infinite_loop_is_killed_at_the_timeout():
    t0 = time.monotonic()
    r = run_python("while True:\n    pass\n", timeout=1.5)
    assert r.timed_out and not r.ok
    assert time.monotonic() - t0 < 30  # 1.5 s, plus a generous margin for a loaded machine


def test_fork_bomb_is_contained_and_leaves_no_process(mode):
    tag = "forkbomb-" + os.urandom(4).hex()
    code = (f"# {tag}\nimport os\nn = 0\nwhile n < 100000:\n    n += 1\n    try:\n        os.fork()\n"
            f"    except OSError:\n        pass\n")
    r = run_python(code, timeout=2, max_processes=16, mode=mode)
    assert not r.ok
    deadline = time.monotonic() + 10  # the kernel tears a namespace down asynchronously
    while _sandbox_procs() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _sandbox_procs() == []  # every forked copy died with the sandbox
    # the machine is still able to start processes
    assert subprocess.run(["true"]).returncode == 0


def test_huge_allocation_fails_inside_the_sandbox(mode):
    r = run_python("x = bytearray(8 * 1024 ** 3)\nprint('allocated')", memory_mb=256, mode=mode)
    assert "allocated" not in r.stdout and "MemoryError" in r.stderr


def test_the_private_tmp_is_small_and_holds_the_files(mode):
    code = ("import os\nprint(open('data/in.txt').read())\nfor i in range(4):\n"
            "    open(f'/tmp/f{i}', 'wb').write(b'x' * 1024 * 1024)\n    print('wrote', i)\n")
    r = run_python(code, files={"data/in.txt": "given"}, disk_mb=2, mode=mode)
    assert r.stdout.startswith("given\n") and "wrote 3" not in r.stdout and "No space left" in r.stderr


def test_environment_secrets_are_not_visible(monkeypatch):
    monkeypatch.setenv("TEXTOPT_TEST_SECRET_KEY", "sk-not-for-sandboxes")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-secret")
    r = run_python("import os\nprint(sorted(os.environ))\nprint(os.environ.get('OPENAI_API_KEY'))\n"
                   "try:\n    print(open(f'/proc/{os.getppid()}/environ').read())\nexcept Exception as e:\n"
                   "    print('denied', type(e).__name__)\n")
    assert r.ok
    assert "sk-" not in r.stdout and "TEXTOPT_TEST_SECRET_KEY" not in r.stdout and "OPENAI" not in r.stdout
    assert "denied" in r.stdout  # the parent's /proc environ is unreadable (uid nobody, or the audit hook)


def test_sockets_cannot_be_opened():
    r = run_python("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
                   "s.settimeout(1)\ns.connect(('127.0.0.1', 22))\nprint('connected')\n")
    assert "connected" not in r.stdout and not r.ok
    assert "not allowed" in r.stderr or "Network is unreachable" in r.stderr


def test_results_channel_is_a_descriptor_only(mode):
    code = ("import os\nfd = int(os.environ['TEXTOPT_RESULTS_FD'])\nos.write(fd, b'RESULT\\n')\n"
            "print(os.path.exists(os.readlink(f'/proc/self/fd/{fd}')))")
    r = run_python(code, mode=mode)
    assert r.ok and r.results == "RESULT\n"
    assert r.stdout == "False\n"  # the file behind it is not in the sandbox's view


def test_choosing_a_mode(monkeypatch):
    with pytest.raises(SandboxError, match="unknown sandbox mode 'docker'"):
        run_python("pass", mode="docker")
    monkeypatch.setenv("TEXTOPT_SANDBOX", "chroot")
    with pytest.raises(SandboxError, match="TEXTOPT_SANDBOX 'chroot'"):
        resolve_mode()
    monkeypatch.setenv("TEXTOPT_SANDBOX", "weak")
    assert resolve_mode() == "weak"
    monkeypatch.delenv("TEXTOPT_SANDBOX")
    monkeypatch.setattr(sandbox, "unavailable", lambda m: "bwrap is not installed" if m == "bwrap" else None)
    assert resolve_mode() == "namespaces"  # auto falls back to the kernel's namespaces
    monkeypatch.setattr(sandbox, "unavailable", lambda m: f"no {m} here")
    with pytest.raises(SandboxError, match="no sandbox .*bwrap: no bwrap here.*namespaces: no namespaces here.*"
                                           "apt-get install bubblewrap.*mode='weak'"):
        run_python("print('never runs')")
    with pytest.raises(SandboxError, match="bwrap: no bwrap here"):
        run_python("pass", mode="bwrap")  # asked for by name: no fallback
    assert run_python("print(1)", mode="weak").stdout == "1\n"  # the explicit opt-in still works


def test_a_sandbox_that_cannot_be_built_is_an_error_not_a_result(monkeypatch):
    monkeypatch.setattr(sandbox, "system_view", lambda python: [["ro", "/nonexistent-textopt", "/x"]])
    for mode in ("bwrap", "namespaces"):
        if sandbox.unavailable(mode) is None:
            with pytest.raises(SandboxError, match=f"could not build the {mode} sandbox, the code did not run"):
                run_python("print('ran')", mode=mode)


def test_bad_arguments_raise_one_clear_error():
    with pytest.raises(SandboxError, match="str"):
        run_python(123)
    with pytest.raises(SandboxError, match="escapes"):
        run_python("print(1)", files={"../evil.py": "x"})


def test_audit_hook_layer_alone_contains_the_same_cases(monkeypatch):
    """mode="weak" (opted into): no namespaces — the audit hook and rlimits must hold."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-secret")
    sock = run_python("import socket\nsocket.socket()\nprint('opened')", mode="weak")
    assert "opened" not in sock.stdout and "not allowed" in sock.stderr
    assert sock.isolation.startswith("weak") and "audit-hook" in sock.isolation
    env = run_python("import os\nprint(os.environ.get('OPENAI_API_KEY'))\n"
                     "try:\n    print(open(f'/proc/{os.getppid()}/environ').read())\nexcept Exception as e:\n"
                     "    print('denied', e)\n", mode="weak")
    assert "sk-" not in env.stdout and "denied" in env.stdout
    mem = run_python("x = bytearray(8 * 1024 ** 3)\nprint('allocated')", memory_mb=256, mode="weak")
    assert "allocated" not in mem.stdout
    kill = run_python("import os\nos.kill(os.getppid(), 0)\nprint('signalled')", mode="weak")
    assert "signalled" not in kill.stdout and "os.kill is not allowed" in kill.stderr
    loop = run_python("while True:\n    pass\n", timeout=1, mode="weak")
    assert loop.timed_out
    bomb = run_python("import os\nfor _ in range(10000):\n    os.fork()\n", timeout=2, max_processes=16,
                      mode="weak")
    assert not bomb.ok
    time.sleep(0.3)
    assert _sandbox_procs() == []


def test_the_availability_probe_survives_a_transient_failure(monkeypatch):
    """The probe's answer is kept for the process: one failed trial run (a loaded machine) is tried again."""
    calls = []

    def flaky(files, mode, **kw):
        calls.append(mode)
        if len(calls) == 1:
            raise SandboxError("could not start the sandbox: Resource temporarily unavailable")
        return sandbox.SandboxResult(0, "", "", False, 0.1, f"{mode}:user", mode, "")
    monkeypatch.setattr(sandbox, "_run", flaky)
    monkeypatch.setattr(sandbox.time, "sleep", lambda s: None)
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: "/usr/bin/" + name)
    assert sandbox.unavailable.__wrapped__("namespaces") is None and len(calls) == 2
    calls.clear()
    monkeypatch.setattr(sandbox, "_run", lambda files, mode, **kw: calls.append(mode) or sandbox.SandboxResult(
        1, "", "boom", False, 0.1, "", mode, ""))
    assert "a trial run failed (exit 1): boom" in sandbox.unavailable.__wrapped__("namespaces")
    assert len(calls) == 3   # a lasting failure is still reported, after three tries
