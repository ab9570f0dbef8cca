"""Interchange with timm: timm's checkpoint folders load in zoo, and zoo's saved timm models load in timm."""
import json

import pytest
import torch
from timm_helpers import image_batch, random_timm_state, serve_weights, timm, use_hub_cache
from weights_models import fill_hf_cache

import zoo
from zoo.errors import WeightsError


@pytest.fixture
def hub(tmp_path, monkeypatch):
    return use_hub_cache(tmp_path, monkeypatch)


def timm_folder(directory, arch="test_resnet", num_classes=7, seed=1):
    """A checkpoint folder as timm writes it (config.json with architecture and pretrained_cfg, safetensors)."""
    from timm.models import save_for_hf

    model = timm.create_model(arch, pretrained=False, num_classes=num_classes)
    model.load_state_dict(random_timm_state(arch, seed) | {k: v for k, v in model.state_dict().items()
                                                           if k.startswith(("fc.", "head."))})
    save_for_hf(model.eval(), str(directory), safe_serialization=True,
                model_config={"label_names": [f"class_{i}" for i in range(num_classes)]})
    return model


def test_a_folder_timm_wrote_loads_in_zoo_with_its_classes_and_labels(tmp_path):
    reference = timm_folder(tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["architecture"] == "test_resnet" and "pretrained_cfg" in config
    model = zoo.create(f"local-dir:{tmp_path / 'ckpt'}").eval()
    with torch.no_grad():
        torch.testing.assert_close(model(image_batch()), reference(image_batch()), rtol=0, atol=0)
    card = model.zoo_card
    assert card.name == "timm/test_resnet" and card.num_classes == 7
    assert zoo.cards.card_labels(card) == [f"class_{i}" for i in range(7)]
    assert card.input.size == 160


def test_a_timm_hub_repo_loads_with_hf_hub(hub, tmp_path):
    reference = timm_folder(tmp_path / "ckpt", arch="test_vit", num_classes=4)
    files = {name: (tmp_path / "ckpt" / name).read_bytes() for name in ("config.json", "model.safetensors")}
    fill_hf_cache(hub, "someone/tiny-vit-pets", files)
    model = zoo.create("hf-hub:someone/tiny-vit-pets").eval()
    with torch.no_grad():
        torch.testing.assert_close(model(image_batch()), reference(image_batch()), rtol=0, atol=0)
    assert model.zoo_card.extra["base_model"] == "someone/tiny-vit-pets"


def test_a_timm_folder_of_an_unregistered_architecture_is_refused_without_imports(tmp_path):
    timm_folder(tmp_path / "ckpt")
    path = tmp_path / "ckpt" / "config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, "architecture": "not_a_timm_model"}))
    with pytest.raises(WeightsError, match=r"'timm/not_a_timm_model'.*zoo-models\[timm\]"):
        zoo.create(f"local-dir:{tmp_path / 'ckpt'}")
    path.write_text(json.dumps({**config, "model_args": {"act_layer": {"module": "os:system"}}}))
    with pytest.raises(WeightsError, match="plain values"):
        zoo.create(f"local-dir:{tmp_path / 'ckpt'}")
    # model_args may not swap the checked architecture for another (or for a Hub name timm would fetch)
    path.write_text(json.dumps({**config, "model_args": {"model_name": "hf-hub:someone/else"}}))
    with pytest.raises(WeightsError, match="may not set 'model_name'"):
        zoo.create(f"local-dir:{tmp_path / 'ckpt'}")


def test_a_model_fine_tuned_in_zoo_loads_in_zoo_and_in_plain_timm(hub, tmp_path):
    serve_weights(hub, "test_convnext", "r160_in1k")
    model = zoo.create("timm/test_convnext.r160_in1k", pretrained=True, num_classes=3).eval()
    saved = zoo.save_pretrained(model, tmp_path / "out", labels=["cat", "dog", "fox"])
    config = json.loads((saved / "config.json").read_text())
    assert config["architecture"] == "test_convnext" and config["num_classes"] == 3 and "zoo" in config
    assert config["pretrained_cfg"]["input_size"] == [3, 160, 160] and config["label_names"] == ["cat", "dog", "fox"]
    x = image_batch()
    with torch.no_grad():
        expected = model(x)
        again = zoo.create(f"local-dir:{saved}").eval()
        torch.testing.assert_close(again(x), expected, rtol=0, atol=0)
        plain = timm.create_model(f"local-dir:{saved}", pretrained=True).eval()
        torch.testing.assert_close(plain(x), expected, rtol=0, atol=0)
    assert plain.pretrained_cfg["label_names"] == ["cat", "dog", "fox"]


def test_a_zoo_saved_timm_model_on_the_hub_loads_in_timm_and_zoo(hub, tmp_path):
    model = zoo.create("timm/test_resnet", num_classes=2).eval()
    saved = zoo.save_pretrained(model, tmp_path / "out")
    files = {p.name: p.read_bytes() for p in saved.iterdir() if p.is_file()}
    fill_hf_cache(hub, "me/tiny-resnet-2", files)
    x = image_batch()
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(zoo.create("hf-hub:me/tiny-resnet-2").eval()(x), expected, rtol=0, atol=0)
        plain = timm.create_model("hf-hub:me/tiny-resnet-2", pretrained=True).eval()
        torch.testing.assert_close(plain(x), expected, rtol=0, atol=0)
