"""Shards: each document in exactly one, a user never moves, and each lists only its own part."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dev.fake_kakao import FakeKakao
from tests.conftest import service_over, settings_env
from tests.helpers import FakeClock, GcsEmulator
from tests.listing_index import ListingIndex, glob_pattern
from token_logic.config import Settings
from token_logic.network import new_session
from token_logic.service.shards import Shard, key_digits
from token_logic.service.sweep import RefreshOutcome, outcome_kind
from token_logic.service.token_service import TokenService
from token_logic.storage.files import FileTokenStore
from token_logic.storage.gcs import GcsTokenStore
from token_logic.storage.protocol import TokenStore
from token_logic.tokens import TokenDocument, to_json
from token_logic.wiring import build_service

DAY = 86400
TEMPLATES = ("tokens/{user_id}.json", "users/{user_id}/token.json", "{user_id}.json")
# Kakao user ids: 64-bit, 9 to 10 digits today; small ones too (tests, hand-made documents).
USER_IDS = st.one_of(
    st.integers(min_value=100_000_000, max_value=9_999_999_999),
    st.integers(min_value=0, max_value=2**63 - 1),
    st.integers(min_value=0, max_value=999),
)


def name_of(template: str, user_id: int | str) -> str:
    return template.replace("{user_id}", str(user_id))


def holders(template: str, name: str, count: int) -> list[int]:
    """The shards of ``count`` that hold ``name``: by their rule, and by their glob."""
    by_rule = [
        i for i in range(count) if (part := Shard(i, count).part(template)) and part.holds(name)
    ]
    by_glob = []
    for i in range(count):
        part = Shard(i, count).part(template)
        assert part is not None and part.glob is not None
        if glob_pattern(part.glob).fullmatch(name):
            by_glob.append(i)
    assert by_rule == by_glob, (name, count, by_rule, by_glob)
    return by_rule


def test_the_glob_stand_in_reads_globs_as_cloud_storage_does() -> None:
    """tests/listing_index.py matches globs as Cloud Storage does, on the table Google's system
    test checks against the service (googleapis/python-storage,
    test_bucket_list_blobs_w_match_glob)."""
    names = ["foo/bar", "foo/baz", "foo/foobar", "foobar"]
    table = {
        "foo*bar": ["foobar"],
        "foo**bar": ["foo/bar", "foo/foobar", "foobar"],
        "**/foobar": ["foo/foobar", "foobar"],
        "*/ba[rz]": ["foo/bar", "foo/baz"],
        "*/ba[!a-y]": ["foo/baz"],
        "**/{foobar,baz}": ["foo/baz", "foo/foobar", "foobar"],
        "foo/{foo*,*baz}": ["foo/baz", "foo/foobar"],
    }

    found = {glob: [n for n in names if glob_pattern(glob).fullmatch(n)] for glob in table}

    assert found == table


@settings(max_examples=300, deadline=None)
@given(
    user_ids=st.lists(USER_IDS, min_size=1, max_size=30),
    count=st.integers(min_value=2, max_value=99),
    template=st.sampled_from(TEMPLATES),
)
def test_each_document_is_in_exactly_one_shard(
    user_ids: list[int], count: int, template: str
) -> None:
    """For any ids and any N, every name is held by exactly one shard, and that shard's glob
    (what Cloud Storage filters by) matches it while every other shard's does not."""
    for user_id in user_ids:
        assert len(holders(template, name_of(template, user_id), count)) == 1


@settings(max_examples=100, deadline=None)
@given(user_id=USER_IDS, zeros=st.integers(min_value=1, max_value=3))
def test_a_name_written_with_leading_zeros_is_in_one_shard_too(user_id: int, zeros: int) -> None:
    """A hand-made ``tokens/007.json`` matches TOKEN_OBJECT, so it too is in exactly one shard."""
    name = name_of(TEMPLATES[0], "0" * zeros + str(user_id))
    for count in (2, 3, 4, 10, 30):
        assert len(holders(TEMPLATES[0], name, count)) == 1


@settings(max_examples=50, deadline=None)
@given(
    before=st.lists(USER_IDS, min_size=1, max_size=40, unique=True),
    after=st.lists(USER_IDS, max_size=40),
    count=st.integers(min_value=2, max_value=99),
)
def test_a_user_never_moves_as_users_come_and_go(
    before: list[int], after: list[int], count: int
) -> None:
    """A user's shard depends on its own name alone: others logging in or out change nothing."""
    template = TEMPLATES[0]

    def split(user_ids: list[int]) -> dict[int, list[int]]:
        return {u: holders(template, name_of(template, u), count) for u in user_ids}

    first = split(before)
    again = split(after + before[::-1])

    assert all(again[u] == first[u] for u in before)


@pytest.mark.parametrize("count", [2, 3, 4, 5, 7, 10, 16, 30, 99])
def test_the_split_is_even_for_kakao_like_ids(count: int) -> None:
    """Ids handed out in sequence (with gaps) spread evenly: no shard holds more than 1.15 times
    an even share. At N = 10 each holds a tenth, +-1 %."""
    user_ids = range(3_456_789_012, 3_456_789_012 + 300_000, 3)  # 100,000 ids, every third
    shards = [Shard(i, count) for i in range(count)]
    sizes = Counter(next(s.index for s in shards if s.holds_id(str(u))) for u in user_ids)

    even = len(user_ids) / count
    assert len(sizes) == count
    assert max(sizes.values()) <= 1.15 * even and min(sizes.values()) >= 0.85 * even
    if count == 10:
        assert all(abs(size - even) <= 0.01 * even for size in sizes.values())


def test_the_split_is_even_for_random_64_bit_ids() -> None:
    """Ids with uniform low digits (any large random ids) split evenly at N = 10."""
    import random

    rng = random.Random(20)  # noqa: S311 - test data, not a secret
    sizes = Counter(int(str(rng.getrandbits(63))[-1]) for _ in range(50_000))

    assert all(abs(size - 5000) < 300 for size in sizes.values())


def test_few_digits_decide_and_n_ten_is_the_last_digit() -> None:
    """k digits: 10^k a multiple of N, or at least 10 N; at N = 10 shard I is ``*I``."""
    assert [key_digits(n) for n in (1, 2, 3, 4, 5, 10, 11, 20, 25, 30, 99)] == [
        1, 1, 2, 2, 1, 1, 3, 2, 2, 3, 3,
    ]  # fmt: skip
    part = Shard(3, 10).part("tokens/{user_id}.json")
    assert part is not None and part.glob == "tokens/*3.json"
    folders = Shard(0, 4).part("users/{user_id}/token.json")
    assert folders is not None
    assert folders.glob == "users/{*[0-9][0-1],*[0-4]2,[0-9]}/token.json"


def test_one_shard_and_a_single_document_need_no_split() -> None:
    """N = 1 lists everything; a single-document TOKEN_OBJECT is shard 0's, the others hold
    nothing; a TOKEN_OBJECT with glob characters is listed by prefix and filtered here."""
    assert Shard(0, 1).part("tokens/{user_id}.json") is None
    single = [Shard(i, 3).part("kakao_token.json") for i in range(3)]
    assert [p is not None and p.holds("kakao_token.json") for p in single] == [True, False, False]
    odd = Shard(1, 10).part("a[1]/{user_id}.json")
    assert odd is not None and odd.glob is None
    assert odd.holds("a[1]/5000000001.json") and not odd.holds("a[1]/5000000002.json")


# -- each shard lists only its own part ----------------------------------------------------


@pytest.fixture
def indexed(gcs: GcsEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[ListingIndex]:
    """Cloud Storage's listing (with matchGlob) in front of the emulator."""
    with ListingIndex(gcs.url) as index:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", index.url)
        yield index


def fresh(clock: FakeClock, user_id: int) -> bytes:
    return to_json(
        TokenDocument(
            {
                "access_token": "a",
                "refresh_token": "r",
                "expires_at": clock.now() + 6 * 3600,
                "refresh_token_expires_at": clock.now() + 50 * DAY,
                "updated_at": clock.now(),
                "user_id": user_id,
            }
        )
    )


def sharded_service(
    fake_kakao: FakeKakao, clock: FakeClock, store: TokenStore, template: str, tmp_path: Path
) -> TokenService:
    return service_over(store, fake_kakao, clock, TOKEN_DIR=str(tmp_path), TOKEN_OBJECT=template)


@pytest.mark.parametrize("template", TEMPLATES[:2])
def test_each_shard_lists_only_its_own_part_from_cloud_storage(
    indexed: ListingIndex,
    gcs: GcsEmulator,
    fake_kakao: FakeKakao,
    clock: FakeClock,
    tmp_path: Path,
    template: str,
) -> None:
    """Each of 10 shards asks Cloud Storage for its glob and gets back about a tenth of the
    names; together they sweep every document once."""
    store = GcsTokenStore(gcs.new_bucket())
    service = sharded_service(fake_kakao, clock, store, template, tmp_path)
    user_ids = range(5_000_000_000, 5_000_000_000 + 7 * 200, 7)
    for user_id in user_ids:
        store.overwrite(name_of(template, user_id), fresh(clock, user_id))

    swept: list[str] = []
    for index in range(10):
        indexed.reset_counts()
        outcomes = service.sweep(shard=Shard(index, 10))
        swept += [o.name for o in outcomes]
        part = Shard(index, 10).part(template)
        assert part is not None and indexed.globs == [part.glob]  # one page, one glob
        assert indexed.names_listed == len(outcomes) == 20
        assert {outcome_kind(o) for o in outcomes} == {"skipped"}

    assert sorted(swept) == sorted(name_of(template, u) for u in user_ids)


def test_the_file_store_reads_only_its_shards_files(
    fake_kakao: FakeKakao, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Local files honour the same split: a shard reads only its own documents."""
    store = FileTokenStore(tmp_path)
    template = "users/{user_id}/token.json"
    service = sharded_service(fake_kakao, clock, store, template, tmp_path)
    for user_id in range(100, 140):
        store.overwrite(name_of(template, user_id), fresh(clock, user_id))
    read: list[str] = []
    original = Path.read_bytes

    def counting(path: Path) -> bytes:
        read.append(path.relative_to(tmp_path.resolve()).as_posix())
        return original(path)

    monkeypatch.setattr(Path, "read_bytes", counting)

    outcomes = service.sweep(shard=Shard(7, 10))

    assert (
        sorted(read)
        == sorted(o.name for o in outcomes)
        == [
            "users/107/token.json",
            "users/117/token.json",
            "users/127/token.json",
            "users/137/token.json",
        ]
    )


def test_documents_stored_before_shards_are_swept_where_they_are(
    indexed: ListingIndex, gcs: GcsEmulator, fake_kakao: FakeKakao, clock: FakeClock, tmp_path: Path
) -> None:
    """Nothing is renamed: documents written before (under the names they always had, even a
    hand-made one with leading zeros) are each swept by one shard, and logout still finds them."""
    template = "tokens/{user_id}.json"
    store = GcsTokenStore(gcs.new_bucket())
    names = [name_of(template, u) for u in (7, 42, 123_456_789, 9_876_543_210)]
    names.append("tokens/0042.json")
    for name in names:
        store.overwrite(name, fresh(clock, 1))
    clock.advance(6 * 3600)  # every access token due: the refreshes fail at the fake Kakao

    seen = Counter(o.name for i in range(4) for o in _sweep(fake_kakao, clock, store, i, 4))

    assert seen == dict.fromkeys(names, 1)
    service = sharded_service(fake_kakao, clock, store, template, tmp_path)
    service.logout(9_876_543_210)
    assert store.read(names[3]) is None and store.read(names[2]) is not None


def _sweep(
    fake: FakeKakao, clock: FakeClock, store: TokenStore, index: int, count: int
) -> list[RefreshOutcome]:
    env = settings_env(fake, TOKEN_BUCKET="b", TOKEN_OBJECT="tokens/{user_id}.json")
    service = build_service(Settings.from_env(env), session=new_session(), store=store, clock=clock)
    return service.sweep(shard=Shard(index, count))


def test_a_store_without_part_listings_is_filtered_after_listing(tmp_path: Path) -> None:
    """A store that lists only by prefix (no listing_part) still gives each shard its own."""
    from token_logic.budget import Deadline
    from token_logic.service.sweep import list_for_sweep
    from token_logic.storage.protocol import template_matches

    class PrefixOnly:
        def __init__(self) -> None:
            self.inner = FileTokenStore(tmp_path)

        def names(self, prefix: str) -> list[str]:
            return self.inner.names(prefix)

    for user_id in range(20):
        FileTokenStore(tmp_path).overwrite(f"tokens/{user_id}.json", b"{}")
    template = "tokens/{user_id}.json"

    listed = list_for_sweep(
        PrefixOnly(),  # type: ignore[arg-type]
        "tokens/",
        template_matches(template),
        Deadline.after(55, FakeClock()),
        Shard(3, 10).part(template),
    )

    assert [item.name for item in listed] == ["tokens/13.json", "tokens/3.json"]
