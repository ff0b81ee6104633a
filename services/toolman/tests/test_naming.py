"""Exposed tool names: valid for clients, unique, stable, and mapped back exactly."""

from __future__ import annotations

import random

from toolman.naming import MAX_LENGTH, assign, assign_names, is_valid


def test_plain_names_are_server_separator_tool() -> None:
    names = assign([("git", "git_status"), ("time", "get_current_time")], "_")
    assert names == {
        ("git", "git_status"): "git_git_status",
        ("time", "get_current_time"): "time_get_current_time",
    }
    assert assign([("git", "status")], "__") == {("git", "status"): "git__status"}


def test_every_name_is_valid_and_unique_whatever_the_input() -> None:
    awkward = [
        ("s", "a b"), ("s", "a_b"), ("s", "a/b"), ("s", "ünïcode"), ("s", "x" * 200),
        ("s", "x" * 199 + "y"), ("s", "tool:with:colons"), ("s", ""), ("long" * 8, "t" * 40),
    ]  # fmt: skip
    names = assign(awkward, "_")
    assert set(names) == set(awkward)
    assert len(set(names.values())) == len(awkward)
    for name in names.values():
        assert is_valid(name)
        assert 1 <= len(name) <= MAX_LENGTH
    assert names[("s", "a_b")] == "s_a_b"  # the one that needed no rewriting keeps its name
    assert names[("s", "a b")] != "s_a_b"


def test_names_do_not_depend_on_order() -> None:
    originals = [(f"srv{i % 3}", f"tool {i}" if i % 2 else f"tool_{i}") for i in range(40)]
    originals += [("srv0", "z" * 100), ("srv0", "z" * 101)]
    expected = assign(originals, "_")
    for seed in range(5):
        shuffled = originals[:]
        random.Random(seed).shuffle(shuffled)
        assert assign(shuffled, "_") == expected


def test_the_mapping_is_invertible() -> None:
    originals = [("a", "x y"), ("a", "x_y"), ("a_x", "y"), ("b", "q" * 90)]
    names = assign(originals, "_")
    back = {exposed: original for original, exposed in names.items()}
    assert len(back) == len(originals)
    assert all(back[names[o]] == o for o in originals)


def test_unprefixed_servers_keep_their_names_and_a_clash_names_both() -> None:
    originals = [("a", "echo"), ("b", "echo"), ("a", "only_a"), ("c", "echo"), ("x", "y")]
    names = assign_names([*originals, ("a", "x_y")], "_", unprefixed={"a", "b"})
    assert names.exposed[("a", "only_a")] == "only_a"
    assert names.exposed[("c", "echo")] == "c_echo"
    assert ("a", "echo") not in names.exposed
    assert ("b", "echo") not in names.exposed
    assert ("a", "x_y") not in names.exposed
    assert ("x", "y") not in names.exposed
    clashes = {clash.name: clash.originals for clash in names.clashes}
    assert clashes == {"echo": (("a", "echo"), ("b", "echo")), "x_y": (("a", "x_y"), ("x", "y"))}
    assert "tool 'echo' of server 'a' and tool 'echo' of server 'b'" in names.clashes[0].describe()
