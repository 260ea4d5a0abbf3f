"""The "Scaling up" appendix: a timed run through torchrun, cached like a model."""

from matplotlib.figure import Figure

from bdl_src import scaling
from bdl_src.plots.scaling import throughput

TINY = scaling.ScalingConfig(num_processes=2, num_train=400, num_epochs=2,
                             batch_size=100, num_monitor=20)


def test_command_line_is_torchrun_with_the_threads_shared_out():
    line = scaling.command_line(TINY)
    threads = scaling.threads_per_process(TINY)
    assert line.startswith(f"CUDA_VISIBLE_DEVICES= OMP_NUM_THREADS={threads} "
                           "OMP_WAIT_POLICY=PASSIVE python -m torch.distributed.run --standalone --nproc-per-node=2 "
                           "-m bdl_src.scaling '{")
    assert scaling.threads_per_process(TINY) == max(1, scaling.cpu_cores() // 2)


def test_two_process_measurement_runs_then_comes_from_the_cache():
    run = scaling.measure(TINY)
    assert run["processes"] == 2 and run["backend"] == "gloo" and not run["from_cache"]
    assert run["images_per_second"] > 0 and len(run["train_elbo"]) == 2
    again = scaling.measure(TINY)
    assert again["from_cache"] and again["images_per_second"] == run["images_per_second"]
    table = scaling.summary([run, again])
    assert list(table.index) == [2, 2] and "images per second" in table
    assert isinstance(throughput([run, again]), Figure)
