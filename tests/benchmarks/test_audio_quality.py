"""The music-embedding distances on real music: degradations read farther than other tracks of the
same music, and stronger degradations read farther still (:mod:`audiocraft_mmd.benchmarks.audio_quality`).

The quick test uses 8 tracks of one Debian package (``warzone2100-music``, fetched once by the
project's data code into its cache, 86 MB); the slow one the evaluate split of the default dataset.
"""


import pytest
import torch

from audiocraft_mmd.benchmarks.audio_quality import degradation_distances, read_excerpts

from common_utils import REPO, require_modules, unavailable


def _check_ordering(results, names=("frechet", "kernel"), degradations=("noise_20db", "lowpass_4khz", "mulaw4_8khz")):
    for name in names:
        value = {condition: result[name]["value"] for condition, result in results.items()}
        for degraded in degradations:
            assert value["clean"] < value[degraded], (name, value)
        assert value["noise_30db"] < value["noise_20db"] < value["noise_10db"], (name, value)


@pytest.fixture(scope="module")
def embedder():
    require_modules("musicnn", install="pip install --no-deps musicnn==0.1.0")
    from audiocraft_mmd.metrics.music_embedding import MusicEmbedder
    return MusicEmbedder()


def test_distances_see_degradations_on_a_little_real_music(embedder):
    from audiocraft_mmd.data import debian_music
    from audiocraft_mmd.utils.paths import cache_dir
    try:  # as fetch_debian_music does: tools, package index (refreshed as root), then the one package
        debian_music._require_tools()
        debian_music._ensure_package_index()
        _, files = debian_music._package_audio("warzone2100-music", cache_dir())
    except debian_music.DebianUnavailableError as error:
        unavailable(f"Debian music unavailable here: {error}")
    # 10 + 10 tracks of 6 s: many short clips estimate the between-halves floor better than a few long ones.
    clips = read_excerpts(files[:20], seconds=6, offset=30)
    results = degradation_distances(clips[0::2], clips[1::2], embedder, draws=0)
    _check_ordering(results, ["kernel"])
    # The Fréchet distance at 20 patches a side (200-d covariances) separates only the strong degradations:
    # measured clean 21.26, noise 30/20/10 dB 21.44 / 21.90 / 28.53, low-pass 21.69, mu-law 32.14.
    _check_ordering(results, ["frechet"], degradations=("noise_20db", "mulaw4_8khz"))


@pytest.mark.slow
def test_distances_see_degradations_on_the_evaluate_split(embedder):
    from audiocraft_mmd.data.sources import resolve_source
    from audiocraft_mmd.data.prepare import ensure_dataset
    ensure_dataset("debian_music", "debian_music_16k_mono", 16000, 1, egs_root=REPO / "egs")
    files = resolve_source(str(REPO / "egs" / "debian_music_16k_mono" / "evaluate"))
    clips = read_excerpts(files, seconds=60, offset=30)
    results = degradation_distances(clips[0::2], clips[1::2], embedder, draws=20)
    _check_ordering(results)


def test_reference_metrics_of_degradations(tmp_path):
    require_modules("visqol", install="pip install visqol-python==3.8.0")
    from common_utils import write_tones
    from audiocraft_mmd.benchmarks.audio_quality import reference_metrics
    paths = write_tones(tmp_path, num_files=2, duration=3.0, seed=0)
    results = reference_metrics(read_excerpts(paths, seconds=3), seconds=3)
    for snr in (30, 20, 10):
        assert results[f"noise_{snr}db"]["si_snr_db"] == pytest.approx(snr, abs=0.3)  # noise at that SNR
    mos = {name: value["visqol_moslqo"] for name, value in results.items()}
    assert mos["noise_30db"] > mos["noise_20db"] > mos["noise_10db"]


def test_benchmark_command(tmp_path, capsys):
    require_modules("visqol", install="pip install visqol-python==3.8.0")
    import json
    from common_utils import write_tones
    from audiocraft_mmd.benchmarks import audio_quality
    write_tones(tmp_path / "music", num_files=4, duration=3.5, seed=2)
    out = tmp_path / "results.json"
    assert audio_quality.main(["--data", str(tmp_path / "music"), "--seconds", "3", "--offset", "0",
                               "--bootstrap", "0", "--visqol-seconds", "3", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    degradations = audio_quality.with_opus(audio_quality.DEFAULT_OPUS_KBPS)
    assert {"opus_3.2kbps", "opus_6.4kbps"} <= set(degradations)  # the environment's ffmpeg has libopus
    assert set(results["distances"]) == {"clean", *degradations} and set(results["bands"]) == set(degradations)
    assert results["reference_metrics"]["noise_10db"]["si_snr_db"] == pytest.approx(10, abs=0.3)
    assert "mulaw4_8khz" in capsys.readouterr().out
    write_tones(tmp_path / "few", num_files=3, duration=3.5, seed=2)
    assert audio_quality.main(["--data", str(tmp_path / "few")]) == 2


def test_band_metrics_see_each_degradation_where_it_acts():
    from audiocraft_mmd.benchmarks.audio_quality import DEGRADATIONS, band_metrics
    import julius
    g = torch.Generator().manual_seed(1)
    # Music-like: most of the power in the bass over a floor 40 dB down, so that a 100 Hz pulse train
    # 20 dB below the clip stands out above 600 Hz, as a decoder's buzz does.
    clips = [(f"bass{i}", julius.lowpass_filter(torch.randn(1, 3 * 16000, generator=g), 250 / 16000)
              + 0.01 * torch.randn(1, 3 * 16000, generator=g), 16000) for i in range(3)]
    chosen = {name: DEGRADATIONS[name] for name in ("noise_30db", "lowpass_4khz", "buzz_100hz")}
    bands = band_metrics(clips, seconds=2, degradations=chosen)
    low, noise, buzz = bands["lowpass_4khz"], bands["noise_30db"], bands["buzz_100hz"]
    assert list(low["lsd_db"]) == ["0-250", "250-1000", "1000-2000", "2000-4000", "4000-8000"]
    assert low["lsd_db"]["4000-8000"] > 10 > low["lsd_db"]["0-250"] and low["snr_db"]["0-250"] > 30
    assert low["lsd_db"]["4000-8000"] > noise["lsd_db"]["4000-8000"]
    assert noise["si_snr_db"] == pytest.approx(30, abs=0.5)
    assert buzz["comb_db"] > 5 > 1 > abs(noise["comb_db"])
