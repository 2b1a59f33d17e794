"""The fast path's model options, on the CPU: channels-last, bf16 autocast and torch.compile
change how a step runs, not what it computes (the GPU runs are timed by the device check)."""

import copy
import shutil

import pytest

torch = pytest.importorskip("torch")

from reference_runs.models import build  # noqa: E402
from reference_runs.stack import ModelStack  # noqa: E402

torch.set_num_threads(1)
DIGITS_SHAPES = {"in_channels": 1, "image_size": 8, "num_classes": 10}
OPTIONS = {"cnn": {"channels": [8, 16], "kernel_size": 3, "pool_every": 1, "hidden": [32]},
           "resnet": {"widths": [8, 16], "blocks": [1, 1]},
           "vit": {"patch_size": 2, "dim": 16, "depth": 1, "heads": 2, "mlp_ratio": 2.0}}


def model(arch, seed=0):
    torch.manual_seed(seed)
    return build(arch, OPTIONS[arch], **DIGITS_SHAPES)


def batch(size=16):
    generator = torch.Generator().manual_seed(1)
    return (torch.randn(1, size, 1, 8, 8, generator=generator),
            torch.randint(10, (1, size), generator=generator))


def loss_and_grads(stack, x, y):
    loss = stack.loss(x, y).sum()
    grads = torch.autograd.grad(loss, stack.parameters())
    return loss.detach(), grads


def assert_same_step(reference, other, x, y, *, rtol):
    loss, grads = loss_and_grads(reference, x, y)
    loss2, grads2 = loss_and_grads(other, x, y)
    torch.testing.assert_close(loss2.float(), loss, rtol=rtol, atol=0)
    for g, g2 in zip(grads, grads2, strict=True):
        torch.testing.assert_close(g2.float(), g, rtol=rtol, atol=rtol * g.abs().max())


@pytest.mark.parametrize("arch", ["cnn", "resnet"])
def test_channels_last_computes_the_same_step(arch):
    plain = ModelStack([model(arch)])
    fast = ModelStack([model(arch)], channels_last=True)
    convs = [p for p in fast.parameters() if p.ndim == 5]
    assert convs and all(p[0].is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert_same_step(plain.train(), fast.train(), *batch(), rtol=1e-5)


@pytest.mark.parametrize("arch", ["cnn", "resnet", "vit"])
def test_bf16_autocast_stays_close_to_fp32(arch):
    stack = ModelStack([model(arch)]).train()
    x, y = batch()
    full = stack.loss(x, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert stack.logits(x).dtype == torch.bfloat16  # autocast reaches the members
        half = stack.loss(x, y)
    torch.testing.assert_close(half, full, rtol=0.02, atol=0)


@pytest.mark.filterwarnings("ignore::DeprecationWarning:torch.*")  # torch's own internals
@pytest.mark.skipif(shutil.which("cc") is None, reason="torch.compile on CPU needs a C compiler")
def test_compiled_forward_computes_the_same_step():
    members = [model("cnn")]
    eager = ModelStack(copy.deepcopy(members))
    compiled = ModelStack(members, compile=True)
    assert_same_step(eager.train(), compiled.train(), *batch(), rtol=1e-4)
