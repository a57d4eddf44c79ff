"""clbench's application layer: the run machinery that ties the components together: the run
loop (``runner``), process isolation and warm-up, the executors, run orchestration, suites and
tuning. Its public faces stay at the top of the package: :mod:`clbench.api`, :mod:`clbench.cli`
and the reference-run commands (``python -m clbench.reproducibility``, ``clbench.searches``)."""
