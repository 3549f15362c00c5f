"""The server's receipt is network input: its reason must be a code, its liveness verdict one of the
verdicts, its detail bounded and printable, before the session counts it, records it or shows it to
the kiosk app (``agent.uplink.client.check_receipt``, ``UPL_RECEIPT_INVALID``)."""

import pytest

from agent.uplink.client import MAX_RECEIPT_DETAIL, ReceiptInvalid, check_receipt
from proto.capture_agent.v1 import ingest_pb2 as pb


def receipt(**kw) -> pb.Receipt:
    base = {"probe_id": "p1", "accepted": False, "reason": "NOT_LIVE", "liveness_verdict": "attack",
            "detail": "challenge failed: the IR frames did not follow the projector schedule"}
    return pb.Receipt(**{**base, **kw})


def test_the_reference_servers_receipts_pass():
    for kw in ({}, {"accepted": True, "reason": "OK", "liveness_verdict": "live", "detail": ""},
               {"reason": "MALFORMED", "liveness_verdict": "", "detail": "not a SealedProbe"},
               {"reason": "EVIDENCE_FAILED", "detail": "x" * 300},
               {"detail": "two\nlines\tand a tab, ünïcödé"}):
        check_receipt(receipt(**kw))


@pytest.mark.parametrize("kw", [
    {"reason": ""}, {"reason": "not_live"}, {"reason": "NOT LIVE"}, {"reason": "OK\n"}, {"reason": "A" * 65},
    {"liveness_verdict": "probably"}, {"liveness_verdict": "LIVE"},
    {"detail": "x" * (MAX_RECEIPT_DETAIL + 1)}, {"detail": "fine\x1b[2Jcleared"}, {"detail": "a\x00b"},
    {"detail": "c\x9bd"},
])
def test_a_receipt_out_of_shape_is_refused_without_quoting_it(kw):
    with pytest.raises(ReceiptInvalid) as exc:
        check_receipt(receipt(**kw))
    assert exc.value.code == "UPL_RECEIPT_INVALID"
    value = next(iter(kw.values()))
    assert value not in str(exc.value) or value == ""
