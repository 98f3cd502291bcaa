"""All configuration in one place, read from the environment (PROFILEKIT_*) when asked for."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROFILEKIT_", extra="ignore")

    backbone_path: Path | None = Field(
        default=None, description="Local BERT/RoBERTa-style encoder folder; None = packaged all-MiniLM-L6-v2."
    )
    device: str = Field(default="cpu", description="torch device for the engine: cpu, cuda, cuda:1, …")
    dtype: str = Field(default="float32", description="float32, float16 or bfloat16 for the frozen backbone.")
    max_length: int = Field(default=128, description="Token limit per input text.")
    data_dir: Path = Field(default=Path("data"), description="Folder of the embedded default's files.")


@lru_cache
def get_settings() -> Settings:
    return Settings()
