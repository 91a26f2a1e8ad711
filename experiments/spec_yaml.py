"""Read a sweep file's YAML as plain data, with limits, so no document can stall or fool the loader.

Why not plain `yaml.safe_load`: it accepts a ~1 KB "billion laughs" document whose aliases expand
to billions of values the moment anything serialises it, recurses until RecursionError on deep
nesting, raises ValueError on a 5,000-digit integer, and silently keeps the last of two equal
keys. Here the document is composed into nodes first and checked (size, depth, alias expansion,
recursion through aliases), duplicate keys are refused, and every failure is a `YamlRefused`
whose message names the line and the fix. Only plain data comes out (no tags that construct
objects: `SafeLoader`).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_BYTES = 256_000  # a sweep file is a few KB; the HTTP API allows the same
MAX_DEPTH = 32  # nesting of mappings and lists
MAX_VALUES = 20_000  # scalars, lists and mappings after alias expansion


class YamlRefused(ValueError):
    """The text is not a YAML document this loader accepts; the message says why and where."""


# libyaml's parser where installed (10x faster on a large document), the pure-Python one else
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """SafeLoader that refuses a mapping key given twice (YAML 1.2 requires unique keys)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults` merges, not a key
                continue
            line = key_node.start_mark.line + 1
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            try:
                first = seen.get(key)
            except TypeError as exc:  # an unhashable key (a list or mapping as key)
                raise YamlRefused(f"line {line}: a mapping key must be a plain value") from exc
            if first is not None:
                raise YamlRefused(
                    f"line {line}: key {key!r} is given twice (first on line {first}); keep one"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-untyped-call]


def decode_text(raw: bytes | str) -> str:
    """UTF-8 text of a sweep file, refusing other encodings and oversized files."""
    if isinstance(raw, str):
        if len(raw.encode("utf-8", "surrogatepass")) > MAX_BYTES:
            raise YamlRefused(f"the sweep definition is over {MAX_BYTES} bytes; a spec is a few KB")
        return raw
    if len(raw) > MAX_BYTES:
        raise YamlRefused(f"the sweep definition is over {MAX_BYTES} bytes; a spec is a few KB")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlRefused(
            f"not UTF-8 text (byte {exc.start} is {raw[exc.start : exc.start + 1]!r}); save the "
            "file as UTF-8"
        ) from exc


def load_yaml(text: str) -> Any:
    """Plain data of one YAML document; YamlRefused names the problem."""
    text = decode_text(text)
    if "\x00" in text:
        raise YamlRefused("the text contains a NUL character; a sweep file is plain text")
    loader = _UniqueKeyLoader(text)
    try:
        _check_nesting(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node)
        return loader.construct_document(node)
    except YamlRefused:
        raise
    except yaml.YAMLError as exc:
        if "nesting depth" in str(exc):  # libyaml's own limit, met before ours
            raise YamlRefused(f"values nest deeper than {MAX_DEPTH} levels") from exc
        raise YamlRefused(f"not valid YAML: {exc}") from exc
    except RecursionError as exc:
        raise YamlRefused(f"the document nests deeper than {MAX_DEPTH} levels") from exc
    except (ValueError, OverflowError) as exc:  # e.g. an integer of more than 4,300 digits
        what = "a number has too many digits" if "digits" in str(exc) else f"{exc}"
        raise YamlRefused(f"a value cannot be read: {what}") from exc
    finally:
        loader.dispose()


_OPEN = (
    yaml.BlockMappingStartToken,
    yaml.BlockSequenceStartToken,
    yaml.FlowMappingStartToken,
    yaml.FlowSequenceStartToken,
)
_CLOSE = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


def _check_nesting(text: str) -> None:
    """Refuse deep nesting from the token stream, before the (recursive) composer sees it."""
    level = 0
    for token in yaml.scan(text, Loader=_BaseLoader):
        if isinstance(token, _OPEN):
            level += 1
            if level > MAX_DEPTH:
                raise YamlRefused(
                    f"line {token.start_mark.line + 1}: values nest deeper than {MAX_DEPTH} levels"
                )
        elif isinstance(token, _CLOSE):
            level -= 1


def _check_nodes(root: Node) -> None:
    """Depth, expanded size and alias cycles of a composed document, in time linear in its nodes.

    Aliases make the node graph a DAG (or a cyclic graph); sizes are memoised per node, so a
    document whose expansion is astronomically large is measured without expanding it.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        nid = id(node)
        if children_done:
            on_path.discard(nid)
            kids = _children(node)
            size[nid] = 1 + sum(size[id(k)] for k in kids)
            depth[nid] = 1 + max((depth[id(k)] for k in kids), default=0)
            if size[nid] > MAX_VALUES:
                raise YamlRefused(
                    f"line {node.start_mark.line + 1}: the document expands to more than "
                    f"{MAX_VALUES} values (anchors and aliases repeat it); write it out plainly"
                )
            if depth[nid] > MAX_DEPTH:
                raise YamlRefused(
                    f"line {node.start_mark.line + 1}: values nest deeper than {MAX_DEPTH} levels"
                )
            continue
        if nid in size:
            continue
        if nid in on_path:
            raise YamlRefused(
                f"line {node.start_mark.line + 1}: an alias refers to a value that contains it"
            )
        on_path.add(nid)
        stack.append((node, True))
        stack.extend((k, False) for k in _children(node) if id(k) not in size)


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    assert isinstance(node, ScalarNode)
    return []
