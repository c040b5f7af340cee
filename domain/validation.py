"""Input errors that name the field and the problem, for every public contract (sales,
rollouts, refunds): pydantic's errors turned into `FieldError`s a person can act on."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound=BaseModel)


class FieldError(BaseModel):
    """One reason an input was rejected: which field, and what is wrong with it."""

    model_config = ConfigDict(frozen=True)

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class InvalidInput(Exception):
    """An input that cannot be accepted, with every reason found."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))


def field_path(loc: tuple[int | str, ...], root: str) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or root


def _message(err: Any, contract: str) -> str:
    kind = err["type"]
    msg: str = err["msg"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return f"is not a field of the {contract} contract"
    if kind in ("value_error", "assertion_error"):
        return msg.removeprefix("Value error, ")
    if kind in ("enum", "literal_error"):
        return f"{msg[0].lower()}{msg[1:]}, got {err['input']!r}"
    return msg[0].lower() + msg[1:]


def field_errors(exc: ValidationError, root: str) -> list[FieldError]:
    return [
        FieldError(field=field_path(e["loc"], root), message=_message(e, root))
        for e in exc.errors()
    ]


def load_settings_file(model: type[M], path: str | Path, what: str) -> M:
    """A configuration model from a TOML or JSON file; every problem is a ValueError that says
    which file and which key (unknown keys are refused)."""
    p = Path(path)
    try:
        text = p.read_text()
        data = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
        return model.model_validate(data)
    except OSError as e:
        raise ValueError(f"{what} {p}: cannot read: {e.strerror}") from e
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{what} {p}: malformed: {e}") from e
    except ValidationError as e:
        problems = "; ".join(str(err) for err in field_errors(e, what))
        raise ValueError(f"{what} {p}: {problems}") from e
