"""JSON Schemas attached to event types: checked on write, applied to payloads on ingest.

``check_schema`` accepts only what can later be applied without fetching anything and without
failing:

* ``$schema``, when present, is a string naming a supported draft (4, 6, 7, 2019-09,
  2020-12); without it the schema is read as 2020-12.
* Every ``$ref`` is local: ``#`` followed by a JSON Pointer that resolves to a schema inside
  the document, or (2019-09 and later) by the name of one of its ``$anchor``s.
* ``$id`` (and draft 4's ``id``) only at the root. Below it they would open a new resource
  with its own base URI, and references could be re-based onto another host. ``$dynamicRef``
  and ``$recursiveRef`` are refused everywhere: without nested resources they add nothing
  but an evaluation path that is hard to check statically.
* At most ``MAX_SCHEMA_DEPTH`` levels of nesting, ``MAX_SCHEMA_BYTES`` of JSON, and no value
  PostgreSQL cannot store (see ``app.storable``).

These rules read every object of the document, including the data under ``enum``, ``const``,
``default`` and ``examples``: a key such as ``$id`` there is refused even though it would be
inert. That is rare, and simpler to reason about than knowing which keys hold schemas.
"""

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from jsonschema import (
    Draft4Validator,
    Draft6Validator,
    Draft7Validator,
    Draft201909Validator,
    Draft202012Validator,
)
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator

from app import pointers
from app.errors import Invalid
from app.storable import document_problem

log = logging.getLogger("herald.schemas")

MAX_SCHEMA_BYTES = 64 * 1024
# Every object or array opens a level. jsonschema recurses a few frames per level, so this
# keeps checking and applying a schema far from Python's recursion limit.
MAX_SCHEMA_DEPTH = 32

DEFAULT_DRAFT: type[Validator] = Draft202012Validator
DRAFTS: dict[str, type[Validator]] = {
    "http://json-schema.org/draft-04/schema": Draft4Validator,
    "http://json-schema.org/draft-06/schema": Draft6Validator,
    "http://json-schema.org/draft-07/schema": Draft7Validator,
    "https://json-schema.org/draft/2019-09/schema": Draft201909Validator,
    "https://json-schema.org/draft/2020-12/schema": Draft202012Validator,
}
# Keywords that give a subschema a plain name, usable as "#name".
_ANCHORS: dict[type[Validator], tuple[str, ...]] = {
    Draft201909Validator: ("$anchor",),
    Draft202012Validator: ("$anchor", "$dynamicAnchor"),
}
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")
_DYNAMIC_REFERENCES = ("$dynamicRef", "$recursiveRef")


@dataclass
class _Survey:
    """What one walk over a schema document found."""

    local_refs: list[tuple[str, str]] = field(default_factory=list)  # (pointer, "$ref" value)
    anchors: set[str] = field(default_factory=set)


def check_schema(schema: Mapping[str, Any], *, pointer: str = "/schema") -> None:
    """Reject what is not a valid JSON Schema, or what Herald could not apply on its own."""
    draft = _draft(schema, pointer)
    survey = _survey(schema, pointer, draft)
    if len(json.dumps(schema)) > MAX_SCHEMA_BYTES:
        raise Invalid(pointer, f"is larger than {MAX_SCHEMA_BYTES} bytes")
    try:
        draft.check_schema(dict(schema))
    except SchemaError as error:
        raise Invalid(pointers.join(error.path, base=pointer), error.message) from error
    for where, reference in survey.local_refs:
        if not _resolves(schema, reference, survey.anchors):
            raise Invalid(where, f"'{reference}' does not resolve to a schema in this document")


def _draft(schema: Mapping[str, Any], pointer: str) -> type[Validator]:
    if "$schema" not in schema:
        return DEFAULT_DRAFT
    named = schema["$schema"]
    where = pointers.child(pointer, "$schema")
    if not isinstance(named, str):
        raise Invalid(where, "must be a string naming a JSON Schema draft")
    draft = DRAFTS.get(named.removesuffix("#"))
    if draft is None:
        raise Invalid(where, f"must name a supported draft: {', '.join(DRAFTS)}")
    return draft


def _survey(schema: Mapping[str, Any], pointer: str, draft: type[Validator]) -> _Survey:
    """Walk the document once, iteratively: a deep one fails here, not in Python's stack."""
    found = document_problem(schema, pointer)
    if found is not None:
        raise Invalid(*found)
    identifiers = ("$id", "id") if draft is Draft4Validator else ("$id",)
    survey = _Survey()
    pending: list[tuple[object, str, int]] = [(schema, pointer, 1)]
    while pending:
        node, where, depth = pending.pop()
        if not isinstance(node, Mapping | list):
            continue
        if depth > MAX_SCHEMA_DEPTH:
            raise Invalid(where, f"nests deeper than {MAX_SCHEMA_DEPTH} levels")
        if isinstance(node, list):
            children = [(str(index), item) for index, item in enumerate(node)]
        else:
            _survey_object(node, where, is_root=depth == 1, identifiers=identifiers, into=survey)
            survey.anchors.update(
                anchor
                for keyword in _ANCHORS.get(draft, ())
                if isinstance(anchor := node.get(keyword), str)
            )
            children = list(node.items())
        # Reversed so that the first problem in document order is the one reported.
        pending.extend(
            (item, pointers.child(where, key), depth + 1) for key, item in reversed(children)
        )
    return survey


def _survey_object(
    node: Mapping[str, Any],
    where: str,
    *,
    is_root: bool,
    identifiers: tuple[str, ...],
    into: _Survey,
) -> None:
    for keyword in _DYNAMIC_REFERENCES:
        if isinstance(node.get(keyword), str):
            raise Invalid(pointers.child(where, keyword), "is not supported; use '$ref'")
    if not is_root:
        for keyword in identifiers:
            if isinstance(node.get(keyword), str):
                raise Invalid(
                    pointers.child(where, keyword),
                    "is only allowed at the root: below it, it would change what references "
                    "resolve against",
                )
    reference = node.get("$ref")
    if isinstance(reference, str):
        ref_pointer = pointers.child(where, "$ref")
        if not reference.startswith("#"):
            raise Invalid(ref_pointer, "only local references ('#/...') are allowed")
        into.local_refs.append((ref_pointer, reference))


def _resolves(schema: Mapping[str, Any], reference: str, anchors: set[str]) -> bool:
    """Whether a '#...' reference names a schema (an object or a boolean) of ``schema``."""
    fragment = reference.removeprefix("#")
    if fragment and not fragment.startswith("/"):
        return fragment in anchors
    target: object = schema
    # Percent-decoded as a URI fragment first, as the resolver used on ingest does.
    for token in pointers.tokens(unquote(fragment)):
        if isinstance(target, Mapping) and token in target:
            target = target[token]
        elif (
            isinstance(target, list) and _ARRAY_INDEX.fullmatch(token) and int(token) < len(target)
        ):
            target = target[int(token)]
        else:
            return False
    return isinstance(target, Mapping | bool)


def payload_problem(schema: Mapping[str, Any] | Validator, payload: Any) -> Invalid | None:
    """The first way ``payload`` breaks ``schema`` (pointer into the payload), or None.

    Never raises: a schema stored before today's checks, or a payload deep enough to exhaust
    the recursion of a self-referencing schema, gives a 422 rather than a failed ingest.
    """
    try:
        validator = _validator(schema) if isinstance(schema, Mapping) else schema
        error = next(iter(validator.iter_errors(payload)), None)
    except RecursionError:
        return Invalid("/payload", "nests too deeply to be checked against the event type's schema")
    except Exception:
        log.warning("an event type's schema cannot be applied", exc_info=True)
        return Invalid(
            "/payload",
            "cannot be checked: the event type's schema cannot be applied (an operator "
            "needs to fix it)",
        )
    if error is None:
        return None
    return Invalid(pointers.join(error.absolute_path, base="/payload"), error.message)


def _validator(schema: Mapping[str, Any]) -> Validator:
    named = schema.get("$schema")
    draft = DRAFTS.get(named.removesuffix("#")) if isinstance(named, str) else None
    return (draft or DEFAULT_DRAFT)(schema)
