"""One process of the data-parallel test (``tests/test_distributed.py``), run by torchrun.

Trains tiny versions of every chapter's model through the chapter's own ``fit`` (the
shared loop, the cache) and writes what this process ended with to ``OUT/rank<r>``:
its parameters (safetensors), its losses and the cache entries it wrote (JSON).

    python -m torch.distributed.run --standalone --nproc-per-node 2 \\
        tests/ddp_worker.py OUT
"""

import json
import sys
from dataclasses import replace
from pathlib import Path

import torch
from pyro import poutine
from safetensors.torch import save_file

import bdl_src
from bdl_src import bnn, cache, distributed, regression, ssvae, vae
from bdl_src.data import load_images


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

    data = regression.make_toy_data()
    _, guide, log = regression.fit(data, regression.FitConfig(num_steps=60))
    trace = poutine.trace(guide).get_trace(data.x_train)
    keep("regression", {name: site["value"] for name, site in trace.nodes.items()
                        if site["type"] == "param"}, log.losses)

    config = vae.VAEConfig(z_dim=4, hidden_dim=32, num_layers=1, num_epochs=3,
                           batch_size=50, num_monitor=50, num_train=300)
    model, meta = vae.fit(config, vae.EvalConfig(num_samples=2, num_images=50))
    keep("vae", model.state_dict(), [-v for v in meta["train_elbo"]])

    digits = load_images("mnist", train=False).subset(slice(0, 300))
    bnn_config = replace(bnn.BNNConfig(), hidden_dim=32, num_epochs=3, batch_size=100,
                         num_val=0)
    _, guide, log = bnn.fit_bnn(digits, bnn_config)
    keep("bnn", guide.state_dict(), log.epoch_losses)
    net, log = bnn.fit_twin(digits, bnn_config)
    keep("bnn_twin", net.state_dict(), log.epoch_losses)

    m1 = ssvae.M1Config(code_dim=6, hidden_dim=16, num_layers=1, num_epochs=2,
                        warmup_epochs=0, batch_size=100)
    ss_config = ssvae.SSVAEConfig(num_labels=50, z_dim=3, hidden_dim=16, num_epochs=3,
                                  batch_size=100, labelled_batch_size=10, m1=m1,
                                  num_val=100, num_train=500)
    model, meta = ssvae.fit(ss_config)
    steps = meta["steps_per_epoch"]
    keep("ssvae", model.state_dict(),
         [sum(meta["losses"][i:i + steps]) / steps
          for i in range(0, len(meta["losses"]), steps)])
    keep("ssvae_m1", ssvae.fit_m1(m1, 100, 500)[0].state_dict(), meta["m1_epoch_losses"])

    rank = distributed.rank()
    save_file(states, str(out / f"rank{rank}.safetensors"))
    info = {"losses": losses, "saved": saved, "world_size": distributed.world_size(),
            "package": bdl_src.__file__,
            "backend": torch.distributed.get_backend()}
    (out / f"rank{rank}.json").write_text(json.dumps(info))
    distributed.cleanup()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
