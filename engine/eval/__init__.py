"""Evaluation of embeddings: pure functions over (N, D) arrays, no model code, no UI.

- :mod:`knn`: weighted kNN accuracy (Wu et al. 2018), the online accuracy of SSL runs;
- :mod:`retrieval`: exact cosine neighbour search (faiss) and precision@k;
- :mod:`projection`: 2-D maps (PCA, UMAP on a faiss kNN graph) and the UMAP warm-up;
- :mod:`collapse`: collapse diagnostics (std, RankMe, alignment/uniformity) and the alarm;
- :mod:`clusters`: class clustering and the comparison of two runs' spaces.
- :mod:`encoder`: a run's encoder read back from its checkpoint (the augmentation studio);
- :mod:`view_cloud`: N augmented views of one image in ``h``, placed on a map;
- :mod:`invariance`: the invariance profile of a run, op by op and strength by strength.

Inputs may be numpy arrays or torch tensors; outputs are numpy arrays and python floats.
Importing this package is cheap: faiss, umap-learn and scikit-learn load on first use.
"""

from engine.eval.clusters import compare_runs, neighbour_purity, neighbourhood_overlap, silhouette
from engine.eval.collapse import (
    Alarm,
    AlarmThresholds,
    alignment,
    collapse_alarm,
    diagnostics,
    effective_rank,
    histogram,
    normalised_std,
    pair_cosines,
    singular_values,
    uniformity,
)
from engine.eval.knn import knn_predict, knn_top1
from engine.eval.projection import knn_graph, pca_2d, umap_2d, umap_is_warm, warm_up_umap
from engine.eval.retrieval import (
    NeighbourIndex,
    brute_force_search,
    mean_precision_at_k,
    precision_at_k,
)

__all__ = [
    "Alarm",
    "AlarmThresholds",
    "NeighbourIndex",
    "alignment",
    "brute_force_search",
    "collapse_alarm",
    "compare_runs",
    "diagnostics",
    "effective_rank",
    "histogram",
    "knn_graph",
    "knn_predict",
    "knn_top1",
    "mean_precision_at_k",
    "neighbour_purity",
    "neighbourhood_overlap",
    "normalised_std",
    "pair_cosines",
    "pca_2d",
    "precision_at_k",
    "silhouette",
    "singular_values",
    "umap_2d",
    "umap_is_warm",
    "uniformity",
    "warm_up_umap",
]
