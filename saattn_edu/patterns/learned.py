"""Learned / data-dependent sparsity: which keys a query sees is chosen from q and k themselves.

    from saattn_edu.patterns.learned import LSHBuckets, KMeansRouting, TopKBlocks, IndexerTopK
    csr = LSHBuckets(n_buckets=8, n_hashes=2, chunk=64).build(q, k)      # token level: a CSR
    blocks = TopKBlocks(block=64, k=4, causal=True).build(q, k)           # block level: BlockSparse & Causal
    R.sparse_attention(q, k, v, csr)

Every method has `select(q, k)` (the raw choice, NumPy or torch like its inputs: the same result for the same
values), `build(q, k)` (a fixed CSR or Pattern usable by every attention path) and `selection_cost(n, d)` (the
work spent choosing, to charge against the pairs saved). q and k are (n, d): select per head by looping over
batch and head dims. One method per file:
  lsh.py          LSHBuckets     Reformer: random-rotation hashing, sort by bucket, chunked attention
  routing.py      KMeansRouting  Routing Transformer: spherical k-means, attend within the cluster
  topk_blocks.py  TopKBlocks     MoBA / NSA selection: top-k key blocks by mean-pooled score
  indexer.py      IndexerTopK    DeepSeek DSA: a cheap low-dimensional scorer picks top-k keys per query
"""
from ._learned import LearnedPattern
from .indexer import IndexerTopK, index_projection
from .lsh import LSHBuckets, chunked_pairs, lsh_hash, random_rotations
from .routing import KMeansRouting
from .topk_blocks import TopKBlocks, block_scores, mean_pool_blocks, topk_layout

__all__ = [
    "LearnedPattern", "LSHBuckets", "KMeansRouting", "TopKBlocks", "IndexerTopK",
    "random_rotations", "lsh_hash", "chunked_pairs", "mean_pool_blocks", "block_scores", "topk_layout",
    "index_projection",
]
