"""``dora grid codec_recipe``: the main job's codec recipe, one lever at a time (docs/TRAINING.md#the-recipe).

Base: ``solver=compression/mmd`` at its budget (1000 updates). The first XP restores the earlier recipe
(waveform and linear-magnitude terms only, AudioCraft's SEANet encoder and decoder); each next one adds
one lever: the multi-scale log-mel term, the encoder's log-spectrum branch, then interpolating
upsampling in the decoder's first stage (today's recipe, no override), its first two and all three;
then the recipe with its later, transposed stages started as nearest-neighbour upsampling
(``upsampling.transposed_init=nearest``), and with each followed by a moving average over its stride
(``upsampling.transposed_average=true``). The last XP is today's recipe at another seed, for the
run-to-run spread. 9 XPs, about 20 minutes each on 2 cores. Read the per-band log-spectral distance
and the comb in the evaluate columns; compare with Opus with ``python -m audiocraft_mmd.codec_quality``
(docs/QUALITY.md). Without Slurm:
``python -m audiocraft_mmd.grid local codec_recipe --jobs 2``.
"""

import treetable as tt

from ._sweep import MMDExplorer

EARLIER = {"losses.logmel": 0., "encodec.autoencoder": "seanet"}
LEVERS = [
    EARLIER,
    {"encodec.autoencoder": "seanet"},                        # + log-mel
    {"encodec.autoencoder": "seanet_spectral"},               # + log-spectrum branch
    {},                                                       # + interpolation, first stage: the recipe
    {"upsampling.stages": 2},                                 # + the second stage
    {"upsampling.stages": None},                              # + every stage
    {"upsampling.transposed_init": "nearest"},                # the recipe, later stages started as nearest
    {"upsampling.transposed_average": True},                  # the recipe, later stages averaged over their stride
    {"seed": 2},                                              # the recipe, another seed
]
SLURM = {"gpus": 0, "cpus_per_task": 2, "mem_per_gpu": 4, "time": 60}  # mem_per_gpu: GB for the (one) task


class RecipeExplorer(MMDExplorer):
    """The sweep's table plus reconstruction across the band: SI-SNR, mel, log-spectral distance per band, comb."""

    BANDS = ["lsd_0_250", "lsd_250_1000", "lsd_1000_2000", "lsd_2000_4000", "comb_db"]

    def get_grid_metrics(self):
        metrics = super().get_grid_metrics()
        metrics.append(tt.group("band", [tt.leaf("si_snr_db", ".2f"), tt.leaf("mel_distance", ".3f"),
                                         *(tt.leaf(key, ".2f") for key in self.BANDS)], align=">"))
        return metrics

    def process_history(self, history):
        parts = super().process_history(history)
        evaluate = next((entry["evaluate"] for entry in reversed(history) if "evaluate" in entry), {})
        parts["band"] = {key: evaluate[key] for key in ("si_snr_db", "mel_distance", *self.BANDS) if key in evaluate}
        return parts


@RecipeExplorer
def explorer(launcher):
    launcher.slurm_(**SLURM)
    launcher.bind_({"solver": "compression/mmd"})
    for lever in LEVERS:
        launcher(lever)
