"""Tests of the example model handler against local stand-ins for the feature store and the result writer.

The stand-ins are real HTTP servers on 127.0.0.1 (ephemeral ports, one thread each) speaking the contract of
README.md, so the handler's urllib calls, timeouts and error mapping run for real.
"""

import base64
import json
import math
import socket
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from unittest import mock

import app

FEATURES = {"recency_days": 12, "orders_30d": 3, "avg_basket": 42.5, "tenure_years": 2}


def expected_score(features: dict) -> float:
    """The documented model, computed without NumPy: sigmoid(sum(w * x) + b)."""
    z = sum(float(w) * features[name] for name, w in zip(app.FEATURES, app.WEIGHTS)) + app.BIAS
    return 1.0 / (1.0 + math.exp(-z))


class StandIn(BaseHTTPRequestHandler):
    """Feature store (`GET /features/<id>`) and result writer (`POST /results`); the entity id picks the behaviour."""

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        self.server.requests.append(("GET", self.path, None))
        entity = self.path.rsplit("/", 1)[-1]
        if entity == "slow":
            time.sleep(1.0)
        if entity == "broken":
            self.reply(500, b'{"error": "database down"}')
        elif entity == "unknown":
            self.reply(404, b'{"error": "no such entity"}')
        elif entity == "garbage":
            self.reply(200, b"<html>not json</html>")
        elif entity == "partial":
            self.reply(200, json.dumps({"features": {"recency_days": 1}}).encode())
        elif entity == "huge":
            self.reply(200, b'{"features": {"recency_days": 1%s, "orders_30d": 1, "avg_basket": 1, "tenure_years": 1}}' % (b"0" * 400))
        elif entity == "nan":
            self.reply(200, b'{"features": {"recency_days": NaN, "orders_30d": 1, "avg_basket": 1, "tenure_years": 1}}')
        else:
            self.reply(200, json.dumps({"entity_id": entity, "features": self.server.features}).encode())

    def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.server.requests.append(("POST", self.path, body))
        if self.server.post_status == 403:
            # What Envoy's RBAC filter answers in front of the destination when no intention allows the call.
            self.send_response(403)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", "19")
            self.end_headers()
            self.wfile.write(b"RBAC: access denied")
            return
        self.reply(self.server.post_status, b'{"stored": true}')

    def reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting, as the handler does in the timeout test

    def log_message(self, *_args: object) -> None:
        """Keeps the test output clean."""


def start_server() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    server.daemon_threads = True
    server.requests, server.features, server.post_status = [], dict(FEATURES), 201
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def url_of(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def closed_port_url() -> str:
    """A URL nobody listens on: the port was just free, and is closed again."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


class HandlerTest(unittest.TestCase):
    def setUp(self) -> None:
        self.store = start_server()
        self.writer = start_server()
        self.env = mock.patch.dict("os.environ", {"MESH_UPSTREAM_FEATURE_STORE_URL": url_of(self.store), "MODEL_UPSTREAM_TIMEOUT_SECONDS": "0.3"})
        self.env.start()
        for server in (self.store, self.writer):
            self.addCleanup(server.server_close)
            self.addCleanup(server.shutdown)
        self.addCleanup(self.env.stop)

    def invoke(self, body: Optional[object] = None, query: Optional[dict] = None, raw: Optional[str] = None) -> tuple:
        event = {"queryStringParameters": query, "body": raw if raw is not None else (None if body is None else json.dumps(body))}
        response = app.handler(event, None)
        self.assertEqual(response["headers"]["content-type"], "application/json")
        return response["statusCode"], json.loads(response["body"])

    def assert_error(self, status: int, fragment: str, **kwargs: object) -> None:
        got_status, body = self.invoke(**kwargs)
        self.assertEqual((got_status, list(body)), (status, ["error"]), body)
        self.assertIn(fragment, body["error"])
        self.assertNotIn("Traceback", body["error"])

    def test_scores_the_entity_from_the_feature_store(self) -> None:
        status, body = self.invoke({"entity_id": "customer-42"})
        self.assertEqual(status, 200)
        self.assertEqual(body["entity_id"], "customer-42")
        self.assertAlmostEqual(body["score"], expected_score(FEATURES), places=12)
        self.assertFalse(body["stored"])
        self.assertEqual(self.store.requests, [("GET", "/features/customer-42", None)])

    def test_score_follows_the_features(self) -> None:
        self.store.features = {**FEATURES, "orders_30d": 30}
        status, body = self.invoke(query={"entity_id": "customer-7"})
        self.assertEqual(status, 200)
        self.assertAlmostEqual(body["score"], expected_score(self.store.features), places=12)
        self.assertGreater(body["score"], expected_score(FEATURES))

    def test_goes_straight_to_the_mesh_listener_whatever_the_proxy_settings(self) -> None:
        with mock.patch.dict("os.environ", {"HTTP_PROXY": closed_port_url(), "http_proxy": closed_port_url()}):
            status, _body = self.invoke({"entity_id": "e1"})
        self.assertEqual((status, len(self.store.requests)), (200, 1))

    def test_reads_a_base64_encoded_body(self) -> None:
        raw = base64.b64encode(json.dumps({"entity_id": "e1"}).encode()).decode()
        response = app.handler({"body": raw, "isBase64Encoded": True}, None)
        self.assertEqual(response["statusCode"], 200)

    def test_writes_the_result_when_the_result_writer_is_configured(self) -> None:
        with mock.patch.dict("os.environ", {"MESH_UPSTREAM_RESULT_WRITER_URL": url_of(self.writer) + "/"}):
            status, body = self.invoke({"entity_id": "e1"})
        self.assertEqual(status, 200)
        self.assertTrue(body["stored"])
        self.assertEqual(self.writer.requests, [("POST", "/results", {"entity_id": "e1", "score": body["score"]})])

    def test_result_writer_failure_is_502(self) -> None:
        self.writer.post_status = 503
        with mock.patch.dict("os.environ", {"MESH_UPSTREAM_RESULT_WRITER_URL": url_of(self.writer)}):
            self.assert_error(502, "result writer answered HTTP 503", body={"entity_id": "e1"})

    def test_bad_input_is_400(self) -> None:
        self.assert_error(400, "not valid JSON", raw="{not json")
        self.assert_error(400, 'missing "entity_id"', body={"id": "e1"})
        self.assert_error(400, 'missing "entity_id"', body=["e1"])
        self.assert_error(400, 'missing "entity_id"')
        self.assert_error(400, '"entity_id" must be', body={"entity_id": 42})
        self.assert_error(400, '"entity_id" must be', body={"entity_id": ""})
        self.assert_error(400, '"entity_id" must be', body={"entity_id": ".."})
        self.assert_error(400, '"entity_id" must be', query={"entity_id": "a/../../admin"})
        self.assert_error(400, '"entity_id" must be', body={"entity_id": "x" * 129})
        self.assertEqual(self.store.requests, [], "bad input must not reach the feature store")

    def test_writes_features_back_before_scoring(self) -> None:
        status, body = self.invoke({"entity_id": "customer-42", "update_features": {"orders_30d": 9}})
        self.assertEqual(status, 200, body)
        self.assertEqual(self.store.requests[0], ("POST", "/features/customer-42", {"features": {"orders_30d": 9}}))
        self.assertEqual(self.store.requests[1], ("GET", "/features/customer-42", None))

    def test_a_call_the_mesh_refuses_is_403_with_the_reason(self) -> None:
        self.store.post_status = 403
        self.assert_error(403, "the mesh refused POST /features/customer-42 on the feature store (RBAC: access denied)", body={"entity_id": "customer-42", "update_features": {"orders_30d": 9}})
        # Refused before any read: nothing was scored.
        self.assertEqual([r[0] for r in self.store.requests], ["POST"])

    def test_update_features_must_be_an_object(self) -> None:
        self.assert_error(400, "update_features", body={"entity_id": "customer-42", "update_features": [1]})

    def test_unknown_entity_is_404(self) -> None:
        self.assert_error(404, "no such entity", body={"entity_id": "unknown"})

    def test_upstream_500_is_502(self) -> None:
        self.assert_error(502, "feature store answered HTTP 500", body={"entity_id": "broken"})

    def test_upstream_invalid_json_is_502(self) -> None:
        self.assert_error(502, "feature store sent invalid JSON", body={"entity_id": "garbage"})

    def test_upstream_reply_without_the_model_features_is_502(self) -> None:
        self.assert_error(502, "needs finite numbers", body={"entity_id": "partial"})
        self.assert_error(502, "needs finite numbers", body={"entity_id": "nan"})
        self.assert_error(502, "needs finite numbers", body={"entity_id": "huge"})

    def test_extreme_features_still_score_between_0_and_1(self) -> None:
        scores = []
        for extreme in (1e299, -1e299):
            self.store.features = {**FEATURES, "avg_basket": extreme}
            status, body = self.invoke({"entity_id": "e1"})
            self.assertEqual(status, 200)
            scores.append(body["score"])
        self.assertEqual(scores[0], 1.0)
        self.assertTrue(0.0 <= scores[1] < 1e-200, scores[1])

    def test_upstream_timeout_is_504(self) -> None:
        started = time.monotonic()
        self.assert_error(504, "did not answer within 0.3 s", body={"entity_id": "slow"})
        self.assertLess(time.monotonic() - started, 0.9)

    def test_upstream_down_is_502(self) -> None:
        with mock.patch.dict("os.environ", {"MESH_UPSTREAM_FEATURE_STORE_URL": closed_port_url()}), self.assertLogs(app.LOG, "WARNING") as logs:
            self.assert_error(502, "feature store is unreachable", body={"entity_id": "e1"})
        self.assertIn("feature store unreachable", logs.output[0])

    def test_unexpected_failure_is_500_without_details(self) -> None:
        with mock.patch.dict("os.environ", clear=True), self.assertLogs(app.LOG, "ERROR"):
            self.assert_error(500, "internal error", body={"entity_id": "e1"})


if __name__ == "__main__":
    unittest.main()
