"""prefstyle: personalized photo retouching learned from pairwise preferences."""

__version__ = "0.1.0"
