"""What may attend to what: every pattern of the course, each with mask / CSR / block / Flex views."""
from .base import CSR, Intersection, Pattern, Union, layout_from_csr
from .bigbird import BigBird
from .block import BlockSparse
from .dense import Causal, Dense
from .global_tokens import GlobalTokens
from .image2d import Axial2D, Local2D
from .listed import Listed, as_pattern
from .learned import IndexerTopK, KMeansRouting, LearnedPattern, LSHBuckets, TopKBlocks
from .longformer import Longformer
from .prefix_lm import PrefixLM
from .random_pattern import RandomPattern
from .sinks import AttentionSinks
from .sparse_transformer import Fixed, Strided
from .window import DilatedWindow, SlidingWindow

__all__ = [
    "CSR", "Pattern", "Union", "Intersection", "layout_from_csr",
    "Dense", "Causal", "SlidingWindow", "DilatedWindow", "GlobalTokens", "Strided", "Fixed",
    "RandomPattern", "BlockSparse", "BigBird", "Longformer", "AttentionSinks", "Local2D", "Axial2D",
    "PrefixLM",
    # data-dependent: build(q, k) returns a CSR or a block pattern
    "LSHBuckets", "KMeansRouting", "TopKBlocks", "IndexerTopK", "LearnedPattern", "Listed", "as_pattern",
]
