"""A study file's text read as plain data, whatever the file holds: UTF-8 text, YAML without
tags, numbers as people write them, and no alias that expands past ``MAX_NODES`` (a YAML
"billion laughs" file is a few hundred bytes that expand to 10^9 values: PyYAML shares them,
but every walk over them, a message quoting them included, would not end).
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

import yaml

from sweep.errors import SpecError

MAX_NODES = 100_000  # values a study file may expand to: a grid of 10,000 values is ~10,000
MAX_MESSAGE = 400  # characters of an error line; a longer one quotes a value too long to show


class _StudyLoader(yaml.SafeLoader):
    """``yaml.safe_load``, but numbers read as people write them (and YAML 1.2 reads them).

    YAML 1.1, which PyYAML follows, reads a float only with a dot and a signed exponent:
    ``1e-3``, ``5E-4``, ``1.0e3`` and ``-.5`` would be strings, and a study refused for them.
    """


_StudyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+"
               r"|\.[0-9_]+(?:[eE][-+]?[0-9]+)?)$"),
    list("-+0123456789."),
)


def read_text(path: Path) -> str:
    """The file's text; one line naming the file and the byte where it is not UTF-8."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(f"{path}: not UTF-8 text (byte {err.start}: "
                        f"{err.object[err.start:err.start + 1]!r}); save the study file "
                        "as UTF-8") from None


def parse_yaml(text: str, source: str) -> object:
    """Plain data from YAML ``text`` (None for an empty document).

    Raises:
        SpecError: invalid YAML, a tag (python objects and the like), more than
            ``MAX_NODES`` values once aliases are expanded, or nesting too deep to read.
    """
    loader = _StudyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {})
        if size > MAX_NODES:
            raise SpecError(f"{source}: the YAML expands to more than {MAX_NODES:,} values "
                            "(aliases of aliases); study files are small plain data")
        return loader.construct_document(node)
    except yaml.constructor.ConstructorError as err:
        assert err.problem_mark is not None  # the safe constructor marks each of its errors
        raise SpecError(
            f"{source}: line {err.problem_mark.line + 1}: YAML tag not allowed "
            f"({err.problem.split(' ')[-1] if err.problem else 'python object'}); "
            "study files are plain data"
        ) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", err)
        raise SpecError(f"{source}: {where}invalid YAML ({problem})") from None
    except RecursionError:
        raise SpecError(f"{source}: the YAML is nested too deeply to read") from None
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values ``node`` stands for with its aliases expanded; each shared node is
    counted once per use but measured once (``sizes``), so a bomb is measured in a moment."""
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = 1  # a node that holds itself (a recursive alias) counts once
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(key, sizes) + _expanded_size(value, sizes)
                       for key, value in node.value)
    else:
        size = 1
    sizes[id(node)] = size
    return size


def cut(message: str) -> str:
    """A message cut to ``MAX_MESSAGE`` characters (the value it quotes is what is long):
    one line stays one readable line."""
    if len(message) <= MAX_MESSAGE:
        return message
    return message[:MAX_MESSAGE] + f" … ({len(message):,} characters in all)"


def what_is(path: Path) -> str:
    """What ``path`` is, where it is not what was expected: "does not exist", or "is a FIFO
    (named pipe)", "is a character device" (``/dev/zero``), ... (reading one would hang or
    never end)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "does not exist" + (" (a broken symbolic link)" * path.is_symlink())
    except OSError as err:
        return f"cannot be read ({err.strerror})"
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISREG, "a file"),
             (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return "is " + next((kind for test, kind in kinds if test(mode)), "not a file or folder")
