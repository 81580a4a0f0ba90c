"""The reports' source of figures that measures the finished XPs on this machine and stores what it measures.

:class:`XPMeasurements` answers the same questions as :class:`audiocraft_mmd.study.measurements.MeasurementStore`
(a codec by its overrides, its dependence reports, an LM by its key, its generation figures), from the XPs:
the dependence command and the LMs' generation run once and are cached in each XP folder, as before, and
every figure served is written to the store, so that the reports can be rebuilt from it alone.
"""

from __future__ import annotations

from pathlib import Path
import typing as tp

from ..utils.xps import is_finished, last_stage_metrics
from .measurements import CodecMeasurement, LMKey, LMMeasurement, MeasurementStore, Provenance, plain
from .results import learning_curve, measure_dependence, measured_lm_cell, valid_cell, xp_minutes


class XPMeasurements:
    """Measures the XPs and records into ``store`` with ``provenance`` (the command that runs it); LMs that
    generate make ``gen_samples`` clips of ``gen_duration`` seconds."""

    def __init__(self, store: MeasurementStore, provenance: Provenance, gen_samples: int = 8,
                 gen_duration: float = 3.):
        self.store = store
        self.provenance = provenance
        self.gen_samples = gen_samples
        self.gen_duration = gen_duration
        self._xps: tp.Dict[str, tp.Any] = {}
        self._by_argv: tp.Dict[tp.Tuple[str, ...], tp.Any] = {}

    def _xp(self, argv: tp.List[str]):
        from ..train import main
        key = tuple(argv)
        if key not in self._by_argv:  # composing the config is the slow part: once per XP
            self._by_argv[key] = main.get_xp(argv)
        xp = self._by_argv[key]
        self._xps[xp.sig] = xp
        return xp

    @staticmethod
    def _codec_argv(overrides: tp.Mapping[str, tp.Any]) -> tp.List[str]:
        from ..train import main
        return main.value_to_argv(dict(overrides))

    def codec(self, overrides: tp.Mapping[str, tp.Any]) -> tp.Optional[CodecMeasurement]:
        xp = self._xp(self._codec_argv(overrides))
        if not is_finished(xp):
            return None
        stored = self.store.records().get(xp.sig)
        dependence = dict(stored.dependence) if isinstance(stored, CodecMeasurement) else {}
        record = CodecMeasurement(sig=xp.sig, overrides=plain(dict(overrides)),
                                  evaluate=last_stage_metrics(xp, "evaluate"), minutes=xp_minutes(xp),
                                  provenance=self.provenance, dependence=dependence, curve=learning_curve(xp))
        return tp.cast(CodecMeasurement, self.store.save(record))

    def dependence(self, codec: CodecMeasurement, folder: str, data: tp.Optional[str], segment: float,
                   options: tp.Sequence[str] = ()) -> tp.Dict[str, tp.Any]:
        """The dependence command's report of ``codec`` on ``data`` (default: its evaluate split), cached in
        ``<xp>/<folder>``, stored under ``folder``."""
        xp = self._xps[codec.sig]
        report = measure_dependence(xp, data or str(xp.cfg.datasource.evaluate), segment, folder,
                                    *([options] if options else []))
        self.store.save(CodecMeasurement(**{**vars(codec), "provenance": self.provenance,
                                            "dependence": {**codec.dependence, folder: plain(report)}}))
        return report

    def has_dependence(self, folder: str, data: str) -> bool:
        return Path(data).exists()

    def codec_sig(self, overrides: tp.Mapping[str, tp.Any]) -> tp.Optional[str]:
        return self._xp(self._codec_argv(overrides)).sig

    def lm(self, key: LMKey, argv: tp.Callable[[], tp.List[str]]) -> tp.Optional[LMMeasurement]:
        xp = self._xp(argv())
        validation = valid_cell(xp)
        if validation is None:
            return None
        stored = self.store.records().get(xp.sig)
        extras = [list(key.extra)]
        generation = None
        if isinstance(stored, LMMeasurement):
            extras = stored.extras + ([] if list(key.extra) in stored.extras else extras)
            generation = stored.generation
        record = LMMeasurement(sig=xp.sig, codec_sig=key.codec_sig, pattern=key.pattern, seed=key.seed,
                               extras=extras, overrides=list(xp.argv), validation=validation,
                               minutes=xp_minutes(xp), provenance=self.provenance, generation=generation)
        return tp.cast(LMMeasurement, self.store.save(record))

    def generation(self, lm: LMMeasurement, what: str) -> tp.Dict[str, tp.Any]:
        """The LM's generation timed and compared with the evaluate split (cached in the XP folder), stored."""
        cell = measured_lm_cell(self._xps[lm.sig], lm.codec_sig, lm.pattern, lm.seed, self.gen_samples,
                                self.gen_duration, what)
        self.store.save(LMMeasurement(**{**vars(lm), "provenance": self.provenance, "generation": plain(cell)}))
        return cell
