"""Merkle trees: compatibility with @openzeppelin/merkle-tree and proof soundness.

The vectors were computed with the real JS library, @openzeppelin/merkle-tree 1.0.8
(``StandardMerkleTree.of(values, types)``, ``.root``, ``.tree``, ``.getProof(i)``), run
with node 20 outside the repository.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nornir_coopchain.exceptions import ConfigError
from nornir_coopchain.model.hashing import ZERO32, keccak
from nornir_coopchain.model.merkle import MerkleTree, leaf_hash, node_hash, process_proof, verify

MANIFEST_TYPES = ("string", "string", "bytes32", "bytes32", "bytes32")
EVIDENCE_TYPES = ("string", "bytes32", "bool", "bytes32")


def h(pair: str) -> str:
    return "0x" + pair * 32


MANIFEST = [
    ["r1.site-a", "ios", h("11"), h("12"), h("13")],
    ["r2.site-a", "junos", h("21"), h("22"), h("23")],
    ["r3.site-b", "eos", h("31"), h("32"), h("33")],
    ["r4.site-b", "ios", h("41"), h("42"), h("43")],
    ["r5.site-c", "nxos", h("51"), h("52"), h("53")],
]
EVIDENCE = [
    ["r1.site-a", h("aa"), True, h("ab")],
    ["r2.site-a", h("ba"), False, h("bb")],
    ["r3.site-b", h("ca"), True, h("cb")],
]

# --- vectors from @openzeppelin/merkle-tree 1.0.8 -------------------------------------
README_ROOT = "0xd4dee0beab2d53f2cc83e567171bd2820e49898130a22622b10ead383e90bd77"
README_PROOFS = [
    ["0xb92c48e9d7abe27fd8dfd6b5dfdbfb1c9a463f80c712b66f3a5180a090cccafc"],
    ["0xeb02c421cfa48976e66dfb29120745909ea3a0f843456c263cf8f1253483e283"],
]
MANIFEST1_ROOT = "0x40b2e238f40abfb28d535a889330b54e750d5b9401e4d9508a75ff07444a5810"
MANIFEST3_ROOT = "0x88cb6e12afa96e61c33b621a60c0ee1aca9c2b50ceb772cdc4ec70611a64be68"
MANIFEST3_PROOFS = [
    [
        "0x569bea7b5b93282251da70764438048e8e72c178a86bbc8e3f2583d5904745d0",
        "0xe591732d5bd3358fa0e769ee712e1972ed0321b5b3a27389a87662ddefb23c01",
    ],
    ["0x176deb097ed19a8b69a96b1606a730ef60216a59372a65ce4c4be102d5fcbef5"],
    [
        "0x40b2e238f40abfb28d535a889330b54e750d5b9401e4d9508a75ff07444a5810",
        "0xe591732d5bd3358fa0e769ee712e1972ed0321b5b3a27389a87662ddefb23c01",
    ],
]
MANIFEST5_TREE = [
    "0xc4aeab48bff598dd52ee455cb0f48e69dd137e3fb50df093928c3df97f641e9c",
    "0x88cb6e12afa96e61c33b621a60c0ee1aca9c2b50ceb772cdc4ec70611a64be68",
    "0x31e07e827b4986830e678f4eb80764302ff58eec84a53dc798ca5a4b3c866272",
    "0x176deb097ed19a8b69a96b1606a730ef60216a59372a65ce4c4be102d5fcbef5",
    "0xe591732d5bd3358fa0e769ee712e1972ed0321b5b3a27389a87662ddefb23c01",
    "0x667bb79d532456512e3aded42bf3d89cf9a10c62adb3b4475afed558a7972009",
    "0x56d65352c747035ba9d13475e46849d9df4d8cff817075dc9c020c9e476faa74",
    "0x569bea7b5b93282251da70764438048e8e72c178a86bbc8e3f2583d5904745d0",
    "0x40b2e238f40abfb28d535a889330b54e750d5b9401e4d9508a75ff07444a5810",
]
MANIFEST5_TREE_INDICES = [8, 4, 7, 5, 6]  # dump().values[i].treeIndex
MANIFEST5_PROOF_3 = [
    "0x56d65352c747035ba9d13475e46849d9df4d8cff817075dc9c020c9e476faa74",
    "0x88cb6e12afa96e61c33b621a60c0ee1aca9c2b50ceb772cdc4ec70611a64be68",
]
EVIDENCE3_ROOT = "0x2d59a6c4df2d6faac6d2415897f9162b47a74a7d61c60bd297b43af7e0154e06"
EVIDENCE3_PROOFS = [
    ["0xc39a638ba6b8896939087067aa02fdb3c905d18ab1799bf2829f462d50a9873c"],
    [
        "0x9e54e2aab874aa7cc4181fec50bb9893a4880c81155bbeaa131d3a6c1569779e",
        "0xa0ac9a9907c64a5ac1f2a3db1d333b57a186569566a9295f0a4c556e8ea50946",
    ],
    [
        "0x36e99de86648ffe43c122755490483739e49038d6c3eec5302d94994307fea0a",
        "0xa0ac9a9907c64a5ac1f2a3db1d333b57a186569566a9295f0a4c556e8ea50946",
    ],
]


def hexes(nodes: list[bytes] | tuple[bytes, ...]) -> list[str]:
    return ["0x" + node.hex() for node in nodes]


def test_readme_vector() -> None:
    values = [
        ["0x1111111111111111111111111111111111111111", 5_000_000_000_000_000_000],
        ["0x2222222222222222222222222222222222222222", 2_500_000_000_000_000_000],
    ]
    tree = MerkleTree.of(["address", "uint256"], values)
    assert "0x" + tree.root.hex() == README_ROOT
    assert [hexes(tree.proof(i)) for i in range(2)] == README_PROOFS


def test_manifest_vectors() -> None:
    one = MerkleTree.of(MANIFEST_TYPES, MANIFEST[:1])
    assert "0x" + one.root.hex() == MANIFEST1_ROOT
    assert one.root == leaf_hash(MANIFEST_TYPES, MANIFEST[0])
    assert one.proof(0) == []
    three = MerkleTree.of(MANIFEST_TYPES, MANIFEST[:3])
    assert "0x" + three.root.hex() == MANIFEST3_ROOT
    assert [hexes(three.proof(i)) for i in range(3)] == MANIFEST3_PROOFS
    five = MerkleTree.of(MANIFEST_TYPES, MANIFEST)
    assert hexes(five.nodes) == MANIFEST5_TREE
    assert [five.nodes.index(five.leaf_hash(i)) for i in range(5)] == MANIFEST5_TREE_INDICES
    assert hexes(five.proof(3)) == MANIFEST5_PROOF_3


def test_evidence_vector_with_bool() -> None:
    tree = MerkleTree.of(EVIDENCE_TYPES, EVIDENCE)
    assert "0x" + tree.root.hex() == EVIDENCE3_ROOT
    assert [hexes(tree.proof(i)) for i in range(3)] == EVIDENCE3_PROOFS


def test_root_independent_of_value_order_and_byte_or_hex_input() -> None:
    reordered = [MANIFEST[i] for i in (4, 2, 0, 3, 1)]
    as_bytes = [[*v[:2], *(bytes.fromhex(x[2:]) for x in v[2:])] for v in MANIFEST]
    root = MerkleTree.of(MANIFEST_TYPES, MANIFEST).root
    assert MerkleTree.of(MANIFEST_TYPES, reordered).root == root
    assert MerkleTree.of(MANIFEST_TYPES, as_bytes).root == root


def test_leaf_and_node_hash_definitions() -> None:
    a, b = keccak(b"a"), keccak(b"b")
    assert node_hash(a, b) == node_hash(b, a) == keccak(min(a, b) + max(a, b))
    assert leaf_hash(["bool"], [True]) == keccak(keccak((1).to_bytes(32, "big")))


def test_empty_tree_has_zero_root() -> None:
    tree = MerkleTree.of(MANIFEST_TYPES, [])
    assert tree.root == ZERO32
    assert len(tree) == 0
    with pytest.raises(IndexError):
        tree.proof(0)


def test_every_proof_verifies_and_proof_for_matches() -> None:
    for size in range(1, len(MANIFEST) + 1):
        tree = MerkleTree.of(MANIFEST_TYPES, MANIFEST[:size])
        for index, value in enumerate(MANIFEST[:size]):
            proof = tree.proof(index)
            assert tree.proof_for(value) == proof
            assert verify(tree.root, MANIFEST_TYPES, value, proof)
            assert verify("0x" + tree.root.hex(), MANIFEST_TYPES, value, hexes(proof))
            assert process_proof(tree.leaf_hash(index), proof) == tree.root


@pytest.mark.parametrize("field", range(5))
def test_proof_fails_when_any_byte_of_a_leaf_changes(field: int) -> None:
    tree = MerkleTree.of(MANIFEST_TYPES, MANIFEST)
    value = MANIFEST[2]
    proof = tree.proof(2)
    original = value[field]
    raw = original.encode() if field < 2 else bytes.fromhex(original[2:])
    for position in range(len(raw)):
        changed = bytearray(raw)
        changed[position] ^= 0x01
        tampered: list[object] = list(value)
        tampered[field] = changed.decode() if field < 2 else bytes(changed)
        assert not verify(tree.root, MANIFEST_TYPES, tampered, proof)


def test_tampered_proof_or_flipped_bool_fails() -> None:
    tree = MerkleTree.of(EVIDENCE_TYPES, EVIDENCE)
    proof = tree.proof(1)
    assert not verify(tree.root, EVIDENCE_TYPES, [*EVIDENCE[1][:2], True, EVIDENCE[1][3]], proof)
    bad = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
    assert not verify(tree.root, EVIDENCE_TYPES, EVIDENCE[1], bad)
    assert not verify(tree.root, EVIDENCE_TYPES, EVIDENCE[1], proof[:-1])


def test_bad_input_raises_config_error() -> None:
    tree = MerkleTree.of(MANIFEST_TYPES, MANIFEST)
    with pytest.raises(ConfigError, match="not a leaf"):
        tree.proof_for(["r9", "ios", h("11"), h("12"), h("13")])
    with pytest.raises(ConfigError, match="32 bytes"):
        MerkleTree.of(["bytes32"], [[b"short"]])
    with pytest.raises(ConfigError, match="hex"):
        MerkleTree.of(["bytes32"], [["0x zz"]])
    with pytest.raises(ConfigError, match="leaf types"):
        leaf_hash(["string"], ["a", "b"])
    with pytest.raises(ConfigError, match="ABI-encode"):
        leaf_hash(["uint8"], [256])
    with pytest.raises(ConfigError, match="32 bytes"):
        verify(b"\x00" * 31, MANIFEST_TYPES, MANIFEST[0], [])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(max_size=12), st.binary(min_size=32, max_size=32), st.booleans()),
        min_size=1,
        max_size=12,
    ),
    st.data(),
)
def test_random_trees_prove_every_leaf(
    values: list[tuple[str, bytes, bool]], data: st.DataObject
) -> None:
    types = ("string", "bytes32", "bool")
    tree = MerkleTree.of(types, values)
    index = data.draw(st.integers(0, len(values) - 1))
    assert verify(tree.root, types, values[index], tree.proof(index))
    assert len(tree.nodes) == 2 * len(values) - 1
    # Leaves sit at the end of the array in ascending order (the JS library's layout).
    leaves = list(tree.nodes[len(values) - 1 :])
    assert leaves == sorted(leaves, reverse=True)


def test_a_tree_of_leaf_hashes_taken_beforehand_is_the_same_tree() -> None:
    types = ("string", "uint256")
    values = [(f"r{index}", index) for index in range(7)]
    built = MerkleTree.of(types, values)
    given = MerkleTree.of(types, values, hashes=[leaf_hash(types, value) for value in values])
    assert (given.root, given.nodes) == (built.root, built.nodes)
    with pytest.raises(ConfigError, match="6 leaf hashes for 7 values"):
        MerkleTree.of(types, values, hashes=[leaf_hash(types, v) for v in values[:6]])
