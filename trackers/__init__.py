"""clbench's experiment trackers: where a run streams its hyperparameters, per-step loss,
continual-evaluation points and final metrics while it trains (``clbench run --log
NAME:TARGET``), beside the results store. A tracker is one module here that registers its class
with ``@TRACKERS.register("name")`` and is named in ``BUILTIN``; a tracker in another package is
one module plus an entry point in the group ``clbench.trackers``.

``tests/test_registry_spec.py`` fails for a module in neither ``BUILTIN`` nor ``SUPPORT``."""

# The modules that register trackers, imported on the registry's first lookup (none of them
# imports its library before a run starts).
BUILTIN = ("tensorboard_tracker", "mlflow_tracker")
# The modules that register nothing: the tracker contract.
SUPPORT = ("base",)
