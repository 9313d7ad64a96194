"""optreg.cli._task: the built-in task, training runs and the comparison table."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from optreg.cli import _task  # the training task compare runs

if TYPE_CHECKING:
    pass


# --- helpers -----------------------------------------------------------------


def test_make_task_deterministic_and_independent_of_global_rng() -> None:
    torch.manual_seed(1)
    a = _task.make_task(7)
    torch.manual_seed(2)
    b = _task.make_task(7)
    c = _task.make_task(8)
    assert torch.equal(a.x_train, b.x_train)
    assert torch.equal(a.y_test, b.y_test)
    assert torch.equal(a.batches(5), b.batches(5))
    assert not torch.equal(a.x_train, c.x_train)
    sa, sb = _task.make_student(a), _task.make_student(b)
    assert all(torch.equal(p, q) for p, q in zip(sa.parameters(), sb.parameters(), strict=True))
    assert len(a.y_train.unique()) == a.classes  # every class occurs


def test_train_matches_a_plain_torch_loop(fresh_registry: None) -> None:
    task = _task.make_task(3)
    steps, lr = 15, 0.2
    result = _task.train("sgd", task, steps=steps, lr=lr, progress=False)
    # the same run written out by hand
    model = _task.make_student(task)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    losses = []
    for idx in task.batches(steps):
        opt.zero_grad()
        loss = loss_fn(model(task.x_train[idx]), task.y_train[idx])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        final = loss_fn(model(task.x_train), task.y_train).item()
        acc = (model(task.x_test).argmax(1) == task.y_test).float().mean().item()
    assert result.losses == losses
    assert result.final_loss == final
    assert result.accuracy == acc
    assert result.state_bytes == 0
    assert result.seconds_per_step > 0


def test_state_bytes_counts_each_tensor_once() -> None:
    task = _task.make_task(0)
    model = _task.make_student(task)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=False)
    model(task.x_train[:4]).sum().backward()
    opt.step()
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == (32 * 128 + 128) + (128 * 5 + 5)
    # exp_avg + exp_avg_sq in fp32, plus one fp32 step scalar per parameter tensor
    assert _task.state_bytes(opt) == 2 * 4 * n_params + 4 * 4
    shared = torch.zeros(10)
    opt.state[shared] = {"a": shared, "b": shared, "c": [shared[:5]]}  # views of one buffer
    assert _task.state_bytes(opt) == 2 * 4 * n_params + 4 * 4 + 40 + 20
