"""Root rewriting a terminal's audit log with its own key (tests/session/test_lockout_tpm.py and
tests/hil/test_counter_attestation.py; moved here from the first, mend31)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def rewrite_log(t: Any, edit: Callable[[dict], object], *, rechain: bool = False) -> None:
    """Root rewrites the log (``t``: a terminal with ``entries()``, ``key`` and ``log_path``, test_lockout_tpm.py's):
    ``edit(entry)`` changes each entry that is not a checkpoint; the hash chain is recomputed and every checkpoint
    signed again with the terminal's key (root can use it), and with ``rechain`` the
    counted entries' ``tpm_chain`` links recomputed too (from the first, as the daemon would have written them)."""
    import base64

    from agent.security.audit import GENESIS, ZERO_CHAIN, chain_after, checkpoint_message, entry_hash
    prev, chain, out = GENESIS, ZERO_CHAIN, []
    for e in t.entries():
        if e["event"] == "checkpoint":
            d = e["data"]
            d["signature"] = base64.b64encode(t.key.sign(checkpoint_message(d["signed_seq"], prev,
                                                                              d.get("signed_count")))).decode()
        else:
            edit(e)
            if rechain and "tpm_chain" in e["data"]:
                e["data"]["tpm_chain"] = chain
        e["prev"] = prev
        e["hash"] = entry_hash(e)
        if rechain and "tpm_chain" in e["data"]:
            chain = chain_after(chain, e["hash"])
        prev = e["hash"]
        out.append(json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n")
    t.log_path.write_text("".join(out))
