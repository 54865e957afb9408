"""Workflow-level report pieces: what a new user meets before and after a run."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from wmtransfer.validation import brief_schema_error

REPO = Path(__file__).resolve().parents[1]
SCHEMA = str(REPO / "schemas" / "config.schema.yaml")


def test_the_install_brings_what_snakemake_report_and_the_aggregates_need():
    """`snakemake --report` needs pygments, which Snakemake does not install; the README's plain
    `pip install -e .` must bring it (not only the test extra)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = {dep.split(">")[0].split("=")[0].split("<")[0].strip().lower() for dep in project["dependencies"]}
    assert {"pygments", "rliable", "imageio"} <= names


def _error(config: dict) -> str:
    with pytest.raises(WorkflowError) as info:
        validate(config, SCHEMA)
    return brief_schema_error(info.value)


def test_a_misspelled_key_gets_a_few_lines_not_the_schema():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["sedds"] = config.pop("seeds")
    message = _error(config)
    assert len(message.splitlines()) <= 6, message
    assert "'sedds' was unexpected" in message and "did you mean 'seeds'?" in message
    assert "at the top level" in message and "$schema" not in message
    nested = yaml.safe_load((REPO / "config.yaml").read_text())
    nested["report"] = {"n_bot": 100}
    message = _error(nested)
    assert "(at report)" in message and "did you mean 'n_boot'?" in message
    wrong = yaml.safe_load((REPO / "config.yaml").read_text())
    wrong["conditions"] = ["scratch", "fine_tune"]
    message = _error(wrong)
    assert "(at conditions/1)" in message and "Valid values: scratch, finetune" in message


def test_the_snakefile_uses_the_short_message_and_prints_where_the_findings_are():
    text = (REPO / "Snakefile").read_text()
    assert "brief_schema_error" in text and "onsuccess:" in text and "headline_lines" in text
    assert 'report: "rules/captions/workflow.rst"' in text
