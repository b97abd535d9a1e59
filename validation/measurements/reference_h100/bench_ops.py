"""Operator microbenchmarks on one GPU (bf16): GEMM over Llama projection shapes, SDPA attention
for decode (one query token) and causal prefill, RMSNorm, SiLU*mul, and a device copy.
Each time is the mean of 20 back-to-back launches captured in one CUDA graph (kernel time, no
launch gaps). Prints one JSON line per point."""

import json
import sys
import time

import torch
import torch.nn.functional as F

dev, dt = "cuda", torch.bfloat16
GRAPH = True


def t_graph(fn, reps=20):
    if not GRAPH:
        fn()
        return float("nan")
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        fn()
        fn()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(reps):
            fn()
    g.replay()
    torch.cuda.synchronize()
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0.record()
    g.replay()
    g.replay()
    e1.record()
    torch.cuda.synchronize()
    return e0.elapsed_time(e1) / (2 * reps)


def emit(**kw):
    print(json.dumps(kw), flush=True)


SHAPES = {  # name: (K, N) of y[M, N] = x[M, K] @ W[K, N]
    "8b.qkv": (4096, 6144),
    "8b.o": (4096, 4096),
    "8b.gate_up": (4096, 28672),
    "8b.down": (14336, 4096),
    "8b.lm_head": (4096, 128256),
    "1b.qkv": (2048, 3072),
    "1b.o": (2048, 2048),
    "1b.gate_up": (2048, 16384),
    "1b.down": (8192, 2048),
    "70b_tp8.qkv": (8192, 1280),
    "70b_tp8.o": (1024, 8192),
    "70b_tp8.gate_up": (8192, 7168),
    "70b_tp8.down": (3584, 8192),
}
MS = [1, 4, 16, 64, 256, 1024, 4096, 16384]


def main():
    with torch.inference_mode():
        big = torch.empty(int(2e9), dtype=torch.uint8, device=dev)
        big2 = torch.empty_like(big)
        ms = t_graph(lambda: big2.copy_(big), 5)
        emit(op="copy", bytes_rw=4e9, ms=ms, tbps=4e9 / ms / 1e9)
        del big, big2
        for name, (K, N) in SHAPES.items():
            W = torch.randn(K, N, device=dev, dtype=dt)
            for M in MS:
                x = torch.randn(M, K, device=dev, dtype=dt)
                y = torch.empty(M, N, device=dev, dtype=dt)
                ms = t_graph(lambda: torch.matmul(x, W, out=y))
                emit(
                    op="gemm",
                    shape=name,
                    M=M,
                    K=K,
                    N=N,
                    ms=ms,
                    tflops=2 * M * K * N / ms / 1e9,
                    tbps=2 * (K * N + M * K + M * N) / ms / 1e9,
                )
            del W, x, y
        for h, kv, hd in ((32, 8, 128), (32, 8, 64), (8, 1, 128)):
            for B in (1, 8, 64, 256):
                for C in (512, 2048, 8192, 32768):
                    if B * C * kv * hd * 4 > 40e9:
                        continue
                    q = torch.randn(B, h, 1, hd, device=dev, dtype=dt)
                    k = torch.randn(B, kv, C, hd, device=dev, dtype=dt)
                    v = torch.randn_like(k)
                    ms = t_graph(lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True))
                    emit(
                        op="attn_decode",
                        heads=h,
                        kv_heads=kv,
                        head_dim=hd,
                        batch=B,
                        ctx=C,
                        ms=ms,
                        tbps=2 * k.numel() * 2 / ms / 1e9,
                    )
                    del q, k, v
            for B, S in ((1, 512), (1, 2048), (1, 8192), (1, 32768), (4, 8192), (16, 2048)):
                q = torch.randn(B, h, S, hd, device=dev, dtype=dt)
                k = torch.randn(B, kv, S, hd, device=dev, dtype=dt)
                v = torch.randn_like(k)
                ms = t_graph(
                    lambda: F.scaled_dot_product_attention(
                        q, k, v, is_causal=True, enable_gqa=True
                    ),
                    5,
                )
                fl = 4 * B * h * S * S * hd / 2
                emit(
                    op="attn_prefill",
                    heads=h,
                    kv_heads=kv,
                    head_dim=hd,
                    batch=B,
                    ctx=S,
                    ms=ms,
                    tflops=fl / ms / 1e9,
                )
                del q, k, v
        for d, f in ((4096, 14336), (2048, 8192)):
            w = torch.ones(d, device=dev, dtype=dt)
            for M in MS:
                x = torch.randn(M, d, device=dev, dtype=dt)
                ms = t_graph(lambda: F.rms_norm(x, (d,), w, 1e-5))
                emit(op="rmsnorm", d=d, M=M, ms=ms)
                a = torch.randn(M, f, device=dev, dtype=dt)
                b = torch.randn_like(a)
                ms = t_graph(lambda: F.silu(a) * b)
                emit(op="silu_mul", d=f, M=M, ms=ms)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "cpu":
        dev, dt, GRAPH = "cpu", torch.float32, False
        SHAPES = {"t": (64, 32)}
        MS = [1, 4]
        main = main  # noqa
    t0 = time.time()
    try:
        main()
    finally:
        emit(
            op="done",
            seconds=round(time.time() - t0, 1),
            device=torch.cuda.get_device_name() if dev == "cuda" else "cpu",
            torch=torch.__version__,
        )
