"""A sentence under each figure: what it shows and how to read it (the report and the app show it, never the key)."""

from __future__ import annotations

CAPTIONS: dict[str, str] = {
    # embeddings
    "dim_stats": "Token and position embeddings, dimension by dimension and row by row.",
    "token_dim_means": "The mean of each token-embedding dimension over the vocabulary; marked dims stand out "
    "by more than 3 standard deviations of the means.",
    "position_curves": "The position embedding's most varying dimensions along the positions: trained models "
    "draw smooth waves, random ones noise.",
    "position_pca_3d": "Positions in the first three principal components of the position embedding.",
    "position_pca_2d": "Positions in the first two principal components of the position embedding.",
    "position_heatmap": "The position embedding, position by dimension.",
    "position_cosine": "Cosine similarity between the position embeddings of every pair of positions.",
    "pca_global_local": "Variance explained by principal components, over the whole vocabulary and in local "
    "neighbourhoods.",
    "dim_pairs": "Tokens (a sample) and positions in pairs of embedding dimensions.",
    "tokens_pca_2d": "A sample of the vocabulary in the first two principal components; the prompt's tokens "
    "are labelled.",
    "tokens_tsne_2d": "A sample of the vocabulary laid out by t-SNE; the prompt's tokens are labelled.",
    "tokens_umap_2d": "A sample of the vocabulary laid out by UMAP; the prompt's tokens are labelled.",
    "joint_pca_2d": "The prompt's token and position embeddings together in two principal components.",
    "joint_pca_3d": "The prompt's token and position embeddings together in three principal components.",
    # weights
    "heatmap": "A block of one weight matrix, value by value, beside the histogram of all its values.",
    "model_summary": "Parameters per component and per layer.",
    "architecture_3d": "The architecture in 3-D: each block's parts, sized by their parameters.",
    # attention
    "head_scores": "Each head's score for each role (previous token, induction, duplicate token, first-token "
    "sink) on this prompt.",
    "head_pattern": "One head's attention pattern on the prompt: each row a query token, each column the key it reads.",
    "lines": "Attention as lines from each token to the tokens it reads (thicker: more weight).",
    "layer_heads": "Every head of one layer side by side.",
    "prompt_induction": "Induction on the prompt itself: the head that looks most at the token that followed an "
    "earlier copy of the current one; its targets are circled.",
    "sink_and_last_token": "Attention to the first token (the sink) per layer, and where the last token looks, "
    "layer by key.",
    "batch_mean_patterns": "Attention patterns averaged over a batch of texts.",
    # neurons
    "fraction_active": "The share of MLP neurons active (GELU output > 0) in each layer.",
    "fraction_active_by_layer": "The share of MLP neurons active in each layer.",
    "tokens_by_neurons": "The neurons that fire most for each token of the prompt.",
    "neuron_key_value": "One neuron: what turns it on (its input weights) and what it writes (its output "
    "weights read through the unembedding).",
    "tokens_by_layers": "For each token and layer, its strongest neuron activation (hover names the neuron) "
    "and the share of neurons above zero.",
    "strongest_neurons": "The neurons with the largest activations on the prompt.",
    # layernorm
    "steps_3d": "LayerNorm step by step on the prompt's residual vectors: centre, scale onto the sphere, gain, shift.",
    "toy_3d": "LayerNorm's steps on points in three dimensions, where the sphere can be seen.",
    "gamma_per_dim": "The gain γ of each dimension for every LayerNorm; outlier dims marked.",
    "gamma_vs_position": "Which dimensions carry position: each LayerNorm's gain against the position "
    "embedding's spread, one point per dimension.",
    "superposition": "Angles between directions packed into the residual space, random and optimised.",
    "gelu": "The GELU non-linearity, with the pre-activations the MLP sees on the prompt.",
    # residual
    "norm_growth": "The residual stream's norm after each layer, and what attention and MLP add to it.",
    "outlier_dims": "The outlier dimensions: peak |activation| over the median of each residual state.",
    "token_layer_norms": "The residual norm of each token at each layer.",
    # journey
    "logit_lens": "The logit lens: the model's top guess for the next token after each layer.",
    "rank_kl": "How far each layer's guess is from the final prediction: the final token's rank and the KL divergence.",
    "cosines": "Mean cosine similarity of the residual stream at each layer, and the spread of the token cloud.",
    "trajectory": "The traced token's residual vector through the layers, projected by PCA (the other "
    "positions faint).",
    # saliency
    "tokens_coloured": "The prompt coloured by each token's saliency for the prediction.",
    "scores_bar": "Each input token's saliency for the predicted next token.",
    # geometry
    "id_vs_layer": "Intrinsic dimension of the hidden representations layer by layer (TwoNN, GRIDE, PCA).",
    "id_vs_scale": "Intrinsic dimension against the distance scale at every residual layer (GRIDE, and TwoNN "
    "on decimated clouds).",
    "pca_components": "Principal components needed for 75-95% of the variance at every site of the forward pass.",
    "norm_anisotropy": "Mean vector norm and anisotropy (mean pairwise cosine) along the forward pass.",
    "gram_log_volume": "Log volume of the parallelotope spanned by the prompt's token vectors, per layer.",
    # dynamics
    "loss": "Training and validation loss over the run.",
    "position_tables": "The position embedding at initialisation, half-way and at the end.",
    "positions_over_time": "The position embedding's roughness, periodicity and PCA share over training.",
    "heads_over_time": "Each head's previous-token and induction scores at every checkpoint.",
    "depth_over_time": "Logit-lens agreement and intrinsic dimension per layer over training.",
}


def caption(name: str) -> str:
    """The figure's caption; a name without one is at least written as words."""
    return CAPTIONS.get(name, name.replace("_", " ").capitalize() + ".")
