"""Shared helpers of the benchmark scripts: machine facts and JSON output with comparison to the last run."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
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
