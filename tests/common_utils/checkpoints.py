"""Codec checkpoints built in the test process (no training)."""

from pathlib import Path

import torch

from .paths import REPO


def build_checkpoint(path: Path, num_codebooks: int, sample_rate: int = 16000) -> Path:
    """A solver-style checkpoint of the CPU EnCodec, codebooks set from encoder outputs (no k-means)."""
    import omegaconf
    from audiocraft.models import builders

    cfg = omegaconf.OmegaConf.load(REPO / "config" / "model" / "encodec" / "small.yaml")
    cfg = omegaconf.OmegaConf.merge(cfg, {"sample_rate": sample_rate, "channels": 1, "device": "cpu",
                                          "rvq": {"n_q": num_codebooks}})
    torch.manual_seed(0)
    model = builders.get_compression_model(cfg)
    with torch.no_grad():
        latent = model.encoder(torch.randn(2, 1, 16000)).transpose(1, 2).reshape(-1, 128)
    state = model.state_dict()
    for key in state:
        if key.endswith("inited"):
            state[key].fill_(1)
        elif key.endswith("_codebook.embed"):
            picks = latent[torch.randint(0, latent.shape[0], (state[key].shape[0],))]
            state[key].copy_(picks + 0.1 * latent.std() * torch.randn_like(picks))
    torch.save({"xp.cfg": cfg, "best_state": {"model": state}}, path)
    return path
