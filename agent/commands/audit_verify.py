"""``capture-agent audit-verify FILE --public-key PEM [--anchor SEQ:HEAD ...] [--max-unsigned N]``:
check the audit log's hash chain and every signed checkpoint; require checkpoints, at most N
entries after the last one (0 for the log of a stopped daemon), and every anchor the bank's server
holds for this terminal (``hil/ingest/anchors.py``: ``SEQ:HEAD``) to be in the log. Exit 0 intact;
2 with ``AUD_CORRUPT`` (altered, inserted, removed, reordered), ``AUD_UNSIGNED`` (no checkpoint, or
too long an unsigned tail) or ``AUD_TRUNCATED`` (an anchor is missing: cut off or replaced)."""

from __future__ import annotations

import json
from pathlib import Path

from agent.errors import UsageError
from agent.security import audit
from agent.security.keys import KeyStoreError, load_public_key_pem


def register(sub) -> None:
    p = sub.add_parser("audit-verify", help="verify the audit log's hash chain, signed checkpoints and anchors")
    p.add_argument("file")
    p.add_argument("--public-key", required=True, help="the terminal's signing public key (PEM)")
    p.add_argument("--anchor", action="append", default=[], metavar="SEQ:HEAD",
                   help="a checkpoint the server holds for this terminal (repeatable)")
    p.add_argument("--max-unsigned", type=int, default=audit.DEFAULT_MAX_UNSIGNED, metavar="N",
                   help=f"entries allowed after the last checkpoint (default {audit.DEFAULT_MAX_UNSIGNED}, "
                        "the daemon's checkpoint_every; 0 for a stopped daemon's log)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        key = load_public_key_pem(Path(args.public_key).read_bytes())     # Ed25519, P-256 or SM2
    except (OSError, KeyStoreError) as exc:
        raise UsageError(f"cannot load public key {args.public_key}: {exc}") from None
    if args.max_unsigned < 0:
        raise UsageError("--max-unsigned must be 0 or more")
    anchors = [audit.parse_anchor(a) for a in args.anchor]
    try:
        rep = audit.verify(args.file, key, anchors=anchors, max_unsigned_tail=args.max_unsigned)
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    if args.json:
        print(json.dumps(rep.to_dict()))
    else:
        print(f"audit log intact: {rep.entries} entries, {rep.checkpoints} checkpoints, signed through entry "
              f"{rep.last_signed_seq}, {rep.unsigned_tail} unsigned after it, {rep.anchors_checked} anchor(s) found")
    return 0
