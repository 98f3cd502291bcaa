from profilekit.training.data import ProfileData, Split, split_profile, validate_profile
from profilekit.training.loop import Progress, TrainConfig, TrainResult, evaluate, train_profiles
from profilekit.training.metrics import accuracy, macro_f1

__all__ = ["ProfileData", "Progress", "Split", "TrainConfig", "TrainResult", "accuracy", "evaluate", "macro_f1",
           "split_profile", "train_profiles", "validate_profile"]
