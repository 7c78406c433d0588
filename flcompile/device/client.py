"""The device's connection to the edge server: KServe v2 over one gRPC stream, with tritonclient.

A frame's paths are sent on one bidirectional gRPC stream (Triton's ModelStreamInfer), which
delivers requests to the server in the order they were sent; separate unary calls sent back
to back may reach Triton's queue in either order. `send` hands a path to the stream and
returns at once; its answer comes back on the stream's thread, matched by request id. An
error answer carries no id; it goes to the oldest request still waiting (with one instance
answers come in order), unless the error names its request, as Triton's own checks do. A
stream that breaks (the server went away) fails every request waiting on it and is reopened
by the next `send`. `infer` is one unary request outside the stream (the link probe's).
"""

from __future__ import annotations

import collections
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from flcompile.deploy import protocol
from flcompile.errors import BadInputError

_REQUEST_ID = re.compile(r"\[request id: ([^\]]+)\]")


@dataclass(frozen=True)
class Answer:
    """The server's answer to one path: its timing rows and outputs, or an error line."""

    timings: np.ndarray | None
    outputs: dict[str, np.ndarray]
    error: str | None


class EdgeClient:
    """One gRPC channel and stream to the edge server, for one plan's model.

    Args:
        address: HOST:PORT of the server's gRPC endpoint.
        model: the plan's Triton model name.
        timeout_s: how long the readiness checks may take.
    """

    def __init__(self, address: str, model: str, *, timeout_s: float) -> None:
        import tritonclient.grpc as grpcclient

        self._grpc = grpcclient
        self.address = address
        self.model = model
        self._timeout_s = timeout_s
        self._client = grpcclient.InferenceServerClient(address)
        self._lock = threading.Lock()
        self._waiting: collections.OrderedDict[str, tuple[Sequence[str], Callable]] = (
            collections.OrderedDict()
        )
        self._open = False

    def check(self, *, lacking: str = "this plan", hint: str | None = None) -> None:
        """Fail unless the server is up and serves the client's model.

        Args:
            lacking: what the server lacks when the model is not ready, for the message.
            hint: what to do then (default: serve the same OUT there).

        Raises:
            BadInputError: the server cannot be reached, or does not serve the model.
        """
        from tritonclient.utils import InferenceServerException

        try:
            live = self._client.is_server_live(client_timeout=self._timeout_s)
            ready = live and self._client.is_model_ready(self.model, client_timeout=self._timeout_s)
        except InferenceServerException as e:
            raise BadInputError(
                f"cannot reach the edge server at {self.address} "
                f"({protocol.error_message(str(e))})",
                hint="start it with `flcompile serve OUT --port PORT`, and check --server",
            ) from e
        if not live:
            raise BadInputError(f"the edge server at {self.address} is not live")
        if not ready:
            raise BadInputError(
                f"the edge server at {self.address} does not serve {lacking} (model {self.model})",
                hint=hint or "serve the same OUT there: `flcompile serve OUT`",
            )

    def send(
        self,
        *,
        client: str,
        frame: int,
        path: int,
        tensors: Mapping[str, np.ndarray],
        outputs: Sequence[str],
        callback: Callable[[Answer], None],
    ) -> None:
        """Send one path's tensors on the stream; `callback` gets the answer, once.

        Args:
            client: the device's name.
            frame: the frame id.
            path: the path's grid index.
            tensors: what the path sends, by name.
            outputs: the outputs to ask for (`fl_timings`, and the model's for the last path).
            callback: called with the answer, on the stream's thread.

        Raises:
            ConnectionError: there is no stream to the server (it went away); the next
                `send` tries to open one again.
        """
        grpc = self._grpc
        inputs = self._inputs(tensors)
        request_id = f"{client}/{frame}/{path}"
        self._ensure_stream()
        with self._lock:
            self._waiting[request_id] = (outputs, callback)
        try:
            self._client.async_stream_infer(
                self.model,
                inputs,
                outputs=[grpc.InferRequestedOutput(name) for name in outputs],
                request_id=request_id,
                parameters={protocol.CLIENT: client, protocol.FRAME: frame, protocol.PATH: path},
            )
        except Exception as e:
            with self._lock:
                self._waiting.pop(request_id, None)
                self._open = False
            raise ConnectionError(
                f"no stream to the edge server at {self.address} ({protocol.error_message(str(e))})"
            ) from e

    def infer(
        self, tensors: Mapping[str, np.ndarray], outputs: Sequence[str], *, timeout_s: float
    ) -> dict[str, np.ndarray]:
        """One unary request, outside the stream: send `tensors`, wait for `outputs`.

        Args:
            tensors: the inputs, by name.
            outputs: the outputs to ask for.
            timeout_s: how long the request may take.

        Returns:
            The outputs, by name.

        Raises:
            ConnectionError: the request failed (the server refused it or went away).
        """
        from tritonclient.utils import InferenceServerException

        grpc = self._grpc
        try:
            result = self._client.infer(
                self.model,
                self._inputs(tensors),
                outputs=[grpc.InferRequestedOutput(name) for name in outputs],
                client_timeout=timeout_s,
            )
        except InferenceServerException as e:
            raise ConnectionError(
                f"a request to {self.address} failed ({protocol.error_message(str(e))})"
            ) from e
        return {name: result.as_numpy(name) for name in outputs}

    def _inputs(self, tensors: Mapping[str, np.ndarray]) -> list:
        grpc = self._grpc
        inputs = []
        for name, value in tensors.items():
            value = np.ascontiguousarray(value)
            item = grpc.InferInput(name, list(value.shape), grpc.np_to_triton_dtype(value.dtype))
            item.set_data_from_numpy(value)
            inputs.append(item)
        return inputs

    def _ensure_stream(self) -> None:
        with self._lock:
            if self._open:
                return
            self._open = True
        self._client.stop_stream(cancel_requests=True)
        self._client.start_stream(callback=self._on_answer)

    def _on_answer(self, result, error) -> None:
        if result is not None:
            request_id = result.get_response().id
            with self._lock:
                entry = self._waiting.pop(request_id, None)
            if entry is not None:
                outputs, callback = entry
                values = {name: result.as_numpy(name) for name in outputs}
                timings = values.pop(protocol.TIMINGS, None)
                callback(Answer(timings, values, None))
            return
        text = str(error)
        message = protocol.error_message(text)
        named = _REQUEST_ID.search(text)
        with self._lock:
            if error.status() is not None:  # gRPC's own error: the stream is gone
                failed, self._open = list(self._waiting.values()), False
                self._waiting.clear()
            elif named and named[1] in self._waiting:  # Triton's checks name the request
                failed = [self._waiting.pop(named[1])]
            else:
                failed = [self._waiting.popitem(last=False)[1]] if self._waiting else []
        for _outputs, callback in failed:
            callback(Answer(None, {}, message))

    def close(self) -> None:
        """Close the stream and the channel."""
        self._client.stop_stream(cancel_requests=True)
        self._client.close()
