"""The CPU expert path: all experts' GLUs over sorted row slices, as one autograd node.

Why a hand-written backward: as a plain loop of `x_e @ w_in[e]` under autograd, each step paid
for a concatenation of the expert outputs, one per expert for the gate/up gradients, one for the
input gradient, a stack of the weight gradients and one dtype cast per expert weight and
direction; with bf16 autocast those copies measured as long as the expert matmuls themselves.
Here every product writes into its slice of one preallocated buffer (`torch.mm(..., out=)`),
weights are cast once per step, and the GLU's pre-activations are the only activations kept.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from models.device import compute_dtype


def _slices(counts: list[int]) -> list[tuple[int, slice]]:
    """(expert, row slice) of every non-empty expert, in sorted-row order."""
    out, start = [], 0
    for e, n in enumerate(counts):
        if n:
            out.append((e, slice(start, start + n)))
        start += n
    return out


class _ExpertLoopGLU(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        x: torch.Tensor,
        w_in: torch.Tensor,
        w_out: torch.Tensor,
        counts: list[int],
        dtype: torch.dtype,
    ) -> torch.Tensor:
        hidden = w_out.shape[1]
        with torch.autocast(x.device.type, enabled=False):
            xc, w1, w2 = x.to(dtype), w_in.to(dtype), w_out.to(dtype)
            h = xc.new_empty(x.shape[0], 2 * hidden)  # (N, 2H): gate | up
            y = xc.new_empty(x.shape[0], w_out.shape[2])  # (N, d_out)
            for e, rows in _slices(counts):
                torch.mm(xc[rows], w1[e], out=h[rows])
                act = F.silu(h[rows, :hidden]) * h[rows, hidden:]
                torch.mm(act, w2[e], out=y[rows])
        ctx.save_for_backward(xc, w1, w2, h)
        ctx.counts, ctx.x_dtype, ctx.w_dtype = counts, x.dtype, w_in.dtype
        return y

    @staticmethod
    def backward(ctx, dy: torch.Tensor):  # type: ignore[override]
        xc, w1, w2, h = ctx.saved_tensors
        hidden = w2.shape[1]
        dy = dy.to(xc.dtype)
        dx, dh = torch.empty_like(xc), torch.empty_like(h)
        dw1, dw2 = torch.zeros_like(w1), torch.zeros_like(w2)
        for e, rows in _slices(ctx.counts):
            gate, up = h[rows, :hidden], h[rows, hidden:]
            silu = F.silu(gate)
            torch.mm((silu * up).t(), dy[rows], out=dw2[e])
            d_act = dy[rows] @ w2[e].t()
            torch.mul(d_act, silu, out=dh[rows, hidden:])
            dh[rows, :hidden] = torch.ops.aten.silu_backward(d_act * up, gate)
            torch.mm(xc[rows].t(), dh[rows], out=dw1[e])
            torch.mm(dh[rows], w1[e].t(), out=dx[rows])
        return dx.to(ctx.x_dtype), dw1.to(ctx.w_dtype), dw2.to(ctx.w_dtype), None, None


def expert_loop_glu(
    x: torch.Tensor, w_in: torch.Tensor, w_out: torch.Tensor, counts: list[int]
) -> torch.Tensor:
    """silu(x w1) * (x v1) w2 for each expert's consecutive rows of x.

    x: (N, d) rows sorted by expert; w_in: (E, d, 2H) with w1 | v1 fused; w_out: (E, H, d_out);
    counts: E row counts summing to N -> (N, d_out) in the autocast dtype (else x's dtype).
    """
    return _ExpertLoopGLU.apply(x, w_in, w_out, counts, compute_dtype(x))
