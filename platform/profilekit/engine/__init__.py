from profilekit.engine.engine import BatchOutput, Engine, Prediction

__all__ = ["BatchOutput", "Engine", "Prediction"]
