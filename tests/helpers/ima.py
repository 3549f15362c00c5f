"""Only the kernel's part of IMA, for tests (pin34): IMA cannot run in this container. :class:`FakeImaKernel` does what
the kernel does when a file is opened for reading under a ``measure`` rule with ``ima_template=ima-ng`` and
``ima_hash=sha256``: it appends an ``ima-ng`` entry to ``<root>/sys/kernel/security/ima/binary_runtime_measurements``
in the kernel's binary format (``ima_measurements_show``: little-endian u32 PCR, SHA-1 template digest, u32 name length
and ``ima-ng``, u32 template data length, the fields ``d-ng`` = u32 length ‖ ``sha256:\\0`` ‖ file digest and ``n-ng``
= u32 length ‖ path ‖ NUL) and extends a real TPM's (swtpm's) PCR 10 in each bank with the template data hashed by that
bank's algorithm (``ima_calc_field_array_hash``; kernels ≥ 5.8), or 0xFF bytes for a violation. The first entry is
``boot_aggregate`` (SHA-256 of PCRs 0-9 of the SHA-256 bank).
Like the kernel it measures a file again only when its content changed."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

LIST = "sys/kernel/security/ima/binary_runtime_measurements"


def field(data: bytes) -> bytes:
    return struct.pack("<I", len(data)) + data


def template_data(digest: bytes, path: str, algo: str = "sha256") -> bytes:
    return field(algo.encode() + b":\0" + digest) + field(path.encode() + b"\0")


class FakeImaKernel:
    def __init__(self, tcti: str, root: Path):
        from agent.security.tpm import PcrSelection, TpmConnection
        self.tcti, self.list_path = tcti, root / LIST
        self.list_path.parent.mkdir(parents=True, exist_ok=True)
        self.list_path.write_bytes(b"")
        self._seen: dict[str, bytes] = {}
        conn = TpmConnection.get(tcti)
        try:
            pcrs = conn.read_pcrs(PcrSelection.parse("sha256:0,1,2,3,4,5,6,7,8,9"))
        finally:
            conn.release()
        self._append(template_data(hashlib.sha256(b"".join(pcrs)).digest(), "boot_aggregate"), violation=False)

    def open_for_read(self, path: Path) -> bytes:
        """The kernel's FILE_CHECK hook on an open for reading, then the read: measured if new or changed."""
        data = path.read_bytes()
        digest = hashlib.sha256(data).digest()
        if self._seen.get(str(path)) != digest:
            self._seen[str(path)] = digest
            self._append(template_data(digest, str(path)), violation=False)
        return data

    def violation(self, path: Path, zeros: int = 32) -> None:
        """A read while the file is open for writing (ToMToU / open_writers): the kernel records a violation, its
        ``d-ng`` ``sha256:\\0`` and ``zeros`` zero bytes: 20 (``IMA_DIGEST_SIZE``, older kernels'
        ``ima_eventdigest_init_common``) or 32 (the algorithm's size, later kernels)."""
        self._append(field(b"sha256:\0" + bytes(zeros)) + field(str(path).encode() + b"\0"), violation=True)

    def measure_buffer(self, name: str, buf: bytes) -> None:
        """A buffer the kernel measures under the ``ima-buf`` template (``measure func=KEXEC_CMDLINE``, ``KEY_CHECK``):
        ``d-ng`` its SHA-256, ``n-ng`` the event's name, ``buf`` the buffer itself."""
        self._append(template_data(hashlib.sha256(buf).digest(), name) + field(buf), violation=False,
                     template=b"ima-buf")

    def _append(self, data: bytes, *, violation: bool, template: bytes = b"ima-ng") -> None:
        from tpm2_pytss.constants import ESYS_TR, TPM2_ALG
        from tpm2_pytss.types import TPML_DIGEST_VALUES, TPMT_HA

        from agent.security.tpm import TpmConnection
        tdigest = bytes(20) if violation else hashlib.sha1(data).digest()
        with self.list_path.open("ab") as f:
            f.write(struct.pack("<I", 10) + tdigest + field(template) + field(data))
        sha1, sha256 = TPMT_HA(hashAlg=TPM2_ALG.SHA1), TPMT_HA(hashAlg=TPM2_ALG.SHA256)
        sha1.digest.sha1 = b"\xff" * 20 if violation else tdigest
        sha256.digest.sha256 = b"\xff" * 32 if violation else hashlib.sha256(data).digest()
        conn = TpmConnection.get(self.tcti)
        try:
            with conn.lock:
                conn.esapi.pcr_extend(ESYS_TR.PCR10, TPML_DIGEST_VALUES([sha1, sha256]))
        finally:
            conn.release()

