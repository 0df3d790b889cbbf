"""``python -m dislab.report DIR [DIR ...]``: a study explained in one HTML page. A leaf: it reads run and sweep
directories (``dislab.sweep.runs``) and imports nothing that trains.

- ``page``: the page (``build``, ``main``); ``study``: the runs as a study (knobs, budgets, rows, statistics);
  ``stats``: the numbers a study's questions need (paired bootstrap interval, Wilcoxon test, ranks, variance
  shares, Spearman, UDR selection); ``analyses``: those questions answered on the page;
  ``plots``: its figures; ``reproduction`` and ``references``: published values beside ours.
"""
