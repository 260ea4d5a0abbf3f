"""The CI guard on hand-made metrics and bounds."""

import json

from bdl_src import guard

BOUNDS = {"Ch. 4 SS-VAE": {"accuracy, 100 labels": {"min": 0.9}},
          "Ch. 3 VAE": {"test negative ELBO": {"max": 241.0}}}


def test_number_reads_floats_and_mean_sd_strings():
    assert guard.number(0.5) == 0.5
    assert guard.number("98.05 ± 0.03") == 98.05


def test_values_inside_their_bounds_pass():
    metrics = {"Ch. 4 SS-VAE": {"accuracy, 100 labels": 0.91},
               "Ch. 3 VAE": {"test negative ELBO": 240.0}}
    assert guard.check(metrics, BOUNDS) == []


def test_a_worse_model_fails_with_a_message_naming_the_metric():
    metrics = {"Ch. 4 SS-VAE": {"accuracy, 100 labels": 0.85},
               "Ch. 3 VAE": {"test negative ELBO": 250.0}}
    problems = guard.check(metrics, BOUNDS)
    assert problems == [
        "GUARD: Ch. 4 SS-VAE / accuracy, 100 labels = 0.85, below its bound 0.9",
        "GUARD: Ch. 3 VAE / test negative ELBO = 250, above its bound 241"]


def test_a_missing_metric_fails():
    problems = guard.check({"Ch. 3 VAE": {"test negative ELBO": 240.0}}, BOUNDS)
    assert problems == ["GUARD: Ch. 4 SS-VAE / accuracy, 100 labels is missing from "
                        "the build's metrics"]


def test_main_reads_the_files_and_sets_the_exit_status(tmp_path, capsys):
    (tmp_path / "m.json").write_text(json.dumps(
        {"Ch. 4 SS-VAE": {"accuracy, 100 labels": 0.85},
         "Ch. 3 VAE": {"test negative ELBO": 240.0}}))
    (tmp_path / "b.toml").write_text(
        '["Ch. 4 SS-VAE"]\n"accuracy, 100 labels" = {min = 0.9}\n'
        '["Ch. 3 VAE"]\n"test negative ELBO" = {max = 241.0}\n')
    assert guard.main([str(tmp_path / "m.json"), str(tmp_path / "b.toml")]) == 1
    out = capsys.readouterr().out
    assert "GUARD: Ch. 4 SS-VAE / accuracy, 100 labels = 0.85" in out
    assert "guard: 1 of 2 headline metrics within bounds" in out
    assert guard.main([str(tmp_path / "none.json"), str(tmp_path / "b.toml")]) == 1
