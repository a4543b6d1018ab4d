"""Training a compiled model with DistributedDataParallel (gloo, CPU, two processes): the
ranks stay in sync, and two ranks on half a batch each take the step one process takes on the
whole batch (docs/compile.md, "Training on several processes")."""
from __future__ import annotations

import pytest

import cnndsl
from cnndsl import bench

STEPS, BATCH = 3, 4  # per rank


def test_two_ddp_processes_equal_one_process_on_the_concatenated_batch():
    import torch

    ranks = bench.train_ddp("zoo:lenet5", world=2, batch=BATCH, steps=STEPS)
    assert [r[0] for r in ranks] == [0, 1]
    (_, _, ours), (_, _, theirs) = ranks
    assert len(ours) == len(theirs) == 10  # LeNet-5's weights and biases
    for a, b in zip(ours, theirs):  # gradients averaged by all-reduce: identical updates
        assert torch.equal(a, b)
    model = cnndsl.compile("zoo:lenet5", seed=0, logits=True).train()
    initial = [p.detach().clone() for p in model.parameters()]
    step = bench._Step(model, model, bench.LEARNING_RATE)
    shape, classes = model.cnndsl_info["input_shape"], 10
    for i in range(STEPS):
        step(*bench.ddp_batch(i, 2 * BATCH, shape, classes))
    for p, old, q in zip(model.parameters(), initial, ours):
        assert not torch.equal(p, old)  # the steps moved every tensor
        assert (p.detach() - q).abs().max() <= 1e-5 * p.abs().max()


@pytest.mark.long  # two more rounds of process start-up: make test-long
def test_ddp_bench_rows():
    rows = bench.run_ddp_bench("zoo:lenet5", worlds=(1, 2), batch=4, runs=2, warmup=1)
    assert [(r.runtime, r.batch, r.status, r.mode) for r in rows] == [
        ("ddp-1", 4, "ok", "train"), ("ddp-2", 8, "ok", "train")]
    assert rows[0].speedup == 1 and rows[1].max_rel_diff == 0
    assert rows[1].throughput == pytest.approx(8000 / rows[1].median_ms)
