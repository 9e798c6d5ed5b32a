"""``python -m labutils sweep``: one notebook run over a grid of parameter values and seeds, each point
a report of its own, spread over a Dask cluster (a ``LocalCluster`` by default, or an existing one).

:mod:`~labutils.sweep.grid` makes and checks the points, :mod:`~labutils.sweep.point` runs one (on a
worker, from the standard library alone), :mod:`~labutils.sweep.run` spreads them and keeps what
finishes, :mod:`~labutils.sweep.render` writes ``summary.csv`` and ``index.html``.
"""
