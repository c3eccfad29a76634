"""The catalogue: backrub's knowledge (regions, techniques, conditions, set-up, the guide's facts).

It is package data in TOML, validated once by pydantic into the frozen types of ``models.py`` and
cross-checked (references exist, ranges make sense, every condition has a source). Any problem is
one ``CatalogueError`` listing them all, so a bad data file is caught at start, not mid-session.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from backrub.core.errors import CatalogueError, UnknownCondition, UnknownRegion
from backrub.core.models import (
    MODES,
    CatalogueData,
    Condition,
    Facts,
    Mode,
    Phase,
    Region,
    SetupItem,
    Technique,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

DATA_FILES = ("regions.toml", "techniques.toml", "conditions.toml", "guide.toml")
# The source guide's five: each alone must stop a session, whatever the data files say.
CONTRAINDICATIONS = (
    "open-wounds",
    "skin-infection",
    "deep-vein-thrombosis",
    "recent-surgery",
    "pregnancy",
)


class Catalogue(NamedTuple):
    regions: Mapping[str, Region]
    techniques: Mapping[str, Technique]
    conditions: Mapping[str, Condition]
    setup: tuple[SetupItem, ...]
    facts: Facts
    # (phase, mode, region) → the techniques that fit, in catalogue order: the planner asks at
    # every step of every plan and re-plan.
    fitting: Mapping[tuple[str, str, str], tuple[Technique, ...]]

    def region(self, region_id: str) -> Region:
        try:
            return self.regions[region_id]
        except KeyError:
            raise UnknownRegion(region_id, self.focus_region_ids) from None

    def condition(self, condition_id: str) -> Condition:
        try:
            return self.conditions[condition_id]
        except KeyError:
            raise UnknownCondition(condition_id, self.conditions) from None

    @property
    def focus_region_ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.regions.values() if r.focusable)

    def techniques_for(
        self, *, phase: Phase, mode: Mode, region: str, avoid_tools: frozenset[str] = frozenset()
    ) -> tuple[Technique, ...]:
        """Techniques that fit a step, in catalogue order (which keeps plans deterministic)."""
        fits = self.fitting.get((phase, mode, region), ())
        if not avoid_tools:
            return fits
        return tuple(t for t in fits if t.tools[0] not in avoid_tools)


def read_packaged_files() -> dict[str, bytes]:
    # The package is installed as plain files (never zipped), so a path beside this module is
    # enough, and quicker to start than importlib.resources.
    folder = Path(__file__).resolve().parent.parent / "data"
    return {name: (folder / name).read_bytes() for name in DATA_FILES}


def load_catalogue() -> Catalogue:
    """Parse and validate the catalogue shipped inside the package."""
    return parse_catalogue(read_packaged_files())


def parse_catalogue(files: Mapping[str, bytes]) -> Catalogue:
    import tomllib  # only a cold load parses TOML; a warm start unpickles (catalogue_cache.py)

    raw: dict[str, Any] = {}
    problems: list[str] = []
    for name in DATA_FILES:
        if name not in files:
            problems.append(f"{name} is missing")
            continue
        try:
            raw[name] = tomllib.loads(files[name].decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            problems.append(f"{name} is not valid TOML ({exc})")
    if problems:
        raise CatalogueError(problems)
    guide = raw["guide.toml"]
    merged = {
        "regions": raw["regions.toml"].get("region", []),
        "techniques": raw["techniques.toml"].get("technique", []),
        "conditions": raw["conditions.toml"].get("condition", []),
        "setup": guide.get("setup", []),
        "facts": guide.get("facts", {}),
    }
    data = _validate_shapes(merged)
    problems = _cross_check(data)
    if problems:
        raise CatalogueError(problems)
    return Catalogue(
        regions={r.id: r for r in data.regions},
        techniques={t.id: t for t in data.techniques},
        conditions={c.id: c for c in data.conditions},
        setup=data.setup,
        facts=data.facts,
        fitting=_fitting(data.techniques),
    )


def _fitting(
    techniques: Sequence[Technique],
) -> dict[tuple[str, str, str], tuple[Technique, ...]]:
    found: dict[tuple[str, str, str], dict[str, Technique]] = {}
    for t in techniques:
        for phase in t.phases:
            for mode in t.modes:
                for region in t.regions:
                    found.setdefault((phase, mode, region), {})[t.id] = t
    return {key: tuple(fits.values()) for key, fits in found.items()}


def _validate_shapes(merged: dict[str, Any]) -> CatalogueData:
    # pydantic is imported here, not at module level: only a cold catalogue load pays for it.
    from typing import Annotated

    from annotated_types import Ge, Interval, Le
    from pydantic import TypeAdapter, ValidationError

    # The range-carrying names the models' annotations use; pydantic resolves the annotations
    # against this frame's namespace (see models.py for why they are not defined there).
    Level = Annotated[int, Interval(ge=1, le=5)]  # noqa: F841
    Unit = Annotated[float, Ge(0.0), Le(1.0)]  # noqa: F841
    Seconds = Annotated[int, Ge(30)]  # noqa: F841
    Tempo = Annotated[float, Interval(gt=0, le=120)]  # noqa: F841
    Minutes = Annotated[int, Ge(1)]  # noqa: F841
    try:
        return TypeAdapter(CatalogueData).validate_python(merged)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = _describe_location(merged, err["loc"])
            problems.append(f"{where}: {err['msg']}")
        raise CatalogueError(problems) from None


def _describe_location(merged: dict[str, Any], loc: tuple[int | str, ...]) -> str:
    """Turn ('techniques', 3, 'pressure', 0) into "technique 'knuckle-circles' → pressure.0"."""
    files = {"regions": "region", "techniques": "technique", "conditions": "condition"}
    if len(loc) >= 2 and loc[0] in files and isinstance(loc[1], int):
        entries = merged[str(loc[0])]
        entry = entries[loc[1]] if loc[1] < len(entries) else {}
        name = entry.get("id", f"#{loc[1] + 1}") if isinstance(entry, dict) else f"#{loc[1] + 1}"
        rest = ".".join(str(p) for p in loc[2:]) or "(entry)"
        return f"{files[str(loc[0])]} {name!r} → {rest}"
    return ".".join(str(p) for p in loc)


def _cross_check(data: CatalogueData) -> list[str]:
    problems: list[str] = []
    for kind, ids in (
        ("region", [r.id for r in data.regions]),
        ("technique", [t.id for t in data.techniques]),
        ("condition", [c.id for c in data.conditions]),
        ("set-up item", [s.id for s in data.setup]),
    ):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        problems += [f"{kind} {d!r} is defined twice" for d in dupes]

    regions = {r.id: r for r in data.regions}
    if "whole-back" not in regions:
        problems.append("region 'whole-back' is missing (warm-up and finish use it)")
    for r in data.regions:
        if not r.reachable_alone and not r.self_help:
            problems.append(f"region {r.id!r} cannot be reached alone but has no self_help")
        if len(r.shapes) != (2 if r.paired else 1):
            problems.append(f"region {r.id!r} needs {2 if r.paired else 1} shape(s)")

    for t in data.techniques:
        problems += _check_technique(t, regions)

    conditions = {c.id: c for c in data.conditions}
    for cid in CONTRAINDICATIONS:
        c = conditions.get(cid)
        if c is None or c.effect != "stop":
            problems.append(f"condition {cid!r} must exist and stop the session")
    for c in data.conditions:
        if not c.sources:
            problems.append(f"condition {c.id!r} has no source")
        if c.effect == "cap" and c.pressure_cap is None:
            problems.append(f"condition {c.id!r} caps pressure but has no pressure_cap")
        if c.effect != "cap" and (c.pressure_cap is not None or c.avoid_tools):
            problems.append(f"condition {c.id!r} has a pressure_cap or avoid_tools but no cap")
        if c.kind != "caution" and c.effect != "stop":
            problems.append(f"condition {c.id!r} is a {c.kind} and must stop")

    f = data.facts
    if not f.min_minutes <= f.default_minutes <= f.max_minutes:
        problems.append("facts: default_minutes must lie between min_minutes and max_minutes")
    for rid in f.default_focus:
        if rid not in regions or not regions[rid].focusable:
            problems.append(f"facts: default_focus names {rid!r}, not a focus region")
    if not problems:
        problems += _check_coverage(data)
    return problems


def _check_technique(t: Technique, regions: Mapping[str, Region]) -> list[str]:
    problems = []
    for rid in t.regions:
        if rid not in regions:
            problems.append(f"technique {t.id!r} names unknown region {rid!r}")
    if t.pressure[0] > t.pressure[1]:
        problems.append(f"technique {t.id!r}: pressure range is upside down")
    if t.duration[0] > t.duration[1]:
        problems.append(f"technique {t.id!r}: duration range is upside down")
    if not t.tools:
        problems.append(f"technique {t.id!r} names no tool")
    if "self" in t.modes and not t.start_position_self:
        problems.append(f"technique {t.id!r} is for self mode but has no start_position_self")
    if "partner" in t.modes and not t.start_position_partner:
        problems.append(f"technique {t.id!r} is for partner mode but has no start_position_partner")
    if len(t.motion.path) < 2:
        problems.append(f"technique {t.id!r}: motion path needs at least two points")
    if "finish" in t.phases and "top to bottom" not in t.cues.start:
        problems.append(f"technique {t.id!r} finishes but its cue does not say 'top to bottom'")
    return problems


def _check_coverage(data: CatalogueData) -> list[str]:
    """Every step the planner can ask for must have a technique, even with knuckles ruled out."""
    problems = []
    needs: list[tuple[Phase, str, range]] = [
        ("warm-up", "whole-back", range(1, 3)),
        ("strokes", "whole-back", range(1, 4)),
        ("finish", "whole-back", range(1, 3)),
    ]
    needs += [("focus", r.id, range(1, r.max_pressure + 1)) for r in data.regions if r.focusable]
    for phase, region, levels in needs:
        for mode in MODES:
            usable = [
                t
                for t in data.techniques
                if phase in t.phases
                and mode in t.modes
                and region in t.regions
                and t.tools[0] != "knuckles"
            ]
            missing = [
                p for p in levels if not any(t.pressure[0] <= p <= t.pressure[1] for t in usable)
            ]
            if missing:
                problems.append(
                    f"no {phase} technique for {region!r} in {mode} mode at pressure "
                    f"{', '.join(map(str, missing))}"
                )
    return problems
