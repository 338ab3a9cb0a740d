# pressplay lifecycle script (rendered by pressplay; do not edit the copy in the cluster).
# Python standard library only. Every name, URL and label comes from the environment, which the
# generator writes from validated backlog values. Text from GitHub or from the cluster is parsed
# as JSON and never reaches a shell, an Argo tag or a YAML field; the only values taken from it
# are task and pull request numbers (canonical digits) and merge commit ids (40 hex digits).
import base64
import hashlib
import json
import os
import re
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

ENV = os.environ
DIGITS = re.compile(r"0|[1-9][0-9]{0,15}")
SHA = re.compile(r"[0-9a-f]{40}")
PHASES_DONE = ("Succeeded", "Failed", "Error")
ERRORS = []


def log(*parts):
    print(*parts, flush=True)


def problem(text):
    ERRORS.append(text)
    log("error:", text)


def finish(message, failed=False):
    """Writes the message Argo shows for this node and exits."""
    failed = failed or bool(ERRORS)
    if ERRORS:
        message = message + " (" + str(len(ERRORS)) + " problem(s), first: " + ERRORS[0] + ")"
    log(message)
    try:
        with open(ENV.get("TERMINATION_LOG", "/dev/termination-log"), "w") as out:
            out.write(message[:4000])
    except OSError:
        pass
    sys.exit(1 if failed else 0)


def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def canonical(value):
    """A number as canonical digits, or None: accepts ints and digit strings only."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str) and DIGITS.fullmatch(value):
        return value
    return None


def context(cafile):
    return ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()


def http(method, url, headers=None, body=None, cafile=None, content_type="application/json"):
    """One request; returns (status, parsed JSON or None). Network failures give status 0."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", content_type)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    kwargs = {"timeout": 30}
    if url.startswith("https://"):
        kwargs["context"] = context(cafile)
    try:
        with urllib.request.urlopen(request, **kwargs) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        log("request failed:", method, url, type(e).__name__)
        return 0, None
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


class Kube:
    """The Kubernetes API as this pod's ServiceAccount."""

    def __init__(self):
        account = ENV.get("SERVICE_ACCOUNT_DIR", "/var/run/secrets/kubernetes.io/serviceaccount")
        self.base = ENV["KUBE_API"].rstrip("/")
        self.cafile = account + "/ca.crt" if os.path.exists(account + "/ca.crt") else None
        self.token = read(account + "/token") or ""

    def call(self, method, path, body=None, content_type="application/json"):
        headers = {"Authorization": "Bearer " + self.token}
        return http(method, self.base + path, headers, body, self.cafile, content_type)

    def list(self, path, selector, what):
        """Every item of a collection (`path` without a query) whose labels match `selector`,
        page by page; None (and a problem) when a page cannot be read."""
        items, token = [], ""
        while True:
            query = {"labelSelector": selector, "limit": "100"}
            if token:
                query["continue"] = token
            status, body = self.call("GET", path + "?" + urllib.parse.urlencode(query))
            if status != 200 or not isinstance(body, dict):
                problem("listing " + what + " failed (HTTP " + str(status) + ")")
                return None
            items.extend(item for item in body.get("items") or [] if isinstance(item, dict))
            token = (body.get("metadata") or {}).get("continue") or ""
            if not token:
                return items


class Argo:
    """The Argo Server as the waker account (its token mounted from the waker Secret: key
    `authorization`, the whole header value, or `token`, the bare token); `ready` is False when
    no server is configured or no token is mounted."""

    def __init__(self):
        secrets = ENV.get("SECRETS_DIR", "/secrets")
        self.base = ENV.get("ARGO_SERVER", "").rstrip("/")
        authorization = read(secrets + "/waker/authorization")
        if not authorization:
            token = read(secrets + "/waker/token")
            authorization = "Bearer " + token if token else None
        self.headers = {"Authorization": authorization} if authorization else {}
        cafile = secrets + "/argo-server-ca/ca.crt"
        self.cafile = cafile if os.path.exists(cafile) else None
        self.ready = bool(self.base and authorization)

    def call(self, method, path, body=None):
        return http(method, self.base + path, self.headers, body, self.cafile)

    def resume(self, namespace, workflow, selector):
        """Resumes the suspended nodes of a Workflow that match a node field selector: True when
        some were resumed, False when none was suspended (it moved on, or does not wait yet, or
        the Workflow is gone), None (and a problem) when the Argo Server refused."""
        path = "/api/v1/workflows/" + namespace + "/" + workflow + "/resume"
        status, body = self.call("PUT", path, {"nodeFieldSelector": selector})
        if status == 200:
            return True
        if status == 404 or (status == 500 and "no suspend nodes" in json.dumps(body)):
            return False
        problem(workflow + ": resume failed (HTTP " + str(status) + ")")
        return None
