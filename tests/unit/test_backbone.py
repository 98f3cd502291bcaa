import json

import pytest

from profilekit.backbone import load_backbone
from profilekit.errors import BackboneError


def test_missing_backbone_folder_is_named(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(BackboneError, match=str(missing)):
        load_backbone(missing)


def test_unsupported_model_type_is_named(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(BackboneError, match="gpt2"):
        load_backbone(tmp_path)


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(BackboneError, match="config.json"):
        load_backbone(tmp_path)


def test_local_bert_folder_loads_offline(tmp_path, tokenizer):
    from tests.conftest import tiny_model

    model = tiny_model()
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    backbone = load_backbone(tmp_path)
    assert (backbone.num_layers, backbone.hidden_size) == (2, 32)
    assert all(not p.requires_grad for p in backbone.model.parameters())


def test_default_backbone_is_packaged_minilm(minilm):
    assert (minilm.num_layers, minilm.hidden_size, minilm.vocab_size) == (6, 384, 30522)
    assert minilm.backbone_id.startswith("bert:")
