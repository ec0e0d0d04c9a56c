"""JSON Schemas attached to event types: checked on write, applied to payloads on ingest."""

import json
from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from app.errors import Invalid

MAX_SCHEMA_BYTES = 64 * 1024


def _pointer(path: Iterable[object]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _remote_refs(node: object, path: tuple[object, ...] = ()) -> tuple[object, ...] | None:
    """The path of the first ``$ref`` that leaves the document, if any."""
    if isinstance(node, Mapping):
        reference = node.get("$ref")
        if isinstance(reference, str) and not reference.startswith("#"):
            return (*path, "$ref")
        for key, value in node.items():
            found = _remote_refs(value, (*path, key))
            if found is not None:
                return found
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found = _remote_refs(value, (*path, index))
            if found is not None:
                return found
    return None


def check_schema(schema: Mapping[str, Any], *, pointer: str = "/schema") -> None:
    """Reject what is not a valid JSON Schema, or what would make Herald fetch other documents."""
    if len(json.dumps(schema)) > MAX_SCHEMA_BYTES:
        raise Invalid(pointer, f"is larger than {MAX_SCHEMA_BYTES} bytes")
    validator_class = validator_for(schema, default=Draft202012Validator)
    try:
        validator_class.check_schema(dict(schema))
    except SchemaError as error:
        raise Invalid(pointer + _pointer(error.path), error.message) from error
    remote = _remote_refs(schema)
    if remote is not None:
        raise Invalid(pointer + _pointer(remote), "only local references ('#/...') are allowed")


def payload_problem(schema: Mapping[str, Any] | Validator, payload: Any) -> Invalid | None:
    """The first way ``payload`` breaks ``schema`` (pointer into the payload), or None."""
    validator = (
        validator_for(schema, default=Draft202012Validator)(schema)
        if isinstance(schema, Mapping)
        else schema
    )
    error = next(iter(validator.iter_errors(payload)), None)
    if error is None:
        return None
    return Invalid("/payload" + _pointer(error.absolute_path), error.message)
