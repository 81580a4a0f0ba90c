"""`python -m audiocraft_mmd.listen`: the page's content, bad inputs, and the page in a real headless
browser (Debian's chromium through selenium: installed here as root, skipped with the reason otherwise)."""

import io
import json
import os
import re
import shutil
import subprocess

import omegaconf
import pytest
import torch

from audiocraft_mmd.listen import ListenError, headline_figures, main, write_page

from common_utils import build_checkpoint, unavailable, write_tones

CODEC_HISTORY = [{"train": {"mel": 1.2}, "valid": {"mel": 1.1}},
                 {"train": {"mel": 1.0}, "valid": {"mel": 0.9},
                  "evaluate": {"sisnr": -5.25, "si_snr_db": 5.25, "mel_distance": 0.91, "entropy_q0": 7.25,
                               "entropy_q1": 7.5, "mi_parallel": 0.83, "mi_delay": 0.68}}]
LM_HISTORY = [{"train": {"ce": 5.1}, "valid": {"ce": 4.9}}, {"train": {"ce": 4.8}, "valid": {"ce": 4.772}}]


@pytest.fixture(scope="module")
def xps(tmp_path_factory):
    root = tmp_path_factory.mktemp("xps")
    codec = root / "c0dec000"
    codec.mkdir()
    build_checkpoint(codec / "checkpoint.th", 4)
    (codec / "history.json").write_text(json.dumps(CODEC_HISTORY))
    lm = root / "1a000000"
    (lm / "samples" / "2").mkdir(parents=True)
    torch.save({"xp.cfg": omegaconf.OmegaConf.create({"solver": "musicgen_mmd"}), "best_state": {"model": {}}},
               lm / "checkpoint.th")
    (lm / "history.json").write_text(json.dumps(LM_HISTORY))
    write_tones(lm / "samples" / "2", num_files=2, duration=2.0, seed=7, sample_rate=8000)
    return codec, lm


def test_headline_figures():
    figures = headline_figures(CODEC_HISTORY)
    assert figures == {"SI-SNR (dB)": "5.25", "mel distance": "0.910", "entropy per codebook (bit)": "7.25 / 7.50",
                       "MI parallel (bit)": "0.830", "MI delay (bit)": "0.680", "evaluated at epoch": "2"}
    assert headline_figures(LM_HISTORY) == {"valid cross-entropy (nats)": "4.772 (epoch 2)"}


@pytest.fixture(scope="module")
def page(xps, tiny_egs, tmp_path_factory):
    codec, lm = xps
    out = tmp_path_factory.mktemp("listen") / "page"
    code = main(["--xp", str(codec), "--xp", str(lm), "--out", str(out), "--data", str(tiny_egs / "evaluate"),
                 "--clips", "2", "--seconds", "2"])
    assert code == 0
    return out / "index.html"


def test_page_holds_players_spectrograms_and_figures(page):
    text = page.read_text()
    audio = sorted(p.name for p in (page.parent / "audio").iterdir())
    assert audio == ["1a000000_gen0.wav", "1a000000_gen1.wav", "clip0_c0dec000.wav", "clip0_opus_1x.wav",
                     "clip0_opus_2x.wav", "clip0_reference.wav", "clip1_c0dec000.wav", "clip1_opus_1x.wav",
                     "clip1_opus_2x.wav", "clip1_reference.wav"]
    assert text.count("<audio") == 10 and text.count('class="spec"') == 10
    assert len(list((page.parent / "spectrograms").glob("*.png"))) == 10
    # the codec (50 Hz frames, 4 x 256 codes: 1.6 kbit/s) beside Opus asked for 1.6 and 3.2 kbit/s, per band
    assert "Across the band" in text and "Opus 1.6 kbit/s nominal" in text and "Opus 3.2 kbit/s nominal" in text
    assert text.count("<td>c0dec000</td>") == 1 and "LSD 2000-4000 Hz" in text and "LSD 4000-8000 Hz" in text
    assert "5.25" in text and "7.25 / 7.50" in text and "0.680" in text and "4.772 (epoch 2)" in text
    links = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert links and all(link.startswith(("audio/", "spectrograms/", "data:")) for link in links)  # opens anywhere


def test_refuses_to_overwrite_and_names_a_missing_xp(page, xps, tmp_path, capsys):
    codec, _ = xps
    with pytest.raises(ListenError, match="--overwrite"):
        write_page([str(codec)], page.parent)
    out = tmp_path / "new"
    assert main(["--xp", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "--xp" in capsys.readouterr().err and not out.exists()  # nothing written


def chromium_driver():
    """A headless chromium driven by selenium; installs Debian's chromium as root when missing."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            unavailable("chromium and chromium-driver are missing and cannot be installed (needs root and apt-get)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium", "chromium-driver"]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
            subprocess.run(install, env=env, check=True)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def test_page_in_a_real_browser(page, tmp_path):
    from PIL import Image
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chromium_driver()
    try:
        driver.get(page.as_uri())
        count = driver.execute_script("return document.querySelectorAll('audio').length")
        assert count == 10  # references, the codec, Opus at 1x and 2x, the LM's generations
        # Every player has loaded its file's metadata: a duration > 0 (NaN until then).
        WebDriverWait(driver, 60).until(lambda d: d.execute_script(
            "return [...document.querySelectorAll('audio')].every(a => a.readyState >= 1 && a.duration > 0)"))
        durations = driver.execute_script("return [...document.querySelectorAll('audio')].map(a => a.duration)")
        assert all(1.5 < d < 2.5 for d in durations), durations  # 2 s clips and generations
        WebDriverWait(driver, 30).until(lambda d: d.execute_script(
            "return [...document.images].every(i => i.complete)"))
        widths = driver.execute_script("return [...document.querySelectorAll('img.spec')].map(i => i.naturalWidth)")
        assert len(widths) == 10 and all(w > 0 for w in widths), widths
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, errors
        shot = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("L")
        shot.save(tmp_path / "page.png")
        low, high = shot.getextrema()
        assert high - low > 100 and len(set(shot.getdata())) > 50  # text, players and spectrograms drawn
    finally:
        driver.quit()
