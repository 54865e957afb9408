"""Shared helpers of the benchmark scripts: the machine's state during a run, the load check, arithmetic
floors, and JSON output with comparison to the last run.

A benchmark must not record load as speed. :class:`Conditions` measures, in the benchmark's own process,
the load averages before and after the run and a GEMM peak (multiply-adds/s of an fp32 matrix product
shaped like the world model's, at the run's torch thread count). :func:`judge_load` calls a run
``loaded`` when the machine could not give it its cores: the 1-minute load before the run plus the run's
threads exceeds the cores (other work was running), the load after exceeds them (other work started),
or the GEMM peak fell far below the quiet peak of the last unloaded run. A loaded run stops with a
message unless ``--allow-load`` is given; then its JSON says ``"loaded": true`` with the reasons.

Times of compute-bound work are also reported as a multiple of their arithmetic floor: the multiply-adds
the code performs (torch's FLOP counter, forward and backward) divided by the measured GEMM peak, the
time below which those products cannot run on this machine whatever the implementation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
#: Load allowed above the run's own threads before a run counts as loaded (the load average counts
#: runnable threads; a shell, an editor or the benchmark's own start-up add a few tenths).
LOAD_MARGIN = 0.5
#: A GEMM peak under this fraction of the last quiet run's peak (same cores, same threads) means loaded.
PEAK_FRACTION = 0.7
#: The peak's matrix product: (rows x inner) @ (inner x cols). 800 rows = the world model's 16 x 50 batch.
PEAK_SHAPE = (800, 1024, 1024)


def machine() -> dict:
    """Facts about the machine (no timing). :meth:`Conditions.finish` adds the load and peak of a run."""
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
        "processor": platform.processor() or platform.machine(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def gemm_peak_macs(shape: tuple[int, int, int] = PEAK_SHAPE, repeats: int = 7, device: str = "cpu") -> float:
    """Multiply-adds per second of an fp32 matrix product, median of ``repeats`` after one warm-up, at
    torch's current thread count: the machine's practical peak for the model's GEMMs."""
    import torch

    m, k, n = shape
    a, b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    a @ b
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        sync()
        times.append(time.perf_counter() - t0)
    times.sort()
    return m * k * n / times[len(times) // 2]


def judge_load(load_before: float, load_after: float | None, cpus: int, threads: int,
               peak: float | None = None, quiet_peak: float | None = None) -> list[str]:
    """Why a run counts as loaded (empty: it does not). Pure function of the measurements.

    ``load_before``/``load_after`` are 1-minute load averages; ``threads`` the run's compute threads.
    """
    reasons = []
    if load_before + min(threads, cpus) > cpus + LOAD_MARGIN:
        reasons.append(f"load {load_before:.2f} before the run + its {threads} thread(s) exceeds "
                       f"{cpus} cores (+{LOAD_MARGIN})")
    if load_after is not None and load_after > cpus + LOAD_MARGIN:
        reasons.append(f"load {load_after:.2f} after the run exceeds {cpus} cores (+{LOAD_MARGIN})")
    if peak is not None and quiet_peak and peak < PEAK_FRACTION * quiet_peak:
        reasons.append(f"GEMM peak {peak / 1e9:.1f} GMAC/s is under {PEAK_FRACTION:.0%} of the quiet "
                       f"{quiet_peak / 1e9:.1f} GMAC/s")
    return reasons


def floor_multiple(seconds: float, macs: float, peak: float) -> float:
    """How many times its arithmetic floor (``macs / peak`` seconds) a measured time is."""
    return seconds / (macs / peak)


def count_macs(fn) -> float:
    """Multiply-adds of one call of ``fn`` as torch's FLOP counter sees them (matrix products and
    convolutions, forward and backward; element-wise work and look-ups are not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops() / 2


def quiet_peak(path: Path, cpus: int, threads: int) -> float | None:
    """The GEMM peak of the run recorded in ``path`` if it was unloaded and had the same cores and threads."""
    if not path.exists():
        return None
    prev = json.loads(path.read_text()).get("machine", {})
    if prev.get("loaded", True) or prev.get("cpus") != cpus or prev.get("torch_threads") != threads:
        return None
    return prev.get("gemm_peak_mac_per_s")


def add_load_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-load", action="store_true",
                        help="run (and write the JSON, marked \"loaded\": true) on a machine busy with other "
                             "work; without it such a run stops")


class Conditions:
    """The load and GEMM peak around one benchmark run; refuses a loaded run unless allowed.

    ``start()`` before the timed work (stops at once if the machine is already busy), ``finish()`` after
    it: the ``machine`` dict for the JSON, or a stop without writing anything if the run was loaded.
    """

    def __init__(self, name: str, allow_load: bool, threads: int | None = None, peak: bool = True,
                 previous: Path | None = None):
        import torch

        self.name, self.allow_load, self.measure_peak = name, allow_load, peak
        self.previous = previous or RESULTS / f"{name}.json"
        self.threads = threads or torch.get_num_threads()
        self.cpus = os.cpu_count() or 1

    def _stop_if(self, reasons: list[str], when: str) -> None:
        if reasons and not self.allow_load:
            sys.exit(f"benchmarks/{self.name}: the machine is loaded {when} ({'; '.join(reasons)}), so its "
                     "times would measure the load; nothing written. Wait for a quiet machine, or pass "
                     "--allow-load to record the run marked \"loaded\": true.")

    def start(self) -> Conditions:
        self.load_before = os.getloadavg()
        self.peak_before = gemm_peak_macs() if self.measure_peak else None
        self.quiet = quiet_peak(self.previous, self.cpus, self.threads)
        self._stop_if(judge_load(self.load_before[0], None, self.cpus, self.threads, self.peak_before,
                                 self.quiet), "before the run")
        return self

    def finish(self) -> dict:
        load_after = os.getloadavg()
        peak_after = gemm_peak_macs() if self.measure_peak else None
        peaks = [p for p in (self.peak_before, peak_after) if p is not None]
        peak = min(peaks) if peaks else None
        reasons = judge_load(self.load_before[0], load_after[0], self.cpus, self.threads, peak, self.quiet)
        self._stop_if(reasons, "during the run")
        return {**machine(), "torch_threads": self.threads, "load_before": list(self.load_before),
                "load_after": list(load_after), "gemm_peak_mac_per_s": peak,
                "gemm_peak_before_after": [self.peak_before, peak_after], "gemm_shape": list(PEAK_SHAPE),
                "quiet_peak_mac_per_s": self.quiet, "loaded": bool(reasons), "loaded_reasons": reasons}


def save(name: str, results: dict, compare_key: str | None = None) -> Path:
    """Write ``results/<name>.json``; print how each ``compare_key`` figure moved since the last run."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    if compare_key and path.exists():
        previous = json.loads(path.read_text()).get("results", {})
        for key, row in results.get("results", {}).items():
            old = previous.get(key, {}).get(compare_key)
            new = row.get(compare_key)
            if old and new:
                print(f"  {key}: {compare_key} {old:.4g} -> {new:.4g} ({(new / old - 1) * 100:+.1f}%)")
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"wrote {path}")
    return path
