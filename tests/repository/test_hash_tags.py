"""Hash tags: how the cache and the entity repository keep what one script touches in one cluster slot."""

from __future__ import annotations

import pytest

from neuroglia.data.redis.cache.keyspace import KeySpace
from neuroglia.data.redis.core.keys import has_hash_tag, one_slot_prefix
from neuroglia.data.redis.integration.entity_repository import EntityModel
from tests.support.domain import Customer


@pytest.mark.parametrize(
    ("name", "tagged"),
    [
        ("menu", False),
        ("{menu}", True),
        ("menu:{eu}:x", True),
        ("{}menu", False),  # an empty tag hashes the whole key
        ("{}{menu}", False),  # only the first '{' counts
        ("menu}{", False),
        ("{menu", False),
        ("a{b}c", True),
    ],
)
def test_the_cluster_rule_for_hash_tags(name: str, tagged: bool) -> None:
    assert has_hash_tag(name) is tagged


def test_a_prefix_becomes_a_hash_tag_unless_it_holds_one() -> None:
    assert one_slot_prefix("menu") == "{menu}"
    assert one_slot_prefix("menu:{eu}") == "menu:{eu}"


def test_a_cache_on_a_cluster_keeps_every_key_in_its_namespace_slot() -> None:
    plain = KeySpace("menu", "app:")
    clustered = KeySpace("menu", "app:", one_slot=True)
    assert plain.entry("margherita") == "menu:margherita"
    assert clustered.entry("margherita") == "{menu}:margherita"
    names = [
        clustered.lease("k"),
        clustered.waiters("k"),
        clustered.wake("k", "w1"),
        clustered.tag("pizza"),
        clustered.tag_pending("pizza"),
    ]
    assert all(name.startswith("{menu}#") for name in names)
    assert clustered.tag_prefix == "app:{menu}#tag:"
    assert clustered.namespace == "menu"  # what callers and metrics see is unchanged
    assert KeySpace("menu:{eu}", "", one_slot=True).entry("k") == "menu:{eu}:k"


def test_an_entity_type_on_a_cluster_keeps_entities_and_index_in_one_slot() -> None:
    model = EntityModel(Customer, str)
    clustered = model.in_one_slot()
    assert (model.key("c1"), model.index_key) == ("customer:c1", "customer::index")
    assert (clustered.key("c1"), clustered.index_key) == ("{customer}:c1", "{customer}::index")
    assert clustered.in_one_slot() is clustered
    assert model.in_one_slot() is clustered
