"""Synthetic stored measurements of the study (:mod:`audiocraft_mmd.study.measurements`): codecs with their
dependence reports, LMs with their validation and generation figures, as the XPs' source stores them."""

import typing as tp


def provenance(day: str = "2026-12-05"):
    from audiocraft_mmd.study.measurements import Provenance
    return Provenance(command="python -m audiocraft_mmd.study report", commit="0" * 40, date=f"{day}T10:00:00+00:00")


def dependence_report(mi: float, entropy: float, lags: tp.Sequence[int] = ()) -> tp.Dict[str, tp.Any]:
    """A dependence command's report on one codec: usage, both alignments with per-pair intervals, the
    fast/slow split, and the lagged MI when ``lags``."""
    def alignment(value: float) -> tp.Dict[str, tp.Any]:
        return {"mean_mi": value, "mean_normalized": value / entropy, "frames": 1000,
                "pairs": [{"ci_low": value - 0.01 * k, "ci_high": value + 0.01 * k} for k in range(1, 7)]}

    def split(value: float) -> tp.Dict[str, tp.Any]:
        return {"total": value, "fast": value / 2, "slow": value / 2,
                "intervals": {part: [v - 0.01, v + 0.01] for part, v in
                              (("total", value), ("fast", value / 2), ("slow", value / 2))}}
    report: tp.Dict[str, tp.Any] = {
        "frame_rate": 100., "usage": {"entropy": [entropy, entropy - 0.5, entropy - 0.25, entropy],
                                      "usage": [1., 0.9, 0.95, 1.]},
        "alignments": {"parallel": alignment(mi * 1.2), "delay": alignment(mi)},
        "fast_slow": {"parallel": split(mi * 1.2), "delay": split(mi)}}
    if lags:
        report["lagged"] = [{"lag": lag, "cross_mi": mi / (1 + lag), "auto_mi": None if lag == 0 else 1 / lag}
                            for lag in lags]
    return report


def codec_measurement(sig: str, overrides: tp.Dict[str, tp.Any], si_snr: float, mi: float, entropy: float = 7.,
                      lags: tp.Sequence[int] = (), day: str = "2026-12-05"):
    from audiocraft_mmd.study.measurements import CodecMeasurement
    dependence = {"study_dependence": dependence_report(mi, entropy)}
    if lags:
        dependence["study_lagged"] = dependence_report(mi, entropy, lags)
    evaluate = {"si_snr_db": si_snr, "mel_distance": 1.5 - si_snr / 100, "entropy_mean": entropy,
                "entropy_min": entropy - 0.5, "mi_delay": mi, "nmi_delay": mi / entropy, "mi_parallel": mi * 1.2,
                "mi_fast_delay": mi / 2, "mi_slow_delay": mi / 2, "mi_fast_parallel": mi * 0.6,
                "mmd_estimate": mi / 10}
    return CodecMeasurement(sig=sig, overrides=overrides, evaluate=evaluate, minutes=si_snr + 3.25,
                            provenance=provenance(day), dependence=dependence)


def lm_measurement(sig: str, codec_sig: str, pattern: str, seed: int, per_codebook: tp.Sequence[float],
                   extra: tp.Sequence[str] = (), generates: bool = True, day: str = "2026-12-05"):
    from audiocraft_mmd.study.measurements import LMMeasurement
    validation = {"valid_ce": sum(per_codebook) / len(per_codebook), "valid_ce_per_codebook": list(per_codebook)}
    generation = None
    if generates:
        depth = pattern == "depth"
        generation = {**validation, "codec": f"//sig/{codec_sig}", "pattern": pattern, "sig": sig,
                      "steps_per_second": 500. if depth else 100., "temporal_steps_per_second": 100.,
                      "depth_steps_per_second": 400. if depth else 0., "gen_seconds": 2.5, "rtf": 0.4,
                      "kernel_distance": 0.0123, "distances": {"musicnn_kernel_ci_low": 0.01,
                                                               "musicnn_kernel_ci_high": 0.015}}
    return LMMeasurement(sig=sig, codec_sig=codec_sig, pattern=pattern, seed=seed, extras=[list(extra)],
                         overrides=[f"codebooks_pattern.modeling={pattern}", *extra], validation=validation,
                         minutes=2.5, provenance=provenance(day), generation=generation)
