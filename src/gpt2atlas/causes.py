"""`gpt2atlas.causes`: which parts of GPT-2 produce a prediction (the code lives in gpt2atlas.analysis.causes).

from gpt2atlas.causes import direct_logit_attribution, patch, attribution_patch, ablate
"""

from gpt2atlas.analysis.causes import (
    SITES,
    ablate,
    analyze,
    attribution_patch,
    direct_logit_attribution,
    induction_pair,
    patch,
)

__all__ = ["SITES", "ablate", "analyze", "attribution_patch", "direct_logit_attribution", "induction_pair", "patch"]
