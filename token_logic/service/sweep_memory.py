"""What one run of a shard's sweep tells the next: how many runs in a row deferred due logins.

One run deferring some logins is the schedule working (the next run takes them first); runs
deferring them one after another mean the shard cannot keep up, and a person must act (more
shards, see docs how-it-works.md). Telling the two apart needs memory across runs, and runs of
one scheduler job land on any instance, so it is kept where every instance looks: a small
document in the token store per shard, beside the token documents
(``tokens/.kakao-token-sweep-3-of-10.json``; a dot-name is never a TOKEN_OBJECT, and a new N
starts afresh). It is written only when it changes: by a run that deferred for lack of time
(the count grows), and deleted by the first run after them that did not. A run like the one
before it that deferred nothing reads it once and writes nothing.

It only ever adds an alert: when it cannot be read or written, the run is answered all the same,
counting as if it were the first.
"""

from __future__ import annotations

import json
import logging
import posixpath

from ..budget import Deadline
from ..checks import json_object
from ..errors import DeadlineReached, StorageError, WriteConflict
from ..log import log_event
from ..storage.protocol import TokenStore, template_prefix
from .shards import Shard
from .sweep import RefreshOutcome, out_of_time

_NAME = ".kakao-token-sweep-{index}-of-{count}.json"


def memory_name(template: str, shard: Shard) -> str:
    """Where ``shard``'s memory of TOKEN_OBJECT ``template``'s sweeps is kept."""
    folder = posixpath.dirname(template_prefix(template))
    return posixpath.join(folder, _NAME.format(index=shard.index, count=shard.count))


def remember_run(
    store: TokenStore,
    template: str,
    shard: Shard,
    outcomes: list[RefreshOutcome],
    now: int,
    deadline: Deadline,
) -> int:
    """Record this run of ``shard``; how many runs in a row, this one included, deferred due
    logins for lack of time (0 when this one deferred none)."""
    late = sum(1 for outcome in outcomes if out_of_time(outcome))
    return _remember(store, memory_name(template, shard), late, now, deadline)


def _remember(store: TokenStore, name: str, late: int, now: int, deadline: Deadline) -> int:
    runs = 1 if late else 0
    try:
        stored = store.read(name, deadline)
        if stored is None:
            if late:
                store.write(name, _state(runs, now, now, late), None, deadline)
            return runs
        before, since = _previous(stored.data)
        if not late:
            store.delete(name, stored.version, deadline)
            return 0
        runs = before + 1
        store.write(name, _state(runs, since or now, now, late), stored.version, deadline)
    except WriteConflict:  # another run of this shard wrote meanwhile: this count stands
        pass
    except (StorageError, DeadlineReached):
        log_event(logging.WARNING, "could not keep the sweep's memory of deferrals", document=name)
    return runs


def _state(runs: int, since: int, now: int, late: int) -> bytes:
    state = {"deferred_runs": runs, "since": since, "last_run": now, "last_deferred": late}
    return json.dumps(state, sort_keys=True).encode()


def _previous(data: bytes) -> tuple[int, int]:
    """(runs, since) as stored; (0, 0) when it is not a state (edited by hand): start again."""
    state = json_object(data)
    if state is None:
        return 0, 0
    runs, since = state.get("deferred_runs"), state.get("since")
    if not (isinstance(runs, int) and isinstance(since, int)):
        return 0, 0
    return runs, since
