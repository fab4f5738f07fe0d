"""The content of one change proposal (many devices) and of its verification evidence.

Both sides of a vote rebuild the same bytes from these models: :meth:`ProposalContent.
canonical_bytes` is the canonical JSON of a proposal, :meth:`ProposalContent.chain_bytes`
its compressed envelope (:mod:`~nornir_coopchain.model.codec`), the ``content`` calldata of
``propose``, whose keccak-256 is the ``contentHash``; :meth:`ProposalContent.manifest_root`
is the ``manifestRoot``; :meth:`EvidenceReport.evidence_root` is what ``recordVerification``
records. Hashes are ``0x`` + 64 lowercase hex digits, as in the chain layer
(:class:`MerkleTree` gives bytes).

Errors: building a model in Python raises pydantic's ``ValidationError`` (a ``ValueError``)
naming the field; :meth:`ProposalContent.from_bytes` / :meth:`ProposalContent.from_chain_bytes`
/ :meth:`EvidenceReport.from_bytes` and the ID helpers raise
:class:`~nornir_coopchain.exceptions.ConfigError`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import cached_property, lru_cache
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictBool,
    StringConstraints,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from nornir_coopchain.exceptions import ConfigError
from nornir_coopchain.model.codec import MAX_CONTENT_JSON_BYTES, decode_content, encode_content
from nornir_coopchain.model.hashing import canonical_json, keccak, to_hex32
from nornir_coopchain.model.merkle import MerkleTree, leaf_hash, verify
from nornir_coopchain.model.times import iso, to_unix

__all__ = [
    "EVIDENCE_LEAF_TYPES",
    "EVIDENCE_SCHEMA",
    "GOVERNANCE_SET_NAME",
    "MANIFEST_LEAF_TYPES",
    "PROPOSAL_SCHEMA",
    "ChangeWindow",
    "DeviceChange",
    "DeviceEvidence",
    "EvidenceProof",
    "EvidenceReport",
    "ProposalContent",
    "hash_text",
    "operator_id",
    "operator_name",
    "resource_set_id",
    "resource_set_name",
]

PROPOSAL_SCHEMA: Final = "coopchain.proposal/1"
EVIDENCE_SCHEMA: Final = "coopchain.evidence/1"
GOVERNANCE_SET_NAME: Final = "coopchain.governance"
MANIFEST_LEAF_TYPES: Final = ("string", "string", "bytes32", "bytes32", "bytes32")
"""Manifest leaf: host, platform, base_config_hash, candidate_hash, diff_hash."""
EVIDENCE_LEAF_TYPES: Final = (
    "string",
    "bytes32",
    "bytes32",
    "bytes32",
    "bytes32",
    "bool",
    "uint32",
    "uint32",
)
"""Evidence leaf: host, salt, candidate_hash, readback_hash, report_hash, compliant,
missing_lines, extra_lines (every field of :class:`DeviceEvidence`, salted)."""

_NAME_PATTERN = r"^[\x20-\x7e]{1,32}$"


def _hex32_before(value: object) -> object:
    """Accept 32 raw bytes or hex in either case; the canonical form is lowercase hex."""
    if isinstance(value, (bytes, bytearray)) and len(value) == 32:
        return to_hex32(bytes(value))
    return value.lower() if isinstance(value, str) else value


Hex32 = Annotated[
    str,
    BeforeValidator(_hex32_before),
    StringConstraints(strict=True, pattern=r"^0x[0-9a-f]{64}$"),
]
"""A 32-byte hash as ``0x`` + 64 lowercase hex digits (bytes or upper case are converted)."""
Name32 = Annotated[str, StringConstraints(strict=True, pattern=_NAME_PATTERN)]
"""1 to 32 printable ASCII characters: fits a left-aligned ``bytes32``."""
Text = Annotated[str, StringConstraints(strict=True)]
NonEmpty = Annotated[str, StringConstraints(strict=True, min_length=1)]
Uint48 = Annotated[int, Field(strict=True, ge=0, lt=2**48)]
Uint32 = Annotated[int, Field(strict=True, ge=0, lt=2**32)]

_MODEL_CONFIG = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


@lru_cache(maxsize=4096)  # a config is hashed at prepare, preflight, push and verify
def hash_text(text: str) -> str:
    """Hash a text (a config, a diff) the way both sides of a vote must.

    Line endings are normalised first: every ``"\\r\\n"`` becomes ``"\\n"``, then every
    remaining lone ``"\\r"`` becomes ``"\\n"``. Nothing else changes (no stripping, no
    trailing-newline fix-up, no Unicode normalisation). The result is UTF-8 encoded and
    hashed with keccak-256.

    Arguments:
        text: the text.

    Returns:
        The hash as ``0x`` + 64 lowercase hex digits.
    """
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    return to_hex32(keccak(normalised.encode("utf-8")))


def resource_set_id(name: str) -> bytes:
    """Encode a resource-set name as Solidity's ``bytes32("NAME")`` does.

    Arguments:
        name: 1 to 32 printable ASCII characters.

    Returns:
        The name's bytes, left-aligned and zero-padded to 32.

    Raises:
        ConfigError: when the name is empty, longer than 32 or not printable ASCII.
    """
    return _name_to_bytes32(name, "resource_set")


def resource_set_name(value: bytes) -> str:
    """Decode a ``bytes32`` resource-set ID back into its name.

    Arguments:
        value: 32 bytes as produced by :func:`resource_set_id`.

    Returns:
        The name (trailing zero bytes removed).

    Raises:
        ConfigError: when ``value`` is not a padded printable-ASCII name.
    """
    return _bytes32_to_name(value, "resource_set")


def operator_id(name: str) -> bytes:
    """Encode an operator (participant) ID such as ``"OPERATOR-A"`` as ``bytes32``.

    Arguments:
        name: 1 to 32 printable ASCII characters.

    Returns:
        The left-aligned, zero-padded 32 bytes.

    Raises:
        ConfigError: when the name is empty, longer than 32 or not printable ASCII.
    """
    return _name_to_bytes32(name, "operator_id")


def operator_name(value: bytes) -> str:
    """Decode a ``bytes32`` operator ID back into its name.

    Raises:
        ConfigError: when ``value`` is not a padded printable-ASCII name.
    """
    return _bytes32_to_name(value, "operator_id")


def _name_to_bytes32(name: str, field: str) -> bytes:
    if not 1 <= len(name) <= 32 or not all(" " <= ch <= "~" for ch in name):
        raise ConfigError(f"{name!r} is not 1 to 32 printable ASCII characters", field=field)
    return name.encode("ascii").ljust(32, b"\0")


def _bytes32_to_name(value: bytes, field: str) -> str:
    name = bytes(value).rstrip(b"\0")
    if len(value) != 32 or not name or not all(0x20 <= byte <= 0x7E for byte in name):
        raise ConfigError(f"0x{bytes(value).hex()} is not a bytes32 ASCII name", field=field)
    return name.decode("ascii")


_M = TypeVar("_M", bound="_Canonical")


class _Canonical(BaseModel):
    """A frozen model with one canonical JSON byte form."""

    model_config = _MODEL_CONFIG

    def canonical_bytes(self) -> bytes:
        """The canonical JSON of this model (every field, sorted keys, no whitespace)."""
        return canonical_json(self.model_dump(mode="json", by_alias=True))

    def content_hash(self) -> str:
        """The keccak-256 of :meth:`canonical_bytes`, as ``0x`` + 64 lowercase hex digits."""
        return to_hex32(keccak(self.canonical_bytes()))

    @classmethod
    def from_bytes(cls: type[_M], data: bytes) -> _M:
        """Parse canonical bytes, and check that they are exactly the canonical form.

        Arguments:
            data: canonical JSON as produced by :meth:`canonical_bytes`.

        Returns:
            The model.

        Raises:
            ConfigError: when the data is not valid JSON for the model (``field`` names the
                first bad field), or is valid but not canonical (other key order, spaces,
                a missing default field, upper-case hex, unsorted devices...).
        """
        try:
            parsed = cls.model_validate_json(data)
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or None
            raise ConfigError(first["msg"], source=cls.__name__, field=field) from error
        if parsed.canonical_bytes() != bytes(data):
            raise ConfigError(
                "bytes are valid but not canonical: expected sorted keys, no whitespace, every "
                "field present, lower-case hex and sorted lists",
                source=cls.__name__,
            )
        return parsed


def _sorted_unique_hosts(devices: tuple[Any, ...], what: str) -> tuple[Any, ...]:
    hosts = [device.host for device in devices]
    duplicates = sorted({host for host in hosts if hosts.count(host) > 1})
    if duplicates:
        raise ValueError(f"duplicate hosts in {what}: {', '.join(duplicates)}")
    return tuple(sorted(devices, key=lambda device: device.host))


class DeviceChange(BaseModel):
    """The change to one device: what it was made against, what it becomes, the diff."""

    model_config = _MODEL_CONFIG

    host: NonEmpty
    """The Nornir host name (inventory key) of the device."""
    platform: NonEmpty
    """The NAPALM platform (driver), e.g. ``ios``, ``junos``, ``eos``."""
    base_config_hash: Hex32
    """:func:`hash_text` of the running config the diff was computed against."""
    candidate_hash: Hex32
    """:func:`hash_text` of the rendered candidate config."""
    diff: Text
    """The unified diff shown to voters (running config → candidate)."""
    diff_hash: Hex32
    """:func:`hash_text` of ``diff``; checked on validation."""
    tenants: tuple[Name32, ...] = ()
    """Operator IDs whose stanzas the change touches (sorted, unique)."""
    replace: StrictBool = False
    """True: the candidate replaces the whole config; False: it is merged."""
    template: NonEmpty | None = None
    """The template rendered for the host, relative to the templates directory (what
    ``coopchain_render`` reports); a re-render or an apply uses it. Left out of the canonical
    JSON when None, so contents without it keep their bytes."""

    @field_validator("tenants")
    @classmethod
    def _sort_tenants(cls, tenants: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(tenants)) != len(tenants):
            raise ValueError("duplicate tenants")
        return tuple(sorted(tenants))

    @model_serializer(mode="wrap")
    def _omit_no_template(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("template") is None:
            data.pop("template", None)
        return data

    @model_validator(mode="after")
    def _check_diff_hash(self) -> DeviceChange:
        expected = hash_text(self.diff)
        if self.diff_hash != expected:
            raise ValueError(f"diff_hash {self.diff_hash} is not hash_text(diff) = {expected}")
        return self

    @classmethod
    def from_texts(
        cls,
        *,
        host: str,
        platform: str,
        running: str,
        candidate: str,
        diff: str,
        tenants: tuple[str, ...] = (),
        replace: bool = False,
    ) -> DeviceChange:
        """Build a change from the texts themselves, hashing them with :func:`hash_text`.

        Arguments:
            host: the Nornir host name.
            platform: the NAPALM platform.
            running: the running config the diff was made against.
            candidate: the rendered candidate config.
            diff: the unified diff.
            tenants: operator IDs whose stanzas the change touches.
            replace: replace (True) or merge (False).

        Returns:
            The change.

        Raises:
            ValidationError: when a field is invalid.
        """
        return cls(
            host=host,
            platform=platform,
            base_config_hash=hash_text(running),
            candidate_hash=hash_text(candidate),
            diff=diff,
            diff_hash=hash_text(diff),
            tenants=tenants,
            replace=replace,
        )

    def manifest_leaf(self) -> tuple[str, str, str, str, str]:
        """This device's manifest leaf values (see :data:`MANIFEST_LEAF_TYPES`)."""
        return (
            self.host,
            self.platform,
            self.base_config_hash,
            self.candidate_hash,
            self.diff_hash,
        )


class ChangeWindow(BaseModel):
    """When the change may be applied: ``start <= now <= end`` (unix seconds).

    ``start`` and ``end`` also accept an aware ``datetime`` or an ISO 8601 string with a
    zone (``"2030-01-31T22:00Z"``); they are kept as unix seconds. ``str()`` shows both in
    ISO 8601 UTC.
    """

    model_config = _MODEL_CONFIG

    start: Annotated[Uint48, BeforeValidator(to_unix)]
    """First second of the window (unix time; uint48 on chain)."""
    end: Annotated[Uint48, BeforeValidator(to_unix)]
    """Last second of the window (unix time; uint48 on chain); greater than ``start``."""

    def __str__(self) -> str:
        return f"{iso(self.start)} to {iso(self.end)}"

    @model_validator(mode="after")
    def _check_order(self) -> ChangeWindow:
        if self.start >= self.end:
            raise ValueError(f"window start {iso(self.start)} is not before end {iso(self.end)}")
        return self


class ProposalContent(_Canonical):
    """One change proposal on one resource set, covering one or more devices.

    ``devices`` are sorted by host on validation and hosts must be unique; ``tenants`` are
    sorted likewise. :meth:`from_bytes` accepts only the exact canonical bytes;
    :meth:`chain_bytes` / :meth:`from_chain_bytes` are the form posted on chain.
    """

    schema_: Literal["coopchain.proposal/1"] = Field(default=PROPOSAL_SCHEMA, alias="schema")
    """The content format, ``coopchain.proposal/1`` (key ``schema`` in JSON)."""
    resource_set: Name32
    """The resource-set name (1-32 printable ASCII characters, its on-chain ``bytes32``)."""
    title: NonEmpty
    """A one-line summary."""
    description: Text = ""
    """Free text: why, impact, rollback plan."""
    window: ChangeWindow
    """The change window."""
    devices: tuple[DeviceChange, ...] = Field(min_length=1)
    """The per-device changes: non-empty, unique hosts, sorted by host."""
    templates_hash: Hex32 | None = None
    """A hash over the templates the candidates were rendered from, if recorded."""
    templates_commit: str | None = Field(default=None, pattern=r"^[0-9a-f]{40}([0-9a-f]{24})?$")
    """The git commit of the templates, when they are in a clean git work tree."""
    inventory_hash: Hex32 | None = None
    """A hash over the inventory the change was planned with, if recorded."""
    created_at: Uint48
    """When the proposer created the proposal (unix seconds; not in the future on chain)."""

    @field_validator("devices")
    @classmethod
    def _sort_devices(cls, devices: tuple[DeviceChange, ...]) -> tuple[DeviceChange, ...]:
        return _sorted_unique_hosts(devices, "devices")

    def chain_bytes(self) -> bytes:
        """The ``content`` calldata to post: :meth:`canonical_bytes` in the compressed,
        versioned envelope of :func:`~nornir_coopchain.model.codec.encode_content`."""
        return self._envelope

    @cached_property
    def _envelope(self) -> bytes:
        canonical = self.canonical_bytes()
        envelope = encode_content(canonical)
        _remember(envelope, self, len(canonical))  # posted by this process: decoded as is
        return envelope

    def content_hash(self) -> str:
        """The keccak-256 of :meth:`chain_bytes`: the ``contentHash`` of this content when
        this process posts it (``0x`` + 64 lowercase hex digits).

        Content read back from the chain is bound by the hash of the bytes actually posted
        (``ProposalInfo.content_hash``), which another zlib build, or a proposal posted as
        plain JSON, may have made differently: compare that, never this, with the chain.
        """
        return to_hex32(keccak(self.chain_bytes()))

    def bytes_for_hash(self, content_hash: str) -> bytes | None:
        """Which posted form of this content hashes to ``content_hash``: :meth:`chain_bytes`,
        or :meth:`canonical_bytes` (plain JSON, what proposals carried before the envelope);
        None when neither does."""
        for raw in (self.chain_bytes(), self.canonical_bytes()):
            if to_hex32(keccak(raw)) == content_hash.lower():
                return raw
        return None

    @classmethod
    def from_chain_bytes(
        cls, data: bytes, *, max_size: int = MAX_CONTENT_JSON_BYTES
    ) -> ProposalContent:
        """Parse posted ``content`` bytes: the envelope, or plain canonical JSON.

        Arguments:
            data: the calldata's ``content`` (check its hash against the chain first).
            max_size: the largest canonical JSON accepted once decompressed, in bytes.

        Returns:
            The content.

        Raises:
            ConfigError: an unknown envelope version, a corrupt or truncated stream, JSON
                over ``max_size``, or JSON that is not exactly the canonical form.
        """
        known = _DECODED.get(data)
        if known is not None and known[1] <= max_size:
            return known[0]
        canonical = decode_content(data, max_size=max_size)
        content = cls.from_bytes(canonical)
        _remember(data, content, len(canonical))
        return content

    @property
    def device_count(self) -> int:
        """The number of devices (the request's ``deviceCount``)."""
        return len(self.devices)

    @property
    def tenants(self) -> tuple[str, ...]:
        """Every operator ID any device change touches, sorted (for the affected mask)."""
        return tuple(sorted({tenant for device in self.devices for tenant in device.tenants}))

    @cached_property
    def manifest_tree(self) -> MerkleTree:
        """The Merkle tree of the manifest leaves (:data:`MANIFEST_LEAF_TYPES`), built once."""
        return MerkleTree.of(MANIFEST_LEAF_TYPES, [d.manifest_leaf() for d in self.devices])

    def manifest_root(self) -> str:
        """The manifest tree's root as ``0x`` + 64 hex digits (the request's ``manifestRoot``)."""
        return to_hex32(self.manifest_tree.root)


_DECODED: dict[bytes, tuple[ProposalContent, int]] = {}
"""The last contents posted or read in this process, by their posted bytes, with the size of
their canonical JSON: a change is decoded (and its manifest tree built) once, not by each of
propose, apply and every voter."""


_DECODED_LOCK = threading.Lock()


def _remember(posted: bytes, content: ProposalContent, json_size: int) -> None:
    with _DECODED_LOCK:
        while len(_DECODED) >= 4:
            del _DECODED[next(iter(_DECODED))]
        _DECODED[posted] = (content, json_size)


class DeviceEvidence(BaseModel):
    """The verification of one device after the change was applied.

    Its Merkle leaf is salted: the on-chain root reveals nothing about a device's configs,
    and an operator can prove one device's entry (:class:`EvidenceProof`) without handing
    over the others'.
    """

    model_config = _MODEL_CONFIG

    host: NonEmpty
    """The Nornir host name."""
    salt: Hex32
    """32 random bytes, so the leaf cannot be guessed from known configs."""
    candidate_hash: Hex32
    """:func:`hash_text` of the approved candidate config (as in the manifest)."""
    readback_hash: Hex32
    """:func:`hash_text` of the running config read back after the change, secrets redacted."""
    compliant: StrictBool
    """The verifier's verdict: the device is configured as proposed."""
    missing_lines: Uint32 = 0
    """Candidate lines not found in the read-back config."""
    extra_lines: Uint32 = 0
    """Read-back lines not in the candidate."""
    report_hash: Hex32
    """A hash of the verifier's full report for this device."""

    @cached_property
    def leaf_hash(self) -> bytes:
        """The evidence leaf's hash (:func:`~nornir_coopchain.model.merkle.leaf_hash`), taken
        once: a run takes it where the device was verified, beside the other devices' waits."""
        return leaf_hash(EVIDENCE_LEAF_TYPES, self.evidence_leaf())

    def evidence_leaf(self) -> tuple[str, str, str, str, str, bool, int, int]:
        """This device's evidence leaf values (see :data:`EVIDENCE_LEAF_TYPES`)."""
        return (
            self.host,
            self.salt,
            self.candidate_hash,
            self.readback_hash,
            self.report_hash,
            self.compliant,
            self.missing_lines,
            self.extra_lines,
        )


class EvidenceProof(_Canonical):
    """One device's evidence and its inclusion proof against a recorded evidence root."""

    schema_: Literal["coopchain.evidence-proof/1"] = Field(
        default="coopchain.evidence-proof/1", alias="schema"
    )
    """The format, ``coopchain.evidence-proof/1`` (key ``schema`` in JSON)."""
    evidence: DeviceEvidence
    """The device's evidence entry."""
    proof: tuple[Hex32, ...]
    """Sibling hashes from the leaf up to the root."""

    def verify(self, root: str) -> bool:
        """Whether the entry is included under ``root`` (an on-chain evidence root)."""
        return verify(root, EVIDENCE_LEAF_TYPES, self.evidence.evidence_leaf(), self.proof)


class EvidenceReport(_Canonical):
    """The verification of every device of one proposal."""

    schema_: Literal["coopchain.evidence/1"] = Field(default=EVIDENCE_SCHEMA, alias="schema")
    """The report format, ``coopchain.evidence/1`` (key ``schema`` in JSON)."""
    devices: tuple[DeviceEvidence, ...] = Field(min_length=1)
    """One entry per device: non-empty, unique hosts, sorted by host."""

    @field_validator("devices")
    @classmethod
    def _sort_devices(cls, devices: tuple[DeviceEvidence, ...]) -> tuple[DeviceEvidence, ...]:
        return _sorted_unique_hosts(devices, "devices")

    @property
    def devices_ok(self) -> int:
        """The number of compliant devices."""
        return sum(1 for device in self.devices if device.compliant)

    @property
    def devices_failed(self) -> int:
        """The number of devices that failed verification."""
        return len(self.devices) - self.devices_ok

    @cached_property
    def evidence_tree(self) -> MerkleTree:
        """The Merkle tree of the evidence leaves (:data:`EVIDENCE_LEAF_TYPES`), built once."""
        return MerkleTree.of(
            EVIDENCE_LEAF_TYPES,
            [d.evidence_leaf() for d in self.devices],
            hashes=[d.leaf_hash for d in self.devices],
        )

    def evidence_root(self) -> str:
        """The evidence tree's root as ``0x`` + 64 hex digits (``recordVerification``'s root)."""
        return to_hex32(self.evidence_tree.root)

    def proof_for(self, host: str) -> EvidenceProof:
        """The inclusion proof of one host's entry (to hand to the operators it concerns).

        Raises:
            ConfigError: the host has no entry.
        """
        for index, device in enumerate(self.devices):
            if device.host == host:
                return self._proof_at(index)
        raise ConfigError(f"no evidence for host {host}", field="devices")

    def proofs(self) -> Iterator[EvidenceProof]:
        """Every device's inclusion proof, in host order."""
        return (self._proof_at(index) for index in range(len(self.devices)))

    def _proof_at(self, index: int) -> EvidenceProof:
        proof = tuple(to_hex32(node) for node in self.evidence_tree.proof(index))
        return EvidenceProof(evidence=self.devices[index], proof=proof)

    def check_covers(self, content: ProposalContent) -> None:
        """Check that this report covers exactly the proposal's devices.

        Raises:
            ConfigError: naming the hosts missing from or foreign to the report.
        """
        ours = {device.host for device in self.devices}
        theirs = {device.host for device in content.devices}
        if ours != theirs:
            missing = ", ".join(sorted(theirs - ours)) or "none"
            extra = ", ".join(sorted(ours - theirs)) or "none"
            raise ConfigError(f"missing hosts: {missing}; extra hosts: {extra}", field="devices")
