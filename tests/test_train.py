import pyro
import pyro.distributions as dist
import pytest
import torch

from bdl_src import train


def model(y):
    loc = pyro.sample("loc", dist.Normal(0.0, 10.0))
    with pyro.plate("data", len(y)):
        pyro.sample("obs", dist.Normal(loc, 1.0), obs=y)


def guide(y):
    q_loc = pyro.param("q_loc", torch.tensor(-5.0))
    q_scale = pyro.param("q_scale", torch.tensor(1.0),
                         constraint=dist.constraints.positive)
    pyro.sample("loc", dist.Normal(q_loc, q_scale))


Y = torch.randn(50, generator=torch.Generator().manual_seed(0)) + 3.0


def adam():
    return pyro.optim.Adam({"lr": 0.1})


def test_full_batch_loss_falls_and_posterior_found():
    log = train.run_svi(model, guide, (Y,), optim=adam(), num_steps=300, seed=0)
    assert len(log.losses) == 300 and len(log.epoch_losses) == 1
    assert sum(log.losses[-20:]) / 20 < sum(log.losses[:20]) / 20
    exact_mean = Y.sum().item() / (len(Y) + 1 / 100)  # conjugate posterior mean
    assert abs(pyro.param("q_loc").item() - exact_mean) < 0.05
    assert log.seconds > 0


def test_minibatch_epochs_count_steps():
    log = train.run_svi(model, guide, (Y,), optim=adam(), num_epochs=3, batch_size=16)
    assert len(log.epoch_losses) == 3
    assert len(log.losses) == 3 * 4  # ceil(50 / 16) batches per epoch


def test_same_seed_same_losses_and_param_store_cleared():
    first = train.run_svi(model, guide, (Y,), optim=adam(), num_steps=20, seed=3).losses
    pyro.param("leftover", torch.tensor(1.0))
    second = train.run_svi(model, guide, (Y,), optim=adam(), num_steps=20, seed=3).losses
    assert first == second
    assert "leftover" not in pyro.get_param_store()


def test_same_seed_gives_bit_identical_parameters():
    """Reproducibility: two mini-batch runs with one seed end with the same bits."""
    params = []
    for _ in range(2):
        train.run_svi(model, guide, (Y,), optim=adam(), num_epochs=3, batch_size=8, seed=5)
        params.append({k: v.detach().clone() for k, v in pyro.get_param_store().items()})
    assert params[0].keys() == params[1].keys()
    assert all(torch.equal(params[0][k], params[1][k]) for k in params[0])


@pytest.mark.filterwarnings("ignore:Encountered NaN")
def test_nan_loss_fails_with_clear_message():
    def bad_model(y):
        model(y)
        pyro.factor("broken", torch.tensor(float("nan")))  # e.g. log(0) - log(0)

    # With validation off (it is on by default and would catch this NaN earlier, as a
    # ValueError) the loop itself must notice.
    with pyro.validation_enabled(False):
        with pytest.raises(FloatingPointError, match="loss became nan at step 1"):
            train.run_svi(bad_model, guide, (Y,), optim=adam(), num_steps=5)


def test_minibatches_cover_every_index_once():
    x = torch.arange(10)
    seen = torch.cat([b[0] for b in train.minibatches((x,), 3, torch.Generator())])
    assert sorted(seen.tolist()) == list(range(10))


def test_epoch_callback_sees_each_epoch():
    calls = []
    train.run_svi(model, guide, (Y,), optim=adam(), num_epochs=2, batch_size=25,
                  epoch_callback=lambda epoch, log: calls.append((epoch,
                                                                  len(log.epoch_losses))))
    assert calls == [(0, 1), (1, 2)]


def test_no_progress_bar_outside_a_terminal():
    assert train.show_progress() is False  # pytest captures stderr
