"""The clean/corrupted pair and the metric that patching and attribution patching share.

The default metric is the logit difference between `answer` and `other` at the last position, normalised so
that the corrupted run scores 0 and the clean run 1 (TransformerLens's tutorials' `ioi_metric`). A custom
`metric` maps one run's logits (1, pos, d_vocab) to a scalar tensor and is used as it is, not normalised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from gpt2atlas.analysis.causes.findings import CausesPair
from gpt2atlas.analysis.causes.inputs import AnswerPair, Token, prompt_pair, token_id
from gpt2atlas.errors import InputError
from gpt2atlas.model.gpt2 import GPT2, ModelInput

Metric = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class PatchSetup:
    """Everything a sweep needs besides the caches: the tokens, the answer pair and the metric's ends."""

    model: GPT2
    clean: torch.Tensor  # (1, pos)
    corrupted: torch.Tensor
    pair: AnswerPair
    metric: Metric | None  # None: the normalised logit difference
    clean_value: float  # the raw logit difference (or the custom metric) of each run
    corrupted_value: float

    @property
    def n_pos(self) -> int:
        return int(self.clean.shape[1])

    def normalised(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw metric values -> 0 at the corrupted run, 1 at the clean run (custom metrics pass through)."""
        if self.metric is not None:
            return raw
        return (raw - self.corrupted_value) / (self.clean_value - self.corrupted_value)

    def of_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """The metric of each run in a batch of logits (batch, pos, d_vocab) -> (batch,)."""
        if self.metric is None:
            return self.normalised(self.pair.of_logits(logits))
        return torch.stack([torch.as_tensor(self.metric(logits[i : i + 1])).reshape(()) for i in range(len(logits))])

    def description(self) -> str:
        if self.metric is not None:
            return f"custom metric {getattr(self.metric, '__name__', 'metric')} of the patched run's logits"
        against = "logit(answer) - logit(other)" if self.pair.other is not None else "logit(answer)"
        return f"({against} - corrupted) / (clean - corrupted) at the last position: 0 = corrupted run, 1 = clean run"

    def findings(self) -> CausesPair:
        strings = self.model.tokenizer.to_str_tokens
        other = self.pair.other
        return CausesPair(
            clean_tokens=strings(self.clean[0].tolist()),
            corrupted_tokens=strings(self.corrupted[0].tolist()),
            answer=self.pair.answer,
            answer_token=strings([self.pair.answer])[0],
            clean_metric=self.clean_value,
            corrupted_metric=self.corrupted_value,
            other=other,
            other_token=strings([other])[0] if other is not None else None,
        )


def default_pair(clean_logits: torch.Tensor, corrupted_logits: torch.Tensor, answer: int | None) -> tuple[int, int]:
    """The answer (default: the clean run's top prediction) and the token it is measured against: the corrupted
    run's top prediction, or where that is the answer, the clean run's best other token."""
    clean_top = clean_logits[0, -1].topk(3).indices.tolist()
    answer = clean_top[0] if answer is None else answer
    candidates = [int(corrupted_logits[0, -1].argmax()), *clean_top]
    return answer, next(c for c in candidates if c != answer)


def make_setup(
    model: GPT2,
    clean: ModelInput,
    corrupted: ModelInput,
    answer: Token | None,
    other: Token | None,
    metric: Metric | None,
) -> PatchSetup:
    """Check the pair and the tokens, run both prompts once, and fix the metric's ends."""
    clean_tokens, corrupted_tokens = prompt_pair(model, clean, corrupted)
    answer_id = token_id(model, answer, "answer") if answer is not None else None
    other_id = token_id(model, other, "other") if other is not None else None
    with torch.inference_mode():  # the metric reads the last position only, unless it is the user's own
        clean_logits = model(clean_tokens, last_position_only=metric is None)
        corrupted_logits = model(corrupted_tokens, last_position_only=metric is None)
    if answer_id is None or other_id is None:
        answer_id, default_other = default_pair(clean_logits, corrupted_logits, answer_id)
        other_id = default_other if other_id is None else other_id
    if other_id == answer_id:
        raise InputError(
            f"answer and other are the same token ({answer_id}): their logit difference is always 0",
            arguments=("answer", "other"),
        )
    pair = AnswerPair(answer_id, other_id)
    if metric is None:
        clean_value, corrupted_value = float(pair.of_logits(clean_logits)), float(pair.of_logits(corrupted_logits))
        if abs(clean_value - corrupted_value) < 1e-6 * max(1.0, abs(clean_value)):
            raise InputError(
                f"clean and corrupted give the same logit difference ({clean_value:.6g}): the normalised metric "
                "(0 = corrupted, 1 = clean) is undefined; choose a corruption that changes the answer",
                arguments=("clean", "corrupted"),
            )
    else:
        with torch.inference_mode():
            clean_value, corrupted_value = float(metric(clean_logits)), float(metric(corrupted_logits))
    return PatchSetup(model, clean_tokens, corrupted_tokens, pair, metric, clean_value, corrupted_value)
