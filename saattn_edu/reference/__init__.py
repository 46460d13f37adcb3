"""NumPy attention references (shapes (..., n, d)): the ground truth the Torch and Triton paths are tested on.

    from saattn_edu import reference as R
    R.dense_attention(q, k, v, mask=None)            # O(n²) time and memory
    R.sparse_attention(q, k, v, pattern_or_csr)      # O(nnz·d) time, chunked memory
    R.block_sparse_attention(q, k, v, layout, block) # whole tiles on or off
    R.flash_attention(q, k, v, return_lse=True)      # tiled online softmax
    R.merge_partials(out_a, lse_a, out_b, lse_b)     # combine attention over two key sets
    R.multiset_attention(q, k, v, csr, counts)       # keys listed several times count several times
    R.lsh_attention(qk, v, P.LSHBuckets(...))        # Reformer LSH outputs, as Hugging Face computes them
"""
from ._softmax import merge_partials
from .block_sparse import block_sparse_attention
from .dense import dense_attention
from .flash import flash_attention
from .lsh import lsh_attention, shared_qk_keys
from .multiset import multiset_attention
from .sparse import sparse_attention

__all__ = [
    "dense_attention", "sparse_attention", "block_sparse_attention", "flash_attention", "merge_partials",
    "multiset_attention", "lsh_attention", "shared_qk_keys",
]
