"""The CLI driven as a person would: every command, every bad input the issue names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from backrub.cli.main import make_app

if TYPE_CHECKING:
    from pathlib import Path

    from backrub.core.catalogue import Catalogue

runner = CliRunner()


def run(catalogue: Catalogue, *args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(
        make_app(catalogue), list(args), input=input, env={"COLUMNS": "200"}, terminal_width=200
    )
    return result.exit_code, result.stdout, result.stderr


# ---- check ----------------------------------------------------------------------------------


def test_check_none_is_clear(catalogue: Catalogue) -> None:
    code, out, _ = run(catalogue, "check", "--none")
    assert code == 0
    assert "Clear" in out


def test_check_pregnancy_stops_with_reason_advice_and_source(catalogue: Catalogue) -> None:
    code, out, _ = run(catalogue, "check", "--has", "pregnancy")
    assert code == 3
    assert "Stop" in out and "Pregnancy" in out
    assert "prenatal" in out  # what to do instead
    assert "NCCIH" in out  # where the guidance comes from


def test_check_red_flag_says_see_a_doctor(catalogue: Catalogue) -> None:
    code, out, _ = run(catalogue, "check", "--has", "night-pain")
    assert code == 3
    assert "See a doctor first" in out
    assert "NHS" in out


def test_check_caution_shows_change_and_source(catalogue: Catalogue) -> None:
    code, out, _ = run(
        catalogue, "check", "--has", "osteoporosis", "--has", "sunburn-or-rash=shoulders"
    )
    assert code == 0
    assert "Caution" in out
    assert "level 2 or less" in out and "no knuckles" in out
    assert "Skips the tops of the shoulders" in out
    assert "Mayo Clinic" in out


def test_check_json(catalogue: Catalogue) -> None:
    code, out, _ = run(catalogue, "check", "--has", "blood-thinners", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["verdict"] == "caution"
    assert data["pressure_cap"] == 2
    assert data["reasons"][0]["sources"][0]["name"].startswith("NCCIH")


def test_check_interactive_asks_one_by_one(catalogue: Catalogue) -> None:
    questions = list(catalogue.conditions.values())
    # "no" to everything but the recent injury, which asks for the area.
    answers = []
    for c in questions:
        if c.id == "recent-injury":
            answers += ["y", "elbow", "lower-back"]
        else:
            answers.append("n")
    code, out, _ = run(catalogue, "check", input="\n".join(answers) + "\n")
    assert code == 0, out
    assert out.count("[y/N]") == len(questions)
    assert "Unknown area 'elbow'" in out
    assert "Skips the lower back" in out


def test_check_interactive_stops_asking_at_a_stop(catalogue: Catalogue) -> None:
    code, out, _ = run(catalogue, "check", input="y\n")
    assert code == 3
    assert out.count("[y/N]") == 1
    assert "Open wounds" in out


def test_check_interactive_without_answers_is_bad_input(catalogue: Catalogue) -> None:
    code, _, err = run(catalogue, "check", input="")
    assert code == 2
    assert "use --has or --none" in err


def test_check_help_lists_every_condition_id(catalogue: Catalogue) -> None:
    code, out, _ = run(catalogue, "check", "--help")
    assert code == 0
    for condition_id in catalogue.conditions:
        assert condition_id in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--has", "headache"], "Unknown condition 'headache'; choose from: open-wounds"),
        (["--has", "recent-injury"], "recent-injury needs the area"),
        (["--has", "pregnancy", "--none"], "either --none or --has"),
    ],
)
def test_check_bad_input(catalogue: Catalogue, args: list[str], message: str) -> None:
    code, _, err = run(catalogue, "check", *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


# ---- plan -----------------------------------------------------------------------------------


def test_plan_json_contract(catalogue: Catalogue) -> None:
    code, out, _ = run(
        catalogue,
        "plan",
        "--minutes", "20",
        "--mode", "partner",
        "--focus", "shoulders=8",
        "--focus", "lower-back=5",
        "--pressure", "medium",
        "--json",
    )  # fmt: skip
    assert code == 0
    plan = json.loads(out)
    assert plan["mode"] == "partner" and plan["minutes"] == 20
    assert plan["total_seconds"] == 1200 == sum(s["seconds"] for s in plan["steps"])
    assert plan["safety"]["verdict"] == "clear" and plan["safety"]["reasons"] == []
    assert next(item["id"] for item in plan["setup"]) == "lights"
    keys = {"index", "phase", "region", "technique", "tool", "pressure", "seconds", "cue"}
    for i, step in enumerate(plan["steps"]):
        assert keys | {"check_in"} <= set(step)
        assert step["index"] == i
        assert step["pressure"] <= 3
    focus = {s["region"] for s in plan["steps"] if s["phase"] == "focus"}
    assert focus == {"shoulders", "lower-back"}
    assert any(s["check_in"] for s in plan["steps"])


def test_plan_text_reminds_about_the_safety_check(catalogue: Catalogue) -> None:
    code, out, _ = run(catalogue, "plan", "--focus", "between-shoulder-blades")
    assert code == 0
    assert "The live session starts with the safety check" in out
    assert "massage ball" in out  # self mode cannot reach between the shoulder blades
    assert "Dim the lights" in out


def test_plan_applies_cautions(catalogue: Catalogue) -> None:
    code, out, _ = run(
        catalogue,
        "plan", "--pressure", "deep", "--focus", "lower-back=9", "--focus", "shoulders",
        "--has", "blood-thinners", "--has", "recent-injury=shoulders", "--json",
    )  # fmt: skip
    assert code == 0
    plan = json.loads(out)
    assert max(s["pressure"] for s in plan["steps"]) <= 2
    assert "shoulders" not in {s["region"] for s in plan["steps"]}
    assert plan["safety"]["verdict"] == "caution"
    assert plan["safety_checked"] is True


def test_plan_with_stop_prints_no_plan(catalogue: Catalogue) -> None:
    code, out, _ = run(catalogue, "plan", "--has", "deep-vein-thrombosis")
    assert code == 3
    assert "Deep vein thrombosis" in out
    assert "warm-up" not in out
    code, out, _ = run(catalogue, "plan", "--has", "skin-infection", "--json")
    assert code == 3
    assert "steps" not in json.loads(out)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--minutes", "90"], "minutes must be 15 to 60"),
        (["--minutes", "14"], "minutes must be 15 to 60"),
        (["--mode", "robot"], "mode must be one of: self, partner"),
        (["--focus", "elbow=5"], "Unknown region 'elbow'; choose from: shoulders"),
        (["--focus", "whole-back"], "used for warm-up and finish"),
        (["--focus", "shoulders=11"], "tension for shoulders must be 0 to 10"),
        (["--focus", "shoulders=high"], "whole number 0 to 10"),
        (["--focus", "shoulders", "--focus", "shoulders=3"], "given twice"),
        (["--pressure", "max"], "pressure must be one of: light, medium, firm, deep"),
        (["--has", "sunburn-or-rash=elbow"], "Unknown area 'elbow'"),
    ],
)
def test_plan_bad_input(catalogue: Catalogue, args: list[str], message: str) -> None:
    code, out, err = run(catalogue, "plan", *args)
    assert code == 2
    assert message in err
    assert out == ""


def test_plan_minutes_not_a_number_exits_2(catalogue: Catalogue) -> None:
    code, _, err = run(catalogue, "plan", "--minutes", "twenty")
    assert code == 2
    assert "minutes must be a whole number 15 to 60 (got 'twenty')" in err


# ---- techniques -------------------------------------------------------------------------------


def test_techniques_library_and_card(catalogue: Catalogue) -> None:
    code, out, _ = run(catalogue, "techniques")
    assert code == 0
    for region in ("between-shoulder-blades", "lower-back"):
        assert region in out
    for technique in catalogue.techniques:
        assert technique in out
    code, out, _ = run(catalogue, "techniques", "warm-up-circles")
    assert code == 0
    t = catalogue.techniques["warm-up-circles"]
    assert " 1. " in out and "Common mistakes" in out and t.warning[:30] in out


def test_techniques_unknown_id(catalogue: Catalogue) -> None:
    code, _, err = run(catalogue, "techniques", "karate-chop")
    assert code == 2
    assert "Unknown technique 'karate-chop'; choose from: warm-up-circles" in err


# ---- the installed command, end to end ----------------------------------------------------------


def backrub(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BACKRUB_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "backrub", *args], capture_output=True, text=True, env=env
    )


def test_installed_command_exit_codes_and_catalogue_cache(tmp_path: Path) -> None:
    first = backrub(tmp_path, "plan", "--json", "--minutes", "15")
    assert first.returncode == 0, first.stderr
    assert list((tmp_path / "cache").glob("catalogue-*.pickle"))
    second = backrub(tmp_path, "plan", "--json", "--minutes", "15")
    assert second.stdout == first.stdout
    assert backrub(tmp_path, "check", "--has", "pregnancy").returncode == 3
    bad = backrub(tmp_path, "plan", "--minutes", "90")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "Error: minutes must be 15 to 60 (got 90)."


def test_techniques_json_has_full_cards(catalogue: Catalogue) -> None:
    code, out, _ = run(catalogue, "techniques", "ball-against-wall", "--json")
    assert code == 0
    data = json.loads(out)
    (card,) = data["techniques"]
    assert card["id"] == "ball-against-wall"
    assert card["motion"]["kind"] in {"circles", "glide", "knead", "press", "rake"}
    assert card["cues"]["start"]
    assert {r["id"] for r in data["regions"]} >= {"shoulders", "whole-back"}


def test_plan_help_names_every_focus_region(catalogue: Catalogue) -> None:
    code, out, _ = run(catalogue, "plan", "--help")
    assert code == 0
    flat = " ".join(out.replace("│", " ").split())
    for region in catalogue.focus_region_ids:
        assert region in flat


def test_plan_on_a_first_run_loads_no_database_and_creates_none(tmp_path: Path) -> None:
    """With no database yet there is no history to learn from: `plan` stays as quick as it
    was, and leaves nothing behind."""
    script = (
        "import sys\n"
        "sys.argv = ['backrub', 'plan', '--json']\n"
        "from backrub.cli.main import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('sqlalchemy', 'backrub.store', 'backrub.core.engine', 'rich')\n"
        "sys.stderr.write(repr(sorted(m for m in sys.modules if m.startswith(heavy))))\n"
    )
    env = {
        **os.environ,
        "BACKRUB_CACHE_DIR": str(tmp_path / "cache"),
        "BACKRUB_DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("BACKRUB_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(done.stdout)["steps"]
    assert done.stderr == "[]"
    assert not (tmp_path / "data").exists()
