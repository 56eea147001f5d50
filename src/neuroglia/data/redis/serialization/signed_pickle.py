"""PickleSerializer: pickle, signed, for values that only this application writes.

Unpickling runs code chosen by whoever wrote the bytes, so a pickle read
from a shared cache is a remote-code-execution hole the moment anyone else
can write to that cache. This strategy is therefore never a default, and
every value it writes carries an HMAC-SHA256 tag that is checked, with
:func:`hmac.compare_digest`, before a single byte is unpickled.

Signed value layout (version 1)::

    b"NGPK"        magic
    0x01           format version
    0x01           algorithm label: HMAC-SHA256. Checked against the
                   configuration, never used to choose an algorithm
    key id         8 bytes: which accepted secret signed the value
    tag            32 bytes: HMAC-SHA256(secret, the 14 header bytes + payload)
    payload        pickle.dumps(value)

Inside the envelope, a large value is compressed *before* it is signed:
the payload is then a flag byte naming the compression followed by the
compressed pickle, and a reader checks the signature before it decompresses
anything (:meth:`PickleSerializer.verify` apart from
:meth:`PickleSerializer.decode`).

Key rotation: one secret signs (``secret``), every secret in
``accepted_secrets`` still verifies. The key id is derived from the secret
with HMAC, so it identifies a key without revealing anything about it.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import pickle
from collections.abc import Iterable
from typing import Any, Final

from ..exceptions import ConfigurationError, SerializationError

__all__ = ["MIN_SECRET_BYTES", "PickleSerializer"]

MIN_SECRET_BYTES: Final = 32
"""The shortest secret accepted: 256 bits, the size of the HMAC-SHA256 key."""

_MAGIC: Final = b"NGPK"
_VERSION: Final = 1
_ALG_HMAC_SHA256: Final = 1
_KEY_ID_BYTES: Final = 8
_TAG_BYTES: Final = 32
_HEADER_BYTES: Final = len(_MAGIC) + 2 + _KEY_ID_BYTES
_SIGNED_MIN: Final = _HEADER_BYTES + _TAG_BYTES
_KEY_ID_LABEL: Final = b"neuroglia-redis pickle key id v1"


class _SigningKey:
    """A secret and its id. Shows only the id, never the secret."""

    __slots__ = ("_secret", "key_id")

    def __init__(self, secret: str | bytes, what: str) -> None:
        if isinstance(secret, str):
            raw = secret.encode()
        elif isinstance(secret, bytes | bytearray):
            raw = bytes(secret)
        else:
            raise ConfigurationError(f"{what}: expected str or bytes, got {type(secret).__name__}")
        if len(raw) < MIN_SECRET_BYTES:
            raise ConfigurationError(
                f"{what}: a signing secret must be at least {MIN_SECRET_BYTES} bytes long "
                "(use secrets.token_bytes(32) or a 64-character hex string)"
            )
        self._secret = raw
        self.key_id = hmac.new(raw, _KEY_ID_LABEL, hashlib.sha256).digest()[:_KEY_ID_BYTES]

    def tag(self, header: bytes | memoryview, payload: bytes | memoryview) -> bytes:
        mac = hmac.new(self._secret, header, hashlib.sha256)
        mac.update(payload)
        return mac.digest()

    def __repr__(self) -> str:
        return f"<signing key {self.key_id.hex()}>"


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the allowed classes."""

    def __init__(self, data: bytes | memoryview, allowed: frozenset[tuple[str, str]]) -> None:
        super().__init__(io.BytesIO(data))
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._allowed:
            raise SerializationError(f"unpickling {module}.{name} is refused: it is not in allowed_classes")
        return super().find_class(module, name)


class PickleSerializer:
    """Pickle with an HMAC-SHA256 signature checked before unpickling.

    ``secret`` signs every value written; ``accepted_secrets`` lists older
    (or newer) secrets whose signatures are still accepted, for rotation.
    Secrets are ``str`` or ``bytes`` of at least 32 bytes; they never appear
    in ``repr``, ``str`` or error messages (only their derived key ids).

    ``allowed_classes`` (optional) restricts what a verified value may
    contain to those classes (plus the built-in containers and scalars that
    pickle encodes without naming a class): defence in depth should a
    secret leak.

    A value that is unsigned (a raw ``pickle.dumps``), truncated, altered,
    labelled with another algorithm, or signed by a key not accepted raises
    :class:`~neuroglia.data.redis.SerializationError` and is never passed to
    the unpickler.

    Only use it for values this application alone writes; prefer JSON or
    msgpack. See ``docs/security.md``.
    """

    name = "pickle-hmac-sha256"
    signed = True

    def __init__(
        self,
        secret: str | bytes,
        *,
        accepted_secrets: Iterable[str | bytes] = (),
        allowed_classes: Iterable[type] | None = None,
        protocol: int = pickle.DEFAULT_PROTOCOL,
    ) -> None:
        if isinstance(accepted_secrets, str | bytes):
            raise ConfigurationError("accepted_secrets: expected a list of secrets, got a single secret")
        self._signing = _SigningKey(secret, "secret")
        accepted = {self._signing.key_id: self._signing}
        for index, other in enumerate(accepted_secrets):
            key = _SigningKey(other, f"accepted_secrets[{index}]")
            accepted.setdefault(key.key_id, key)
        self._accepted: dict[bytes, _SigningKey] = accepted
        self._allowed: frozenset[tuple[str, str]] | None = None
        if allowed_classes is not None:
            names: set[tuple[str, str]] = set()
            for cls in allowed_classes:
                if not isinstance(cls, type):
                    raise ConfigurationError(f"allowed_classes: expected classes, got {type(cls).__name__}")
                names.add((cls.__module__, cls.__qualname__))
            self._allowed = frozenset(names)
        if isinstance(protocol, bool) or not isinstance(protocol, int) or not 2 <= protocol <= pickle.HIGHEST_PROTOCOL:
            raise ConfigurationError(f"protocol: must be an int in 2..{pickle.HIGHEST_PROTOCOL}, got {protocol!r}")
        self._protocol = protocol
        self._header = _MAGIC + bytes((_VERSION, _ALG_HMAC_SHA256)) + self._signing.key_id

    @property
    def key_id(self) -> str:
        """The id (hex) of the signing key: safe to log, reveals nothing about the secret."""
        return self._signing.key_id.hex()

    @property
    def accepted_key_ids(self) -> list[str]:
        """The ids (hex) of every key whose signatures are accepted, the signing key first."""
        return [key_id.hex() for key_id in self._accepted]

    def dumps(self, value: Any) -> bytes:
        """Pickle ``value`` and sign it with the signing secret."""
        return self.sign(self.encode(value))

    def loads(self, data: bytes) -> Any:
        """Verify the signature, then unpickle. Nothing unverified reaches the unpickler."""
        return self.decode(self.verify(data))

    # The four steps of dumps and loads, apart: the envelope compresses
    # between encoding and signing, so that a reader checks the signature
    # before it decompresses anything (see envelope.py).

    def encode(self, value: Any) -> bytes:
        """``value`` pickled, not signed yet."""
        try:
            return pickle.dumps(value, protocol=self._protocol)
        except (pickle.PicklingError, TypeError, AttributeError, ValueError, RecursionError) as exc:
            raise SerializationError(f"pickle cannot serialize {type(value).__name__}: {exc}") from exc

    def sign(self, body: bytes | memoryview) -> bytes:
        """``body`` with the signed header and its HMAC-SHA256 tag in front."""
        header = self._header
        return header + self._signing.tag(header, body) + body

    def verify(self, data: bytes | bytearray | memoryview) -> memoryview:
        """The body of a signed value, after every check; raises :class:`SerializationError` otherwise."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise SerializationError(f"a signed pickle must be bytes, got {type(data).__name__}")
        view = memoryview(data)
        if len(view) < _SIGNED_MIN or view[: len(_MAGIC)].tobytes() != _MAGIC:
            raise SerializationError(
                "refusing to unpickle: the value is not a signed pickle (unsigned, truncated or foreign data)"
            )
        if view[4] != _VERSION:
            raise SerializationError(f"refusing to unpickle: unsupported signed pickle version {view[4]}")
        if view[5] != _ALG_HMAC_SHA256:
            raise SerializationError(
                "refusing to unpickle: the value claims another signature algorithm than the configured "
                "HMAC-SHA256 (a digest downgrade is never accepted)"
            )
        key = self._accepted.get(bytes(view[6:_HEADER_BYTES]))
        if key is None:
            raise SerializationError(
                "refusing to unpickle: the value is signed with a key that is not accepted (retired or foreign); "
                f"accepted key ids: {self.accepted_key_ids}"
            )
        header, tag, body = view[:_HEADER_BYTES], view[_HEADER_BYTES:_SIGNED_MIN], view[_SIGNED_MIN:]
        if not hmac.compare_digest(key.tag(header, body), tag):
            raise SerializationError("refusing to unpickle: the signature does not match (altered or truncated value)")
        return body

    def decode(self, body: bytes | memoryview) -> Any:
        """Unpickle a body that :meth:`verify` returned (never call it on anything else)."""
        try:
            if self._allowed is None:
                return pickle.loads(body)
            return _RestrictedUnpickler(body, self._allowed).load()
        except SerializationError:
            raise
        except Exception as exc:  # a verified value that no longer unpickles (renamed class...)
            raise SerializationError(f"a verified pickle could not be loaded: {type(exc).__name__}: {exc}") from exc

    def __repr__(self) -> str:
        allowed = "any" if self._allowed is None else sorted(f"{m}.{n}" for m, n in self._allowed)
        return f"PickleSerializer(key_id={self.key_id!r}, accepted_key_ids={self.accepted_key_ids}, allowed={allowed})"

    __str__ = __repr__
