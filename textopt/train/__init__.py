"""textopt.train: the training loop (see :mod:`textopt.train.trainer` for the contract)."""
from ..data import Example
from .data import Sampler
from .evaluate import aevaluate
from .trainer import Trainer, TrainResult

__all__ = ["Trainer", "TrainResult", "Example", "Sampler", "aevaluate"]
