from profilekit.pool.imports import import_adapter_folders
from profilekit.pool.pool import AdapterPool, PoolSpec, SharedHead, load_pool, random_pool, save_pool

__all__ = [
    "AdapterPool", "PoolSpec", "SharedHead", "import_adapter_folders", "load_pool", "random_pool", "save_pool",
]
