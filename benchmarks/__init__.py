"""sqlharbor's benchmarks: ``python -m benchmarks.run`` (``make bench``).

Every speed figure is a ratio against a baseline measured side by side in the same run
(alternating A, B, A, B); absolute times are printed for information only.  Results go to
``bench-results/results.json`` and the table in ``BENCHMARKS.md``.
"""
