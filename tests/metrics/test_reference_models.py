"""AudioCraft's FAD / KLD / CLAP: configured from local files, or one clear error naming what is missing."""

import omegaconf
import pytest

from audiocraft_mmd.errors import ConfigError
from audiocraft_mmd.metrics import reference_models


@pytest.fixture
def cfg():
    from audiocraft_mmd import train
    xp = train.main.get_xp(["solver=musicgen/mmd", "compression_model_checkpoint=//sig/none"])
    cfg = omegaconf.OmegaConf.create(omegaconf.OmegaConf.to_container(xp.cfg, resolve=False))
    return cfg


def test_default_config_checks_nothing(cfg):
    assert reference_models.check_reference_metrics(cfg) == []


def test_fad_names_the_missing_file(cfg, tmp_path, monkeypatch):
    cfg.evaluate.metrics.fad = True
    with pytest.raises(ConfigError, match=r"metrics.fad.tf.model_path is not set"):
        reference_models.check_reference_metrics(cfg)
    cfg.metrics.fad.tf.model_path = str(tmp_path / "vggish_model.ckpt")
    with pytest.raises(ConfigError, match=r"VGGish checkpoint not found at .*vggish_model.ckpt"):
        reference_models.check_reference_metrics(cfg)
    (tmp_path / "vggish_model.ckpt").write_bytes(b"weights")
    cfg.metrics.fad.tf.bin = str(tmp_path)
    monkeypatch.delenv("TF_PYTHON_EXE", raising=False)
    with pytest.raises(ConfigError, match="TF_PYTHON_EXE"):
        reference_models.check_reference_metrics(cfg)
    monkeypatch.setenv("TF_PYTHON_EXE", str(tmp_path / "vggish_model.ckpt"))  # any existing file will do here
    assert reference_models.check_reference_metrics(cfg) == ["fad"]


def test_kld_and_clap_name_packages_and_files(cfg, tmp_path, monkeypatch):
    cfg.evaluate.metrics.kld = True
    real_find_spec = reference_models.importlib.util.find_spec
    monkeypatch.setattr(reference_models.importlib.util, "find_spec",
                        lambda name: None if name in ("hear21passt", "laion_clap") else real_find_spec(name))
    with pytest.raises(ConfigError, match="hear21passt package: pip install"):
        reference_models.check_reference_metrics(cfg)
    monkeypatch.setattr(reference_models.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(ConfigError, match=r"metrics.kld.checkpoint is not set"):
        reference_models.check_reference_metrics(cfg)
    weights = tmp_path / "passt-s-f128-20sec-p16-s10-ap.474-swa.pt"
    weights.write_bytes(b"weights")
    cfg.metrics.kld.checkpoint = str(weights)
    assert reference_models.check_reference_metrics(cfg) == ["kld"]
    cached = tmp_path / "torch" / "hub" / "checkpoints" / weights.name
    assert cached.is_symlink() and cached.resolve() == weights  # where torch.hub looks before downloading
    cfg.evaluate.metrics.kld = False
    cfg.evaluate.metrics.text_consistency = True
    with pytest.raises(ConfigError, match=r"metrics.text_consistency.clap.model_path is not set"):
        reference_models.check_reference_metrics(cfg)


def test_the_lm_solver_refuses_missing_weights_at_start(tiny_egs, tmp_path):
    from common_utils import datasource, dora
    run = dora(["run", "solver=musicgen/mmd", "compression_model_checkpoint=//sig/none", *datasource(tiny_egs),
                "evaluate.metrics.fad=true"], tmp_path, timeout=300)
    assert run.returncode != 0
    assert "metrics.fad.tf.model_path is not set" in run.stderr


def test_clap_needs_roberta_in_the_hugging_face_cache(cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(reference_models.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda repo, name: None)
    checkpoint = tmp_path / "clap.pt"
    checkpoint.write_bytes(b"weights")
    cfg.evaluate.metrics.text_consistency = True
    cfg.metrics.text_consistency.clap.model_path = str(checkpoint)
    with pytest.raises(ConfigError, match="roberta-base in the Hugging Face cache.*vocab.json.*model.safetensors"):
        reference_models.check_reference_metrics(cfg)
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache",
                        lambda repo, name: None if name == "pytorch_model.bin" else str(tmp_path / name))
    assert reference_models.check_reference_metrics(cfg) == ["text_consistency"]
