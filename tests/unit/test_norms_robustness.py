"""scalingfit.norms on parametrized layers, non-finite weights and tied weights."""

import math
import warnings

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from torch.nn.utils.spectral_norm import SpectralNorm  # noqa: E402

from scalingfit.errors import ScalingfitWarning  # noqa: E402
from scalingfit.norms import NORMS, log_norms, weight_matrices  # noqa: E402


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 10))


def legacy_weight_norm(m):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return nn.utils.weight_norm(m)


@pytest.mark.parametrize("wrap", [nn.utils.parametrizations.weight_norm,
                                  nn.utils.parametrizations.spectral_norm,
                                  legacy_weight_norm, nn.utils.spectral_norm],
                         ids=["weight_norm", "spectral_norm", "legacy_weight_norm",
                              "legacy_spectral_norm"])
def test_parametrized_layers_use_the_effective_weight(wrap):
    model = mlp()
    wrap(model[0])
    model.train()
    if hasattr(model[0], "parametrizations"):
        model[0].parametrizations.weight.eval()
        effective = model[0].weight.detach().clone()
        model[0].parametrizations.weight.train()
        buffers = {k: v.clone() for k, v in model[0].named_buffers()}
    else:
        hook = next(iter(model[0]._forward_pre_hooks.values()))
        kwargs = ({"do_power_iteration": False} if isinstance(hook, SpectralNorm) else {})
        effective = hook.compute_weight(model[0], **kwargs).detach().clone()
        buffers = {k: v.clone() for k, v in model[0].named_buffers()}

    assert [name for name, _ in weight_matrices(model)] == ["0.weight", "2.weight"]
    got = log_norms(model, exact=True)

    plain = mlp()
    with torch.no_grad():
        plain[0].weight.copy_(effective)
    want = log_norms(plain, exact=True)
    for name in NORMS:
        assert got[name] == pytest.approx(want[name], rel=1e-9, abs=1e-9)
    # no side effect: spectral_norm's power-iteration vectors did not move
    for k, v in model[0].named_buffers():
        assert torch.equal(v, buffers[k])


@pytest.mark.parametrize("bad", [math.nan, math.inf])
@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("convention", ["bft", "paper"])
def test_non_finite_weight_gives_nan_and_warns_once(bad, exact, convention):
    model = mlp()
    with torch.no_grad():
        model[2].weight[0, 0] = bad
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = log_norms(model, exact=exact, convention=convention)
        second = log_norms(model, exact=exact, convention=convention)
    for values in (first, second):
        assert set(values) == set(NORMS)
        assert all(math.isnan(v) for v in values.values())
    messages = [str(w.message) for w in caught if issubclass(w.category, ScalingfitWarning)]
    assert len(messages) == 1 and "'2.weight'" in messages[0]
    assert not [w for w in caught if not issubclass(w.category, ScalingfitWarning)]
    with torch.no_grad():  # repaired: finite again
        model[2].weight[0, 0] = 0.0
    assert all(math.isfinite(v) for v in log_norms(model, exact=exact).values())


class TiedLM(nn.Module):
    def __init__(self, head_first):
        super().__init__()
        torch.manual_seed(0)
        emb, head = nn.Embedding(100, 16), nn.Linear(16, 100, bias=False)
        head.weight = emb.weight
        if head_first:
            self.head, self.emb = head, emb
        else:
            self.emb, self.head = emb, head


@pytest.mark.parametrize("head_first", [False, True])
def test_tied_parameter_counts_once_as_its_first_module_reads_it(head_first):
    model = TiedLM(head_first)
    matrices = weight_matrices(model)
    assert len(matrices) == 1
    name, blocks = matrices[0]
    first = "head" if head_first else "emb"
    assert name == f"{first}.weight"
    # the first module in named_modules() order fixes the orientation
    assert tuple(blocks.shape[1:]) == ((100, 16) if head_first else (16, 100))
    alone = nn.Linear(16, 100, bias=False) if head_first else nn.Embedding(100, 16)
    with torch.no_grad():
        alone.weight.copy_(model.emb.weight)
    got, want = log_norms(model, exact=True), log_norms(alone, exact=True)
    for key in NORMS:
        assert got[key] == pytest.approx(want[key], rel=1e-12)
    assert log_norms(TiedLM(head_first), exact=True) == got  # deterministic
