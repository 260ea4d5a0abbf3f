"""The results page: every chapter's headline numbers from this build, beside published
reference values.

One source for every number: each chapter's page, once it has computed its numbers,
stores them with ``record`` in ``_build/metrics/<chapter>.json``; the results page reads
them back with ``recorded`` and never recomputes them, and writes them all to
``_build/metrics.json`` for the CI guard (``bdl_src.guard``) and the README's table
(``python -m bdl_src.results readme``). ``bdl_src.sphinx_ext`` has the results page
read after the chapters. (``python -m bdl_src train CHAPTER`` prints a chapter's
numbers in a terminal through that chapter's ``cli_run``.)"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pandas as pd

# Pyro's own examples/vae/ss_vae_M2.py with its documented settings (3000 labels, aux
# loss x46, z=50, hidden 500, batch 200, lr 4.2e-4), measured with
# bench/pyro_example_ssvae.py: (epoch, seconds of training, test accuracy) at the end
# of each epoch measured. A local measurement, not a published value: chapter 4 compares
# with it at equal time.
PYRO_SSVAE_EXAMPLE = {
    "machine": "a 2-core AMD EPYC, 2 torch threads, on 2026-11-30",
    "command": "bench/pyro_example_ssvae.py PYRO/examples/vae 130",
    "epochs": [(1, 26.87, 0.7912), (2, 53.45, 0.8464), (3, 79.74, 0.8794),
               (4, 106.63, 0.8842), (5, 133.66, 0.8824)]}

# Published values to compare with, as their sources report them: module -> (what,
# value, where, the headline metric of this build it compares with or None). The pages
# cite the sources and glue these strings through ``published``.
PUBLISHED = {
    "bnn": [("test error, Bayes by Backprop 2x1200, scale-mixture prior", "1.32 %",
             "Blundell et al. 2015, table 1", "BNN: accuracy (%)"),
            ("test error, MC dropout MLP", "about 1.37 %",
             "a commonly quoted value, not re-checked against its paper",
             "MC dropout: accuracy (%)"),
            ("AUROC MNIST vs Fashion-MNIST, CNN max-softmax", "0.98–0.99",
             "as reported from Laplace Redux reproductions, not re-checked",
             "deterministic: AUROC, entropy"),
            ("AUROC MNIST vs Fashion-MNIST, CNN deep ensemble", "about 0.993",
             "as reported from Laplace Redux reproductions, not re-checked",
             "deep ensemble: AUROC, entropy")],
    "vae": [("test NLL, VAE with a Gaussian prior", "228.70 nats",
             "Norouzi et al. 2020, table 1 (dynamically binarised Fashion-MNIST, z=40, "
             "K=5000, up to 2000 epochs)",
             "binarised test NLL, Gaussian guide (nats/image)")],
    "ssvae": [("test error M2, 100 labels", "11.97 %", "Kingma et al. 2014, table 1",
               "SS-VAE (M1+M2) test accuracy, 100 labels"),
              ("test error M1+M2, 100 labels", "3.33 %", "Kingma et al. 2014, table 1",
               "SS-VAE (M1+M2) test accuracy, 100 labels"),
              ("test error M2, 3000 labels", "3.92 %", "Kingma et al. 2014, table 1",
               "SS-VAE (M1+M2) test accuracy, 3000 labels"),
              ("test error M1+M2, 3000 labels", "2.18 %", "Kingma et al. 2014, table 1",
               "SS-VAE (M1+M2) test accuracy, 3000 labels"),
              ("test accuracy M2, 100 labels", "93.2 %", "Pyro SS-VAE tutorial",
               "SS-VAE (M1+M2) test accuracy, 100 labels"),
              ("test accuracy M2, 3000 labels", "95.8 %", "Pyro SS-VAE tutorial",
               "SS-VAE (M1+M2) test accuracy, 3000 labels")]
}


def published(module: str, what: str) -> str:
    """The published value ``what`` of ``module``'s entries in ``PUBLISHED``."""
    for entry, value, *_ in PUBLISHED[module]:
        if entry == what:
            return value
    raise KeyError(f"no published value {what!r} for {module!r}")


def published_number(module: str, what: str) -> float:
    """The number in the published value ``what`` ("3.33 %" -> 3.33)."""
    return float(published(module, what).split()[0])


def compared_with(metric: str) -> str:
    """The published values a headline metric compares with, in one line ("" if
    none). Beside an accuracy a published test error is given as an accuracy too
    ("98.68 % (error 1.32 %)"), so that the row compares like with like."""
    out = []
    for entries in PUBLISHED.values():
        for what, value, source, metric_of in entries:
            if metric_of != metric:
                continue
            if what.startswith("test error") and "accuracy" in metric:
                number = re.search(r"[\d.]+", value).group()
                prefix = value[:value.index(number)]
                what = what.replace("test error", "test accuracy")
                value = f"{prefix}{100 - float(number):.2f} % (error {value.strip()})"
            out.append(f"{what}: {value} ({source.split(',')[0]})")
    return "; ".join(out)


def _pct(x: float, digits: int = 1) -> str:
    """A fraction as a percentage. One decimal by default: a proportion measured on
    1,000 to 10,000 points has a standard error of 0.2 to 1 percentage point."""
    return f"{100 * x:.{digits}f} %"


def _regression(m: dict) -> list[tuple]:
    worst = max(abs(v) for k, v in m.items() if "mean error" in k)
    return [("largest posterior-mean error of the two SVI guides (exact posterior sd)",
             f"{worst:.2f}"),
            ("90 % band coverage of held-out points (mean-field)",
             _pct(m["mean_field 90% coverage (held out)"])),
            ("training time, mean-field guide",
             f"{m['mean_field train seconds']:.0f} s")]


def _bnn(m: dict) -> list[tuple]:
    """Chapter 2's comparison (mean ± sd over seeds), as ``cli_run`` returns it."""
    keep = ("accuracy (%)", "NLL (nats)", "ECE (%)", "AUROC, entropy", "training (s)")
    return [(key, value) for key, value in m.items() if key.split(": ", 1)[1] in keep]


def _vae(m: dict) -> list[tuple]:
    return [("test negative ELBO (nats/image)",
             f"{m['test negative ELBO (nats/image)']:.1f}"),
            ("test negative log-likelihood, importance-sampled (nats/image)",
             f"{m['test negative log-likelihood, importance-sampled']:.1f}"),
            ("binarised test NLL, Gaussian guide (nats/image)",
             m["binarised test NLL, Gaussian guide (nats/image)"]),
            ("training time", f"{m['SVI seconds']:.0f} s")]


def _ssvae(m: dict) -> list[tuple]:
    """Accuracies as "mean ± sd %" where there are several label draws, else "m %"."""
    rows = []
    for key, value in m.items():
        if " sd over " in key:
            continue
        if "accuracy" in key:
            what, labels = key.split(", ")
            sd_key = next((k for k in m if k.startswith(f"{what} sd over ")
                           and k.endswith(f", {labels}")), None)
            text = _pct(value) if sd_key is None else \
                f"{100 * value:.1f} ± {100 * m[sd_key]:.1f} %"
            rows.append((key, text))
        elif "seconds" in key:
            rows.append((key.replace("train seconds", "training time"),
                         f"{value:.0f} s"))
    return rows


# (title on the results page and in metrics.json, the name a page records under, rows)
CHAPTERS = [("Ch. 1 regression", "regression", _regression),
            ("Ch. 2 BNN", "bnn", _bnn),
            ("Ch. 3 VAE", "vae", _vae),
            ("Ch. 4 SS-VAE", "ssvae", _ssvae)]
BUILD = Path(__file__).resolve().parents[1] / "_build"
METRICS_DIR = BUILD / "metrics"


def record(chapter: str, metrics: dict, folder: str | Path | None = None) -> Path:
    """Store the headline numbers of ``chapter`` ("bnn", ...) as its page computed them:
    {metric: number, or "mean ± sd" text}, in ``folder/<chapter>.json``."""
    names = [name for _, name, _ in CHAPTERS]
    if chapter not in names:
        raise ValueError(f"unknown chapter {chapter!r}; expected one of {names}")
    path = Path(folder or METRICS_DIR) / f"{chapter}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=1))
    return path


def recorded(folder: str | Path | None = None) -> dict:
    """{chapter title: {metric: value}} as the chapters' pages recorded them, in the
    book's order. A chapter that recorded nothing is an error that says what to do."""
    folder = Path(folder or METRICS_DIR)
    missing = [name for _, name, _ in CHAPTERS
               if not (folder / f"{name}.json").is_file()]
    if missing:
        raise FileNotFoundError(
            f"no metrics recorded in {folder} for {', '.join(missing)}: build the "
            f"book (make book), which runs every chapter first; if only {folder} was "
            f"deleted, delete {BUILD / '.jupyter_cache'} too so that the chapters run "
            f"again")
    return {title: json.loads((folder / f"{name}.json").read_text())
            for title, name, _ in CHAPTERS}


def write_metrics(metrics: dict, path: str | Path) -> Path:
    """Write every chapter's recorded numbers to ``path`` as one JSON file (what the CI
    guard, ``bdl_src.guard``, checks against .ci/bounds.toml)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=1, default=str))
    return path


def unbroken(value) -> str:
    """A number that a narrow column will not break: "98.05 ± 0.03" and "93.6 %" keep
    their parts together (no-break spaces)."""
    return str(value).replace(" ± ", "\u00a0±\u00a0").replace(" %", "\u00a0%")


def headline_table(metrics: dict) -> pd.DataFrame:
    """One row per headline number of ``metrics`` ({chapter title: {metric: value}},
    as ``recorded`` returns them)."""
    rows = []
    for chapter, _, rows_of in CHAPTERS:
        if chapter in metrics:
            rows += [(chapter, what, unbroken(value), compared_with(what))
                     for what, value in rows_of(metrics[chapter])]
    table = pd.DataFrame(rows, columns=["chapter", "metric", "this build", "published"])
    return table.set_index(["chapter", "metric"])


def published_table() -> pd.DataFrame:
    rows = [(module, what, value, source)
            for module, entries in PUBLISHED.items()
            for what, value, source, _ in entries]
    table = pd.DataFrame(rows, columns=["chapter", "reference", "published", "source"])
    return table.set_index(["chapter", "reference"])


# The README's table of headline numbers sits between these two lines; ``python -m
# bdl_src.results readme`` rewrites it from _build/metrics.json.
README_START = "<!-- headline numbers: `python -m bdl_src.results readme` writes them"\
    " -->"
README_END = "<!-- end of headline numbers -->"


def readme_table(metrics: dict) -> str:
    """The headline numbers that do not depend on the machine's speed (no times), as a
    Markdown table."""
    table = headline_table(metrics).reset_index()
    table = table[~table["metric"].str.contains("time|seconds|training")]
    lines = ["| chapter | metric | this build | published |",
             "| --- | --- | --- | --- |"]
    lines += [f"| {r['chapter']} | {r['metric']} | {r['this build']} | "
              f"{r['published'] or '—'} |" for _, r in table.iterrows()]
    return "\n".join(lines)


def update_readme(readme: str | Path, metrics: dict) -> bool:
    """Rewrite the README's table from ``metrics``; True if it changed."""
    readme = Path(readme)
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme} has no {README_START!r} ... {README_END!r} block")
    head, rest = text.split(README_START, 1)
    new = f"{head}{README_START}\n{readme_table(metrics)}\n{README_END}" \
          f"{rest.split(README_END, 1)[1]}"
    readme.write_text(new)
    return new != text


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["readme"]:
        print("usage: python -m bdl_src.results readme   (after make book)")
        return 2
    path = BUILD / "metrics.json"
    if not path.is_file():
        print(f"{path} not found: build the book first (make book)")
        return 1
    readme = Path(__file__).resolve().parents[1] / "README.md"
    changed = update_readme(readme, json.loads(path.read_text()))
    print(f"{readme}: {'updated' if changed else 'already up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
