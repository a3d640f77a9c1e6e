"""textopt.optim: optimizers over text (and tensor) parameters, torch.optim's contract."""
from .optimizer import OPTIMIZERS, Optimizer, register_optimizer
from .tgd import TGD

__all__ = ["Optimizer", "OPTIMIZERS", "register_optimizer", "TGD"]

# search optimizers (issue 5): importing registers them in OPTIMIZERS
from .beam import BeamSearch  # noqa: E402
from .callbacks import Checkpoint, JsonlLog, load_checkpoint, save_checkpoint  # noqa: E402
from .demos import DemoBootstrap  # noqa: E402
from ..data import OptimizerData, Splits, split_dataset  # noqa: E402
from .guards import CopyDetector  # noqa: E402
from .opro import OPRO  # noqa: E402
from .pareto import ParetoEvolution  # noqa: E402
from .search_base import MaxSteps, NoImprovement, SearchOptimizer, StopFile, Timeout  # noqa: E402
from .store import Evaluator  # noqa: E402

__all__ += ["SearchOptimizer", "BeamSearch", "ParetoEvolution", "OPRO", "DemoBootstrap", "Evaluator",
            "CopyDetector", "Splits", "OptimizerData", "split_dataset", "MaxSteps", "NoImprovement", "Timeout",
            "StopFile", "JsonlLog", "Checkpoint", "save_checkpoint", "load_checkpoint"]
__all__ += ["MixedOptimizer"]


def __getattr__(name: str):
    # MixedOptimizer (text + torch parameters, one state_dict) needs torch.optim: loaded on first use, so that
    # text-only programs never load torch (its ~150k objects slow every garbage collection of a large graph)
    if name == "MixedOptimizer":
        from .mixed import MixedOptimizer
        return MixedOptimizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
