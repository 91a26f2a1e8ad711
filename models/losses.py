"""Fused output head + cross-entropy: the logits' gradient is formed in the forward pass.

Why: the plain path materialises (tokens, vocab) logits in the compute dtype, casts them to fp32,
keeps a log-softmax for backward and allocates its gradient, four full passes over the largest
tensor of the step. Under bf16 autocast on CPU those passes measured ~25 % of a d512 step
(benchmarks/trainer/README.md). Here the logits buffer is allocated once: each row chunk is
turned into its fp32 softmax gradient in place (cache-sized chunks), and the two gradient
matmuls run right away, so backward only scales them by the incoming gradient.
"""

from __future__ import annotations

import torch

from models.device import compute_dtype

CHUNK_ELEMENTS = 2**20  # fp32 rows of this many logits (4 MiB) stay in cache while reduced


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx, x: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, dtype: torch.dtype
    ) -> torch.Tensor:
        n_rows, vocab = x.shape[0], weight.shape[0]
        need_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        with torch.autocast(x.device.type, enabled=False):
            xc, wc = x.to(dtype), weight.to(dtype)
            logits = xc @ wc.t()  # (N, V), reused as the gradient buffer
            loss = torch.zeros((), dtype=torch.float32, device=x.device)
            chunk = max(1, CHUNK_ELEMENTS // vocab)
            for start in range(0, n_rows, chunk):
                part = logits[start : start + chunk].float()
                tgt = targets[start : start + chunk].unsqueeze(1)
                lse = part.logsumexp(dim=-1, keepdim=True)
                loss += (lse - part.gather(1, tgt)).sum()
                if need_grad:  # softmax - onehot, scaled for the mean over rows
                    part.sub_(lse).exp_().scatter_add_(
                        1, tgt, torch.full_like(tgt, -1, dtype=part.dtype)
                    )
                    logits[start : start + chunk] = part.div_(n_rows)
            if need_grad:
                ctx.save_for_backward((logits @ wc).to(x.dtype), (logits.t() @ xc).to(weight.dtype))
        return loss / n_rows

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        grad_x, grad_w = ctx.saved_tensors
        return grad_x * grad, grad_w * grad, None, None


def linear_cross_entropy(
    x: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy of logits x @ weight.T against targets, without keeping the logits.

    x: (N, d) final hidden states; weight: (V, d) output head; targets: (N,) ids -> scalar fp32.
    Matmuls run in the autocast dtype when autocast is on (else x's dtype), the softmax in fp32,
    as the plain `F.cross_entropy(logits.float(), targets)` path does.
    """
    return _LinearCrossEntropy.apply(x, weight, targets, compute_dtype(x))
