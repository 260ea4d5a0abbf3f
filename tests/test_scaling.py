"""The "Scaling up" appendix: chapter 3's own ``train`` timed inside the data-parallel
seam, through torchrun, and cached like a model."""

import json

import pyro
from matplotlib.figure import Figure

from bdl_src import scaling, vae
from bdl_src.plots.scaling import throughput

TINY = scaling.ScalingConfig(num_processes=2, num_train=400, num_epochs=2,
                             batch_size=100, num_monitor=20)


def test_command_line_is_torchrun_with_the_threads_shared_out():
    line = scaling.command_line(TINY)
    threads = scaling.threads_per_process(TINY)
    assert line.startswith(f"CUDA_VISIBLE_DEVICES= OMP_NUM_THREADS={threads} "
                           "OMP_WAIT_POLICY=PASSIVE python -m torch.distributed.run "
                           "--standalone --nproc-per-node=2 -m bdl_src.scaling '{")
    assert scaling.threads_per_process(TINY) == max(1, scaling.cpu_cores() // 2)


def test_one_process_runs_the_chapters_train_unchanged(capsys):
    """Without torchrun, ``main`` is the chapter's training, number for number."""
    config = scaling.ScalingConfig(num_processes=1, num_train=200, num_epochs=2,
                                   batch_size=100, num_monitor=20)
    scaling.main([json.dumps(config.__dict__)])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["processes"] == 1 and result["backend"] == "none (one process)"
    assert result["images_per_second"] > 0

    vconfig = scaling.vae_config(config)
    train_data, heldout = vae.load_data(vconfig)
    pyro.set_rng_seed(vconfig.seed)
    model = vae.build(vconfig, num_data=len(train_data))
    history = vae.train(model, train_data.images, heldout.images, vconfig)
    assert result["train_elbo"] == history["train_elbo"]
    assert result["heldout_elbo"] == history["heldout_elbo"]


def test_two_process_measurement_runs_then_comes_from_the_cache():
    run = scaling.measure(TINY)
    assert run["processes"] == 2 and run["backend"] == "gloo" and not run["from_cache"]
    assert run["images_per_second"] > 0 and len(run["train_elbo"]) == 2
    assert run["wall_seconds"] > run["svi_seconds"] > 0
    again = scaling.measure(TINY)
    assert again["from_cache"]
    assert again["images_per_second"] == run["images_per_second"]
    assert again["train_elbo"] == run["train_elbo"]
    table = scaling.summary([run, again])
    assert list(table.index) == [2, 2] and "images per second" in table
    assert isinstance(throughput([run, again]), Figure)
