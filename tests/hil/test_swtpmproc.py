"""The software TPM's readiness: a socket file is not a listening socket."""

import socket

from hil.swtpmproc import listening


def test_a_bound_socket_is_not_ready_until_it_listens(tmp_path):
    path = str(tmp_path / "tpm")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(path)                                  # the file exists from here on
        assert not listening(path)                         # ... and a TSS connecting now is refused
        server.listen(1)
        assert listening(path)
    finally:
        server.close()
    assert not listening(str(tmp_path / "absent"))
