"""What a worker process sees of the integration. Deliberately imports nothing of audiocraft_mmd:
a spawned worker that unpickles these gets the integration only from what audiocraft_mmd gives it."""

import os

import torch


def probe() -> dict:
    """What a worker process sees (module-level, so that spawned workers can unpickle it)."""
    import omegaconf
    import audiocraft.solvers.builders as builders
    import audiocraft.models.builders as model_builders
    from audiocraft import train
    return {
        "audiocraft_config": os.environ.get("AUDIOCRAFT_CONFIG", ""),
        "train": train.__name__,
        "wrapped": [hasattr(fn, "__wrapped__") for fn in
                    (builders.get_solver, builders.get_loader, model_builders.get_codebooks_pattern_provider)],
        "safe_config": omegaconf.DictConfig in torch.serialization.get_safe_globals(),
        # a pattern registered by audiocraft_mmd, built through AudioCraft's builder
        "our_pattern": model_builders.get_codebooks_pattern_provider(
            4, omegaconf.OmegaConf.create({"modeling": "grouped_delay"})).delays,
    }


class ProbeDataset(torch.utils.data.Dataset):
    def __len__(self):
        return 1

    def __getitem__(self, index):
        return probe()
