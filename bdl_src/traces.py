"""Look inside a Pyro program: its execution trace as a table of sites."""

from __future__ import annotations

import pandas as pd
from pyro import poutine
from pyro.poutine.subsample_messenger import _Subsample


def trace_table(model, *args, **kwargs) -> pd.DataFrame:
    """Run ``model(*args, **kwargs)`` under ``poutine.trace`` and list its sample and
    param sites (and plates): name, kind, distribution, value shape, the distribution's
    event shape, enclosing plates and the summed log-probability (two
    decimals; blank where a site has none)."""
    trace = poutine.trace(model).get_trace(*args, **kwargs)
    trace.compute_log_prob()
    rows = []
    for name, site in trace.nodes.items():
        if site["type"] not in ("sample", "param"):
            continue
        is_plate = isinstance(site["fn"], _Subsample)  # a plate records its indices
        is_sample = site["type"] == "sample" and not is_plate
        kind = "observed" if site["is_observed"] else "latent"
        fn = site["fn"]
        rows.append({
            "site": name,
            "type": "plate" if is_plate else kind if is_sample else "param",
            "distribution": type(fn).__name__ if is_sample else "",
            "shape": tuple(site["value"].shape),
            "event shape": tuple(fn.event_shape) if is_sample else "",
            "plates": ", ".join(f.name for f in site.get("cond_indep_stack", ())),
            "log_prob": f"{site['log_prob_sum'].item():.2f}" if is_sample else "",
        })
    return pd.DataFrame(rows).set_index("site")
