"""Core values as the plain JSON data the API answers with, in the CLI's `--json` shapes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backrub.core.export import as_plain
from backrub.core.models import PRESSURE_CEILINGS, PRESSURE_WORDS

if TYPE_CHECKING:
    from backrub.core.catalogue import Catalogue


def catalogue_as_dict(catalogue: Catalogue) -> dict[str, Any]:
    """Everything the pages draw and ask from: regions (with their shapes on the back map),
    techniques (with their motion), the safety questions, the set-up checklist, the facts."""
    return {
        "regions": as_plain(list(catalogue.regions.values())),
        "techniques": as_plain(list(catalogue.techniques.values())),
        "conditions": as_plain(list(catalogue.conditions.values())),
        "setup": as_plain(list(catalogue.setup)),
        "facts": as_plain(catalogue.facts),
        "pressure_words": {str(level): word for level, word in PRESSURE_WORDS.items()},
        "pressure_ceilings": dict(PRESSURE_CEILINGS),
    }
