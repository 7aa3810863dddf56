"""Command-line flags made from frozen dataclasses (CleanRL's `Args` idea, on argparse).

Each field of a dataclass becomes one flag: `learning_rate: float = 1e-4` becomes `--learning-rate`,
with the field's default and, as help, the first sentence of the string documenting the field (read
from the source with `ast`, so the configs keep their plain one-line docs). A field holding another
dataclass adds that dataclass's fields under a prefix: `dream: DreamConfig` gives `--dream-temperature`,
and so on; a prefix of "" puts them at the top. Nothing here knows a default: change it in the
dataclass and the flag follows.

Field types: int, float, str, `Literal[...]` (choices), `T | None` (the word `none` gives None), bool
(`--x` and `--no-x`), `tuple[T, ...]` (one or more values), a nested dataclass.

    flags = dataclass_flags(TrainArgs, names={"vae.learning_rate": ("--learning-rate", "--lr")})
    add_flags(parser, flags)
    values = vars(parser.parse_args(argv))
    args = build(TrainArgs, values, flags)                   # TrainArgs(..., vae=VAEConfig(...))
    command_line("python -m wmlib train", flags, values, typed_flags(flags, argv))  # the line to record

Introduced in: README.md (the command line)
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import re
import shlex
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Collection, Mapping, Sequence

from wmlib.config import SettingError

REQUIRED = object()
"""The default of a flag that has none (its field has no default)."""


@dataclasses.dataclass(frozen=True)
class Flag:
    """One flag: the field it sets (path through nested dataclasses) and how it is written."""

    path: tuple[str, ...]
    """Field names from the top dataclass down, e.g. ("dream", "temperature")."""
    options: tuple[str, ...]
    """Option strings; the first is the one recorded commands use."""
    kind: type
    """int, float, str or bool: the type of one value."""
    default: object
    """The field's default (REQUIRED when it has none)."""
    optional: bool = False
    """The field may be None (written `none`)."""
    many: bool = False
    """The field is a tuple of one or more values."""
    choices: tuple | None = None
    """The values allowed, when the field is a Literal or the command names them."""
    help: str = ""
    """The field's documentation."""
    none: str = "none"
    """How None is written (besides "none", which is always read as None)."""

    @property
    def dest(self) -> str:
        """The argparse destination: the path joined with dots."""
        return ".".join(self.path)


class FlagError(ValueError):
    """A value refused by a dataclass, with the flag that set it: `--dream-temperature: ... got inf`."""

    def __init__(self, flag: str, message: str):
        super().__init__(f"{flag}: {message}")
        self.flag, self.message = flag, message


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """{field name: the string literal right below the field} from the class's source (inherited ones too)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__[:-1]):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body
        for stmt, nxt in zip(body, body[1:], strict=False):
            if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and isinstance(nxt, ast.Expr)
                    and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
                docs[stmt.target.id] = " ".join(nxt.value.value.split())
    return docs


def first_sentence(text: str) -> str:
    """The text up to its first full stop followed by a space (or the end)."""
    match = re.match(r"(.+?\.)(\s|$)", text)
    return match.group(1) if match else text


def _unwrap(tp) -> tuple[object, bool, bool]:
    """(the base type, whether None is allowed, whether it is a tuple of such values)."""
    optional = False
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        if len(args) != 1:
            raise TypeError(f"cannot make a flag for the type {tp}")
        tp = args[0]
    if typing.get_origin(tp) is tuple:
        return typing.get_args(tp)[0], optional, True
    return tp, optional, False


def _default(field: dataclasses.Field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return REQUIRED


def dataclass_flags(cls: type, *, names: Mapping[str, Sequence[str]] = {}, prefixes: Mapping[str, str] = {},
                    choices: Mapping[str, Sequence] = {}, skip: Sequence[str] = (), overrides: Mapping[str, type] = {},
                    none_words: Mapping[str, str] = {}, _path: tuple[str, ...] = (), _prefix: str = "",
                    _defaults=None, _seen=None) -> list[Flag]:
    """The flags of `cls`'s fields, nested dataclasses included, in field order.

    names:    {dotted path: option strings} replacing the derived `--field-name` (e.g. {"out_dir": ("--out",)};
              keep the derived name first and add a short one to keep an old spelling working)
    prefixes: {dotted path of a nested dataclass: its flags' prefix} (default: its field name and a dash)
    choices:  {dotted path: allowed values} for str fields whose values the library lists
    skip:     dotted paths left out (they keep their default)
    none_words: {dotted path of an optional field: the word for None}, e.g. "sample" for a sampled end
    overrides: {dotted path of a dict field: a dataclass}: one flag per field of the dataclass, default none;
              the dict holds the ones given (e.g. M's settings that replace a world's preset)
    Every key must name a field: a misspelt one raises ValueError.
    """
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    flags: list[Flag] = []
    seen = set() if _seen is None else _seen  # every field path met, to refuse keys that name none
    for field in dataclasses.fields(cls):
        path = (*_path, field.name)
        dotted = ".".join(path)
        seen.add(dotted)
        if dotted in skip:
            continue
        default = getattr(_defaults, field.name) if _defaults is not None else _default(field)
        tp, optional, many = _unwrap(hints[field.name])
        if dotted in overrides:
            inner = dataclass_flags(overrides[dotted], skip=[k.split(".", 1)[1] for k in skip if k.startswith(dotted)])
            prefix = _prefix + prefixes.get(dotted, field.name.replace("_", "-") + "-")
            seen.update(f"{dotted}.{f.name}" for f in dataclasses.fields(overrides[dotted]))
            for f in inner:
                path_ = (*path, *f.path)
                option = "--" + (prefix + f.path[-1]).replace("_", "-")
                flags.append(dataclasses.replace(f, path=path_, options=tuple(names.get(".".join(path_), (option,))),
                                                 default=None, optional=True, help=f"{f.help} (none: the preset's)"))
            continue
        if dataclasses.is_dataclass(tp):
            if optional or many:
                raise TypeError(f"{dotted}: a nested dataclass must be a plain field, got {hints[field.name]}")
            prefix = prefixes.get(dotted, field.name.replace("_", "-") + "-")
            flags += dataclass_flags(tp, names=names, prefixes=prefixes, choices=choices, skip=skip,
                                     none_words=none_words, _path=path,
                                     _prefix=_prefix + prefix, _defaults=tp() if default is REQUIRED else default,
                                     _seen=seen)
            continue
        allowed = tuple(typing.get_args(tp)) if typing.get_origin(tp) is typing.Literal else choices.get(dotted)
        kind = type(allowed[0]) if typing.get_origin(tp) is typing.Literal else tp
        if kind not in (int, float, str, bool):
            raise TypeError(f"cannot make a flag for {dotted}: {hints[field.name]}")
        options = tuple(names.get(dotted, ("--" + (_prefix + field.name).replace("_", "-"),)))
        flags.append(Flag(path, options, kind, default, optional, many, None if allowed is None else tuple(allowed),
                          first_sentence(docs.get(field.name, "")), none_words.get(dotted, "none")))
    if not _path:
        keys = set(names) | set(prefixes) | set(choices) | set(skip) | set(overrides) | set(none_words)
        unknown = sorted(keys - seen)
        if unknown:
            raise ValueError(f"{cls.__name__} has no field {', '.join(unknown)} (named in names/prefixes/choices)")
    return flags


def _parse_value(flag: Flag):
    def parse(text: str):
        if flag.optional and text.lower() in ("none", flag.none):
            return None
        return flag.kind(text)

    parse.__name__ = flag.kind.__name__  # argparse names the type in "invalid int value: 'x'"
    return parse


def add_flags(parser: argparse.ArgumentParser, flags: Sequence[Flag]) -> None:
    """Add one argparse option per flag, its default and help taken from the flag."""
    for flag in flags:
        required = flag.default is REQUIRED
        text = flag.help.replace("%", "%%")
        if not required and not (flag.default is None and f"{flag.none}:" in text):  # "(none: ...)" says it
            text += f" (default: {_format(flag, flag.default)})".replace("%", "%%")
        kw = {"dest": flag.dest, "required": required, "help": text}
        if not required:
            kw["default"] = flag.default
        if flag.kind is bool and not flag.optional and not flag.many:
            parser.add_argument(*flag.options, action=argparse.BooleanOptionalAction, **kw)
            continue
        kw["metavar"] = flag.path[-1].upper()
        if flag.choices is not None:
            kw["metavar"] = "{" + ",".join(map(str, flag.choices)) + "}" + (f"|{flag.none}" if flag.optional else "")
        parser.add_argument(*flag.options, type=_parse_value(flag), nargs="+" if flag.many else None, **kw)


def _check_choices(flag: Flag, value) -> None:
    values = value if flag.many else (value,)
    if flag.choices is not None and any(v not in flag.choices and v is not None for v in values):
        raise FlagError(flag.options[0], f"expected one of {', '.join(map(str, flag.choices))}, got {value!r}")


def build(cls: type, values: Mapping[str, object], flags: Sequence[Flag], *, _path: tuple[str, ...] = (),
          _defaults=None):
    """An instance of `cls` from parsed values ({dest: value}); a refused value raises FlagError naming its flag."""
    by_dest = {f.dest: f for f in flags}
    kwargs = {}
    for field in dataclasses.fields(cls):
        path = (*_path, field.name)
        dotted = ".".join(path)
        tp = _unwrap(typing.get_type_hints(cls)[field.name])[0]
        if tp is dict and any(d.startswith(dotted + ".") for d in by_dest):
            kwargs[field.name] = {d.rsplit(".", 1)[1]: v for d, v in values.items()
                                  if d.startswith(dotted + ".") and d in by_dest and v is not None}
        elif dataclasses.is_dataclass(tp) and any(d.startswith(dotted + ".") for d in by_dest):
            default = getattr(_defaults, field.name) if _defaults is not None else _default(field)
            default = tp() if default is REQUIRED else default
            kwargs[field.name] = build(tp, values, flags, _path=path, _defaults=default)
        elif dotted in by_dest and dotted in values:
            value = values[dotted]
            _check_choices(by_dest[dotted], value)
            kwargs[field.name] = tuple(value) if by_dest[dotted].many and value is not None else value
    try:
        return dataclasses.replace(_defaults, **kwargs) if _defaults is not None else cls(**kwargs)
    except SettingError as exc:
        flag = by_dest.get(".".join((*_path, exc.name)))
        raise FlagError(flag.options[0] if flag else exc.name, str(exc)) from None


def _format(flag: Flag, value) -> str:
    if value is None:
        return flag.none
    if flag.many:
        return " ".join(_format(dataclasses.replace(flag, many=False), v) for v in value)
    if isinstance(value, float):  # repr round-trips exactly; "475" rather than "475.0"
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return shlex.quote(str(value))


def typed_flags(flags: Sequence[Flag], argv: Sequence[str]) -> set[str]:
    """The dests of the flags that argv spells out (`--seed 0`, `--seed=0`, `--no-half`)."""
    typed = set()
    for flag in flags:
        spellings = (*flag.options, *("--no-" + o[2:] for o in flag.options))
        if any(a == o or a.startswith(o + "=") for a in argv for o in spellings):
            typed.add(flag.dest)
    return typed


def command_line(prefix: str, flags: Sequence[Flag], values: Mapping[str, object], typed: Collection[str] = ()) -> str:
    """`prefix` and, in flag order, every flag with a value: only a switch (bool) or a none at its default is
    left out, unless it was typed (`typed`: dests). So the line reruns the same settings even after a
    default changes. Each flag is written with its first spelling, floats exactly (0.0003, 1e-05, 475).
    """
    parts = [prefix]
    for flag in flags:
        value = values[flag.dest]
        value = tuple(value) if flag.many and value is not None else value
        switch = flag.kind is bool and not flag.optional and not flag.many
        if flag.dest not in typed and value == flag.default and (value is None or switch):
            continue
        if flag.kind is bool and not flag.optional and not flag.many:
            parts.append(flag.options[0] if value else "--no-" + flag.options[0][2:])
        else:
            parts += [flag.options[0], _format(flag, value)]
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------
# Commands: a settings dataclass, how its flags are spelt, and what runs
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Command:
    """One sub-command: its settings dataclass, how its flags are spelt, and what it runs."""

    name: str
    help: str
    args: type
    """The frozen dataclass of its settings; one flag per field (nested dataclasses: per field of theirs)."""
    run: Callable[[object, str], int]
    """run(args, command_line) -> exit status; command_line is the line that ran, to record."""
    interrupted: Callable[[object], str]
    """The line printed on Ctrl-C: what was kept and how to resume."""
    names: dict = dataclasses.field(default_factory=dict)
    prefixes: dict = dataclasses.field(default_factory=dict)
    choices: dict = dataclasses.field(default_factory=dict)
    skip: tuple = ()
    overrides: dict = dataclasses.field(default_factory=dict)
    none_words: dict = dataclasses.field(default_factory=dict)

    def flags(self) -> list[Flag]:
        """This command's flags (see dataclass_flags for names, prefixes, choices, skip and overrides)."""
        return dataclass_flags(self.args, names=self.names, prefixes=self.prefixes, choices=self.choices,
                               skip=self.skip, overrides=self.overrides, none_words=self.none_words)


def build_parser(prog: str, description: str, commands: Sequence[Command]) -> argparse.ArgumentParser:
    """One sub-parser per command, its flags made from the command's dataclass."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands:  # no abbreviated flags: a recorded command spells each flag out
        add_flags(sub.add_parser(command.name, help=command.help, description=command.help, allow_abbrev=False),
                  command.flags())
    return parser


def _spelt(flags: Sequence[Flag], name: str, argv: Sequence[str]) -> str:
    """The option a refused setting came from, spelt as typed when it was (else its first spelling)."""
    matches = [f for f in flags if name in (f.dest, f.options[0])] or [f for f in flags if f.path[-1] == name]
    if len(matches) != 1:  # a name no flag (or several) could have set: say it as it is
        return name
    flag = matches[0]
    return next((o for o in argv if o in flag.options), flag.options[0])


def run_command(parser: argparse.ArgumentParser, commands: Mapping[str, Command], argv: Sequence[str]) -> int:
    """Parse argv, build the command's settings, run it; the exit status (0 done, 1 failed, 2 refused, 130 Ctrl-C).

    A refused setting (SettingError, FlagError) prints `error: --flag: message`; any other ValueError
    `error: message` (status 2); OSError and RuntimeError `error: message` (status 1); all on one line.
    """
    argv = list(argv)
    try:
        parsed = vars(parser.parse_args(argv))
    except SystemExit as exc:  # --help, or argparse refused a flag (it printed why)
        return exc.code if isinstance(exc.code, int) else 2
    command = commands[parsed.pop("command")]
    flags = command.flags()
    try:
        args = build(command.args, parsed, flags)
    except FlagError as exc:
        print(f"error: {_spelt(flags, exc.flag, argv)}: {exc.message}", file=sys.stderr)
        return 2
    try:
        line = command_line(f"{parser.prog} {command.name}", flags, parsed, typed_flags(flags, argv))
        return command.run(args, line)
    except KeyboardInterrupt:
        print(command.interrupted(args), file=sys.stderr)
        return 130
    except SettingError as exc:  # a library function refused a setting its flag set
        print(f"error: {_spelt(flags, exc.name, argv)}: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
