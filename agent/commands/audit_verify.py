"""``capture-agent audit-verify FILE [--public-key PEM]``: check the audit log's hash chain and, with
the terminal's public key, every signed checkpoint. Exit 0 intact, 2 broken (``AUD_CORRUPT``)."""

from __future__ import annotations

import json
from pathlib import Path

from agent.errors import UsageError
from agent.security import audit
from agent.security.keys import KeyStoreError, load_public_key_pem


def register(sub) -> None:
    p = sub.add_parser("audit-verify", help="verify the audit log's hash chain and signed checkpoints")
    p.add_argument("file")
    p.add_argument("--public-key", help="the terminal's signing public key (PEM)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    key = None
    if args.public_key:
        try:
            key = load_public_key_pem(Path(args.public_key).read_bytes())     # Ed25519, P-256 or SM2
        except (OSError, KeyStoreError) as exc:
            raise UsageError(f"cannot load public key {args.public_key}: {exc}") from None
    try:
        rep = audit.verify(args.file, key)
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    if args.json:
        print(json.dumps(rep.to_dict()))
    else:
        print(f"audit log intact: {rep.entries} entries, {rep.checkpoints} checkpoints"
              + (f", signed through entry {rep.last_signed_seq}, {rep.unsigned_tail} unsigned after it"
                 if key is not None else " (signatures not checked: no --public-key)"))
    return 0
