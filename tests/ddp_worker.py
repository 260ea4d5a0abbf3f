"""One process of the data-parallel test (``tests/test_distributed.py``), run by
torchrun.

Trains tiny versions of every chapter's model with the chapter's own training function,
through the cache, inside ``distributed.data_parallel()`` (the one seam), and writes
what
this process ended with to ``OUT/rank<r>``: its parameters (safetensors), its losses and
the cache entries it wrote (JSON).

    python -m torch.distributed.run --standalone --nproc-per-node 2 \\
        tests/ddp_worker.py OUT
"""

import json
import sys
from dataclasses import replace
from pathlib import Path

import pyro
import torch
from safetensors.torch import save_file

import bdl_src
from bdl_src import bnn, cache, distributed, m1, regression, ssvae, vae
from bdl_src.data import load_images
from bdl_src.runs import bnn as bnn_runs
from bdl_src.runs import regression as regression_runs
from bdl_src.runs import ssvae as ssvae_runs
from bdl_src.runs import vae as vae_runs


def main(out: Path) -> None:
    states, losses, saved = {}, {}, []
    save_entry = cache.save_entry

    def recording_save_entry(path, *args):  # which entries this process writes
        saved.append(path.name)
        save_entry(path, *args)

    cache.save_entry = recording_save_entry

    def keep(name, state, curve):
        states.update({f"{name}/{k}": v.detach().cpu().contiguous()
                       for k, v in state.items()})
        losses[name] = curve

    with distributed.data_parallel(shard=False):  # chapter 1: full batch, not shared
        data = regression.make_toy_data()
        _, _, curve, _ = regression_runs.fit(data, regression.FitConfig(num_steps=60))
        store = pyro.get_param_store()
        keep("regression", {name: store[name] for name in store.keys()},
             [sum(curve[:10]) / 10, sum(curve[-10:]) / 10])

    with distributed.data_parallel():
        config = vae.VAEConfig(z_dim=4, hidden_dim=32, num_layers=1, num_epochs=3,
                               batch_size=50, num_monitor=50, num_train=300)
        model, _, history, _ = vae_runs.trained_vae(config)
        keep("vae", model.state_dict(), [-v for v in history["train_elbo"]])

        digits = load_images("mnist", train=False).subset(slice(0, 300))
        bnn_config = replace(bnn.BNNConfig(), hidden_dim=32, num_epochs=3,
                             batch_size=100, num_val=0)
        _, guide, history, _ = bnn_runs.fit_bnn(digits, bnn_config)
        keep("bnn", guide.state_dict(), history["epoch_losses"])
        net, history, _ = bnn_runs.fit_twin(digits, bnn_config)
        keep("bnn_twin", net.state_dict(), history["epoch_losses"])

        m1_config = m1.M1Config(code_dim=6, hidden_dim=16, num_layers=1, num_epochs=2,
                                warmup_epochs=0, batch_size=100)
        ss_config = ssvae.SSVAEConfig(num_labels=50, z_dim=3, hidden_dim=16,
                                      num_epochs=3, batch_size=100,
                                      labelled_batch_size=10, m1=m1_config, num_val=100,
                                      num_train=500)
        code, m1_history, _ = ssvae_runs.fit_m1(ss_config)
        keep("ssvae_m1", code.state_dict(), m1_history["epoch_losses"])
        model, _, history, _ = ssvae_runs.fit_ssvae(ss_config, code)
        steps = history["steps_per_epoch"]
        keep("ssvae", {k: v for k, v in model.state_dict().items()
                       if not k.startswith("m1.")},
             [sum(history["losses"][i:i + steps]) / steps
              for i in range(0, len(history["losses"]), steps)])

    rank = distributed.rank()
    save_file(states, str(out / f"rank{rank}.safetensors"))
    info = {"losses": losses, "saved": saved, "world_size": distributed.world_size(),
            "package": bdl_src.__file__,
            "backend": torch.distributed.get_backend()}
    (out / f"rank{rank}.json").write_text(json.dumps(info))
    distributed.cleanup()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
