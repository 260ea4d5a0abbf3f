"""The results page's tables: headline metrics beside the published values they compare
with."""

import pytest

from bdl_src import results


def test_published_lookup_and_comparison():
    assert results.published("bnn", results.PUBLISHED["bnn"][0][0]) == "1.32 %"
    with pytest.raises(KeyError):
        results.published("bnn", "no such value")
    line = results.compared_with("SS-VAE (M1+M2) test accuracy, 100 labels")
    assert "Kingma et al. 2014" in line and "93.2 %" in line
    # a published error beside an accuracy is shown as an accuracy, with the error
    assert "test accuracy M1+M2, 100 labels: 96.67 % (error 3.33 %)" in line
    assert "test accuracy M2, 100 labels: 88.03 % (error 11.97 %)" in line
    assert "about 98.63 % (error about 1.37 %)" in results.compared_with(
        "MC dropout: accuracy (%)")
    assert results.compared_with("training time") == ""
    table = results.published_table()
    assert len(table) == sum(len(v) for v in results.PUBLISHED.values())


REGRESSION = {"mean_field intercept mean error (exact sd)": -0.02,
              "mean_field slope mean error (exact sd)": 0.05,
              "mean_field 90% coverage (held out)": 0.9,
              "mean_field train seconds": 1.5}


def test_the_results_page_shows_what_the_chapters_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "CHAPTERS", results.CHAPTERS[:1])
    path = results.record("regression", REGRESSION, folder=tmp_path)
    assert path == tmp_path / "regression.json"
    metrics = results.recorded(tmp_path)
    assert metrics == {"Ch. 1 regression": REGRESSION}
    table = results.headline_table(metrics)
    assert list(table.columns) == ["this build", "published"]
    shown = table.loc["Ch. 1 regression"]["this build"].tolist()
    assert shown == ["0.05", "90.0\u00a0%", "2 s"]


def test_a_chapter_that_recorded_nothing_is_a_clear_error(tmp_path):
    results.record("regression", REGRESSION, folder=tmp_path)
    with pytest.raises(FileNotFoundError, match="bnn, vae, ssvae: build the book"):
        results.recorded(tmp_path)
    with pytest.raises(ValueError, match="unknown chapter"):
        results.record("chapter five", {}, folder=tmp_path)


def test_accuracies_over_draws_read_as_mean_and_sd():
    rows = dict(results._ssvae({
        "SS-VAE (M1+M2) test accuracy, 100 labels": 0.9263,
        "SS-VAE (M1+M2) test accuracy sd over 3 draws, 100 labels": 0.0021,
        "SS-VAE (M1+M2) test accuracy, 3000 labels": 0.9618}))
    assert rows == {"SS-VAE (M1+M2) test accuracy, 100 labels": "92.6 ± 0.2 %",
                    "SS-VAE (M1+M2) test accuracy, 3000 labels": "96.2 %"}


def test_readme_table_is_rewritten_between_its_markers(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "CHAPTERS", results.CHAPTERS[:1])
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{results.README_START}\nold\n{results.README_END}\nrest\n")
    assert results.update_readme(readme, {"Ch. 1 regression": REGRESSION})
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith(f"{results.README_END}\nrest\n")
    assert "old" not in text and "| Ch. 1 regression | 90 % band coverage" in text
    assert "seconds" not in text and "time" not in text  # machine-dependent: left out
    assert not results.update_readme(readme, {"Ch. 1 regression": REGRESSION})


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
