import subprocess
import sys

import pytest

from bdl_src import cli


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "train" in out and "list" in out


def test_list_names_regression(capsys):
    assert cli.main(["list"]) == 0
    assert "regression" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [[], ["train"], ["train", "nope"], ["fly"],
                                  ["train", "regression", "--seed", "x"]])
def test_bad_arguments_print_usage_not_traceback(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "Traceback" not in err


def test_module_entry_point_runs():
    done = subprocess.run([sys.executable, "-m", "bdl_src", "list"], capture_output=True,
                          text=True, check=True)
    assert "regression" in done.stdout


def test_train_regression_prints_metrics_and_uses_cache(capsys):
    assert cli.main(["train", "regression"]) == 0
    first = capsys.readouterr().out
    assert "mean_field 90% coverage (held out)" in first
    assert cli.main(["train", "regression"]) == 0  # now from the cache
    assert capsys.readouterr().out == first
