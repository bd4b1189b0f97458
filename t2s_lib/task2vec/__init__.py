"""Task2Vec: a task's embedding as the diagonal Fisher of a probe network (reference section 6).

>>> from t2s_lib.task2vec import embed_task
>>> emb = embed_task("digits", img_size=32, max_samples=1000, fisher_samples=1000)
>>> emb.hessian.shape, emb.meta["weights"]["weights"]      # ((9600,), 'random-init')
"""

from .distances import (
    cosine_similarity,
    cosine_similarity_matrix,
    distance_matrix,
    l2_normalize,
    published_vectors,
    similarity_table,
    task2vec_distance,
)
from .embed import Embedding, Task2VecOptions, embed_task, embedding_cache_dir, published_layout
from .probe import ARCHS, EXPECTED_DIM, build_probe, layout

__all__ = [
    "ARCHS", "EXPECTED_DIM", "Embedding", "Task2VecOptions", "build_probe", "cosine_similarity",
    "cosine_similarity_matrix", "distance_matrix", "embed_task", "embedding_cache_dir", "l2_normalize",
    "layout", "published_layout", "published_vectors", "similarity_table", "task2vec_distance",
]
from .study import embed_profile, fraction_experiment, load_embeddings, profile_tasks  # noqa: E402

__all__ += ["embed_profile", "fraction_experiment", "load_embeddings", "profile_tasks"]
