"""Several runs of one architecture trained as one: stacked parameters, a vmapped forward.

Small models on small batches leave a GPU mostly idle: each step is a few tiny kernels.
:class:`ModelStack` holds M models (different seeds) with every parameter and buffer
stacked along a new first dimension, and runs them with ``torch.func.vmap`` over
``functional_call``, so one launch does the work of M models. Each member sees only its own
data and weights: the summed loss has a separate gradient per member, and Adam, AdamW and
SGD act elementwise, so one optimiser over the stacked tensors equals M optimisers.
BatchNorm's running statistics are per member (stacked buffers, updated in place).

With one member (M = 1) there is no vmap, and ``channels_last`` and ``torch.compile`` apply.
"""

from __future__ import annotations

import contextlib
import copy

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

__all__ = ["ModelStack"]


class ModelStack:
    """M models with identical structure, trained together.

    Parameters
    ----------
    models : list of torch.nn.Module
        Freshly built models (one per seed), already on the training device.
    channels_last : bool
        Store convolution weights so that each member's slice is channels-last (M = 1 only).
    compile : bool
        ``torch.compile`` the training forward pass (static shapes).
    """

    def __init__(self, models, *, channels_last: bool = False, compile: bool = False):
        self.size = len(models)
        self.members = models  # hold each member's weights when asked (norms, inspection)
        self.template = copy.deepcopy(models[0]).to("meta")  # structure only
        params, buffers = stack_module_state(models)
        self.params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        self.buffers = buffers
        self.channels_last = channels_last and self.size == 1
        if self.channels_last:
            for p in self.params.values():
                if p.ndim == 5:  # (1, out, in, kh, kw): a channels-last kernel per member
                    p.data = p.data[0].contiguous(memory_format=torch.channels_last)[None]
        device = next(iter(self.params.values())).device
        # CPU has no vmap rule for its fused attention kernel; the math kernel is batched.
        self._math_attention = device.type == "cpu" and self.size > 1
        # Compiled for training only, with static shapes: at most two (the full batch and the
        # last, partial one); evaluation runs eagerly.
        self._train_logits = (torch.compile(self._logits_eager, dynamic=False) if compile
                              else self._logits_eager)

    def parameters(self):
        return list(self.params.values())

    def train(self, mode: bool = True):
        self.template.train(mode)
        return self

    def eval(self):
        return self.train(False)

    # ------------------------------------------------------------------ forward passes

    def _one(self, params, buffers, x):
        return functional_call(self.template, (params, buffers), (x,))

    def _logits_eager(self, x, shared_input: bool):
        if self.size == 1:
            x = x if shared_input else x[0]
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            params = {k: v[0] for k, v in self.params.items()}
            buffers = {k: v[0] for k, v in self.buffers.items()}
            return self._one(params, buffers, x)[None]
        in_dims = (0, 0, None if shared_input else 0)
        return vmap(self._one, in_dims=in_dims, randomness="different")(
            self.params, self.buffers, x)

    def logits(self, x, *, shared_input: bool = False, _forward=None):
        """Outputs (M, B, classes) for inputs (M, B, ...) or, if ``shared_input``, (B, ...)."""
        attention = (torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH)
                     if self._math_attention else contextlib.nullcontext())
        with attention:
            return (_forward or self._logits_eager)(x, shared_input)

    def loss(self, x, y):
        """Per-member mean cross-entropy (M,) on per-member batches x (M, B, ...), y (M, B)."""
        logits = self.logits(x, _forward=self._train_logits)
        return F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(),
                               reduction="none").view(y.shape).mean(dim=1)

    # ------------------------------------------------------------------ members, state

    @torch.no_grad()
    def member(self, m: int):
        """Model ``m`` as an ordinary module holding its current weights."""
        module = self.members[m]
        for name, p in module.named_parameters():
            p.copy_(self.params[name][m])
        for name, b in module.named_buffers():
            b.copy_(self.buffers[name][m])
        return module

    def state_dict(self):
        return {"params": {k: v.detach() for k, v in self.params.items()},
                "buffers": dict(self.buffers)}

    @torch.no_grad()
    def load_state_dict(self, state):
        for k, v in state["params"].items():
            self.params[k].copy_(v)
        for k, v in state["buffers"].items():
            self.buffers[k].copy_(v)
