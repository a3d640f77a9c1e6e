"""Benchmark the fused kernels against torch eager: time and peak extra memory (ratios: eager / fused).

    python benchmarks/kernels.py            # GPU, realistic sizes: B=64, N=1M, d=384; T=4096, V=50k
    python benchmarks/kernels.py --small    # CPU (or quick GPU) run at small sizes

Without a CUDA device it says so; ``--small`` then times the CPU dispatch path (torch, chunked) against eager and
reports the analytic extra memory (peak memory is only measured on CUDA).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from textopt.kernels import cosine_topk, token_logprobs  # noqa: E402


def timed(fn, device: str, repeat: int, warmup: int = 2) -> tuple[float, int]:
    """(median seconds, peak extra bytes allocated during one call; -1 on CPU)."""
    for _ in range(warmup):
        fn()
    times = []
    peak = -1
    for i in range(repeat):
        if device == "cuda":
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
            peak = max(peak, torch.cuda.max_memory_allocated() - base)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), peak


def mib(x: int) -> str:
    return "n/a (CPU)" if x < 0 else f"{x / 2**20:.1f} MiB"


def row(name, t_eager, m_eager, t_fused, m_fused, note=""):
    mem = f"{m_eager / max(m_fused, 1):.1f}x" if m_eager >= 0 else "n/a"
    print(f"{name:<34} eager {t_eager * 1e3:9.2f} ms {mib(m_eager):>12} | fused {t_fused * 1e3:9.2f} ms "
          f"{mib(m_fused):>12} | speedup {t_eager / t_fused:5.2f}x, memory {mem} {note}")


def bench_topk(b, n, d, k, dtype, device, repeat):
    g = torch.Generator(device=device).manual_seed(0)
    q = torch.randn(b, d, device=device, generator=g).to(dtype)
    c = torch.randn(n, d, device=device, generator=g).to(dtype)
    backend = "triton" if device == "cuda" else "torch"

    def eager():
        qn = torch.nn.functional.normalize(q.float(), dim=-1)
        cn = torch.nn.functional.normalize(c.float(), dim=-1)
        return torch.topk(qn @ cn.T, k, dim=1)

    cn_pre = torch.nn.functional.normalize(c.float(), dim=-1)

    def eager_prenormed():
        return torch.topk(torch.nn.functional.normalize(q.float(), dim=-1) @ cn_pre.T, k, dim=1)

    fused = lambda: cosine_topk(q, c, k, backend=backend)  # noqa: E731
    got, ref = fused(), eager()
    ok = torch.allclose(got.values, ref.values, atol=1e-2 if dtype != torch.float32 else 1e-4)
    te, me = timed(eager, device, repeat)
    tp, mp = timed(eager_prenormed, device, repeat)
    tf, mf = timed(fused, device, repeat)
    label = f"cosine top-{k} B={b} N={n} d={d} {str(dtype)[6:]}"
    row(label, te, me, tf, mf, f"[values match: {ok}]")
    row("  (eager with pre-normalised corpus)", tp, mp, tf, mf)
    if device != "cuda":
        print(f"  analytic extra memory: eager B*N*4 = {b * n * 4 / 2**20:.1f} MiB; CPU path chunked "
              f"B*(65536+k)*4 = {b * (65536 + k) * 4 / 2**20:.1f} MiB")


def bench_logprob(t, v, dtype, device, repeat):
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(t, v, device=device, generator=g).to(dtype).requires_grad_()
    y = torch.randint(0, v, (t,), device=device, generator=g)
    backend = "triton" if device == "cuda" else "torch"

    def eager():
        x.grad = None
        torch.log_softmax(x.float(), -1).gather(-1, y[:, None]).sum().backward()

    def fused():
        x.grad = None
        token_logprobs(x, y, backend=backend, check_targets=False).sum().backward()

    eager()
    g_ref = x.grad.clone()
    fused()
    ok = torch.allclose(x.grad.float(), g_ref.float(), atol=1e-2 if dtype != torch.float32 else 1e-5)
    te, me = timed(eager, device, repeat)
    tf, mf = timed(fused, device, repeat)
    row(f"token log-prob fwd+bwd T={t} V={v} {str(dtype)[6:]}", te, me, tf, mf, f"[grads match: {ok}]")

    def eager_fwd():
        with torch.no_grad():
            torch.log_softmax(x.float(), -1).gather(-1, y[:, None])

    def fused_fwd():
        with torch.no_grad():
            token_logprobs(x, y, backend=backend, check_targets=False)

    te, me = timed(eager_fwd, device, repeat)
    tf, mf = timed(fused_fwd, device, repeat)
    row(f"token log-prob fwd only", te, me, tf, mf)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="small sizes (CPU-friendly)")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--dtypes", default="float32,bfloat16")
    args = ap.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        print(f"GPU: {torch.cuda.get_device_name()} | torch {torch.__version__}")
    else:
        print("No CUDA device: the Triton kernels are not benchmarked here (they run on GPUs; tests run them on CPU "
              "under TRITON_INTERPRET=1). Timing the CPU dispatch path (chunked torch) against eager instead.")
        if not args.small:
            print("Realistic sizes (B=64, N=1M, d=384; T=4096, V=50k) need a GPU: rerun with --small on CPU.")
            return 0
    if args.small:
        topk_sizes, lp_sizes = [(16, 100_000, 384, 10)], [(512, 50_257)]
    else:
        topk_sizes, lp_sizes = [(64, 1_000_000, 384, 10), (64, 1_000_000, 384, 100)], [(4096, 50_257)]
    for name in args.dtypes.split(","):
        dtype = getattr(torch, name)
        for b, n, d, k in topk_sizes:
            bench_topk(b, n, d, k, dtype, device, args.repeat)
        for t, v in lp_sizes:
            bench_logprob(t, v, dtype, device, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
