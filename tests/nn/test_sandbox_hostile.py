"""Issue 15's hostile programs, each in both sandbox modes (bwrap, namespaces), as this user and as an ordinary
one: nothing of the system written, nothing private read, no network, no other process seen or signalled,
nothing left running. The parent is a separate driver process holding a secret (see hostile.py)."""
import json
import os
import socket
import subprocess
import threading
import time

import pytest

from textopt.nn.sandbox import unavailable

from .hostile import SECRET, Parent, ordinary_user_missing

MODES = ["bwrap", "namespaces"]


@pytest.fixture(scope="module", params=["this-user", "ordinary-user"])
def parent(request):
    if request.param == "ordinary-user":
        why = ordinary_user_missing()
        if why:
            pytest.skip(why)
    p = Parent(request.param)
    yield p
    p.close()


def _report(out: dict) -> dict:
    assert not out["parent_died"], out
    assert SECRET not in json.dumps(out)  # the parent's secret never comes back, whatever the program did
    line = [l for l in out["stdout"].splitlines() if l.startswith("REPORT ")]
    assert line, out
    return json.loads(line[-1][len("REPORT "):])


def _interpreter_dirs_under_root() -> set:
    import sys
    parts = os.path.realpath(sys.base_prefix).split("/")
    return {parts[2]} if len(parts) > 2 and parts[1] == "root" else set()


def _attempts(body: str) -> str:
    """A program that records the outcome of each attempt in a dict and prints it as JSON."""
    return ("import json, os, subprocess, sys\nreport = {}\n"
            "def attempt(name, fn):\n    try:\n        report[name] = repr(fn())[:300]\n"
            "    except BaseException as exc:\n        report[name] = 'DENIED ' + type(exc).__name__\n"
            + body + "\nprint('REPORT ' + json.dumps(report))\n")


@pytest.mark.parametrize("mode", MODES)
def test_the_system_is_read_only_and_private_files_are_invisible(parent, mode):
    tag = "textopt-escape-" + os.urandom(4).hex()
    code = _attempts(f"""
attempt('passwd', lambda: open('/etc/passwd').read())
attempt('project', lambda: open({str(parent.secret_file)!r}).read())
attempt('root_home', lambda: sorted(os.listdir('/root')))
attempt('write_tmp', lambda: open('/tmp/{tag}', 'w').write('x'))
attempt('write_shm', lambda: open('/dev/shm/{tag}', 'w').write('x'))
attempt('write_root', lambda: open('/{tag}', 'w').write('x'))
attempt('write_usr', lambda: open('/usr/{tag}', 'w').write('x'))
attempt('bash_write', lambda: subprocess.run(['bash', '-c', 'echo x > /var/tmp/{tag}; echo x > /etc/{tag}'],
        capture_output=True).returncode)
""")
    try:
        report = _report(parent.run(code, mode))
        for name in ["passwd", "project", "write_shm", "write_root", "write_usr"]:
            assert report[name].startswith("DENIED"), (name, report)
        if not report["root_home"].startswith("DENIED"):  # only the way to an interpreter installed under /root
            assert set(json.loads(report["root_home"].replace("'", '"'))) <= _interpreter_dirs_under_root()
        assert report["write_tmp"] == "1"  # the private /tmp is writable...
        for host in ["/tmp", "/dev/shm", "", "/usr", "/var/tmp", "/etc"]:
            assert not os.path.exists(f"{host}/{tag}"), f"the sandbox wrote {host}/{tag} on the host"
    finally:
        for host in ["/tmp", "/dev/shm", "", "/usr", "/var/tmp", "/etc"]:
            if os.path.exists(f"{host}/{tag}"):
                os.remove(f"{host}/{tag}")


@pytest.mark.parametrize("mode", MODES)
def test_other_processes_and_their_environment_are_invisible(parent, mode):
    code = _attempts("""
attempt('parent_environ', lambda: open('/proc/PARENT_PID/environ').read())
attempt('via_self', lambda: open(f'/proc/self/../{os.getppid()}/environ').read())
attempt('bash_all_environ', lambda: subprocess.run(['bash', '-c', 'cat /proc/*/environ /proc/self/../*/environ'],
        capture_output=True, text=True).stdout)
attempt('pids', lambda: sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))
attempt('env', lambda: dict(os.environ))
""")
    report = _report(parent.run(code, mode))
    assert "PATH" in report["env"] and "OPENAI" not in report["env"]
    pids = json.loads(report["pids"]) if report["pids"].startswith("[") else []
    assert len(pids) < 10  # only the sandbox's own processes


@pytest.mark.parametrize("mode", MODES)
def test_kernel_settings_cannot_be_changed(parent, mode):
    """A uid 0 left in the sandbox (even without capabilities, even mapped to 65534) passes /proc/sys's
    owner check: root's sandbox must run as a real unprivileged uid. Writes back the current values."""
    code = _attempts("""
for name in ['fs/pipe-max-size', 'kernel/printk_ratelimit', 'vm/overcommit_ratio']:
    def write(path='/proc/sys/' + name):
        value = open(path).read()
        with open(path, 'w') as fh:
            fh.write(value)
        return 'WROTE'
    attempt(name, write)
""")
    report = _report(parent.run(code, mode))
    assert report and all(v.startswith("DENIED") for v in report.values()), report


class _Listener:
    """A TCP server on the host's loopback that counts the connections it accepts."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port, self.accepted, self.stop = self.sock.getsockname()[1], 0, False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


@pytest.mark.parametrize("mode", MODES)
def test_no_network_not_even_the_hosts_loopback_from_a_subprocess(parent, mode):
    server = _Listener()
    try:
        port = server.port
        code = _attempts(f"""
attempt('bash_dev_tcp', lambda: subprocess.run(['bash', '-c', 'echo hi > /dev/tcp/127.0.0.1/{port} && echo CONNECTED'],
        capture_output=True, text=True, timeout=5).stdout)
grandchild = "import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3); print('CONNECTED')"
attempt('grandchild_python', lambda: subprocess.run([sys.executable, '-c', grandchild], capture_output=True,
        text=True, timeout=5).stdout)
attempt('outside', lambda: subprocess.run([sys.executable, '-c', "import socket; "
        "socket.create_connection(('1.1.1.1', 53), timeout=3); print('CONNECTED')"], capture_output=True,
        text=True, timeout=5).stdout)
attempt('in_process', lambda: __import__('socket').create_connection(('127.0.0.1', {port}), timeout=3))
""")
        report = _report(parent.run(code, mode))
        assert "CONNECTED" not in json.dumps(report)
        assert report["in_process"].startswith("DENIED")
        assert server.accepted == 0
    finally:
        server.close()


@pytest.mark.parametrize("mode", MODES)
def test_the_parent_is_never_signalled(parent, mode):
    kill_all = "; kill -9 -1" if parent.who == "ordinary-user" else ""  # as root -1 would be the whole machine
    code = f"""import os, signal, subprocess
print('STARTED', flush=True)
for target in [os.getppid(), PARENT_PID]:
    try:
        os.kill(target, signal.SIGKILL)
    except OSError:
        pass
subprocess.run(['bash', '-c', 'kill -9 PARENT_PID{kill_all}'], capture_output=True)
"""
    out = parent.run(code, mode)
    assert not out["parent_died"], out  # the driver survived and reported
    assert out["stdout"].startswith("STARTED")


def _ps(tag: str) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [l for l in ps.splitlines() if tag in l]


@pytest.mark.parametrize("ending", ["exits", "times out"])
@pytest.mark.parametrize("mode", MODES)
def test_nothing_is_left_running(parent, mode, ending):
    tag = f"{os.getpid() % 1000}.{int.from_bytes(os.urandom(3), 'big')}"  # a unique sleep duration
    code = _attempts(f"""
attempt('setsid', lambda: subprocess.Popen(['setsid', 'sleep', '3{tag}'], start_new_session=True).pid)
attempt('nohup', lambda: subprocess.Popen(['bash', '-c', 'nohup sleep 4{tag} >/dev/null 2>&1 & disown']).wait())
if os.fork() == 0:  # a classic daemon: fork, setsid, fork
    os.setsid()
    if os.fork() == 0:
        os.execvp('sleep', ['sleep', '5{tag}'])
    os._exit(0)
import time; time.sleep(0.3)
""")
    if ending == "times out":
        code += "sys.stdout.flush()\nwhile True:\n    pass\n"
    try:
        out = parent.run(code, mode, timeout=8 if ending == "times out" else 30)
        assert out["timed_out"] == (ending == "times out")
        report = _report(out)
        assert "DENIED" not in report["setsid"]  # they did start...
        deadline = time.monotonic() + 10  # generous: the kernel tears a namespace down asynchronously
        while _ps(tag) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _ps(tag) == []  # ...and none of them outlived the sandbox
    finally:
        for line in _ps(tag):
            subprocess.run(["kill", "-9", line.split()[0]], capture_output=True)


@pytest.mark.parametrize("mode", MODES)
def test_nothing_is_left_running_when_textopt_itself_is_killed(parent, mode):
    tag = f"{os.getpid() % 1000}.{int.from_bytes(os.urandom(3), 'big')}"
    code = (f"import subprocess, time\nsubprocess.Popen(['setsid', 'sleep', '6{tag}'], start_new_session=True)\n"
            f"subprocess.Popen(['sleep', '7{tag}'])\ntime.sleep(60)\n")
    if parent.who == "this-user" and unavailable(mode):
        pytest.skip(f"the {mode} sandbox is not available here: {unavailable(mode)}")
    driver = subprocess.Popen(parent.command(code, mode, timeout=60), cwd=parent.dir, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while len(_ps(tag)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        if len(_ps(tag)) < 2:
            pytest.skip(f"the {mode} sandbox did not start for {parent.who}")
        os.kill(driver.pid, 9)  # the driver alone: its sandbox must follow it
        driver.wait()
        deadline = time.monotonic() + 10
        while _ps(tag) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _ps(tag) == []
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, 9)
        for line in _ps(tag):
            subprocess.run(["kill", "-9", line.split()[0]], capture_output=True)
