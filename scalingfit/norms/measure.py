r"""Norm-based complexity measures of a network's weights, as natural logs.

:func:`log_norms` returns five measures of a PyTorch model, each as a natural log so that
products over dozens of layers never overflow (docs/design.md §2: work in log λ everywhere).

**Which matrices.** Every weight matrix W_i of the model, oriented as an operator
(out × in), in the order of ``model.named_modules()``; each parameter counted once, even
when tied, as read by the first module holding it in that order (an embedding and a head
sharing one weight: the embedding's table if the embedding is defined first, the head's
matrix if the head is). A layer under ``weight_norm``/``spectral_norm`` (parametrizations
or the legacy hooks) counts its effective ``module.weight``. A matrix with a NaN or
infinite entry makes every measure NaN, with one warning per parameter:

- ``nn.Linear`` (and subclasses such as attention output projections): ``weight``.
- ``nn.Conv1d/2d/3d``: the kernel reshaped to out × (in·k·k); a grouped convolution is the
  block-diagonal matrix of its groups. ``nn.ConvTranspose*``: the same, with in and out
  swapped so the matrix still maps the layer's input to its output.
- ``nn.MultiheadAttention``: the packed ``in_proj_weight`` split into Q, K and V (or
  ``q/k/v_proj_weight``); the output projection is its child ``nn.Linear``.
- ``nn.Embedding``/``nn.EmbeddingBag``: ``weight``ᵀ (features × entries), the matrix that
  maps a one-hot token to its vector.
- Any other parameter with two or more dimensions (e.g. a ViT's position embedding
  ``(1, N, D)`` or class token ``(1, 1, D)``) is read as a table of entries:
  reshaped to (entries × last dim) and transposed, like an embedding.

Excluded: biases, every parameter of normalisation layers (BatchNorm, LayerNorm, GroupNorm,
InstanceNorm, RMSNorm, ...), attention ``bias_k``/``bias_v``, and all 0-D/1-D parameters.
:func:`weight_matrices` lists exactly what is used.

**How each measure aggregates over the matrices** (``convention="bft"``, the default).
With σ_i = ‖W_i‖_σ the largest singular value, r_i = ‖W_iᵀ‖_{2,1} = Σ_rows ‖W_i[j, :]‖₂
(the sum over output units of the norm of their incoming weights), and sums over all
matrices i:

- ``spectral_complexity`` — Bartlett, Foster & Telgarsky (2017), reference matrices 0:
  :math:`R = \prod_i σ_i \,\bigl(\sum_i (r_i/σ_i)^{2/3}\bigr)^{3/2}` (a product).
- ``spectral_product`` — :math:`\prod_i σ_i` (a product).
- ``frobenius`` — the Frobenius norm of all matrices concatenated,
  :math:`\sqrt{\sum_i ‖W_i‖_F^2}` (a norm of the whole weight vector).
- ``l1`` — :math:`\sum_i \sum_{jk} |W_i[j,k]|` (entrywise, all matrices concatenated).
- ``group21`` — :math:`\sum_i r_i`, the (2,1) norm that enters R (all matrices concatenated).

Products are sums of logs; sums are log-sum-exps of per-matrix logs; each matrix is first
divided by its largest entry, so neither float32 on the device nor the float64 sums ever
overflow (100 layers of spectral norm 1e5 give log R ≈ 1151, far past exp's range).

**Spectral norms** come from block power (subspace) iteration with Rayleigh–Ritz on the
model's device, batched over matrices of equal shape, in full float32 (TF32 and autocast
off), stopped when the top Ritz value changes by less than ``tol`` (relative); the
subspaces are kept in ``state`` so the next call (a few steps of training later) starts
from them and needs only a few iterations. ``exact=True`` uses a float64 SVD instead, for
verification. ``conv="operator"`` replaces each convolution's σ by the norm of the
convolution as a linear map of its input feature map (zero or other padding, stride,
dilation, groups), by the same iteration on the operator and its adjoint; it needs an
``example_input`` to know each convolution's input size (the other measures still use the
reshaped kernel).

**``convention="paper"``** reproduces what the published reference code of D'Amico, Bocchi
& Negri (arXiv 2505.13230) computes, so its numbers can be compared with ours. Kernels
reshaped to out × (in·k·k) ignoring groups; c_i = Σ_columns ‖W_i[:, k]‖₂ (column norms):

- ``architecture="cnn"``: over every Conv and Linear layer in module order, the (2,1)
  term of layer i is replaced by the sum of the *later* layers' column norms,
  :math:`R = \prod_i σ_i \bigl(\sum_{i<L} (\sum_{j>i} c_j)^{2/3} / σ_i^{2/3}\bigr)^{3/2}`
  (the last layer contributes no term).
- ``architecture="resnet"``: the same formula, but over the first convolution (the stem)
  and the last Linear layer only — what the published loop over block containers sees.
- ``architecture="vit"``: the textbook formula with r_i over the patch-embedding
  convolution, Q, K, V (split from ``in_proj_weight``), output projections, MLP layers and
  the head (every Conv, Linear and attention matrix; no position embedding or class
  token). The published code stores this one as a natural log; here every value is a log.

In paper mode ``spectral_product`` is ∏σ_i and ``group21`` is Σc_i over the same layers,
and ``frobenius`` and ``l1`` run over *all* parameters, biases and normalisation
parameters included, as in the published CNN code (which is the only one that computes
them; for ResNet and ViT paper mode applies the same definitions). The published code's
guards (σ clamped at 1e-12, +1e-12 inside the log) change nothing above 1e-12 relative
and are left out. ``architecture=None`` infers it: a model with attention → ``vit``,
with batch normalisation → ``resnet``, otherwise ``cnn``.
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections import defaultdict
from contextlib import contextmanager

import numpy as np

from ..errors import ScalingfitError, ScalingfitWarning, require

__all__ = ["NORMS", "CONVENTIONS", "log_norms", "weight_matrices"]

#: The measures :func:`log_norms` returns, in this order.
NORMS = ("spectral_complexity", "spectral_product", "frobenius", "l1", "group21")
CONVENTIONS = ("bft", "paper")
ARCHITECTURES = ("cnn", "resnet", "vit")

# Subspace size of the power iteration: the Ritz value converges like (σ_{b+1}/σ_1)^(2k),
# much faster than single-vector power iteration on the clustered top of a random matrix.
BLOCK = 8
CHECK_EVERY = 3  # iterations between convergence checks (each check is one device sync)

# Default warm-start caches, one per model, dropped with the model.
_STATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _torch():
    return require("torch", "torch")


# ---------------------------------------------------------------------------- matrices

def weight_matrices(model, *, convention: str = "bft", architecture: str | None = None):
    """Every weight matrix the norms are taken over, as ``(name, blocks)`` pairs.

    Parameters
    ----------
    model : torch.nn.Module
    convention : {"bft", "paper"}
        Which matrices: see the module docstring.
    architecture : {"cnn", "resnet", "vit"}, optional
        Only for ``convention="paper"``; inferred when None.

    Returns
    -------
    list of (str, torch.Tensor)
        ``blocks`` has shape (groups, out, in): the diagonal blocks of the operator matrix
        (one block except for grouped convolutions). Views of the parameters, not copies.
    """
    _check_convention(convention)
    entries = _bft_matrices(model) if convention == "bft" else _paper_matrices(
        model, _paper_architecture(model, architecture))
    return [(name, blocks) for name, blocks, _ in entries]


def _check_convention(convention):
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")


_NORM_LAYERS = ("_NormBase", "LayerNorm", "GroupNorm", "RMSNorm", "LocalResponseNorm",
                "CrossMapLRN2d")


def _is_norm_layer(module):
    return any(cls.__name__ in _NORM_LAYERS for cls in type(module).__mro__)


def _conv_blocks(module, weight):
    """A ConvNd kernel as its (groups, out/groups, in/groups·k…) diagonal blocks."""
    nn = _torch().nn
    g = module.groups
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        # weight: (in, out/g, *k) -> blocks (g, out/g, in/g * k)
        cin, cout_g = weight.shape[:2]
        kernel = weight.reshape(g, cin // g, cout_g, -1)
        return kernel.permute(0, 2, 1, 3).reshape(g, cout_g, -1)
    return weight.reshape(g, weight.shape[0] // g, -1)


def _bft_matrices(model):
    """(name, blocks, module-or-None) for every weight matrix; see the module docstring."""
    nn = _torch().nn
    seen, out = set(), []

    def add(name, param, blocks, module=None):
        if id(param) in seen:
            return
        seen.add(id(param))
        out.append((name, blocks, module))

    for prefix, module in model.named_modules():
        dot = f"{prefix}." if prefix else ""
        params = dict(module.named_parameters(recurse=False))
        derived = _derived_weight(module)
        if derived is not None:  # weight_norm / spectral_norm: the effective weight
            weight, sources = derived
            key = sources[0]
            for p in sources:
                params.pop(next((n for n, q in params.items() if q is p), None), None)
        else:
            weight = key = params.get("weight")
        if _is_norm_layer(module) or (weight is None and not params):
            for p in params.values():  # normalisation parameters: excluded, counted as seen
                seen.add(id(p))
            if derived is not None:
                seen.update(id(p) for p in derived[1])
            continue
        if derived is not None:
            if id(key) in seen:
                seen.update(id(p) for p in derived[1])
            else:
                seen.update(id(p) for p in derived[1][1:])  # `add` marks the first
        if weight is not None and isinstance(module, nn.Linear):
            add(f"{dot}weight", key, weight.unsqueeze(0))
            params.pop("weight", None)
        elif weight is not None and isinstance(module, nn.modules.conv._ConvNd):
            add(f"{dot}weight", key, _conv_blocks(module, weight), module)
            params.pop("weight", None)
        elif isinstance(module, nn.MultiheadAttention):
            if module.in_proj_weight is not None:
                q, k, v = module.in_proj_weight.chunk(3, dim=0)
                seen.add(id(module.in_proj_weight))
                for tag, w in zip("qkv", (q, k, v), strict=True):
                    out.append((f"{dot}in_proj_weight[{tag}]", w.unsqueeze(0), None))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                if getattr(module, name, None) is not None:
                    add(f"{dot}{name}", params[name], params[name].unsqueeze(0))
            for name in ("in_proj_weight", "q_proj_weight", "k_proj_weight",
                         "v_proj_weight", "bias_k", "bias_v"):
                if name in params:
                    seen.add(id(params.pop(name)))
        elif weight is not None and isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
            add(f"{dot}weight", key, weight.T.unsqueeze(0))
            params.pop("weight", None)
        elif derived is not None:
            params["weight"] = weight  # any other module: read below like its parameters
        for name, p in params.items():
            if id(p) in seen:
                continue
            if name.endswith("bias") or p.ndim < 2:
                seen.add(id(p))
                continue
            # A raw table (position embedding, class token, ...): entries × features.
            add(f"{dot}{name}", key if p is weight else p,
                p.reshape(-1, p.shape[-1]).T.unsqueeze(0))
    return out


def _derived_weight(module):
    """``(effective weight, its source parameters)`` of a module whose ``weight`` is computed
    (``torch.nn.utils.parametrizations.weight_norm``/``spectral_norm``, or the legacy
    ``torch.nn.utils.weight_norm``/``spectral_norm`` hooks), else None. Computed without
    side effects: spectral_norm's power iteration does not advance."""
    torch = _torch()
    parametrize = torch.nn.utils.parametrize
    if parametrize.is_parametrized(module, "weight"):
        chain = module.parametrizations["weight"]
        sources = list(chain.parameters())
        modes = [m.training for m in chain.modules()]
        try:
            chain.eval()  # spectral_norm updates its vectors on every access while training
            with torch.no_grad():
                weight = module.weight
        finally:
            for m, mode in zip(chain.modules(), modes, strict=True):
                m.training = mode
        return weight, sources or [weight]
    from torch.nn.utils.spectral_norm import SpectralNorm
    from torch.nn.utils.weight_norm import WeightNorm

    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, WeightNorm) and hook.name == "weight":
            with torch.no_grad():
                weight = hook.compute_weight(module)
            return weight, [module.weight_v, module.weight_g]
        if isinstance(hook, SpectralNorm) and hook.name == "weight":
            with torch.no_grad():
                weight = hook.compute_weight(module, do_power_iteration=False)
            return weight, [module.weight_orig]
    return None


def _paper_architecture(model, architecture):
    nn = _torch().nn
    if architecture is None:
        modules = list(model.modules())
        if any(isinstance(m, nn.MultiheadAttention) or "attention" in type(m).__name__.lower()
               for m in modules):
            return "vit"
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in modules):
            return "resnet"
        return "cnn"
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES} or None, "
                         f"got {architecture!r}")
    return architecture


def _paper_matrices(model, architecture):
    """The layers the published code measures (see the module docstring)."""
    nn = _torch().nn
    layers = []
    for prefix, module in model.named_modules():
        dot = f"{prefix}." if prefix else ""
        if isinstance(module, (nn.Linear, nn.modules.conv._ConvNd)):
            w = module.weight
            layers.append((f"{dot}weight", w.reshape(w.shape[0], -1).unsqueeze(0), module))
        elif architecture == "vit" and isinstance(module, nn.MultiheadAttention):
            if module.in_proj_weight is not None:
                for tag, w in zip("qkv", module.in_proj_weight.chunk(3, dim=0), strict=True):
                    layers.append((f"{dot}in_proj_weight[{tag}]", w.unsqueeze(0), None))
            else:
                for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                    layers.append((f"{dot}{name}", getattr(module, name).unsqueeze(0), None))
    if architecture == "resnet":
        convs = [e for e in layers if isinstance(e[2], nn.modules.conv._ConvNd)]
        linears = [e for e in layers if isinstance(e[2], nn.Linear)]
        if not convs or not linears:
            raise ScalingfitError("paper convention for 'resnet' needs a convolution and a "
                                  "Linear layer; this model lacks one. Pass "
                                  "architecture='cnn' or use convention='bft'.")
        layers = [convs[0], linears[-1]]
    return layers


# ---------------------------------------------------------------------- spectral norms

# Backends whose float32 work may silently drop to TF32 or bf16 precision.
_FP32_KNOBS = (("cuda", "matmul"), ("cudnn", "conv"), ("mkldnn", "matmul"), ("mkldnn", "conv"))


@contextmanager
def _full_precision(device):
    """Plain float32 matmuls and convolutions: no TF32, no autocast (a power iteration in
    TF32 is off by 1e-3). Uses torch's fp32_precision settings where they exist (mixing
    them with the legacy allow_tf32 flags is an error in recent torch), else the flags."""
    torch = _torch()
    knobs = [getattr(getattr(torch.backends, a, None), b, None) for a, b in _FP32_KNOBS]
    if all(hasattr(k, "fp32_precision") for k in knobs):
        saved = [k.fp32_precision for k in knobs]
        for k in knobs:
            k.fp32_precision = "ieee"

        def restore():
            for k, value in zip(knobs, saved, strict=True):
                k.fp32_precision = value
    else:  # torch before 2.9
        flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
                 torch.get_float32_matmul_precision())
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")

        def restore():
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags[:2]
            torch.set_float32_matmul_precision(flags[2])
    try:
        with torch.autocast(device_type=device.type, enabled=False), torch.no_grad():
            yield
    finally:
        restore()


def _orthonormal(Y):
    return _torch().linalg.qr(Y).Q


def _subspace_iteration(gram, X, *, tol, max_iter):
    """Largest eigenvalue of a PSD operator by block power iteration with Rayleigh–Ritz.

    ``gram`` maps a batch of blocks (batch, n, b) to (batch, n, b); ``X`` is an
    orthonormal start. Returns (top Ritz value per batch entry, float64 on the host; the
    final subspace, on the device).
    """
    torch = _torch()
    previous = None
    for iteration in range(1, max_iter + 1):
        Y = gram(X)
        if iteration % CHECK_EVERY == 0 or iteration == max_iter:
            # The b×b Rayleigh quotient goes to the host: one small copy per check (which
            # needs a sync anyway), and a tiny eigenproblem is quicker there than on a GPU.
            H = (X.mT @ Y).double().cpu()
            ritz = torch.linalg.eigvalsh((H + H.mT) / 2)[..., -1]
            if previous is not None:
                change = ((ritz - previous).abs() / ritz.clamp_min(1e-300)).max()
                if change <= tol:
                    return ritz, _orthonormal(Y)
            previous = ritz
        X = _orthonormal(Y)
    return ritz, X


def _start(state, key, shape, device, generator):
    """A warm start from ``state`` if it fits, else a seeded random orthonormal block."""
    torch = _torch()
    X = state.get(key) if state is not None else None
    if X is None or tuple(X.shape) != tuple(shape) or X.device != device:
        X = torch.randn(shape, generator=generator, device="cpu").to(device)
    return _orthonormal(X)


def _matrix_spectral_norms(blocks, keys, state, *, tol, max_iter):
    """σ of each (scaled) matrix, computed in batches of equal shape. Returns a list of 0-d
    float64 tensors on the host, in input order."""
    torch = _torch()
    generator = torch.Generator().manual_seed(0)  # never touches the global RNG
    by_shape = defaultdict(list)
    for i, U in enumerate(blocks):
        by_shape[(tuple(U.shape[1:]), U.device)].append(i)
    sigma = [None] * len(blocks)
    for ((rows, cols), device), members in by_shape.items():
        U = (blocks[members[0]] if len(members) == 1
             else torch.cat([blocks[i] for i in members]))  # (sum of groups, rows, cols)
        counts = [blocks[i].shape[0] for i in members]
        n = min(rows, cols)
        if n <= BLOCK:  # the subspace would be the whole space: an SVD is as cheap
            top = torch.linalg.svdvals(U)[..., 0].double().cpu()
        else:
            # Transposed products are slow on some CPU BLAS; GPUs take them as they are.
            Ut = U.mT.contiguous() if device.type == "cpu" else U.mT
            if rows <= cols:
                def gram(X, U=U, Ut=Ut):
                    return U @ (Ut @ X)
            else:
                def gram(X, U=U, Ut=Ut):
                    return Ut @ (U @ X)
            starts = [_start(state, keys[i], (blocks[i].shape[0], n, BLOCK), device, generator)
                      for i in members]
            ritz, X = _subspace_iteration(gram, torch.cat(starts), tol=tol, max_iter=max_iter)
            top = ritz.clamp_min(0).sqrt()
            if state is not None:
                for i, part in zip(members, X.split(counts), strict=True):
                    state[keys[i]] = part
        for i, part in zip(members, top.split(counts), strict=True):
            sigma[i] = part.max()
    return sigma


def _conv_input_shapes(model, convs, example_input):
    """Each convolution's input shape (without batch), from one forward pass."""
    torch = _torch()
    shapes, hooks = {}, []

    def record(module, args):  # returns None: the inputs pass through unchanged
        shapes.setdefault(module, tuple(args[0].shape[1:]))

    for module in convs:
        hooks.append(module.register_forward_pre_hook(record))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example_input[:1])
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return shapes


def _operator_spectral_norm(module, weight, in_shape, key, state, *, exact, tol, max_iter):
    """σ of a convolution as a linear map of its whole input (padding, stride included)."""
    torch = _torch()
    n = math.prod(in_shape)

    def conv(x):
        return module._conv_forward(x, weight, None)

    if exact:
        if n > 4096:
            raise ScalingfitError(
                f"exact operator norm of '{key}' needs a dense {n}-column matrix; "
                "use exact=False (power iteration) or a smaller example_input.")
        eye = torch.eye(n, dtype=weight.dtype, device=weight.device).reshape(n, *in_shape)
        dense = conv(eye).reshape(n, -1).T
        return torch.linalg.svdvals(dense)[0].double().cpu()

    def gram(X):  # X: (1, n, b) -> Aᵀ A X, through the convolution and its adjoint
        x = X[0].T.reshape(-1, *in_shape)
        y, adjoint = torch.func.vjp(conv, x)
        return adjoint(y)[0].reshape(X.shape[2], n).T.unsqueeze(0)

    generator = torch.Generator().manual_seed(0)
    X = _start(state, key, (1, n, BLOCK), weight.device, generator)
    ritz, X = _subspace_iteration(gram, X, tol=tol, max_iter=max_iter)
    if state is not None:
        state[key] = X
    return ritz.clamp_min(0).sqrt()[0]


# ------------------------------------------------------------------------- the norms

def _logsumexp(values):
    """log Σ exp(values), exact for huge values; -inf terms (zero norms) drop out."""
    values = np.asarray(values, dtype=np.float64)
    values = values[values > -np.inf]
    if values.size == 0:
        return -math.inf
    top = values.max()
    if top == np.inf:
        return math.inf
    return float(top + np.log(np.exp(values - top).sum()))


def log_norms(model, *, convention: str = "bft", architecture: str | None = None,
              exact: bool = False, conv: str = "kernel", example_input=None,
              state: dict | None = None, tol: float = 1e-6,
              max_iter: int = 1000) -> dict[str, float]:
    """Natural logs of five norm-based complexities of ``model``'s weights.

    See the module docstring for exactly which matrices are used and how each measure
    aggregates over them.

    Parameters
    ----------
    model : torch.nn.Module
    convention : {"bft", "paper"}
        ``"bft"`` (default): every weight matrix, textbook formulas. ``"paper"``: the
        published reference code's variants (module docstring).
    architecture : {"cnn", "resnet", "vit"}, optional
        Which paper variant; inferred when None. Ignored for ``"bft"``.
    exact : bool
        Spectral norms by float64 SVD (and the other norms in float64) instead of power
        iteration: slower, for verification.
    conv : {"kernel", "operator"}
        σ of a convolution: of its reshaped kernel (default), or of the convolution as a
        linear map of its input (needs ``example_input``).
    example_input : torch.Tensor, optional
        A batch the model accepts; only its first item is run, to find each convolution's
        input size for ``conv="operator"``.
    state : dict, optional
        Warm-start cache for the power iteration; keep it between calls. Default: a cache
        attached to ``model`` (kept while the model lives).
    tol : float
        Relative change of the top Ritz value (σ²) at which the iteration stops.
    max_iter : int
        Most iterations per batch of matrices.

    Returns
    -------
    dict of str to float
        ``{name: log(value)}`` for ``name`` in :data:`NORMS`. A model with an all-zero weight
        matrix has ``-inf`` for the product measures.

    Raises
    ------
    ScalingfitError
        If the model has no weight matrix, or ``conv="operator"`` lacks ``example_input``.
    """
    torch = _torch()
    _check_convention(convention)
    if conv not in ("kernel", "operator"):
        raise ValueError(f"conv must be 'kernel' or 'operator', got {conv!r}")
    if conv == "operator" and example_input is None:
        raise ScalingfitError("conv='operator' needs example_input (a batch the model "
                              "accepts) to know each convolution's input size.")
    if state is None:
        state = _STATES.setdefault(model, {})
    paper = convention == "paper"
    if paper:
        architecture = _paper_architecture(model, architecture)
        entries = _paper_matrices(model, architecture)
    else:
        entries = _bft_matrices(model)
    if not entries:
        raise ScalingfitError(f"{type(model).__name__} has no weight matrix to take norms of.")
    device = entries[0][1].device
    dtype = torch.float64 if exact else torch.float32

    with _full_precision(device):
        # Each matrix divided by its largest entry: no overflow in any dtype; logs add back.
        scales, scaled, stats = [], [], []
        for _, blocks, _ in entries:
            W = blocks.detach().to(dtype)
            finite = torch.isfinite(W).all()
            W = torch.where(finite, W, torch.zeros((), dtype=dtype, device=W.device))
            magnitude = W.abs()
            a = magnitude.amax()
            a = torch.where(a > 0, a, torch.ones_like(a))  # an all-zero matrix stays zero
            U = W / a
            rows = U.norm(dim=2)  # per output unit: ‖W[j, :]‖₂, summed gives ‖Wᵀ‖_{2,1}
            columns = U.norm(dim=1).sum() if paper else torch.ones_like(a)
            scales.append(a)
            scaled.append(U)
            # frobenius, l1, row (2,1), column (2,1), scale, finite
            stats.append(torch.stack([rows.square().sum().sqrt(), magnitude.sum() / a,
                                      rows.sum(), columns, a, finite.to(dtype)]))
        stats = torch.stack(stats).double().cpu()  # one transfer for all matrices
        bad = [name for (name, _, _), ok in zip(entries, stats[:, 5].tolist(), strict=True)
               if not ok]
        stats = stats[:, :5]
        keys = [name for name, _, _ in entries]
        if exact:
            sigma = [torch.linalg.svdvals(U)[..., 0].max().double().cpu() for U in scaled]
        else:
            sigma = _matrix_spectral_norms(scaled, keys, state, tol=tol, max_iter=max_iter)
        if conv == "operator":
            convs = [m for _, _, m in entries if isinstance(m, torch.nn.modules.conv._ConvNd)
                     and not isinstance(m, torch.nn.modules.conv._ConvTransposeNd)]
            shapes = _conv_input_shapes(model, convs, example_input)
            for i, (name, _, module) in enumerate(entries):
                if module in shapes and name not in bad:
                    weight = module.weight.detach().to(dtype) / scales[i]
                    sigma[i] = _operator_spectral_norm(
                        module, weight, shapes[module], f"{name}@operator", state,
                        exact=exact, tol=tol, max_iter=max_iter)
        table = torch.cat([torch.stack(sigma).reshape(-1, 1), stats], dim=1)
    if bad:  # a diverged run: NaN, not an error from inside the training loop
        _warn_non_finite(model, bad)
        return dict.fromkeys(NORMS, math.nan)

    with np.errstate(divide="ignore"):  # a zero matrix has log-norm -inf
        logs = np.log(table.numpy())
    # Per matrix: log σ, log ‖W‖_F, log ‖W‖_1, log ‖Wᵀ‖_{2,1}, log column (2,1), each the
    # scaled matrix's value plus the log of the scale (column 5).
    log_s, log_f, log_l1, log_r, log_c = (logs[:, k] + logs[:, 5] for k in range(5))

    spectral_product = log_s.sum()
    if paper and architecture in ("cnn", "resnet"):
        # Later layers' column (2,1) norms replace each layer's own (2,1) term.
        later = np.array([_logsumexp(log_c[i + 1:]) for i in range(len(log_c))])
        terms = 2 / 3 * (later - log_s)
    else:
        terms = 2 / 3 * (log_r - log_s)
    result = {
        "spectral_complexity": spectral_product + 1.5 * _logsumexp(terms),
        "spectral_product": spectral_product,
    }
    if paper:
        everything = [p.detach() for p in model.parameters()]
        log_fro = np.array([2 * _log_entrywise(p, 2) for p in everything])
        log_l1 = np.array([_log_entrywise(p, 1) for p in everything])
        # a NaN or infinite bias or normalisation parameter: NaN (_logsumexp drops NaN)
        result["frobenius"] = math.nan if np.isnan(log_fro).any() else 0.5 * _logsumexp(log_fro)
        result["l1"] = math.nan if np.isnan(log_l1).any() else _logsumexp(log_l1)
        result["group21"] = _logsumexp(log_c)
    else:
        result["frobenius"] = 0.5 * _logsumexp(2 * log_f)
        result["l1"] = _logsumexp(log_l1)
        result["group21"] = _logsumexp(log_r)
    return {name: float(result[name]) for name in NORMS}


# Parameters already warned about, per model: one warning each, not one per logged step.
_WARNED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _warn_non_finite(model, names):
    try:
        warned = _WARNED.setdefault(model, set())
    except TypeError:  # a model that cannot be weakly referenced: warn every time
        warned = set()
    new = [n for n in names if n not in warned]
    if new:
        warned.update(new)
        warnings.warn(f"{', '.join(repr(n) for n in new)} of {type(model).__name__} holds "
                      "NaN or infinite values: the norms are NaN (scalingfit ingest "
                      "--nan-policy omit skips such rows).", ScalingfitWarning, stacklevel=3)


def _log_entrywise(tensor, p):
    """log of the entrywise p-norm (p = 1 or 2) of a tensor, safe from overflow."""
    torch = _torch()
    with torch.no_grad():
        x = tensor.to(torch.float64).abs()
        a = x.max().item() if x.numel() else 0.0
        if a == 0:
            return -math.inf
        x = x / a
        total = x.sum().item() if p == 1 else x.square().sum().sqrt().item()
    return math.log(a) + math.log(total)
