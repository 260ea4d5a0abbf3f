import os
import subprocess
import sys
from pathlib import Path

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
    done = subprocess.run([sys.executable, "-m", "bdl_src", "list"],
                          capture_output=True, text=True, check=True)
    assert "regression" in done.stdout


def test_train_regression_prints_metrics_and_uses_cache(capsys):
    assert cli.main(["train", "regression"]) == 0
    first = capsys.readouterr().out
    assert "mean_field 90% coverage (held out)" in first
    assert cli.main(["train", "regression"]) == 0  # now from the cache
    assert capsys.readouterr().out == first


def test_nproc_per_node_hands_over_to_torchrun(monkeypatch):
    """--nproc-per-node launches torchrun's own entry point, which runs the same
    command (without the launch options) in every process."""
    from torch.distributed import run as torchrun

    calls = []
    monkeypatch.setattr(torchrun, "main", calls.append)
    assert cli.main(["train", "vae", "--nproc-per-node", "2", "--seed", "3"]) == 0
    assert calls == [["--nproc-per-node=2", "--nnodes=1", "--standalone", "-m",
                      "bdl_src", "train", "vae", "--seed", "3"]]
    calls.clear()
    assert cli.main(["train", "bnn", "--nnodes", "2", "--nproc-per-node", "gpu",
                     "--rdzv-endpoint", "node0:29400", "--refresh"]) == 0
    assert calls == [["--nproc-per-node=gpu", "--nnodes=2", "--rdzv-backend=c10d",
                      "--rdzv-endpoint=node0:29400", "--rdzv-id=bdl-bnn", "-m",
                      "bdl_src", "train", "bnn", "--seed", "0", "--refresh"]]


@pytest.mark.parametrize("argv, env", [
    (["train", "vae", "--nnodes", "2"], {}),  # several machines need an endpoint
    (["train", "vae", "--nproc-per-node", "2"], {"LOCAL_RANK": "0"}),  # launched twice
])
def test_bad_launch_options_are_refused(argv, env, monkeypatch, capsys):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2 and "usage:" in capsys.readouterr().err


def test_corrupt_data_file_is_one_clear_line_and_exit_1(tmp_path):
    """One flipped byte in a data file: one line naming the file, no traceback."""
    repo_data = Path(__file__).resolve().parent.parent / "data"
    root = tmp_path / "data"
    for path in repo_data.rglob("*"):
        if path.is_file() and ".unpacked" not in path.parts:
            target = root / path.relative_to(repo_data)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
    bad = root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    raw = bytearray(bad.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    bad.unlink()
    bad.write_bytes(bytes(raw))
    env = {**os.environ, "BDL_DATA_DIR": str(root),
           "BDL_CACHE_DIR": str(tmp_path / "c")}
    done = subprocess.run([sys.executable, "-m", "bdl_src", "train", "bnn"], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("error: ") and "train-images-idx3-ubyte" in lines[0]
    verbose = subprocess.run([sys.executable, "-m", "bdl_src", "train", "bnn",
                              "--verbose"], env=env, capture_output=True, text=True)
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr
