"""Time chapter 3's cold training and evaluation on this machine.

Trains the book's three VAEs afresh (``refresh=True``: the cache entries are rewritten
with the same weights, since training is seeded) and evaluates them as the page does,
then prints each time, the totals against the chapter's budgets (2.5 minutes of
training, 30 s of evaluation) and the load average before and after: a load above
about 0.5 before the run means another process shared the two cores, and the times are
then upper bounds.

    python bench/time_vae.py
"""

from __future__ import annotations

import os
from dataclasses import replace

from bdl_src.runs.vae import (
    BINARISED,
    BINARISED_EVAL,
    BINARISED_FLOWS,
    final_evaluation,
    trained_vae,
)
from bdl_src.vae import EvalConfig, VAEConfig


def main() -> None:
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    runs = {"grey, Gaussian guide": (VAEConfig(), EvalConfig())}
    for name, num_flows in BINARISED_FLOWS.items():
        runs[f"binarised, {name}"] = (replace(BINARISED, num_flows=num_flows),
                                      BINARISED_EVAL)
    train_total = eval_total = 0.0
    for name, (config, eval_config) in runs.items():
        vae, held, history, info = trained_vae(config, refresh=True)
        metrics, eval_info = final_evaluation(vae, held, config, eval_config,
                                              refresh=True)
        train_total += info["train_seconds"]
        eval_total += eval_info["train_seconds"]
        print(f"{name:28s} {config.num_epochs:3d} epochs  training "
              f"{info['train_seconds']:6.1f} s  evaluation "
              f"{eval_info['train_seconds']:5.1f} s  -ELBO {-metrics['elbo']:.2f}  "
              f"-IS NLL {-metrics['log_likelihood']:.2f}", flush=True)
    print(f"training {train_total:.1f} s (budget 150 s), evaluation {eval_total:.1f} s "
          f"(budget 30 s)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
