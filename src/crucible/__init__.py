"""crucible: pretrain, post-train and evaluate small code models, and grade what they write in a real sandbox."""

__version__ = "0.1.0"
