from profilekit.training.loop import Progress, TrainResult, evaluate, train_profiles
from profilekit.training.metrics import accuracy, macro_f1
from profilekit.training.warm import build_warm_pool

__all__ = ["Progress", "TrainResult", "accuracy", "build_warm_pool", "evaluate", "macro_f1", "train_profiles"]
