"""The results page's tables: headline metrics beside the published values they compare
with."""

import pytest

from bdl_src import results
from bdl_src.runs import regression


def test_published_lookup_and_comparison():
    assert results.published("bnn", results.PUBLISHED["bnn"][0][0]) == "1.32 %"
    with pytest.raises(KeyError):
        results.published("bnn", "no such value")
    line = results.compared_with("SS-VAE (M1+M2) test accuracy, 100 labels")
    assert "3.33 %" in line and "11.97 %" in line and "Kingma et al. 2014" in line
    assert results.compared_with("training time") == ""
    table = results.published_table()
    assert len(table) == sum(len(v) for v in results.PUBLISHED.values())


def test_headline_table_reads_each_chapter(monkeypatch):
    fake = {"mean_field intercept mean error (exact sd)": -0.02,
            "mean_field slope mean error (exact sd)": 0.05,
            "mean_field 90% coverage (held out)": 0.9,
            "mean_field train seconds": 1.5}
    monkeypatch.setattr(regression, "cli_run", lambda seed=0: fake)
    monkeypatch.setattr(results, "CHAPTERS",
                        [("Ch. 1 regression", "bdl_src.runs.regression",
                          results._regression)])
    table = results.headline_table()
    assert list(table.columns) == ["this build", "published"]
    values = table.loc["Ch. 1 regression"]["this build"].tolist()
    assert values == ["0.050", "90.00 %", "1.5 s"]


def test_published_number_reads_the_value():
    assert results.published_number("ssvae", "test error M1+M2, 100 labels") == 3.33


def test_write_metrics_writes_json_the_guard_reads(tmp_path):
    import json

    from bdl_src import guard
    path = results.write_metrics({"Ch. 4 SS-VAE": {"accuracy": 0.91, "note": "x"}},
                                 tmp_path / "out" / "metrics.json")
    metrics = json.loads(path.read_text())
    assert metrics["Ch. 4 SS-VAE"]["accuracy"] == 0.91
    assert guard.check(metrics, {"Ch. 4 SS-VAE": {"accuracy": {"min": 0.95}}}) == [
        "GUARD: Ch. 4 SS-VAE / accuracy = 0.91, below its bound 0.95"]
