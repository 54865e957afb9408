"""Where a DreamerV2 update's time goes: its products at their own shapes against everything else.

``benchmarks/dreamer.py`` states each update as a multiple of its *peak floor*: the update's multiply-adds
at the GEMM peak of one large fp32 product. Small products (a 200-unit GRU on 50 rows, a 3x3 convolution
over 10x10 frames) do not reach that peak on any library, so the peak floor mixes two different costs.
This script separates them. It records every matrix product and convolution (forward and backward, as
aten ops below autograd) that one update performs, with shapes, strides and arguments; replays each
distinct call alone on fresh tensors of the same layout; and sums calls x median time into the *kernel
floor*: the update's time if it did nothing but its products, each at the speed this machine's torch gives
that shape. Then

* ``kernel_floor / peak_floor``: how far the products themselves are from the peak (kernel efficiency at
  these shapes; no change to the code around them moves it),
* ``update / kernel_floor``: the rest (element-wise work, reductions, allocation, autograd, Python),
  the part an implementation controls without changing the mathematics or the kernels.

The machine must be quiet (``_common.Conditions``: the run stops if loaded, unless ``--allow-load``).

    python benchmarks/kernel_floor.py                      # minatar and rajghugare_minatar -> JSON
    python benchmarks/kernel_floor.py --presets atari --repeats 5
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections import Counter
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

sys.path.insert(0, str(Path(__file__).parent))
from _common import Conditions, add_load_argument, count_macs, gemm_peak_macs, save  # noqa: E402
from dreamer import build_updates, past_probe, time_calls  # noqa: E402

aten = torch.ops.aten
#: The ops whose multiply-adds torch's FLOP counter counts (matrix products and convolutions).
PRODUCTS = {aten.mm.default, aten.addmm.default, aten.bmm.default, aten.baddbmm.default,
            aten.convolution.default, aten._convolution.default, aten.convolution_backward.default}


def _spec(x):
    """A hashable description of one argument: tensors by layout, everything else by value."""
    if isinstance(x, torch.Tensor):
        return ("T", tuple(x.shape), tuple(x.stride()), str(x.dtype), x.requires_grad)
    if isinstance(x, (list, tuple)):
        return tuple(_spec(v) for v in x)
    return x


class RecordProducts(TorchDispatchMode):
    """Counts each distinct (op, argument layout) among :data:`PRODUCTS` while active."""

    def __init__(self):
        super().__init__()
        self.calls: Counter = Counter()
        self.examples: dict = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in PRODUCTS:
            key = (str(func), _spec(args), _spec(sorted(kwargs.items())))
            self.calls[key] += 1
            if key not in self.examples:
                self.examples[key] = (func, tree_map(_detached_like, args), tree_map(_detached_like, kwargs))
        return func(*args, **kwargs)


def _detached_like(x):
    """A fresh tensor of ``x``'s shape, strides and dtype (random values); other arguments unchanged."""
    if not isinstance(x, torch.Tensor):
        return x
    out = torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device=x.device)
    return out.normal_() if out.is_floating_point() else out.zero_()


def replay_ms(func, args, kwargs, min_seconds: float = 0.05, repeats: int = 7) -> float:
    """Median ms of one call of ``func`` on its recorded layout, each sample long enough to time."""
    func(*args, **kwargs)
    t0 = time.perf_counter()
    func(*args, **kwargs)
    once = max(time.perf_counter() - t0, 1e-6)
    inner = max(1, int(min_seconds / once))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            func(*args, **kwargs)
        samples.append((time.perf_counter() - t0) / inner)
    samples.sort()
    return 1000 * samples[len(samples) // 2]


def kernel_floor(fn, peak: float, top: int, min_seconds: float = 0.05, repeats: int = 7) -> dict:
    """One recorded call of ``fn``, each distinct product replayed alone (median of ``repeats`` samples
    of at least ``min_seconds``); totals and the ``top`` costliest."""
    rec = RecordProducts()
    with rec:
        fn()
    rows = []
    for key, n in rec.calls.items():
        func, args, kwargs = rec.examples[key]
        ms = replay_ms(func, args, kwargs, min_seconds, repeats)
        macs = count_macs(lambda f=func, a=args, k=kwargs: f(*a, **k))
        rows.append({"op": key[0], "shapes": [list(s[1]) for s in _tensor_specs(key[1])], "calls": n,
                     "ms_each": ms, "ms_total": n * ms, "gmac_total": n * macs / 1e9,
                     "gmac_per_s": macs / (ms / 1000) / 1e9 if ms else None})
    rows.sort(key=lambda r: -r["ms_total"])
    total_ms = sum(r["ms_total"] for r in rows)
    gmac = sum(r["gmac_total"] for r in rows)
    by_op: dict[str, float] = {}
    for r in rows:
        by_op[r["op"]] = by_op.get(r["op"], 0.0) + r["ms_total"]
    return {"kernel_floor_ms": total_ms, "gmac": gmac, "peak_floor_ms": 1000 * gmac * 1e9 / peak,
            "product_calls": sum(rec.calls.values()), "distinct_products": len(rows),
            "kernel_ms_by_op": by_op, "costliest": rows[:top]}


def _tensor_specs(spec):
    for s in spec:
        if isinstance(s, tuple) and s and s[0] == "T":
            yield s
        elif isinstance(s, tuple):
            yield from _tensor_specs(s)


def measure(preset: str, repeats: int, top: int) -> dict:
    agent, cfg, timed, _ = build_updates(preset)
    timed.pop("imagine")  # inside the behaviour update already
    times = time_calls(timed, warmup=3, repeats=repeats, sync=lambda: None)
    peak = gemm_peak_macs()
    out = {"preset": preset, "batch": cfg.batch_size, "length": cfg.seq_length,
           "gemm_peak_gmac_per_s": peak / 1e9}
    for name, fn in timed.items():
        past_probe(agent, cfg, timed)
        res = kernel_floor(fn, peak, top)
        ms = times[f"{name}_ms_median"]
        res.update({"ms_median": ms, "x_peak_floor": ms / res["peak_floor_ms"],
                    "kernel_x_peak_floor": res["kernel_floor_ms"] / res["peak_floor_ms"],
                    "x_kernel_floor": ms / res["kernel_floor_ms"],
                    "other_ms": ms - res["kernel_floor_ms"]})
        out[name] = res
        print(f"{preset} {name}: {ms:.0f} ms = {res['x_peak_floor']:.2f}x the peak floor "
              f"({res['peak_floor_ms']:.0f} ms); its products alone {res['kernel_floor_ms']:.0f} ms "
              f"({res['kernel_x_peak_floor']:.2f}x the peak floor; {res['product_calls']} calls, "
              f"{res['distinct_products']} shapes); the rest {res['other_ms']:.0f} ms "
              f"(update = {res['x_kernel_floor']:.2f}x its kernel floor)", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["minatar", "rajghugare_minatar"])
    p.add_argument("--repeats", type=int, default=9, help="timed calls of each whole update")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--top", type=int, default=8, help="costliest distinct products kept in the JSON")
    add_load_argument(p)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    conditions = Conditions("kernel_floor", args.allow_load, threads=args.threads).start()
    results = {preset: measure(preset, args.repeats, args.top) for preset in args.presets}
    save("kernel_floor", {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                          "machine": {"platform": platform.platform(), **conditions.finish()},
                          "results": results})


if __name__ == "__main__":
    main()
