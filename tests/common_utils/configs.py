"""Tiny configurations: Dora overrides of tiny runs, and configs built in the test process."""

import omegaconf

# The tests' frame counts and stream sizes are those of the 16 kHz / 50 Hz codec (encodec/small: latent
# 128, hop 320); the main job's is 8 kHz / 100 Hz (encodec/small_8khz), tested by test_main_job.py.
CODEC_16K = ["sample_rate=16000", "seanet.dimension=128", "seanet.n_filters=8", "seanet.lstm=2",
             "seanet.ratios=[8,5,4,2]"]
# The runs that test the machinery, not the codec recipe, train AudioCraft's plain SEANet without the log-mel
# term (logged, not trained on) and with a short k-means initialisation (its 50 iterations took 9 of a tiny run's
# 58 s in a profile; the recipe's model and loss another 15 s of 77, measured beside other jobs). The
# recipe is trained by the tests that say so (RECIPE), by tests/models/test_autoencoders.py and the main job.
PLAIN_CODEC = ["encodec.autoencoder=seanet", "upsampling.stages=null", "losses.logmel=0", "rvq.kmeans_iters=2"]
RECIPE = ["encodec.autoencoder=seanet_spectral_interp", "upsampling.stages=1", "losses.logmel=15",
          "rvq.kmeans_iters=50"]
# A tiny `dora run solver=compression/mmd`: 2 epochs of 3 updates, every stage.
TINY_RUN = [
    *CODEC_16K, *PLAIN_CODEC,
    "optim.epochs=2", "optim.updates_per_epoch=3",
    "dataset.batch_size=4", "dataset.valid.num_samples=4",
    "dataset.evaluate.batch_size=4", "dataset.evaluate.num_samples=4",
    "dataset.generate.num_samples=2", "dataset.generate.batch_size=2", "dataset.generate.segment_duration=2",
    "evaluate.every=2", "generate.every=2", "checkpoint.save_every=null",
]

# The codebook patterns of MusicGen's LM (AudioCraft's and ours).
PATTERNS = ["parallel", "delay", "unroll", "coarse_first", "musiclm", "grouped_delay", "depth"]

# The tiny codec and LM XPs of the MusicGen tests.
TINY_CODEC = [
    "solver=compression/mmd", "optim.epochs=1", "optim.updates_per_epoch=2", "dataset.batch_size=4",
    "dataset.valid.num_samples=4", "evaluate.every=null", "generate.every=null", "checkpoint.save_every=null",
    "rvq.bins=32",  # below MusicGen's default top_k (250): generation must still work
    *CODEC_16K, *PLAIN_CODEC,
]
TINY_LM = [
    "solver=musicgen/mmd", "optim.epochs=1", "optim.updates_per_epoch=3", "dataset.batch_size=4",
    "dataset.segment_duration=1", "dataset.valid.num_samples=4", "dataset.evaluate.num_samples=4",
    "dataset.generate.num_samples=2", "dataset.generate.batch_size=2", "evaluate.every=1", "generate.every=1",
    "transformer_lm.dim=32", "transformer_lm.num_heads=2", "transformer_lm.num_layers=1",
]


def lm_config(modeling: str) -> omegaconf.DictConfig:
    """The config of a tiny unconditional LM (4 codebooks of 16 codes) with the given pattern."""
    return omegaconf.OmegaConf.create({
        "lm_model": "transformer_lm", "device": "cpu", "dtype": "float32",
        "dataset": {"segment_duration": 1.}, "conditioners": None,
        "fuser": {"sum": [], "prepend": [], "cross": [], "input_interpolate": []},
        "classifier_free_guidance": {"training_dropout": 0., "inference_coef": 1.},
        "attribute_dropout": {},
        "codebooks_pattern": {"modeling": modeling},
        "transformer_lm": {"n_q": 4, "card": 16, "dim": 32, "num_heads": 2, "num_layers": 1, "causal": True}})


def mmd_cfg(**overrides):
    """The config of `solver=compression/mmd`, with `mmd.*` overridden."""
    from audiocraft_mmd import train

    cfg = train.main.get_xp(["solver=compression/mmd"]).cfg
    cfg.mmd.update(overrides)
    return cfg
