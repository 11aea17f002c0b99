"""The resources a decoded request names, found in one place by field name.

Every check made before a handler runs (injected faults today, the
authorizer later) asks the same question: which topics, partitions, groups
and transactional ids does this request touch? The answer comes from the
specs' field names, the same in every API: an array whose name speaks of
topics holds topic entries (``name`` / ``topic`` / ``topic_name``), an array
whose name speaks of partitions holds partition entries (``partition_index``
/ ``partition`` / ``index``) or plain partition numbers, and ``group_id`` /
``transactional_id`` fields name those resources wherever they appear.
Topics named only by ``topic_id`` (Fetch v13+, the share-group APIs) count
under their name when the caller passes a way to look ids up. A handler that
touches a new kind of resource adds it here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

_TOPIC_KEYS = ("name", "topic", "topic_name")
_PARTITION_KEYS = ("partition_index", "partition", "index")
TopicNamer = Callable[[uuid.UUID], "str | None"]  # a topic id's name, None for an unknown id


@dataclass
class Resources:
    """What one request names; ``partitions`` holds (topic, partition) pairs."""

    topics: set[str] = field(default_factory=set)
    partitions: set[tuple[str, int]] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    transactional_ids: set[str] = field(default_factory=set)


def request_resources(body: Mapping[str, Any], topic_name: TopicNamer | None = None) -> Resources:
    found = Resources()
    _walk(body, found, None, topic_name)
    return found


def _item_topic(item: Mapping[str, Any], topic_name: TopicNamer | None) -> str | None:
    """The topic one array entry names: by a name field, else by its topic id."""
    name = next((item[k] for k in _TOPIC_KEYS if isinstance(item.get(k), str) and item[k]), None)
    if name is None and topic_name is not None and isinstance(item.get("topic_id"), uuid.UUID):
        name = topic_name(item["topic_id"])
    return name


def _walk(entry: Mapping[str, Any], found: Resources, topic: str | None, namer: TopicNamer | None) -> None:
    for name, value in entry.items():
        if name.startswith("_"):
            continue
        if name in ("coordinator_keys", "key") and "key_type" in entry:
            # FindCoordinator: one key (v0-3) or many (v4+), groups for key_type 0, transactional ids for 1
            keys = [k for k in (value if isinstance(value, list) else [value]) if k]
            kind = entry["key_type"]
            (found.groups if kind == 0 else found.transactional_ids if kind == 1 else set()).update(keys)
        elif isinstance(value, str):
            if name == "group_id":
                found.groups.add(value)
            elif name in ("transactional_id", "v3_and_below_transactional_id") and value:
                # AddPartitionsToTxn carries one of its two id fields per version; the other decodes empty.
                found.transactional_ids.add(value)
        elif isinstance(value, list):
            _walk_array(name, value, found, topic, namer)


def _walk_array(name: str, items: list[Any], found: Resources, topic: str | None, namer: TopicNamer | None) -> None:
    if "topic" in name:
        for item in items:
            if isinstance(item, str):
                found.topics.add(item)
            elif isinstance(item, Mapping):
                item_topic = _item_topic(item, namer)
                if item_topic is not None:
                    found.topics.add(item_topic)
                _walk(item, found, item_topic if item_topic is not None else topic, namer)
    elif "partition" in name and topic is not None:
        for item in items:
            if isinstance(item, int):
                found.partitions.add((topic, item))
            elif isinstance(item, Mapping):
                index = next((item[k] for k in _PARTITION_KEYS if isinstance(item.get(k), int)), None)
                if index is not None:
                    found.partitions.add((topic, index))
                _walk(item, found, topic, namer)
    elif "group" in name:
        for item in items:
            if isinstance(item, str):
                found.groups.add(item)
            elif isinstance(item, Mapping):
                _walk(item, found, topic, namer)
    elif "transaction" in name and all(isinstance(item, str) for item in items):
        found.transactional_ids.update(items)
    else:
        for item in items:
            if isinstance(item, Mapping):
                _walk(item, found, topic, namer)


def split_request(body: Any, targeted: Resources, topic_name: TopicNamer | None = None) -> tuple[Any, Any]:
    """``body`` as two requests: without the targeted topics and partitions, and with only them.

    A topic is targeted whole when it is in ``targeted.topics``; otherwise only
    its partitions in ``targeted.partitions`` are. Fields other than the topic
    arrays go to both halves.
    """
    rest, only = type(body)(), type(body)()  # a Container stays one: handlers read attributes
    for name, value in body.items():
        if "topic" in name and isinstance(value, list):
            rest[name], only[name] = [], []
            for item in value:
                kept, taken = _split_topic(item, targeted, topic_name)
                if kept is not None:
                    rest[name].append(kept)
                if taken is not None:
                    only[name].append(taken)
        else:
            rest[name] = only[name] = value
    return rest, only


def _split_topic(item: Any, targeted: Resources, topic_name: TopicNamer | None) -> tuple[Any, Any]:
    topic = item if isinstance(item, str) else _item_topic(item, topic_name)
    if topic in targeted.topics:
        return None, item
    if isinstance(item, str):
        return item, None
    kept, taken = type(item)(item), type(item)(item)
    for name, value in item.items():
        if "partition" in name and isinstance(value, list):
            def hit(p: Any) -> bool:
                index = p if isinstance(p, int) else next(
                    (p[k] for k in _PARTITION_KEYS if isinstance(p.get(k), int)), None)
                return (topic, index) in targeted.partitions
            kept[name] = [p for p in value if not hit(p)]
            taken[name] = [p for p in value if hit(p)]
            if not kept[name]:
                kept = None
            if not taken[name]:
                taken = None
            return kept, taken
    return item, None


def merge_responses(answered: Mapping[str, Any], refused: Mapping[str, Any]) -> dict[str, Any]:
    """A handler's answer for part of a request joined with the error answer for the rest, topic by topic."""
    merged = dict(answered)
    for name, value in refused.items():
        if not isinstance(value, list) or not isinstance(merged.get(name), list):
            merged.setdefault(name, value)
            continue
        entries = list(merged[name])
        for entry in value:
            twin = next((e for e in entries if isinstance(e, Mapping) and isinstance(entry, Mapping)
                         and any(entry.get(k) and e.get(k) == entry[k] for k in _TOPIC_KEYS)), None)
            if twin is None:
                entries.append(entry)
            else:
                entries[entries.index(twin)] = {**twin, **{k: [*(twin.get(k) or []), *v] for k, v in entry.items()
                                                            if isinstance(v, list)}}
        merged[name] = entries
    return merged
