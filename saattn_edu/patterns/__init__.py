"""What may attend to what: every pattern of the course, each with mask / CSR / block / Flex views."""
from .base import CSR, Intersection, Pattern, Union, layout_from_csr
from .dense import Causal, Dense
from .window import DilatedWindow, SlidingWindow

__all__ = [
    "CSR", "Pattern", "Union", "Intersection", "layout_from_csr",
    "Dense", "Causal", "SlidingWindow", "DilatedWindow",
]
