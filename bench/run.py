"""Benchmark of the book: cold build, warm rebuild, peak memory, and every model's training.

    .venv/bin/python bench/run.py            # cold + warm build in a temporary folder
    .venv/bin/python bench/run.py --warm     # only the warm rebuild of the repo's own build
    .venv/bin/python bench/run.py --keep DIR # keep the cold build (DIR/out/_build/html)

The cold build runs `jupyter-book build` into a fresh output folder with an empty model
cache, so every page executes and every model trains; the warm rebuild repeats it with
nothing changed. Peak memory is the largest resident set of any process the build started
(the page kernels included). Each model's wall time and throughput come from the
checkpoint cache's records. It measures and prints; it never fails on a slow machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bdl_src import cache, machine  # noqa: E402


def build(out: Path, cache_dir: Path) -> tuple[float, bool]:
    """Run one build; return its wall seconds and whether it succeeded."""
    env = {**os.environ, cache.CACHE_ENV: str(cache_dir)}
    jb = Path(sys.executable).parent / "jupyter-book"
    start = time.perf_counter()
    done = subprocess.run([str(jb), "build", str(ROOT), "--path-output", str(out),
                           "--warningiserror"], env=env, capture_output=True, text=True)
    return time.perf_counter() - start, done.returncode == 0


def _flat(d, prefix=""):
    for k, v in (d.items() if isinstance(d, dict) else []):
        if isinstance(v, dict):
            yield from _flat(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def models(cache_dir: Path) -> list[dict]:
    """One row per trained model in the cache: its training time and throughput. Entries
    of one name are told apart by the settings in which their configs differ."""
    entries = []
    for path in sorted(cache_dir.glob("*.safetensors")):
        try:
            _, meta = cache.load_entry(path)
        except ValueError:
            continue
        if "examples_seen" not in meta:
            continue  # a record of metrics or a measurement, not a trained model
        entries.append((path.stem.rsplit("-", 1)[0], meta))
    rows = []
    for name, meta in entries:
        config = dict(_flat(meta.get("config", {})))
        others = [dict(_flat(m.get("config", {}))) for n, m in entries if n == name]
        differ = {k: v for k, v in config.items() if any(o.get(k) != v for o in others)}
        label = name + (f" ({', '.join(f'{k}={v}' for k, v in differ.items())})"
                        if differ else "")
        # The training loop's own clock where the entry has one; else the whole fit's.
        seconds = next((meta[k] for k in ("seconds", "svi_seconds") if k in meta),
                       meta.get("train_seconds", float("nan")))
        rows.append({"model": label, "train_seconds": seconds,
                     "examples_per_second": meta["examples_seen"] / seconds})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", action="store_true",
                        help="time only a warm rebuild of the repository's own _build")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="build into DIR and keep it (its model cache in DIR/cache), "
                        "e.g. to compare with another build by bench/compare_builds.py")
    args = parser.parse_args()
    result = {"machine": machine.describe()}
    if args.warm:
        seconds, ok = build(ROOT, cache.cache_dir())
        result["warm_rebuild_seconds"], result["warm_ok"] = seconds, ok
        result["models"] = models(cache.cache_dir())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            where = args.keep.resolve() if args.keep else Path(tmp)
            if args.keep and where.exists() and any(where.iterdir()):
                parser.error(f"{where} is not empty: a cold build needs an empty folder")
            out, cache_dir = where / "out", where / "cache"
            result["cold_build_seconds"], result["cold_ok"] = build(out, cache_dir)
            result["warm_rebuild_seconds"], result["warm_ok"] = build(out, cache_dir)
            result["models"] = models(cache_dir)
    # ru_maxrss of the children: kilobytes on Linux.
    result["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    print(f"{'figure':<34} value")
    for key in ("cold_build_seconds", "warm_rebuild_seconds", "peak_memory_mb"):
        if key in result:
            print(f"{key:<34} {result[key]:.1f}")
    for row in result["models"]:
        rate = row["examples_per_second"]
        print(f"train {row['model']:<28} {row['train_seconds']:.1f} s, "
              f"{rate:,.0f} examples/s")
    for key, value in result["machine"].items():
        print(f"{key:<34} {value}")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
