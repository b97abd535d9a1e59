"""How h100_torch_cudagraph.csv was measured: Llama-shaped decode steps captured in CUDA graphs
(gpt-fast / MagicDec style) and prefill forwards with SDPA, random bf16 weights, one GPU.
Prints one JSON line per point: kind, model, batch, ctx, ms (eager_ms: the same step without a graph)."""

import json
import time

import torch
import torch.nn.functional as F

CFG = {
    "3b": dict(L=28, d=3072, h=24, kv=8, hd=128, f=8192, V=128256),
    "8b": dict(L=32, d=4096, h=32, kv=8, hd=128, f=14336, V=128256),
    "1b": dict(L=16, d=2048, h=32, kv=8, hd=64, f=8192, V=128256),
}
dev, dt = "cuda", torch.bfloat16
SDPA = False


def weights(c):
    g = torch.Generator(device=dev).manual_seed(0)
    r = lambda *s: torch.randn(*s, device=dev, dtype=dt, generator=g) * 0.02
    qkv = (c["h"] + 2 * c["kv"]) * c["hd"]
    return [
        dict(
            wqkv=r(c["d"], qkv),
            wo=r(c["h"] * c["hd"], c["d"]),
            wgu=r(c["d"], 2 * c["f"]),
            wd=r(c["f"], c["d"]),
            n1=torch.ones(c["d"], device=dev, dtype=dt),
            n2=torch.ones(c["d"], device=dev, dtype=dt),
        )
        for _ in range(c["L"])
    ], r(c["d"], c["V"])


def rms(x, w):
    return F.rms_norm(x, (x.shape[-1],), w, 1e-5)


def decode_step(c, W, head, x, K, V, pos):
    """x [B, d]; K, V per layer [B, kv, C, hd]; writes the new token at pos."""
    B, kv, hd, g = x.shape[0], c["kv"], c["hd"], c["h"] // c["kv"]
    for w, k_c, v_c in zip(W, K, V):
        qkv = rms(x, w["n1"]) @ w["wqkv"]
        q, k, v = qkv.split([c["h"] * hd, kv * hd, kv * hd], -1)
        k_c[:, :, pos] = k.view(B, kv, hd)
        v_c[:, :, pos] = v.view(B, kv, hd)
        if SDPA:
            o = F.scaled_dot_product_attention(
                q.view(B, c["h"], 1, hd), k_c, v_c, enable_gqa=True
            ).reshape(B, c["h"] * hd)
        else:
            q = q.view(B, kv, g, hd)
            s = torch.matmul(q, k_c.transpose(-1, -2)) * hd**-0.5  # [B, kv, g, C]
            p = torch.softmax(s.float(), -1).to(dt)
            o = torch.matmul(p, v_c).reshape(B, c["h"] * hd)
        x = x + o @ w["wo"]
        gu = rms(x, w["n2"]) @ w["wgu"]
        a, b = gu.chunk(2, -1)
        x = x + (F.silu(a) * b) @ w["wd"]
    return rms(x, W[-1]["n2"]) @ head


def prefill(c, W, head, x):
    B, S, _ = x.shape
    kv, hd = c["kv"], c["hd"]
    for w in W:
        qkv = rms(x, w["n1"]) @ w["wqkv"]
        q, k, v = qkv.split([c["h"] * hd, kv * hd, kv * hd], -1)
        q = q.view(B, S, c["h"], hd).transpose(1, 2)
        k = k.view(B, S, kv, hd).transpose(1, 2)
        v = v.view(B, S, kv, hd).transpose(1, 2)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        x = x + o.transpose(1, 2).reshape(B, S, -1) @ w["wo"]
        gu = rms(x, w["n2"]) @ w["wgu"]
        a, b = gu.chunk(2, -1)
        x = x + (F.silu(a) * b) @ w["wd"]
    return rms(x[:, -1], W[-1]["n2"]) @ head


def timed(fn, n):
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    fn()
    torch.cuda.synchronize()
    e0.record()
    for _ in range(n):
        fn()
    e1.record()
    torch.cuda.synchronize()
    return e0.elapsed_time(e1) / n


def main(name, dec_points, pre_points):
    c = CFG[name]
    W, head = weights(c)
    with torch.inference_mode():
        for B, C in dec_points:
            try:
                K = [torch.randn(B, c["kv"], C, c["hd"], device=dev, dtype=dt) for _ in W]
                V = [torch.randn(B, c["kv"], C, c["hd"], device=dev, dtype=dt) for _ in W]
                x = torch.randn(B, c["d"], device=dev, dtype=dt)
                eager = timed(lambda: decode_step(c, W, head, x, K, V, C - 1), 5)
                s = torch.cuda.Stream()
                s.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(s):
                    for _ in range(2):
                        decode_step(c, W, head, x, K, V, C - 1)
                torch.cuda.current_stream().wait_stream(s)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    decode_step(c, W, head, x, K, V, C - 1)
                ms = timed(graph.replay, 20)
                print(
                    json.dumps(
                        dict(
                            kind="decode",
                            model=name,
                            batch=B,
                            ctx=C,
                            ms=round(ms, 4),
                            eager_ms=round(eager, 4),
                        )
                    ),
                    flush=True,
                )
                del K, V, graph
            except torch.OutOfMemoryError:
                print(
                    json.dumps(
                        dict(kind="decode", model=name, batch=B, ctx=C, ms=None, note="oom")
                    ),
                    flush=True,
                )
            torch.cuda.empty_cache()
        for B, S in pre_points:
            try:
                x = torch.randn(B, S, c["d"], device=dev, dtype=dt)
                ms = timed(lambda: prefill(c, W, head, x), 3)
                print(
                    json.dumps(dict(kind="prefill", model=name, batch=B, ctx=S, ms=round(ms, 3))),
                    flush=True,
                )
                del x
            except torch.OutOfMemoryError:
                print(
                    json.dumps(
                        dict(kind="prefill", model=name, batch=B, ctx=S, ms=None, note="oom")
                    ),
                    flush=True,
                )
            torch.cuda.empty_cache()


def gemv_probe(name):
    c = CFG[name]
    W, head = weights(c)
    x = torch.randn(1, c["d"], device=dev, dtype=dt)
    xo = torch.randn(1, c["h"] * c["hd"], device=dev, dtype=dt)
    xf = torch.randn(1, c["f"], device=dev, dtype=dt)

    def f():
        for w in W:
            (x @ w["wqkv"])
            (xo @ w["wo"])
            (x @ w["wgu"])
            (xf @ w["wd"])
        x @ head

    nbytes = (
        sum(t.numel() * 2 for w in W for k, t in w.items() if k.startswith("w")) + head.numel() * 2
    )
    g = torch.cuda.CUDAGraph()
    with torch.inference_mode():
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            f()
            f()
        torch.cuda.current_stream().wait_stream(s)
        with torch.cuda.graph(g):
            f()
        ms = timed(g.replay, 20)
    big = torch.empty(int(4e9), dtype=torch.uint8, device=dev)
    big2 = torch.empty_like(big)
    cp = timed(lambda: big2.copy_(big), 10)
    print(
        json.dumps(
            dict(
                kind="gemv_only",
                model=name,
                ms=round(ms, 4),
                weight_gb=round(nbytes / 1e9, 3),
                tbps=round(nbytes / ms / 1e9, 3),
                copy_tbps_rw=round(8e9 / cp / 1e9, 3),
            )
        ),
        flush=True,
    )
    del big, big2


def grid(kv_bytes_per_token, free_gb, batches, ctxs):
    return [(b, c) for b in batches for c in ctxs if b * c * kv_bytes_per_token < free_gb * 1e9]


if __name__ == "__main__":
    t = time.time()
    SDPA = True
    B = [1, 2, 4, 8, 16, 32, 64, 128, 256]
    C = [512, 2048, 8192, 32768]
    main(
        "8b",
        grid(131072, 58, B, C),
        [(b, s) for b in (1, 2, 4, 8, 16) for s in (512, 2048, 8192, 32768) if b * s <= 131072],
    )
    main(
        "3b",
        grid(114688, 66, B, C),
        [(b, s) for b in (1, 4, 16) for s in (512, 2048, 8192, 32768) if b * s <= 131072],
    )
    main(
        "1b",
        grid(32768, 70, B, C),
        [(b, s) for b in (1, 4, 16) for s in (512, 2048, 8192, 32768) if b * s <= 131072],
    )
    print(json.dumps(dict(kind="done", seconds=round(time.time() - t, 1))))
