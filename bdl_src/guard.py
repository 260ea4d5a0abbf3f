"""The CI guard: every headline metric of a build against the bound it must meet.

The results page writes the build's headline metrics to ``_build/metrics.json``
(``bdl_src.results.write_metrics``); ``.ci/bounds.toml`` declares a bound next to each
metric that matters. ``python -m bdl_src.guard _build/metrics.json .ci/bounds.toml``
prints one line per metric outside its bound and exits with status 1, so a change that
quietly makes a model worse fails CI with a message that names the metric.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path


def number(value) -> float:
    """A metric as a float: numbers as they are, "98.05 ± 0.03" -> 98.05."""
    if isinstance(value, (int, float)):
        return float(value)
    return float(str(value).replace("±", " ").split()[0])


def check(metrics: dict, bounds: dict) -> list[str]:
    """One message per metric of ``bounds`` ({chapter: {metric: {"min"/"max": x}}})
    that ``metrics`` ({chapter: {metric: value}}) lacks or whose value is outside."""
    problems = []
    for chapter, entries in bounds.items():
        for metric, bound in entries.items():
            where = f"{chapter} / {metric}"
            try:
                value = number(metrics[chapter][metric])
            except (KeyError, ValueError, IndexError):
                problems.append(f"GUARD: {where} is missing from the build's metrics")
                continue
            if "min" in bound and not value >= bound["min"]:
                problems.append(f"GUARD: {where} = {value:g}, below its bound "
                                f"{bound['min']:g}")
            if "max" in bound and not value <= bound["max"]:
                problems.append(f"GUARD: {where} = {value:g}, above its bound "
                                f"{bound['max']:g}")
    return problems


def main(argv: list[str] | None = None) -> int:
    metrics_path, bounds_path = (argv or sys.argv[1:]) or ("_build/metrics.json",
                                                           ".ci/bounds.toml")
    if not Path(metrics_path).exists():
        print(f"GUARD: {metrics_path} not found; build the book first (make book)")
        return 1
    metrics = json.loads(Path(metrics_path).read_text())
    bounds = tomllib.loads(Path(bounds_path).read_text())
    problems = check(metrics, bounds)
    for line in problems:
        print(line)
    count = sum(len(v) for v in bounds.values())
    print(f"guard: {count - len(problems)} of {count} headline metrics within bounds")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
