"""``capture-agent audit-verify FILE --public-key PEM [--anchor SEQ:HEAD ...] [--tpm-witness COUNT:CHAIN ...]
[--max-unsigned N] [--tpm-count N [--tpm-chain HEX] | --tpm-counter SPEC]``:
check the audit log's hash chain and every signed checkpoint; require checkpoints, at most N
entries after the last one (0 for the log of a stopped daemon), and every anchor the bank's server
holds for this terminal (``hil/ingest/anchors.py``: ``SEQ:HEAD``) to be in the log. Exit 0 intact;
2 with ``AUD_CORRUPT`` (altered, inserted, removed, reordered), ``AUD_UNSIGNED`` (no checkpoint, or
too long an unsigned tail), ``AUD_TRUNCATED`` (an anchor is missing: cut off or replaced), ``AUD_COUNTER_CUT``
(the counted lockout entries do not run to the TPM's counter) or ``AUD_COUNTER_FORGED`` (their content does not
reproduce the TPM's chain, sec30, or a count and chain the TPM certified to the server, ``--tpm-witness``, sec31)."""

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
    p.add_argument("--tpm-witness", action="append", default=[], metavar="COUNT:CHAIN",
                   help="a count and chain the TPM certified to the server for this terminal (sec31; repeatable)")
    p.add_argument("--max-unsigned", type=int, default=audit.DEFAULT_MAX_UNSIGNED, metavar="N",
                   help=f"entries allowed after the last checkpoint (default {audit.DEFAULT_MAX_UNSIGNED}, "
                        "the daemon's checkpoint_every; 0 for a stopped daemon's log)")
    c = p.add_mutually_exclusive_group()
    c.add_argument("--tpm-count", type=int, default=None, metavar="N",
                   help="the TPM NV counter's value: the log's last counted entry must reach it")
    c.add_argument("--tpm-counter", default=None, metavar="SPEC",
                   help="read that value and the chain's from the TPM ([audit] tpm_counter, tpm:nv=0x...;tcti=...)")
    p.add_argument("--tpm-chain", default=None, metavar="HEX",
                   help="with --tpm-count: the TPM's NV extend index (64 hex digits), which the counted entries "
                        "must hash to")
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
    witnesses = [audit.parse_witness(w) for w in args.tpm_witness]
    count, chain = args.tpm_count, args.tpm_chain
    if chain is not None and (args.tpm_counter or len(chain) != 64 or not all(c in "0123456789abcdefABCDEF"
                                                                             for c in chain)):
        raise UsageError("--tpm-chain is 64 hex digits, given with --tpm-count")
    if args.tpm_counter:
        from agent.security.tpm import load_monotonic
        counter = load_monotonic(args.tpm_counter)
        try:
            count, chain = counter.count(), counter.chain().hex()
        finally:
            counter.close()
        count = 0 if count is None else count           # never advanced (a counter reads 1 or more after)
    try:
        rep = audit.verify(args.file, key, anchors=anchors, max_unsigned_tail=args.max_unsigned, tpm_count=count,
                           tpm_chain=chain, witnesses=witnesses)
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    if args.json:
        print(json.dumps(rep.to_dict()))
    else:
        print(f"audit log intact: {rep.entries} entries, {rep.checkpoints} checkpoints, signed through entry "
              f"{rep.last_signed_seq}, {rep.unsigned_tail} unsigned after it, {rep.anchors_checked} anchor(s) found"
              + (f", counted through {rep.last_count}" if rep.last_count is not None else "")
              + (f", {rep.cuts_reported} cut(s) reported by the daemon" if rep.cuts_reported else ""))
    return 0
