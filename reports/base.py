"""The reporter contract: what ``clbench report`` (:func:`clbench.api.report`) builds and calls.

A reporter is registered in :data:`clbench.registry.REPORTERS` (built in, by entry point or as
``module:Class``). It is constructed with two keyword arguments, always: ``generated_at``
freezes the report's date and ``metadata`` overrides entries of its metadata block, so that a
report can be reproduced byte for byte. ``render(loaded)`` returns the text. Subclassing
:class:`Reporter` gives both; the registry refuses a reporter whose constructor takes neither.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from clbench.reports.table_model import Leaderboard
from clbench.reports.tables import leaderboard_for
from clbench.results import LoadedResults


class Reporter(ABC):
    """Base class of reporters."""

    description: ClassVar[str]
    # True: the reporter prints tables and takes ``table`` (clbench report's --table,
    # --metrics, --baseline, --appendix: clbench.reports.paper_table.TableOptions)
    prints_tables: ClassVar[bool] = False

    def __init__(self, *, generated_at: str | None = None,
                 metadata: dict[str, Any] | None = None, table: Any = None):
        self.generated_at = generated_at
        self.metadata = metadata
        self.table = table

    def leaderboard(self, loaded: LoadedResults) -> Leaderboard:
        """The store's leaderboard, computed once for every reporter rendering it."""
        return leaderboard_for(loaded, self.generated_at, self.metadata)

    @abstractmethod
    def render(self, loaded: LoadedResults) -> str:
        """The report of ``loaded`` as text."""
