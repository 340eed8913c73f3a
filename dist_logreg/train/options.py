"""The training configuration as command-line flags and flat TOML files.

The flags are generated from :class:`~dist_logreg.train.config.TrainConfig`'s fields (their
help texts are the ``--help`` strings), so a new setting is one field. Pure: no MPI, so the
supervisor can parse a train command line with the same parser.
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

from dist_logreg.collective.algorithms import COMPRESSORS, MPI_ALGORITHMS
from dist_logreg.errors import UsageError
from dist_logreg.files import MAX_FILE_BYTES, read_json, regular_file
from dist_logreg.train.config import DTYPES, FIELDS, FORMATS, RENAMED, TrainConfig
from dist_logreg.train.sampling import SAMPLINGS, SHUFFLES
from dist_logreg.train.syncmode import SYNCS
from dist_logreg.train.validation import validate
from dist_logreg.units import number_arg, whole_arg

_CHOICES = {
    "dtype": DTYPES,
    "compress": COMPRESSORS,
    "mpi_algorithm": tuple(MPI_ALGORITHMS),
    "format": FORMATS,
    "shuffle": SHUFFLES,
    "sampling": SAMPLINGS,
    "sync": SYNCS,
}
#: Fields whose flag is not their name: the flag first, then aliases that scripts use.
_FLAGS = {"cost_model": ("--cost-model", "--model")}
#: Fields whose place in the parsed arguments keeps its old name: ``args.model`` is the cost
#: model on ``train`` as on ``bench`` and ``scale``.
_DESTS = {new: old for old, new in RENAMED.items()}
_METAVARS = {
    "data": "PATH",
    "out": "DIR",
    "label_column": "COLUMN",
    "bucket_bytes": "N",
    "ranks_per_node": "K",
    "allreduce": "NAME",  # validate() checks it: hierarchical-2d:INTER is no fixed choice
    "tag": "NAME",
    "cost_model": "FILE|auto",
    "classes": "K",
    "val_data": "PATH",
    "val_fraction": "F",
    "eval_every": "N",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per config field (``--batch-size`` for ``batch_size``), plus ``--config``.

    The parser should use ``argument_default=argparse.SUPPRESS``, so that only flags
    actually given override the config file.
    """
    for name, f in FIELDS.items():
        kwargs: dict[str, Any] = {"help": _help_with_default(f)}
        annotation = str(f.type)  # the type of the config field decides the flag's type
        if annotation == "bool":
            kwargs["action"] = "store_true"
        else:
            # ASCII numbers: int() and float() took --steps ١٢, --lr ٠.٥ (fourteenth attack, P-M1)
            kwargs["type"] = (
                number_arg if "float" in annotation else whole_arg if "int" in annotation else str
            )
        if name in _CHOICES:
            choices = _CHOICES[name]
            kwargs["choices"] = choices() if callable(choices) else choices
        if name in _METAVARS:
            kwargs["metavar"] = _METAVARS[name]
        flags = _FLAGS.get(name, ("--" + name.replace("_", "-"),))
        if len(flags) > 1:
            kwargs["help"] += f" ({' '.join(flags[1:])}: the same, kept for scripts)"
        parser.add_argument(*flags, dest=_DESTS.get(name, name), **kwargs)
    parser.add_argument(
        "--config",
        metavar="FILE.toml",
        help="read options from a flat TOML file; command-line flags win",
    )


def _help_with_default(f) -> str:
    text = f.metadata["help"]
    if f.default not in (None, False) and "default" not in text:
        text += f" (default: {f.default})"
    return text.replace("%", "%%")


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields given as flags."""
    given = {RENAMED.get(k, k): v for k, v in vars(args).items()}
    return {k: v for k, v in given.items() if k in FIELDS}


def peek(args: argparse.Namespace, name: str):
    """A setting needed before MPI starts: from the flags, else from --config (errors later)."""
    if vars(args).get(name) is not None:
        return vars(args)[name]
    if getattr(args, "config", None):
        try:
            return load_toml(args.config).get(name)
        except UsageError:
            return None  # reported by every rank together once MPI runs
    return None


def _expected_type(name: str) -> tuple[type, ...]:
    """Python types accepted for a config key (ints are fine where floats are expected)."""
    default = FIELDS[name].default
    annotation = str(FIELDS[name].type)
    if "bool" in annotation:
        return (bool,)
    if "float" in annotation:
        return (int, float)
    if "int" in annotation:
        return (int,)
    if isinstance(default, str) or "str" in annotation:
        return (str,)
    raise AssertionError(f"unhandled config type for {name}: {annotation}")


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a flat TOML file of config keys (names as in ``TrainConfig``; dashes allowed)."""
    path = regular_file(path, "config file")  # a FIFO would block open() forever
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise UsageError(
                f"config file {path}: expected at most {MAX_FILE_BYTES} bytes of TOML, got "
                f"{path.stat().st_size}"
            )
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise UsageError(f"config file {path}: not found") from None
    except OSError as exc:
        raise UsageError(f"config file {path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"config file {path}: expected UTF-8 text (TOML), got byte "
            f"0x{exc.object[exc.start]:02x} at offset {exc.start}"
        ) from None
    except (tomllib.TOMLDecodeError, RecursionError) as exc:  # nested 5,000 deep: L-H23
        raise UsageError(f"config file {path}: malformed TOML: {exc}") from None
    if not raw:  # an empty file ran every default (thirteenth attack, M-L2): not meant
        raise UsageError(
            f"config file {path}: expected at least one setting (key = value, TOML), got none"
        )
    return config_values(raw, f"config file {path}")


def config_values(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """The settings of a flat mapping of config keys (a TOML file, a run's ``config.json``),
    each key known (old names and dashes allowed) and of its field's type; ``UsageError``
    "WHERE: key 'k': expected int, got 'x'" else. The bounds are :func:`resolve`'s."""
    values, spelled = {}, {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        name = RENAMED.get(name, name)
        if name not in FIELDS:
            raise UsageError(
                f"{where}: unknown key {key!r}; expected one of {', '.join(sorted(FIELDS))}"
            )
        before = raw[spelled[name]] if name in spelled else None
        if before is not None and value is not None and before != value:  # (S-M5)
            raise UsageError(  # batch-size = 16 and batch_size = 32: the later won
                f"{where}: key {key!r}: given twice, spelled two ways ({spelled[name]!r} = "
                f"{before!r} and {key!r} = {value!r}); expected one"
            )
        if value is None and before is not None:
            continue  # null beside a value (a saved cost_model of null, an old run's model)
        spelled[name] = key
        values[name] = _check_type(name, value, f"{where}: key {key!r}")
    return values


def read_saved(path: str | Path) -> TrainConfig:
    """A run's ``config.json`` (what ``train`` saved), read as ``--config`` reads a file:
    every key known and of its type (JSON's ``null`` where the setting may be unset), then
    :func:`resolve`'s bounds. One ``UsageError`` line naming ``config file PATH``, the key
    and the value (a file edited since, or damaged)."""
    where = f"config file {path}"
    raw = read_json(path, "config file")
    if not isinstance(raw, dict):
        raise UsageError(
            f"{where}: expected a JSON object of a run's settings, got {type(raw).__name__}"
        )
    try:
        return resolve(config_values(raw, where), {})
    except UsageError as exc:
        text = str(exc)
        raise UsageError(text if text.startswith(where) else f"{where}: {text}") from None


def _check_type(name: str, value: Any, where: str) -> Any:
    types = _expected_type(name)
    if value is None and "None" in str(FIELDS[name].type):  # JSON's null: unset
        return value
    if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
        expected = " or ".join(t.__name__ for t in types)
        raise UsageError(f"{where}: expected {expected}, got {value!r}")
    return value


def resolve(file_values: dict[str, Any], cli_values: dict[str, Any]) -> TrainConfig:
    """Defaults < file < command line, then static validation."""
    merged = {**file_values, **cli_values}
    cfg = TrainConfig(**merged)
    validate(cfg)
    return cfg
