import math

import pytest
import torch

from bdl_src import train


def test_check_finite_names_step_and_epoch():
    train.check_finite(1.5, "toy", 3, 2)  # a finite loss passes
    for bad in (math.nan, math.inf):
        with pytest.raises(FloatingPointError, match=f"toy: the loss became {bad} at "
                                                     "step 3 \\(epoch 2\\)"):
            train.check_finite(bad, "toy", 3, 2)


def test_minibatches_cover_every_index_once_in_a_seeded_order():
    x, y = torch.arange(10), torch.arange(10) * 2
    batches = list(train.minibatches((x, y), 3, torch.Generator().manual_seed(0)))
    assert [len(b[0]) for b in batches] == [3, 3, 3, 1] == [3, 3, 3, 1]
    assert len(batches) == train.num_batches(10, 3)
    seen = torch.cat([b[0] for b in batches])
    assert sorted(seen.tolist()) == list(range(10))
    assert all(torch.equal(bx * 2, by) for bx, by in batches)  # slices stay aligned
    again = list(train.minibatches((x, y), 3, torch.Generator().manual_seed(0)))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again))
    assert seen.tolist() != list(range(10))  # shuffled


def test_full_batch_is_one_batch():
    x = torch.arange(5)
    (batch,) = train.minibatches((x,), None, torch.Generator())
    assert batch[0] is x and train.num_batches(5, None) == 1 == train.num_batches(5, 8)


def test_cycle_batches_reshuffles_every_pass_and_drops_the_rest():
    batches = train.cycle_batches(7, 3, torch.Generator().manual_seed(1))
    first_pass = [next(batches) for _ in range(2)]  # 7 // 3 = 2 full batches
    second_pass = [next(batches) for _ in range(2)]
    assert all(len(b) == 3 for b in first_pass + second_pass)
    assert len(set(torch.cat(first_pass).tolist())) == 6
    assert [b.tolist() for b in first_pass] != [b.tolist() for b in second_pass]


def test_lr_decay_reaches_the_final_rate():
    factor = train.lr_decay(1e-2, 1e-4, 200)
    assert 1e-2 * factor**200 == pytest.approx(1e-4)
    assert train.lr_decay(1.0, 0.5, 0) == 0.5  # never divides by zero


def test_no_progress_bar_outside_a_terminal():
    assert train.show_progress() is False  # pytest captures stderr
    assert train.progress(range(3)).disable
