"""Example model function of the seed scenario (handler `app.handler`; contract in README.md).

Reads an entity's features from the feature store through the mesh, scores them with a logistic model and, when
`MESH_UPSTREAM_RESULT_WRITER_URL` is set, stores the score with the result writer.
"""

import base64
import http.client
import json
import logging
import math
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Optional

import numpy as np

LOG = logging.getLogger(__name__)

# The model: a logistic regression over named features, so the feature store may add features without breaking it.
FEATURES = ("recency_days", "orders_30d", "avg_basket", "tenure_years")
WEIGHTS = np.array([-0.05, 0.30, 0.01, 0.20])
BIAS = -1.0

# A letter or digit first, so an id can never be "." or ".." and walk out of /features/ at a proxy.
ENTITY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MAX_UPSTREAM_BYTES = 1 << 20
# Mesh upstreams are the extension's listeners on 127.0.0.1: an HTTP(S)_PROXY in the environment must not divert them.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class HandlerError(Exception):
    """A failure the caller gets as a JSON error response with this status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def respond(status: int, body: dict) -> dict:
    """Builds an API Gateway / Function URL proxy response with a JSON body."""
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


def request_of(event: dict) -> tuple:
    """Takes the entity id, and the features to write first if any, from the JSON body or the query string."""
    raw = event.get("body")
    update = None
    if raw:
        try:
            text = base64.b64decode(raw).decode("utf-8") if event.get("isBase64Encoded") else raw
            payload = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            raise HandlerError(400, "the request body is not valid JSON") from None
        entity_id = payload.get("entity_id") if isinstance(payload, dict) else None
        update = payload.get("update_features") if isinstance(payload, dict) else None
        if update is not None and not isinstance(update, dict):
            raise HandlerError(400, '"update_features" must be an object of feature names to numbers')
    else:
        entity_id = (event.get("queryStringParameters") or {}).get("entity_id")
    if entity_id is None:
        raise HandlerError(400, 'missing "entity_id" (JSON body {"entity_id": "..."} or query ?entity_id=...)')
    if not isinstance(entity_id, str) or not ENTITY_ID.match(entity_id):
        raise HandlerError(400, '"entity_id" must be 1-128 of A-Z a-z 0-9 _ . -, starting with a letter or digit')
    return entity_id, update


def call(service: str, method: str, url: str, payload: Optional[dict] = None) -> Any:
    """Calls an upstream through the mesh and returns its JSON reply; maps every failure to 404, 502 or 504."""
    data = None if payload is None else json.dumps(payload).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    timeout = float(os.environ.get("MODEL_UPSTREAM_TIMEOUT_SECONDS", "2"))
    try:
        with OPENER.open(request, timeout=timeout) as response:
            body = response.read(MAX_UPSTREAM_BYTES + 1)
    except urllib.error.HTTPError as error:
        if error.code == 404 and method == "GET":
            raise HandlerError(404, f"the {service} knows no such entity") from None
        if error.code == 403:
            # The destination's sidecar (Envoy's RBAC filter) refuses what no mesh rule allows this identity.
            reason = error.read(200).decode("utf-8", "replace").strip() or "forbidden"
            path = urllib.parse.urlsplit(url).path
            raise HandlerError(
                403,
                f"the mesh refused {method} {path} on the {service} ({reason}): no mesh rule allows this model to make that call",
            ) from None
        raise HandlerError(502, f"the {service} answered HTTP {error.code}") from None
    except (OSError, http.client.HTTPException) as error:
        # urllib wraps a connect timeout in URLError (an OSError) but raises a read timeout as is.
        if isinstance(error, TimeoutError) or isinstance(getattr(error, "reason", None), TimeoutError):
            raise HandlerError(504, f"the {service} did not answer within {timeout:g} s") from None
        LOG.warning("%s unreachable: %s", service, error)
        raise HandlerError(502, f"the {service} is unreachable") from None
    if len(body) > MAX_UPSTREAM_BYTES:
        raise HandlerError(502, f"the {service} sent more than {MAX_UPSTREAM_BYTES} bytes")
    try:
        return json.loads(body) if body else None
    except ValueError:
        raise HandlerError(502, f"the {service} sent invalid JSON") from None


def feature_vector(reply: Any) -> np.ndarray:
    """Checks the feature store's reply (`{"features": {name: number}}`) and orders it as the model's weights."""
    features = reply.get("features") if isinstance(reply, dict) else None
    if not isinstance(features, dict):
        raise HandlerError(502, 'the feature store reply has no "features" object')
    values = [features.get(name) for name in FEATURES]
    # bool is an int in Python: refuse it, as NaN, infinities and numbers beyond float, rather than score nonsense.
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 1e300 for v in values):
        raise HandlerError(502, f"the feature store reply needs finite numbers for {', '.join(FEATURES)}")
    return np.array(values, dtype=np.float64)


def score(features: np.ndarray) -> float:
    """The logistic model: sigmoid(weights . features + bias), in [0, 1]."""
    # Clipped so exp() cannot overflow: at |z| = 500 the sigmoid is already within 1e-217 of 0 or 1.
    z = float(np.clip(WEIGHTS @ features + BIAS, -500.0, 500.0))
    return 1.0 / (1.0 + math.exp(-z))


def handler(event: dict, _context: Any = None) -> dict:
    """Lambda entry point: 200 with the score, or a JSON error (400, 403, 404, 502, 504, 500) without internals."""
    try:
        entity_id, update = request_of(event if isinstance(event, dict) else {})
        store = os.environ["MESH_UPSTREAM_FEATURE_STORE_URL"].rstrip("/")
        features_url = f"{store}/features/{urllib.parse.quote(entity_id, safe='')}"
        if update is not None:
            # Online feature write-back: the default mesh rules allow models only GET /features*, so this is refused.
            call("feature store", "POST", features_url, {"features": update})
        reply = call("feature store", "GET", features_url)
        result = {"entity_id": entity_id, "score": score(feature_vector(reply))}
        writer = os.environ.get("MESH_UPSTREAM_RESULT_WRITER_URL")
        if writer:
            call("result writer", "POST", f"{writer.rstrip('/')}/results", result)
        return respond(200, {**result, "stored": bool(writer)})
    except HandlerError as error:
        return respond(error.status, {"error": error.message})
    except Exception:  # noqa: BLE001 - the caller must never see a stack trace; the log keeps it.
        LOG.exception("unexpected failure")
        return respond(500, {"error": "internal error"})
