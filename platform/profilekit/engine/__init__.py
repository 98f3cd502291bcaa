from profilekit.engine.engine import BatchOutput, Engine, Prediction, mean_pool, pristine_encoder

__all__ = ["BatchOutput", "Engine", "Prediction", "mean_pool", "pristine_encoder"]
