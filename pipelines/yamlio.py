"""The one YAML loader of the tool: descriptors, params.yaml, pin files, ROS parameter files, dvc.lock.

Bounded: a size cap (read no further), no aliases or anchors (so nothing expands: a "billion laughs"
is refused at its first `*alias`), duplicate keys refused (YAML says they are an error; PyYAML lets
the last win), non-UTF-8 and control characters refused. Every refusal is one line naming the file
(and the line), raised as the caller's error class (exit 2 for descriptor, params and pin files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipelines.errors import DescriptorError, ModelzooError
from pipelines.fileio import read_capped

# The largest YAML file the tool reads: descriptors and params.yaml are a few KiB, dvc.lock some hundred.
MAX_YAML_BYTES = 4 << 20


class _Refused(yaml.YAMLError):
    def __init__(self, line: int, problem: str) -> None:
        super().__init__(problem)
        self.line, self.problem = line, problem


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader without aliases and without duplicate keys."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _Refused(event.start_mark.line + 1, f"alias '*{event.anchor}' refused (no anchors or aliases)")
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise _Refused(event.start_mark.line + 1, f"anchor '&{event.anchor}' refused (no anchors or aliases)")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:
                    continue  # unhashable: the constructor reports it
                if duplicate:
                    raise _Refused(key_node.start_mark.line + 1, f"duplicate key '{key}'")
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(data: bytes | str, where: str, error: type[ModelzooError] = DescriptorError) -> Any:
    """YAML text (already read) -> Python data, or `error` with one line naming `where` and the line."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise error(f"{where}: not UTF-8 text (byte {err.start}): not a YAML file") from None
    else:
        text = data
    if len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        raise error(f"{where}: larger than {MAX_YAML_BYTES >> 20} MiB: not a file this tool reads")
    try:
        return yaml.load(text, Loader=BoundedLoader)  # a SafeLoader subclass
    except _Refused as err:
        raise error(f"{where}: line {err.line}: {err.problem}") from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f"line {mark.line + 1}: " if mark else ""
        raise error(f"{where}: {line}invalid YAML: {err.problem or err.context}") from None
    except yaml.YAMLError as err:  # ReaderError: a control character, e.g. a binary file
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise error(f"{where}: invalid YAML: {first}") from None
    except RecursionError:
        raise error(f"{where}: invalid YAML: nested too deeply") from None


def load_yaml(path: Path, where: str | None = None, error: type[ModelzooError] = DescriptorError) -> Any:
    """Read and parse one YAML file, bounded; `where` is how messages name it (default: the path)."""
    where = where or str(path)
    try:
        with open(path, "rb") as f:
            data = read_capped(f, MAX_YAML_BYTES)
    except FileNotFoundError:
        raise error(f"{where}: not found") from None
    except IsADirectoryError:
        raise error(f"{where}: is a directory, not a YAML file") from None
    except OSError as err:
        raise error(f"{where}: cannot read: {err.strerror}") from None
    if data is None:
        raise error(f"{where}: larger than {MAX_YAML_BYTES >> 20} MiB: not a file this tool reads")
    return parse_yaml(data, where, error)


class _PlainDumper(yaml.SafeDumper):
    """SafeDumper that writes a value referenced twice out twice: the loader above refuses anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(data: Any, **options: Any) -> str:
    """YAML text the tool's own loader reads back (no anchors or aliases); options as yaml.dump's."""
    return yaml.dump(data, Dumper=_PlainDumper, **options)
