"""Starting the endpoint: a port another process holds is one clear line, before any model loads."""

import socket

import pytest

from inferloop.core.errors import InferloopError
from inferloop.serving.server import check_port_free


def test_a_port_in_use_is_refused_naming_the_option_that_moves_it():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(InferloopError, match=rf"127.0.0.1:{port} .*pass --port \(INFERLOOP_SERVE_PORT\)"):
            check_port_free("127.0.0.1", port)
    check_port_free("127.0.0.1", port)  # free again: no error
