"""textopt.optim: optimizers over text (and tensor) parameters, torch.optim's contract."""
from .optimizer import OPTIMIZERS, Optimizer, register_optimizer
from .tgd import TGD

__all__ = ["Optimizer", "OPTIMIZERS", "register_optimizer", "TGD"]
