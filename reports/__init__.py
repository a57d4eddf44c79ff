"""clbench's reports. A report format is one module here that registers its reporter with
``@REPORTERS.register("name")`` and is named in ``BUILTIN`` (``clbench report --name FILE``
appears by itself); a format in another package is one module plus an entry point in the group
``clbench.reporters`` (README: Extending).

``tests/test_registry_spec.py`` fails for a module in neither ``BUILTIN`` nor ``SUPPORT``."""

# The modules that register reporters, imported on the registry's first lookup (no torch).
BUILTIN = ("json_report", "markdown_report", "html_report", "csv_report", "latex_report")
# The modules that register nothing: the reporter contract, tables, statistics and tests,
# drawing.
SUPPORT = ("base", "cd_diagram", "compare", "drawing", "false_alarms", "figures", "formatting",
           "friedman", "paper_table", "significance", "stability_gap", "staleness", "statistics",
           "table_model", "tables")
