"""Merkle trees that match OpenZeppelin's ``StandardMerkleTree`` and ``MerkleProof.verify``.

A leaf is ``keccak256(bytes.concat(keccak256(abi.encode(values))))`` for the tree's leaf
types; an inner node is the keccak-256 of its two children in ascending byte order. The
tree is built exactly as ``@openzeppelin/merkle-tree`` (``StandardMerkleTree.of`` with its
default ``sortLeaves: true``) builds it: the leaf hashes are sorted ascending (stably), the
``i``-th sorted leaf is stored at ``nodes[len(nodes) - 1 - i]`` of an array of
``2n - 1`` nodes, and node ``i`` hashes nodes ``2i + 1`` and ``2i + 2``. For the same values
and types, roots, node arrays and proofs equal the JS library's.

Two cases the JS library refuses are defined here: the empty tree has root ``bytes32(0)``
(it proves nothing), and a one-leaf tree has that leaf's hash as its root (empty proofs).

``bytesN`` values (and ``bytes``) may be given as bytes or as ``0x`` hex strings; a
``bytesN`` value must be exactly N bytes long (``abi.encode`` would silently pad it).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from eth_abi.abi import encode
from eth_abi.exceptions import EncodingError

from nornir_coopchain.exceptions import ConfigError
from nornir_coopchain.model.hashing import ZERO32, keccak

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = ["MerkleTree", "leaf_hash", "node_hash", "process_proof", "verify"]

_FIXED_BYTES = re.compile(r"bytes([1-9][0-9]?)")
_HEX = re.compile(r"0x(?:[0-9a-fA-F]{2})*")


def node_hash(a: bytes, b: bytes) -> bytes:
    """Hash two nodes in sorted order (OpenZeppelin ``Hashes.commutativeKeccak256``).

    Arguments:
        a: a 32-byte node.
        b: the other 32-byte node.

    Returns:
        ``keccak256(min(a, b) ++ max(a, b))``.
    """
    return keccak(a + b if a <= b else b + a)


def leaf_hash(leaf_types: Sequence[str], value: Sequence[object]) -> bytes:
    """Hash one leaf: ``keccak256(keccak256(abi.encode(value)))``.

    Arguments:
        leaf_types: the ABI types, e.g. ``("string", "bytes32")``.
        value: one value per type.

    Returns:
        The 32-byte leaf hash.

    Raises:
        ConfigError: when ``value`` does not ABI-encode with ``leaf_types``.
    """
    if len(value) != len(leaf_types):
        raise ConfigError(f"{len(value)} values for {len(leaf_types)} leaf types", field="value")
    args = [_normalise(t, v, i) for i, (t, v) in enumerate(zip(leaf_types, value, strict=True))]
    try:
        encoded = encode(list(leaf_types), args)
    except (EncodingError, TypeError, ValueError) as error:
        raise ConfigError(f"cannot ABI-encode as {tuple(leaf_types)}: {error}") from error
    return keccak(keccak(encoded))


def process_proof(leaf: bytes, proof: Sequence[bytes | str]) -> bytes:
    """Fold a proof into the root it implies (``MerkleProof.processProof``).

    Arguments:
        leaf: the 32-byte leaf hash.
        proof: the sibling hashes from the leaf upwards, as bytes or hex.

    Returns:
        The implied 32-byte root.

    Raises:
        ConfigError: when a node is not 32 bytes.
    """
    node = _node(leaf, "leaf")
    for index, sibling in enumerate(proof):
        node = node_hash(node, _node(sibling, f"proof[{index}]"))
    return node


def verify(
    root: bytes | str,
    leaf_types: Sequence[str],
    value: Sequence[object],
    proof: Sequence[bytes | str],
) -> bool:
    """Check that ``value`` is a leaf of the tree with ``root`` (``MerkleProof.verify``).

    Arguments:
        root: the 32-byte root, as bytes or hex.
        leaf_types: the tree's ABI leaf types.
        value: the leaf's values.
        proof: its proof, as returned by :meth:`MerkleTree.proof`.

    Returns:
        True when the proof leads from the leaf to ``root``.

    Raises:
        ConfigError: when ``value`` does not encode or a node is not 32 bytes.
    """
    return process_proof(leaf_hash(leaf_types, value), proof) == _node(root, "root")


class MerkleTree:
    """A StandardMerkleTree over ABI-encoded values; build it with :meth:`of`."""

    def __init__(
        self,
        leaf_types: tuple[str, ...],
        values: tuple[tuple[object, ...], ...],
        nodes: tuple[bytes, ...],
        tree_indices: tuple[int, ...],
    ) -> None:
        """Wrap a built tree; use :meth:`of` rather than calling this."""
        self.leaf_types = leaf_types
        self.values = values
        self.nodes = nodes
        self._tree_indices = tree_indices

    @classmethod
    def of(
        cls,
        leaf_types: Sequence[str],
        values: Sequence[Sequence[object]],
        *,
        hashes: Sequence[bytes] | None = None,
    ) -> MerkleTree:
        """Build the tree of ``values`` (StandardMerkleTree.of with sorted leaves).

        Arguments:
            leaf_types: the ABI types of each leaf, e.g. ``("string", "bytes32")``.
            values: the leaves, each one value per type, in any order.
            hashes: each value's :func:`leaf_hash`, when the caller has them already.

        Returns:
            The tree; ``values`` keep their given order for :meth:`proof`.

        Raises:
            ConfigError: when a value does not ABI-encode with ``leaf_types``.
        """
        types = tuple(leaf_types)
        frozen = tuple(tuple(value) for value in values)
        if hashes is None:
            hashes = [_leaf_hash_at(types, value, index) for index, value in enumerate(frozen)]
        elif len(hashes) != len(frozen):
            raise ConfigError(f"{len(hashes)} leaf hashes for {len(frozen)} values", field="hashes")
        order = sorted(range(len(hashes)), key=hashes.__getitem__)
        size = 2 * len(hashes) - 1
        nodes: list[bytes] = [ZERO32] * max(size, 0)
        tree_indices = [0] * len(hashes)
        for leaf_index, value_index in enumerate(order):
            tree_indices[value_index] = size - 1 - leaf_index
            nodes[size - 1 - leaf_index] = hashes[value_index]
        for i in range(size - 1 - len(hashes), -1, -1):
            nodes[i] = node_hash(nodes[2 * i + 1], nodes[2 * i + 2])
        return cls(types, frozen, tuple(nodes), tuple(tree_indices))

    @property
    def root(self) -> bytes:
        """The 32-byte root; ``bytes32(0)`` for an empty tree."""
        return self.nodes[0] if self.nodes else ZERO32

    def __len__(self) -> int:
        """The number of leaves."""
        return len(self.values)

    def __iter__(self) -> Iterator[tuple[object, ...]]:
        """The leaf values in their given order."""
        return iter(self.values)

    def leaf_hash(self, index: int) -> bytes:
        """The hash of the leaf given at position ``index`` of ``values``."""
        return self.nodes[self._tree_indices[index]]

    def proof(self, index: int) -> list[bytes]:
        """Prove the leaf given at position ``index`` (JS ``tree.getProof(index)``).

        Arguments:
            index: the position of the value in the ``values`` given to :meth:`of`.

        Returns:
            The sibling hashes from the leaf upwards (empty for a one-leaf tree).

        Raises:
            IndexError: when there is no such value.
        """
        if not 0 <= index < len(self.values):
            raise IndexError(f"no leaf {index} in a tree of {len(self.values)}")
        node = self._tree_indices[index]
        proof = []
        while node > 0:
            sibling = node - 1 if node % 2 == 0 else node + 1
            proof.append(self.nodes[sibling])
            node = (node - 1) // 2
        return proof

    def proof_for(self, value: Sequence[object]) -> list[bytes]:
        """Prove a leaf by its value (JS ``tree.getProof(value)``).

        Arguments:
            value: the leaf's values.

        Returns:
            Its proof.

        Raises:
            ConfigError: when the value is not a leaf of this tree or does not encode.
        """
        wanted = leaf_hash(self.leaf_types, value)
        for index in range(len(self.values)):
            if self.leaf_hash(index) == wanted:
                return self.proof(index)
        raise ConfigError("value is not a leaf of this tree", field="value")


def _normalise(abi_type: str, value: object, index: int) -> object:
    """Turn hex strings into bytes for ``bytes``/``bytesN`` and check ``bytesN`` lengths."""
    fixed = _FIXED_BYTES.fullmatch(abi_type)
    if not fixed and abi_type != "bytes":
        return value
    if isinstance(value, str):
        value = _hex_bytes(value, f"value[{index}]")
    if fixed and isinstance(value, (bytes, bytearray)) and len(value) != int(fixed.group(1)):
        raise ConfigError(f"{abi_type} needs {fixed.group(1)} bytes, got {len(value)}")
    return value


def _node(value: bytes | str, what: str) -> bytes:
    if isinstance(value, str):
        value = _hex_bytes(value, what)
    if len(value) != 32:
        raise ConfigError(f"a Merkle node is 32 bytes, got {len(value)}", field=what)
    return bytes(value)


def _hex_bytes(text: str, what: str) -> bytes:
    if _HEX.fullmatch(text) is None:
        raise ConfigError(f"{text!r} is not 0x-prefixed hex bytes", field=what)
    return bytes.fromhex(text[2:])


def _leaf_hash_at(types: tuple[str, ...], value: Sequence[object], index: int) -> bytes:
    try:
        return leaf_hash(types, value)
    except ConfigError as error:
        raise ConfigError(str(error), field=f"values[{index}]") from error
