"""scalingfit.norms against an independent float64 numpy computation.

The reference lists each model's weight matrices by hand (not through weight_matrices) and
takes exact SVDs in float64; log_norms, by power iteration in float32, must agree to 1e-4
relative on every measure.
"""

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy.linalg import block_diag

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from reference_runs.models import build  # noqa: E402
from scalingfit.norms import NORMS, log_norms, weight_matrices  # noqa: E402

torch.set_num_threads(1)  # tiny matrices: threads only contend with the other test worker
RTOL = 1e-4


# ------------------------------------------------------------------ the reference

def np_(t):
    return t.detach().double().numpy()


def conv_matrix(conv):
    w = np_(conv.weight)
    return w.reshape(w.shape[0], -1)


def reference(matrices):
    """Logs of the five measures (bft convention) from explicit float64 matrices."""
    s = np.array([np.linalg.svd(m, compute_uv=False)[0] for m in matrices])
    r = np.array([np.linalg.norm(m, axis=1).sum() for m in matrices])  # ‖Wᵀ‖_{2,1}
    R = np.prod(s) * np.sum((r / s) ** (2 / 3)) ** 1.5
    return {"spectral_complexity": math.log(R), "spectral_product": math.log(np.prod(s)),
            "frobenius": math.log(math.sqrt(sum((m ** 2).sum() for m in matrices))),
            "l1": math.log(sum(np.abs(m).sum() for m in matrices)),
            "group21": math.log(r.sum())}


def cnn_matrices(model):
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    return [conv_matrix(c) for c in convs] + [np_(m.weight) for m in linears]


def resnet_matrices(model):
    out = [conv_matrix(model.stem[0])]
    for stage in model.stages:
        for block in stage:
            out += [conv_matrix(block.conv1), conv_matrix(block.conv2)]
            if len(block.shortcut):
                out.append(conv_matrix(block.shortcut[0]))
    return out + [np_(model.fc.weight)]


def vit_matrices(model):
    D = model.cls_token.shape[-1]
    out = [np_(model.cls_token).reshape(-1, D).T, np_(model.pos_embed).reshape(-1, D).T,
           conv_matrix(model.patch_embed)]
    for block in model.blocks:
        a = block.attn
        out += [np_(a.q.weight), np_(a.k.weight), np_(a.v.weight), np_(a.out.weight),
                np_(block.mlp[0].weight), np_(block.mlp[3].weight)]
    return out + [np_(model.head.weight)]


class TokenMHA(nn.Module):
    """Embeddings, a LayerNorm and nn.MultiheadAttention with its packed in_proj."""

    def __init__(self):
        super().__init__()
        self.tokens = nn.Embedding(20, 16)
        self.pos = nn.Parameter(torch.randn(1, 6, 16) * 0.1)
        self.norm = nn.LayerNorm(16)
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        h = self.norm(self.tokens(x) + self.pos)
        return self.head(self.attn(h, h, h, need_weights=False)[0].mean(1))


def mha_matrices(model):
    q, k, v = np.split(np_(model.attn.in_proj_weight), 3)
    return [np_(model.pos).reshape(-1, 16).T, np_(model.tokens.weight).T, q, k, v,
            np_(model.attn.out_proj.weight), np_(model.head.weight)]


def make(arch):
    torch.manual_seed(0)
    if arch == "cnn":
        model = build("cnn", {"channels": [8, 16], "pool_every": 1, "hidden": [32]},
                      in_channels=1, image_size=8, num_classes=10)
        return model, cnn_matrices, torch.randn(16, 1, 8, 8)
    if arch == "resnet":
        model = build("resnet", {"widths": [8, 16, 32], "blocks": [1, 2, 1]}, in_channels=1,
                      image_size=8, num_classes=10)
        return model, resnet_matrices, torch.randn(16, 1, 8, 8)
    if arch == "vit":
        model = build("vit", {"patch_size": 2, "dim": 32, "depth": 2, "heads": 2,
                              "mlp_ratio": 2.0}, in_channels=1, image_size=8, num_classes=10)
        return model, vit_matrices, torch.randn(16, 1, 8, 8)
    model = TokenMHA()
    return model, mha_matrices, torch.randint(0, 20, (16, 6))


def briefly_train(model, x, steps=30):
    torch.manual_seed(1)
    y = torch.randint(0, 5, (len(x),))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def assert_close(got, want, rtol=RTOL):
    for name in NORMS:
        ratio = math.exp(got[name] - want[name])  # relative error of the norm itself
        assert abs(ratio - 1) <= rtol, (name, got[name], want[name])


# ------------------------------------------------------------------------ tests

@pytest.mark.parametrize("arch", ["cnn", "resnet", "vit", "mha"])
@pytest.mark.parametrize("trained", [False, True], ids=["random", "trained"])
def test_power_iteration_matches_float64_svd(arch, trained):
    model, matrices, x = make(arch)
    if trained:
        briefly_train(model, x)
    want = reference(matrices(model))
    assert_close(log_norms(model, state={}), want)
    assert_close(log_norms(model, exact=True), want, rtol=1e-9)


@pytest.mark.parametrize("arch", ["cnn", "resnet", "vit", "mha"])
def test_weight_matrices_are_exactly_the_hand_listed_ones(arch):
    model, matrices, _ = make(arch)
    listed = [b[0].detach().double().numpy() for _, b in weight_matrices(model)]
    want = matrices(model)
    key = lambda m: (m.shape, round(float(np.abs(m).sum()), 6))  # noqa: E731
    assert sorted(map(key, listed)) == sorted(map(key, want))


def test_a_middle_residual_conv_changes_the_complexity():
    model, _, _ = make("resnet")
    before = log_norms(model, exact=True)
    before_paper = log_norms(model, convention="paper", exact=True)
    with torch.no_grad():
        model.stages[1][1].conv2.weight.mul_(3.0)  # the middle stage's second block
    after = log_norms(model, exact=True)
    assert after["spectral_complexity"] > before["spectral_complexity"] + 0.5
    # The published ResNet measure sees only the stem and the head: blind to this change.
    after_paper = log_norms(model, convention="paper", exact=True)
    assert after_paper["spectral_complexity"] == pytest.approx(
        before_paper["spectral_complexity"], abs=1e-12)


@pytest.mark.parametrize("arch", ["vit", "mha"])
def test_an_attention_query_weight_changes_the_complexity(arch):
    model, _, _ = make(arch)
    before = log_norms(model, exact=True)["spectral_complexity"]
    with torch.no_grad():
        if arch == "vit":
            model.blocks[0].attn.q.weight.mul_(4.0)
        else:  # Q is the first third of the packed in_proj_weight
            model.attn.in_proj_weight[:16].mul_(20.0)
    after = log_norms(model, exact=True)["spectral_complexity"]
    assert after > before + 0.1


def test_no_overflow_for_100_layers_of_norm_1e5():
    torch.manual_seed(0)
    layers = []
    for _ in range(100):
        layer = nn.Linear(4, 4, bias=False)
        q, _ = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64))
        layer.weight.data = (1e5 * q).float()
        layers.append(layer)
    model = nn.Sequential(*layers)
    got = log_norms(model, state={})
    # Orthogonal 4×4 times 1e5: σ = 1e5, ‖W‖_F = 2e5, rows of norm 1e5, |entries| sum known.
    L = 100
    want_sc = L * math.log(1e5) + 1.5 * math.log(L * 4 ** (2 / 3))
    assert got["spectral_product"] == pytest.approx(L * math.log(1e5), rel=1e-6)
    assert got["spectral_complexity"] == pytest.approx(want_sc, rel=1e-6)
    assert got["frobenius"] == pytest.approx(math.log(2e5 * math.sqrt(L)), rel=1e-6)
    assert got["group21"] == pytest.approx(math.log(L * 4e5), rel=1e-6)
    assert all(math.isfinite(v) for v in got.values())
    assert got["spectral_complexity"] > 709  # exp() of it overflows float64


def test_huge_float32_weights_do_not_overflow():
    model = nn.Sequential(nn.Linear(3, 3, bias=False))
    model[0].weight.data = torch.diag(torch.tensor([3e37, 2e37, 1e37]))
    got = log_norms(model)
    assert got["spectral_product"] == pytest.approx(math.log(3e37), rel=1e-6)
    assert got["frobenius"] == pytest.approx(math.log(math.sqrt(14) * 1e37), rel=1e-6)


def test_grouped_convolution_is_block_diagonal():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(4, 6, 3, groups=2))
    w = np_(model[0].weight)
    dense = block_diag(w[:3].reshape(3, -1), w[3:].reshape(3, -1))  # (6, 4·9)
    assert_close(log_norms(model), reference([dense]))


def test_tied_weights_are_counted_once():
    emb = nn.Embedding(10, 4)
    head = nn.Linear(4, 10, bias=False)
    head.weight = emb.weight
    model = nn.ModuleDict({"emb": emb, "head": head})
    assert len(weight_matrices(model)) == 1


def test_autocast_and_tf32_do_not_change_the_values():
    model, _, _ = make("cnn")
    plain = log_norms(model, state={})
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = log_norms(model, state={})
    for name in NORMS:
        assert inside[name] == pytest.approx(plain[name], abs=1e-6)


def test_warm_start_state_is_kept_and_reused():
    model, matrices, x = make("vit")
    state = {}
    log_norms(model, state=state)
    names = {n for n, _ in weight_matrices(model)}
    # Matrices smaller than the block go to an SVD and need no state.
    assert set(state) <= names and len(state) >= 10
    briefly_train(model, x, steps=3)
    assert_close(log_norms(model, state=state), reference(matrices(model)))


def fft_conv_norm(weight, n):
    """σ of a stride-1 circular convolution on n×n inputs (Sedghi, Gupta & Long 2019):
    the largest singular value over frequencies of the transformed kernel."""
    k = np.fft.fft2(weight, s=(n, n), axes=(2, 3))  # (out, in, n, n)
    per_frequency = k.transpose(2, 3, 0, 1).reshape(n * n, *weight.shape[:2])
    return max(np.linalg.svd(m, compute_uv=False)[0] for m in per_frequency)


def test_conv_operator_norm_circular_padding_matches_fft():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular", bias=False)
    head = nn.Linear(3 * 6 * 6, 4, bias=False)
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), head)
    x = torch.randn(1, 2, 6, 6)
    want = math.log(fft_conv_norm(np_(conv.weight), 6)) + math.log(
        np.linalg.svd(np_(head.weight), compute_uv=False)[0])
    for exact in (False, True):
        got = log_norms(model, conv="operator", example_input=x, exact=exact, state={})
        assert math.exp(got["spectral_product"] - want) == pytest.approx(1, abs=RTOL)
    kernel = log_norms(model, exact=True)["spectral_product"]
    assert abs(kernel - want) > 1e-3  # the reshaped kernel's norm is a different number


def test_conv_operator_norm_with_stride_matches_dense_matrix():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1, bias=False)
    model = nn.Sequential(conv)
    x = torch.randn(1, 2, 7, 7)
    dense = torch.autograd.functional.jacobian(
        lambda v: nn.functional.conv2d(v, conv.weight.detach(), stride=2, padding=1),
        torch.zeros(1, 2, 7, 7))
    dense = dense.reshape(3 * 4 * 4, 2 * 7 * 7).double().numpy()
    want = math.log(np.linalg.svd(dense, compute_uv=False)[0])
    got = log_norms(model, conv="operator", example_input=x, state={})
    assert math.exp(got["spectral_product"] - want) == pytest.approx(1, abs=RTOL)


# ------------------------------------------------------------------ paper convention

def paper_reference(layers, later_columns, all_params):
    s = np.array([np.linalg.svd(m, compute_uv=False)[0] for m in layers])
    c = np.array([np.linalg.norm(m, axis=0).sum() for m in layers])  # column norms
    r = np.array([np.linalg.norm(m, axis=1).sum() for m in layers])
    if later_columns:
        terms = [c[i + 1:].sum() ** (2 / 3) / s[i] ** (2 / 3) for i in range(len(s) - 1)]
    else:
        terms = list((r / s) ** (2 / 3))
    R = np.prod(s) * np.sum(terms) ** 1.5
    flat = np.concatenate([np_(p).ravel() for p in all_params])
    return {"spectral_complexity": math.log(R), "spectral_product": math.log(np.prod(s)),
            "frobenius": math.log(np.sqrt((flat ** 2).sum())),
            "l1": math.log(np.abs(flat).sum()), "group21": math.log(c.sum())}


@pytest.mark.parametrize("arch", ["cnn", "resnet", "vit"])
def test_paper_convention_reproduces_the_published_formulas(arch):
    model, matrices, x = make(arch)
    briefly_train(model, x, steps=5)
    if arch == "cnn":
        layers, later = cnn_matrices(model), True
    elif arch == "resnet":
        layers, later = [conv_matrix(model.stem[0]), np_(model.fc.weight)], True
    else:  # every Conv/Linear, no position embedding or class token
        layers, later = vit_matrices(model)[2:], False
    want = paper_reference(layers, later, list(model.parameters()))
    assert_close(log_norms(model, convention="paper", architecture=arch, state={}), want)
    # The architecture is inferred from the model when not given.
    assert_close(log_norms(model, convention="paper", exact=True), want, rtol=1e-9)


def test_paper_and_bft_differ_on_a_cnn():
    model, _, _ = make("cnn")
    paper = log_norms(model, convention="paper", exact=True)
    bft = log_norms(model, exact=True)
    assert paper["spectral_product"] == pytest.approx(bft["spectral_product"], abs=1e-9)
    assert abs(paper["spectral_complexity"] - bft["spectral_complexity"]) > 0.1
    assert paper["frobenius"] > bft["frobenius"]  # biases count in the paper's


def test_bad_arguments_are_clear():
    model, _, _ = make("cnn")
    with pytest.raises(ValueError, match="convention"):
        log_norms(model, convention="nope")
    with pytest.raises(Exception, match="example_input"):
        log_norms(model, conv="operator")
    with pytest.raises(Exception, match="no weight matrix"):
        log_norms(nn.Sequential(nn.ReLU()))


def test_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import scalingfit.norms, scalingfit.norms\n"
            "from scalingfit.errors import MissingDependencyError\n"
            "try:\n    scalingfit.norms.log_norms(object())\n"
            "except MissingDependencyError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert "scalingfit[torch]" in out.stdout


def test_precision_settings_are_restored_and_not_mixed():
    knob = torch.backends.cuda.matmul
    if not hasattr(knob, "fp32_precision"):
        pytest.skip("torch before 2.9 has only the legacy flags")
    model, _, _ = make("cnn")
    before = knob.fp32_precision
    knob.fp32_precision = "tf32"  # the new API: reading the legacy flag now would raise
    try:
        log_norms(model, state={})
        assert knob.fp32_precision == "tf32"
    finally:
        knob.fp32_precision = before
