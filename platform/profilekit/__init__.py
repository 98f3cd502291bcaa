"""profilekit: many user profiles on one frozen encoder and one shared adapter pool."""

__version__ = "0.1.0"
