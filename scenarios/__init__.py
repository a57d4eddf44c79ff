"""clbench's scenarios. A scenario is one module here that registers its class with
``@SCENARIOS.register("name")`` and is named in ``BUILTIN``; a scenario in another package is
one module plus an entry point in the group ``clbench.scenarios`` (README: Extending).

``tests/test_registry_spec.py`` fails for a module in neither ``BUILTIN`` nor ``SUPPORT``."""

# The modules that register scenarios, imported on the registry's first lookup.
BUILTIN = ("permuted", "split")
# The modules that register nothing: the scenario contract, the datasets and their readers,
# the shared path of scenarios cut from one dataset.
SUPPORT = ("base", "data", "datasets", "on_dataset", "readers")
