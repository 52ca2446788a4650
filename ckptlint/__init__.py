"""ckptlint: find PyTorch checkpoint code and files that will not load tomorrow."""

__version__ = "0.2.0"
