"""What the CLI asks a person, and how it shows a verdict: shared by `check`, `plan`, `start`
and `audio`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from backrub.cli.common import emit_json, fail, show
from backrub.cli.inputs import parse_tension
from backrub.core.errors import BadInput
from backrub.core.export import verdict_as_dict
from backrub.core.safety import parse_finding

if TYPE_CHECKING:
    from backrub.core.catalogue import Catalogue
    from backrub.core.models import Finding, Verdict

NO_ANSWER = "No answer was given; answer the questions, or use --has or --none."


def ask_safety_questions(catalogue: Catalogue) -> list[Finding]:
    """Ask every question in turn; stop asking at the first answer that stops the session."""
    findings: list[Finding] = []
    typer.echo("A few safety questions first. Answer for the person being massaged.\n")
    for condition in catalogue.conditions.values():
        if not typer.confirm(condition.question, default=False):
            continue
        if condition.effect == "avoid":
            findings.append(_ask_area(catalogue, condition.id))
        else:
            findings.append(parse_finding(catalogue, condition.id))
        if condition.effect == "stop":
            break
    typer.echo("")
    return findings


def _ask_area(catalogue: Catalogue, condition: str) -> Finding:
    areas = [*catalogue.focus_region_ids, "whole-back"]
    while True:
        answer = typer.prompt(f"  Which area? ({', '.join(areas)})").strip()
        try:
            return parse_finding(catalogue, f"{condition}={answer}")
        except BadInput as error:
            typer.echo(f"  {error.message}")


def answers(catalogue: Catalogue, findings: list[Finding], answered: bool) -> list[Finding]:
    """`findings` when --has or --none `answered`; else the answers to the safety questions."""
    if answered:
        return findings
    try:
        return ask_safety_questions(catalogue)
    except typer.Abort:
        fail(NO_ANSWER)


def ask_tension(question: str, given: str | None, flag: str) -> int:
    """The tension given with `flag`, else asked until the answer is a number 0 to 10."""
    if given is not None:
        return parse_tension(given, flag)
    while True:
        answer = typer.prompt(question)
        try:
            return parse_tension(answer, "tension")
        except BadInput as error:
            typer.echo(error.message)


def report_verdict(result: Verdict, json_out: bool) -> None:
    if json_out:
        emit_json(verdict_as_dict(result))
        return
    from backrub.cli import render

    show(render.verdict(result))
