"""The fine-tune API's named choices, in one torch-free place.

The trainer checks its options against these tuples and the command line offers them as
choices; importing this module imports neither torch nor the rest of `zoo.finetune`, so
``zoo --help`` stays fast. The first name of each tuple is the default.
"""
from __future__ import annotations

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
LOSSES = ("cross_entropy", "mse")
OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULERS = ("cosine", "onecycle", "linear", "constant")
STRATEGY_NAMES = ("freeze_unfreeze", "no_freeze", "freeze", "unfreeze_milestones", "lora")
DEFAULT_STRATEGY = STRATEGY_NAMES[0]
BN_POLICIES = ("frozen", "affine", "train")
MONITOR_MODES = ("min", "max")
