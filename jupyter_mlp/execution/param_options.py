"""Parameter options of `jupyter mlp run | rerun | pipeline run`: papermill's forms beside ours.

    -p NAME=VALUE     ours: True/False/None, int, float as papermill reads them; a text starting
                      with [ ( { that reads as a Python literal or JSON is that list, tuple, dict
                      or set; else the text exactly as typed (quotes are part of it). Then the
                      template's type applies: for a str parameter the text as typed is the value.
    -p NAME VALUE     papermill's rule (cli._resolve_type): True, False, None, int, float, else str
    -r NAME VALUE     the raw string
    -y YAML           a YAML mapping
    -f FILE, -P FILE  a YAML (or JSON) file; dates stay strings, as papermill loads them
    -b BASE64         a base64-encoded YAML mapping

Applied in papermill's order, each later one winning: -b, -f, -y, -p (both forms, in the order
given), -r. The CLI imports this module; the kernel never does.
"""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path
from typing import Any

from ..params import Given, ParamError, check_name, check_value, papermill_value, text_value

PARAM_FLAGS = ("-p", "--param", "--parameters")
_PAIR = "--parameter-pair"  # what `-p NAME VALUE` becomes before argparse sees it

VALUE_RULES = (
    "Values: -p NAME=VALUE reads True/False/None, ints and floats as papermill does, a text "
    "starting with [ ( { as a Python literal or JSON, anything else as the text exactly as typed "
    "(quotes included); -p NAME VALUE is papermill's rule (True/False/None/int/float, else str); "
    "-r NAME VALUE is a raw string; -y YAML, -f/-P FILE (YAML or JSON, dates stay strings) and "
    "-b BASE64 as papermill reads them. Applied in papermill's order: -b, -f, -y, -p, -r."
)
CHECK_RULES = (
    " Then, unlike papermill, each value must fit the type of the template's parameter: a str "
    "parameter takes the text as typed (-p name=5 is the string '5'), an int widens to a float, "
    "a list becomes a tuple or a set, True/False may be typed true/false, None fits anything; "
    "--no-type-check passes values as given. Names the template does not have are refused "
    "unless --allow-new-params."
)


def add_options(
    p: argparse.ArgumentParser, *, checks: bool = True, what: str = "parameter"
) -> None:
    """The parameter options on `p`; `checks` adds --allow-new-params and --no-type-check."""
    p.add_argument(*PARAM_FLAGS, action=_Item, kind="ours", dest="param_items", default=[],
                   metavar="NAME=VALUE | NAME VALUE",
                   help=f"a {what}; NAME=VALUE by our rule, NAME VALUE by papermill's (see below)")  # fmt: skip
    p.add_argument(
        _PAIR, action=_Item, kind="papermill", dest="param_items", help=argparse.SUPPRESS
    )
    p.add_argument("-r", "--parameters-raw", "--param-raw", nargs=2, action=_Item, kind="raw",
                   dest="param_items", metavar=("NAME", "VALUE"), help=f"a {what} as a raw string")  # fmt: skip
    p.add_argument("-y", "--parameters-yaml", action=_Item, kind="yaml", dest="param_items",
                   metavar="YAML", help=f"{what}s as a YAML mapping, e.g. '{{lr: 0.1, layers: [1, 2]}}'")  # fmt: skip
    p.add_argument("-f", "-P", "--parameters-file", "--param-file", action=_Item, kind="file",
                   dest="param_items", metavar="FILE", help=f"{what}s from a YAML or JSON file")  # fmt: skip
    p.add_argument("-b", "--parameters-base64", action=_Item, kind="base64", dest="param_items",
                   metavar="BASE64", help=f"{what}s as a base64-encoded YAML mapping")  # fmt: skip
    if checks:
        p.add_argument("--allow-new-params", "--allow-new", action="store_true", dest="allow_new",
                       help="accept parameter names the notebook does not have (papermill warns "
                            "and injects them; we refuse them unless this is given)")  # fmt: skip
        p.add_argument("--no-type-check", action="store_false", dest="type_check",
                       help="pass values exactly as given (papermill's way) instead of checking "
                            "them against the types of the template's parameters (an int "
                            "parameter refuses 'abc'; a str parameter takes '5' as the string)")  # fmt: skip
    epilog = VALUE_RULES + (CHECK_RULES if checks else "")
    p.epilog = f"{p.epilog}\n\n{epilog}" if p.epilog else epilog
    _install_pairs(p)


class _Item(argparse.Action):
    """Appends (kind, value) to one list, so that -p forms keep the order they were given in."""

    def __init__(self, option_strings: list[str], dest: str, kind: str, **kw: Any) -> None:
        self.kind = kind
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        items = list(getattr(namespace, self.dest, None) or [])
        items.append((self.kind, values))
        setattr(namespace, self.dest, items)


def _install_pairs(p: argparse.ArgumentParser) -> None:
    """`-p NAME VALUE` (two words, the first without '=') becomes one `--parameter-pair=NAME=VALUE`
    before argparse reads it: argparse cannot take one or two words by what they hold, and the
    attached form keeps a VALUE that starts with '-'."""
    parse = p.parse_known_args

    def parse_known_args(args: Any = None, namespace: Any = None) -> Any:
        return parse(pair_args(list(sys.argv[1:] if args is None else args)), namespace)

    p.parse_known_args = parse_known_args  # type: ignore[method-assign]


def pair_args(argv: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            out.extend(argv[i:])
            break
        if arg in PARAM_FLAGS and i + 2 < len(argv):
            name = argv[i + 1]
            if "=" not in name and not name.startswith("-"):
                out.append(f"{_PAIR}={name}={argv[i + 2]}")
                i += 3
                continue
        out.append(arg)
        i += 1
    return out


def given(args: argparse.Namespace) -> dict[str, Given]:
    """The values of the parameter options, in papermill's order of precedence."""
    items = getattr(args, "param_items", None) or []
    order = {"base64": 0, "file": 1, "yaml": 2, "ours": 3, "papermill": 3, "raw": 4}
    out: dict[str, Given] = {}
    for kind, value in sorted(items, key=lambda item: order[item[0]]):  # stable within a kind
        if kind == "ours":
            name, sep, text = value.partition("=")
            if not sep:
                raise ParamError(
                    f"-p {value!r}: expected NAME=VALUE or NAME VALUE (give a value after the name)"
                )
            out[check_name(name.strip(), f"-p {value!r}")] = Given(text_value(text), text)
        elif kind == "papermill":
            name, _, text = value.partition("=")
            out[check_name(name, f"-p {name} {text!r}")] = Given(papermill_value(text), text)
        elif kind == "raw":
            name, text = value
            out[check_name(name, f"-r {name} {text!r}")] = Given(text)
        elif kind == "yaml":
            out.update(_mapping(_yaml(value, f"-y {_short(value)}"), f"-y {_short(value)}"))
        elif kind == "file":
            out.update(load_file(value))
        elif kind == "base64":
            try:
                text = base64.b64decode(value, validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError) as exc:
                raise ParamError(f"-b {_short(value)}: not base64-encoded UTF-8: {exc}") from None
            out.update(_mapping(_yaml(text, f"-b {_short(value)}"), f"-b {_short(value)}"))
    return out


def json_values(args: argparse.Namespace) -> dict[str, Any]:
    """The values as JSON data (pipeline parameters are stored in the pipeline run as JSON):
    tuples and sets become lists, which a stage's type check turns back into its template's
    tuple or set; complex numbers and bytes are refused."""
    return {k: _plain(k, g.value) for k, g in given(args).items()}


def _plain(name: str, value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(name, v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(name, v) for v in value), key=repr)
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ParamError(f"parameter {name!r}: a pipeline parameter's dict keys are strings")
        return {k: _plain(name, v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ParamError(
        f"parameter {name!r}: a pipeline parameter is JSON data, not {type(value).__name__}"
    )


def load_file(path: str | Path) -> dict[str, Given]:
    """`-f/-P FILE`: a YAML (or JSON) mapping of names to values, read as papermill reads it."""
    where = f"-f {str(path)!r}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ParamError(f"{where}: cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ParamError(f"{where}: not UTF-8 text: {exc}") from None
    return _mapping(_yaml(text, where), where)


def _yaml(text: str, where: str) -> Any:
    import yaml  # type: ignore[import-untyped]

    try:
        return yaml.load(text, Loader=_no_dates_loader())  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise ParamError(f"{where}: not valid YAML or JSON: {exc}") from None
    except RecursionError:
        raise ParamError(f"{where}: nested too deeply") from None


_LOADER: Any = None


def _no_dates_loader() -> Any:
    """papermill's iorw.NoDatesSafeLoader: yaml's SafeLoader with dates left as strings."""
    global _LOADER
    if _LOADER is None:
        import yaml

        class NoDatesSafeLoader(yaml.SafeLoader):
            yaml_implicit_resolvers = {
                k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
                for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
            }

        _LOADER = NoDatesSafeLoader
    return _LOADER


def _mapping(data: Any, where: str) -> dict[str, Given]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParamError(
            f"{where}: expected a mapping of names to values, got {type(data).__name__}"
        )
    return {
        check_name(name, where): Given(check_value(str(name), value))
        for name, value in data.items()
    }


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")
