"""The three post-training objectives.

The recipes turn each into a micro-batch's mean over what it trains (tokens, or pairs), and the
shared loop (crucible.train.loop.train_step) weighs micro-batches by those counts, so the step's
loss is the mean over everything trained in it: one micro-batch of 8 gives the gradient of four
of 2, which averaging per micro-batch does not when they hold different numbers of tokens.

- SFT: cross-entropy on trained tokens (`Policy.sft_loss_sum`).
- DPO (Rafailov et al. 2023): with sequence log-ratios against a fixed reference,
  sigmoid: -log σ(β·((π_c − π_r) − (ref_c − ref_r)));
  IPO (Azar et al. 2023): ((π_c − π_r) − (ref_c − ref_r) − 1/(2β))², on per-token *mean* log-probs
  (as the IPO paper and TRL do); optional NLL on the chosen answer (RPO's α).
- GRPO (Shao et al. 2024) with DAPO's choices (Yu et al. 2025): advantage r − mean of the group
  (optionally / std), a PPO-clipped ratio with separate low/high clip ranges, the loss normalised
  by the number of tokens in the step rather than per sequence (long answers are not down-weighted),
  and an optional k3 KL estimate to a reference, off by default (β = 0).

Not covered: DPO variants beyond sigmoid/IPO (hinge, robust, ...), GSPO's sequence-level ratios.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sequence_logprobs(token_logprobs: torch.Tensor, trained: torch.Tensor, *, mean: bool = False) -> torch.Tensor:
    """Per-row sum (or mean) of token log-probs over trained positions: [B, T] -> [B]."""
    total = (token_logprobs * trained).sum(-1)
    return total / trained.sum(-1).clamp_min(1) if mean else total


def dpo_losses(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
               ref_rejected: torch.Tensor, *, beta: float, kind: str = "sigmoid") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pair losses [N] and reward margins [N] (β·(chosen log-ratio − rejected log-ratio))."""
    logits = (policy_chosen - policy_rejected) - (ref_chosen - ref_rejected)
    if kind == "sigmoid":
        losses = -F.logsigmoid(beta * logits)
    elif kind == "ipo":
        losses = (logits - 1.0 / (2.0 * beta)) ** 2
    else:
        raise ValueError(f"unknown DPO loss {kind!r} (sigmoid, ipo)")
    return losses, (beta * logits).detach()


def group_advantages(rewards: torch.Tensor, *, scale: bool = False, eps: float = 1e-6) -> torch.Tensor:
    """r − mean over the group (the last dimension); divided by the group's std with `scale`."""
    centred = rewards - rewards.mean(-1, keepdim=True)
    if scale:
        centred = centred / (rewards.std(-1, keepdim=True, unbiased=False) + eps)
    return centred


def grpo_loss_sum(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                  trained: torch.Tensor, *, clip_low: float = 0.2, clip_high: float = 0.28,
                  ref_logprobs: torch.Tensor | None = None, kl_beta: float = 0.0) -> torch.Tensor:
    """Sum over trained tokens of the clipped policy-gradient loss (+ β·KL): logprobs [B, T] with
    gradients, old/ref [B, T] without, advantages [B] (one per sequence), trained [B, T] 0/1."""
    ratio = torch.exp(logprobs - old_logprobs)
    adv = advantages[:, None]
    per_token = -torch.minimum(ratio * adv, ratio.clamp(1 - clip_low, 1 + clip_high) * adv)
    if kl_beta and ref_logprobs is not None:
        delta = ref_logprobs - logprobs
        per_token = per_token + kl_beta * (torch.exp(delta) - delta - 1)
    return (per_token * trained).sum()
