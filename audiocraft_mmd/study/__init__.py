"""The research record's harness: the small-scale reproduction study and the independence grids.

It sits on top of the library and the commands (it runs grids with the local runner and measures
codecs with the dependence command) and writes the pages of ``docs/research/``; the grids import its
specs, and nothing in the library imports it.

- :mod:`.specs`: what the study trains (scales, codec and LM specs, the selection of the best codec);
- :mod:`.independence_specs`: what grids ``independence`` and ``independence_lms`` train;
- :mod:`.measurements`: the stored figures, one JSON file per XP, which the reports are built from;
- :mod:`.xp_measurements`: measuring the finished XPs, storing what is measured;
- :mod:`.sources`: a command's choice between the two (``--from-measurements``);
- :mod:`.results`: the figures the report shows, and the comparisons against the targets;
- :mod:`.report`: ``docs/research/RESULTS.md`` and its figures;
- :mod:`.independence`: the tables of the independence grids;
- ``python -m audiocraft_mmd.study run|report|independence``: the command (:mod:`.__main__`).
"""
