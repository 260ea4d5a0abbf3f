"""Chapter 1's runs: both guides fitted to the toy data with the book's settings."""

from __future__ import annotations

from bdl_src.cache import cached
from bdl_src.regression import (
    FitConfig,
    ToyConfig,
    ToyData,
    build,
    coverage,
    exact_posterior,
    make_toy_data,
    posterior_samples,
    train,
)


def fit(data: ToyData, config: FitConfig, refresh: bool = False):
    """``(model, guide, losses, info)``: the guide fitted by ``train`` (or restored from
    the cache), under the same cache entry as the chapter's page."""
    model, guide = build(config)
    losses, info = cached(f"regression_{config.model}_{config.guide}",
                          {"fit": config, "data": data.config}, train, model, guide,
                          data.x_train, data.y_train, config, refresh=refresh)
    return model, guide, losses, info


NUM_SAMPLES = 20000  # posterior draws behind each number, as on chapter 1's page


def cli_run(seed: int = 0, refresh: bool = False) -> dict:
    """Fit the chapter's linear model with both guides and say how close they get."""
    data = make_toy_data(ToyConfig(seed=seed))
    post = exact_posterior(data.x_train, data.y_train)
    metrics = {}
    for guide in ("mean_field", "auto"):
        model, fitted, _, info = fit(data, FitConfig(guide=guide, seed=seed), refresh)
        s = posterior_samples(model, fitted, data.x_test, num_samples=NUM_SAMPLES)
        for name in ("intercept", "slope", "sigma"):
            err = (s[name].mean().item() - post["mean"][name]) / post["sd"][name]
            metrics[f"{guide} {name} mean error (exact sd)"] = err
        metrics[f"{guide} 90% coverage (held out)"] = coverage(s["obs"], data.y_test,
                                                               0.9)
        metrics[f"{guide} train seconds"] = info["train_seconds"]
    return metrics
