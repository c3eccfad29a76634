from __future__ import annotations

import subprocess
import sys

import pytest

from backrub.core.catalogue import Catalogue, parse_catalogue, read_packaged_files
from backrub.core.errors import CatalogueError
from backrub.core.models import PHASES

REGION_IDS = {
    "lower-back",
    "mid-back",
    "sides-of-spine",
    "between-shoulder-blades",
    "shoulder-blades",
    "shoulders",
    "whole-back",
}


def test_shipped_catalogue_has_the_contract_ids(catalogue: Catalogue) -> None:
    assert set(catalogue.regions) == REGION_IDS
    assert not catalogue.regions["whole-back"].focusable
    assert {"open-wounds", "skin-infection", "deep-vein-thrombosis", "recent-surgery"} <= set(
        catalogue.conditions
    )
    assert len(catalogue.setup) >= 6
    assert (catalogue.facts.min_minutes, catalogue.facts.max_minutes) == (15, 60)


def test_technique_cards_are_complete(catalogue: Catalogue) -> None:
    for t in catalogue.techniques.values():
        assert len(t.instructions) >= 3, t.id
        assert t.tips and t.mistakes and t.warning, t.id
        assert t.motion.path, t.id


def _files_with(name: str, text: str) -> dict[str, bytes]:
    files = read_packaged_files()
    files[name] = text.encode()
    return files


def test_unknown_key_is_named(catalogue: Catalogue) -> None:
    files = read_packaged_files()
    text = (
        files["regions.toml"]
        .decode()
        .replace('id = "mid-back"', 'id = "mid-back"\ncolour = "blue"')
    )
    with pytest.raises(CatalogueError) as err:
        parse_catalogue({**files, "regions.toml": text.encode()})
    assert "region 'mid-back' → colour" in err.value.message


def test_out_of_range_pressure_and_bad_reference_are_both_listed() -> None:
    files = read_packaged_files()
    text = files["techniques.toml"].decode()
    text = text.replace('regions = ["whole-back"]', 'regions = ["elbow"]', 1)
    text = text.replace("pressure = [1, 2]", "pressure = [1, 9]", 1)
    with pytest.raises(CatalogueError) as err:
        parse_catalogue({**files, "techniques.toml": text.encode()})
    assert "pressure" in err.value.message
    bad_ref = _files_with(
        "techniques.toml",
        files["techniques.toml"]
        .decode()
        .replace('regions = ["whole-back"]', 'regions = ["elbow"]', 1),
    )
    with pytest.raises(CatalogueError, match="unknown region 'elbow'"):
        parse_catalogue(bad_ref)


def test_condition_without_source_or_contraindication_weakened() -> None:
    files = read_packaged_files()
    text = files["conditions.toml"].decode()
    weakened = text.replace(
        'kind = "contraindication"\neffect = "stop"',
        'kind = "caution"\neffect = "cap"\npressure_cap = 2',
        1,
    )
    with pytest.raises(CatalogueError, match="'open-wounds' must exist and stop"):
        parse_catalogue({**files, "conditions.toml": weakened.encode()})


def test_broken_toml_is_a_clear_error() -> None:
    with pytest.raises(CatalogueError, match=r"guide\.toml is not valid TOML"):
        parse_catalogue(_files_with("guide.toml", "[facts\n"))


def test_core_imports_no_framework_database_or_clock_module() -> None:
    code = (
        "import sys, backrub.core.planner, backrub.core.safety, backrub.core.export;"
        "banned = {'sqlalchemy','fastapi','starlette','typer','rich','textual','pydantic'};"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in banned))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_techniques_for_a_step_are_those_that_fit_it_in_catalogue_order(
    catalogue: Catalogue,
) -> None:
    """The planner asks an index built once; it must answer as a scan of every technique."""
    tools = sorted({t.tools[0] for t in catalogue.techniques.values()})
    asked = 0
    for phase in PHASES:
        for mode in ("self", "partner"):
            for region in catalogue.regions:
                for avoid in (frozenset(), frozenset(tools[:1]), frozenset(tools)):
                    scan = tuple(
                        t
                        for t in catalogue.techniques.values()
                        if phase in t.phases
                        and mode in t.modes
                        and region in t.regions
                        and t.tools[0] not in avoid
                    )
                    found = catalogue.techniques_for(
                        phase=phase, mode=mode, region=region, avoid_tools=avoid
                    )
                    assert found == scan, (phase, mode, region, avoid)
                    asked += bool(scan)
    assert asked > 20
