import pytest
import torch

from profilekit.errors import PoolError
from profilekit.pool import PoolSpec, import_adapter_folders, load_pool, random_pool, save_pool


def spec(**overrides):
    return PoolSpec(**({"backbone_id": "bert:tiny:test", "num_adapters": 10, "num_layers": 2, "hidden_size": 32,
                        "reduction_factor": 4, "seed": 3} | overrides))


def test_random_pool_regenerates_bit_identical():
    a, b = random_pool(spec()), random_pool(spec())
    assert a.pool_hash == b.pool_hash
    assert torch.equal(a.down_w, b.down_w) and torch.equal(a.up_w, b.up_w)
    assert a.down_w.shape == (2, 10, 32, 8) and a.up_w.shape == (2, 10, 8, 32)


def test_pool_identity_changes_with_seed_and_size():
    base = random_pool(spec()).pool_hash
    assert random_pool(spec(seed=4)).pool_hash != base
    assert random_pool(spec(num_adapters=11)).pool_hash != base


def test_saved_pool_keeps_its_hash(tmp_path):
    pool = random_pool(spec())
    loaded = load_pool(save_pool(pool, tmp_path / "pool.safetensors"))
    assert loaded.pool_hash == pool.pool_hash
    assert torch.equal(loaded.up_w, pool.up_w)


def test_tampered_pool_file_is_refused(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    path = save_pool(random_pool(spec()), tmp_path / "pool.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(path))
    tensors["up_b"][0, 0, 0] = 1.0
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(PoolError, match="corrupt"):
        load_pool(path)


def test_missing_pool_file_is_named(tmp_path):
    with pytest.raises(PoolError, match="nope.safetensors"):
        load_pool(tmp_path / "nope.safetensors")


def test_import_folders_saved_by_the_adapters_library(tmp_path):
    import adapters
    from adapters import SeqBnConfig

    from tests.conftest import tiny_model

    model = tiny_model()
    adapters.init(model)
    folders = []
    for name in ("first", "second", "third"):
        model.add_adapter(name, config=SeqBnConfig(reduction_factor=4))
        model.save_adapter(str(tmp_path / name), name)
        folders.append(tmp_path / name)
    pool = import_adapter_folders(folders, backbone_id="bert:tiny:test", num_layers=2)
    assert pool.num_adapters == 3 and pool.spec.source == "imported"
    second_down = model.encoder.layer[1].output.adapters["second"].adapter_down[0]
    assert torch.equal(pool.down_w[1, 1], second_down.weight.T)
    assert torch.equal(pool.down_b[1, 1], second_down.bias)
    third_up = model.encoder.layer[0].output.adapters["third"].adapter_up
    assert torch.equal(pool.up_w[0, 2], third_up.weight.T)


def test_import_refuses_a_folder_that_is_not_an_adapter(tmp_path):
    with pytest.raises(PoolError, match="adapter_config.json"):
        import_adapter_folders([tmp_path], backbone_id="x", num_layers=2)
