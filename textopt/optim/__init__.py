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
from .mixed import MixedOptimizer  # noqa: E402  (text + torch parameters, one state_dict)

__all__ += ["MixedOptimizer"]
