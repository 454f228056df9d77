"""Which parts of GPT-2 produce a prediction: direct logit attribution, activation patching (real and
attribution patching) and ablation over a corpus. Numbers only, as typed findings; see each module."""

from gpt2atlas.analysis.causes.ablation import ablate
from gpt2atlas.analysis.causes.attribution import attribution_patch
from gpt2atlas.analysis.causes.dla import direct_logit_attribution
from gpt2atlas.analysis.causes.inputs import SITES
from gpt2atlas.analysis.causes.patching import patch
from gpt2atlas.analysis.causes.summary import analyze, induction_pair

__all__ = ["SITES", "ablate", "analyze", "attribution_patch", "direct_logit_attribution", "induction_pair", "patch"]
