"""Benchmark of the book: cold build, warm rebuild, peak memory, and every model's
training.

    .venv/bin/python bench/run.py            # cold + warm build in a temporary folder
    .venv/bin/python bench/run.py --warm     # only the warm rebuild of the repo's own
                                             # build
    .venv/bin/python bench/run.py --keep DIR # keep the cold build (DIR/out/_build/html)

The cold build runs `jupyter-book build` into a fresh output folder with an empty model
cache, so every page executes and every model trains; the warm rebuild repeats it with
nothing changed. Peak memory is the largest resident set of any process the build
started (the page kernels included). Each model's wall time and throughput come from the
checkpoint cache's records; the cold build is split per chapter into training,
evaluation (cached computations) and the rest of page execution (from the build log).
A fixed reference workload (bench/reference.py: matrix products and a small SVI epoch)
is timed in the same run, and every time is also printed as a multiple of it, so that
two machines' figures can be compared. It measures and prints; it never fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import reference  # noqa: E402

from bdl_src import cache, machine  # noqa: E402

# cache entry names -> the chapter (page) that trains them
CHAPTERS = {"regression": "bayesian_modeling", "bnn": "bnn", "vae": "vae",
            "ssvae": "ssvae", "m1": "ssvae", "scaling": "scaling"}


def chapter_of(name: str) -> str:
    return next((page for prefix, page in CHAPTERS.items() if name.startswith(prefix)),
                "other")


def build(out: Path, cache_dir: Path) -> tuple[float, bool, str]:
    """Run one build; return its wall seconds, whether it succeeded, and its log."""
    env = {**os.environ, cache.CACHE_ENV: str(cache_dir)}
    jb = Path(sys.executable).parent / "jupyter-book"
    start = time.perf_counter()
    done = subprocess.run([str(jb), "build", str(ROOT), "--path-output", str(out),
                           "--nitpick", "--warningiserror"], env=env,
                          capture_output=True, text=True)
    return time.perf_counter() - start, done.returncode == 0, done.stdout + done.stderr


def page_seconds(log: str) -> dict[str, float]:
    """Execution seconds of every page, as myst-nb logs them."""
    return {m.group(1): float(m.group(2)) for m in re.finditer(
        r"book/(\w+)\.md: Executed notebook in ([\d.]+) seconds", log)}


def per_chapter(cache_dir: Path, pages: dict[str, float]) -> list[dict]:
    """Cold-build seconds per page: training, evaluation (cached computations) and the
    rest of its execution (plots, prose, predictions that are not cached)."""
    rows = {page: {"page": page, "training": 0.0, "evaluation": 0.0,
                   "execution": seconds} for page, seconds in pages.items()}
    for entry in cache.entries(cache_dir):
        page = chapter_of(entry["name"])
        row = rows.setdefault(page, {"page": page, "training": 0.0, "evaluation": 0.0,
                                     "execution": float("nan")})
        kind = "training" if entry["info"].get("trains", True) else "evaluation"
        row[kind] += entry["info"]["train_seconds"]
    for row in rows.values():
        row["rest of page"] = row["execution"] - row["training"] - row["evaluation"]
    return list(rows.values())


def _flat(d, prefix=""):
    for k, v in (d.items() if isinstance(d, dict) else []):
        if isinstance(v, dict):
            yield from _flat(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def models(cache_dir: Path) -> list[dict]:
    """One row per trained model in the cache: its training time and throughput. Entries
    of one name are told apart by the settings in which their configs differ."""
    entries = [e for e in cache.entries(cache_dir) if e["info"].get("trains", True)]
    rows = []
    for entry in entries:
        name, info = entry["name"], entry["info"]
        config = dict(_flat(info.get("config", {})))
        others = [dict(_flat(e["info"].get("config", {}))) for e in entries
                  if e["name"] == name]
        differ = {k: v for k, v in config.items() if any(o.get(k) != v for o in others)}
        label = name + (f" ({', '.join(f'{k}={v}' for k, v in differ.items())})"
                        if differ else "")
        rows.append({"model": label, "train_seconds": info["train_seconds"],
                     "examples_per_second": info.get("examples_per_second")})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--warm", action="store_true",
                        help="time only a warm rebuild of the repository's own _build")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="build into DIR and keep it (its model cache in "
                        "DIR/cache), e.g. to compare with another build by "
                        "bench/compare_builds.py")
    args = parser.parse_args()
    result = {"machine": machine.describe(), "reference": reference.measure()}
    if args.warm:
        seconds, ok, _ = build(ROOT, cache.cache_dir())
        result["warm_rebuild_seconds"], result["warm_ok"] = seconds, ok
        result["models"] = models(cache.cache_dir())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            where = args.keep.resolve() if args.keep else Path(tmp)
            if args.keep and where.exists() and any(where.iterdir()):
                parser.error(
                    f"{where} is not empty: a cold build needs an empty folder")
            out, cache_dir = where / "out", where / "cache"
            seconds, ok, log = build(out, cache_dir)
            result["cold_build_seconds"], result["cold_ok"] = seconds, ok
            result["chapters"] = per_chapter(cache_dir, page_seconds(log))
            seconds, ok, _ = build(out, cache_dir)
            result["warm_rebuild_seconds"], result["warm_ok"] = seconds, ok
            result["models"] = models(cache_dir)
    # ru_maxrss of the children: kilobytes on Linux.
    result["peak_memory_mb"] = (
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)

    unit = result["reference"]["reference_seconds"]
    print(f"{'figure':<34} {'value':>9}  {'x reference':>11}")
    for key, value in result["reference"].items():
        print(f"{key:<34} {value:9.1f}")
    for key in ("cold_build_seconds", "warm_rebuild_seconds"):
        if key in result:
            print(f"{key:<34} {result[key]:9.1f}  {result[key] / unit:11.2f}")
    print(f"{'peak_memory_mb':<34} {result['peak_memory_mb']:9.1f}")
    for row in result.get("chapters", []):
        print(f"page {row['page']:<18} " + ", ".join(
            f"{k} {row[k]:.1f} s ({row[k] / unit:.2f}x)"
            for k in ("training", "evaluation", "rest of page")))
    for row in result["models"]:
        rate = row["examples_per_second"]
        print(f"train {row['model']:<28} {row['train_seconds']:9.1f}  "
              f"{row['train_seconds'] / unit:11.2f}"
              + (f"  {rate:,.0f} examples/s" if rate else ""))
    for key, value in result["machine"].items():
        print(f"{key:<34} {value}")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
