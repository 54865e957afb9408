"""A config that breaks the study schema, told in a few lines.

Snakemake's ``validate`` raises a ``WorkflowError`` whose text includes the whole schema (over a thousand
lines for this project) after the one line that matters. :func:`brief_schema_error` keeps that line,
where in the config it is, and what would have been valid there (with the closest names for a
misspelled key).
"""

from __future__ import annotations

import difflib
import re


def _schema_error(exc: BaseException):
    """The jsonschema ValidationError inside ``exc`` (a WorkflowError wraps it in ``args``), or None."""
    import jsonschema

    seen = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen or e is None:
            continue
        seen.add(id(e))
        if isinstance(e, jsonschema.exceptions.ValidationError):
            return e
        todo += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
        todo += [e.__cause__, e.__context__]
    return None


def brief_schema_error(exc: BaseException, what: str = "config") -> str:
    """A short message for a failed schema validation: the error, its place, the valid keys there."""
    err = _schema_error(exc)
    if err is None:
        return str(exc)
    where = "/".join(str(p) for p in err.absolute_path) or "the top level"
    lines = [f"Invalid {what}: {err.message} (at {where})."]
    properties = err.schema.get("properties") if isinstance(err.schema, dict) else None
    if err.validator == "additionalProperties" and properties:
        unexpected = re.findall(r"'([^']+)'", err.message)
        for name in unexpected:
            close = difflib.get_close_matches(name, list(properties), n=3, cutoff=0.6)
            if close:
                lines.append(f"  {name!r}: did you mean {' or '.join(repr(c) for c in close)}?")
        lines.append(f"  Valid keys there: {', '.join(sorted(properties))}.")
    elif err.validator == "enum":
        lines.append(f"  Valid values: {', '.join(map(str, err.validator_value))}.")
    lines.append("  Every key and its default: schemas/config.schema.yaml.")
    return "\n".join(lines)
