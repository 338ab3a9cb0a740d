

# ---- reconcile: GitHub -> task state ConfigMaps -> wake-ups --------------------------------
# 1. Lists the project's task state ConfigMaps.
# 2. Lists the repository's task pull requests on GitHub (head branch task/<n> or
#    task/<n>-<anything>, head repository = this repository, base = the base branch) and writes
#    merged="true" for a task with a merged one, merged="closed" for a task whose pull requests
#    are all closed without merging, when the state does not say so yet.
# 3. Wakes the gate-wait node of every Running task Workflow <project>-task-<n> whose state is
#    final (listed by its labels; resumed through Argo Server as the waker).
# Each half runs even when the other cannot (a missing Secret skips only its half).

PROJECT = ENV["PROJECT"]
NAMESPACE = ENV["NAMESPACE"]
REPOSITORY = ENV["REPOSITORY"]
BASE_BRANCH = ENV["BASE_BRANCH"]
STATE_PREFIX = ENV["STATE_PREFIX"]
TASK_PREFIX = ENV.get("TASK_PREFIX") or PROJECT + "-task-"
GATE_TEMPLATE = ENV["GATE_TEMPLATE"]
GITHUB_API = ENV["GITHUB_API"].rstrip("/")
PAGES = int(ENV.get("GITHUB_PAGES", "10"))
SECRETS = ENV.get("SECRETS_DIR", "/secrets")
BRANCH = re.compile(r"task/(0|[1-9][0-9]{0,15})(?:-.*)?", re.DOTALL)
FINAL = ("true", "closed")
STATE_LABELS = {
    "workflows.argoproj.io/configmap-type": "Parameter",
    "app.kubernetes.io/managed-by": "pressplay",
    "pressplay.dev/project": PROJECT,
    "pressplay.dev/component": "state",
}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der(data, at):
    """One DER element at `at`: (tag, contents, end)."""
    tag, length = data[at], data[at + 1]
    at += 2
    if length & 0x80:
        size = length & 0x7F
        length = int.from_bytes(data[at:at + size], "big")
        at += size
    return tag, data[at:at + length], at + length


def der_items(data):
    items, at = [], 0
    while at < len(data):
        tag, value, at = der(data, at)
        items.append((tag, value))
    return items


def rsa_key(pem):
    """(n, e, d) of an RSA private key in PKCS#1 or PKCS#8 PEM."""
    body = "".join(line for line in pem.splitlines() if line and not line.startswith("-----"))
    _, sequence, _ = der(base64.b64decode(body), 0)
    items = der_items(sequence)
    if items[1][0] == 0x30:  # PKCS#8: version, algorithm, OCTET STRING holding the PKCS#1 key
        _, sequence, _ = der(items[2][1], 0)
        items = der_items(sequence)
    n, e, d = (int.from_bytes(items[i][1], "big") for i in (1, 2, 3))
    return n, e, d


def rs256(message, key):
    """RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017, 8.2.1), checked with the public key."""
    n, e, d = key
    size = (n.bit_length() + 7) // 8
    info = bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(message).digest()
    encoded = int.from_bytes(b"\x00\x01" + b"\xff" * (size - len(info) - 3) + b"\x00" + info, "big")
    signature = pow(encoded, d, n)
    if pow(signature, e, n) != encoded:
        raise ValueError("the signature does not verify")
    return signature.to_bytes(size, "big")


def github_token():
    """An installation token of the project's GitHub App, read-only on pull requests of this
    repository; None (anonymous requests) when the credentials are not mounted."""
    app = read(SECRETS + "/github/app-id")
    installation = read(SECRETS + "/github/installation-id")
    pem = read(SECRETS + "/github/private-key")
    if not (app and installation and pem):
        log("no GitHub App credentials mounted: asking GitHub anonymously (public repositories only)")
        return None
    if not re.fullmatch(r"[A-Za-z0-9.]{1,64}", app) or not canonical(installation):
        problem("the GitHub App id or installation id is malformed")
        return None
    now = int(time.time())
    claims = {"iat": now - 60, "exp": now + 540, "iss": int(app) if canonical(app) else app}
    signing_input = (b64url(b'{"alg":"RS256","typ":"JWT"}') + "." + b64url(json.dumps(claims).encode())).encode()
    try:
        jwt = signing_input.decode() + "." + b64url(rs256(signing_input, rsa_key(pem)))
    except (ValueError, IndexError):
        problem("the GitHub App private key is not an RSA key")
        return None
    status, body = http(
        "POST",
        GITHUB_API + "/app/installations/" + installation + "/access_tokens",
        {"Authorization": "Bearer " + jwt, "X-GitHub-Api-Version": "2022-11-28"},
        {"repositories": [REPOSITORY.split("/", 1)[1]], "permissions": {"pull_requests": "read"}},
    )
    token = body.get("token") if isinstance(body, dict) else None
    if status != 201 or not isinstance(token, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,255}", token):
        problem("GitHub refused an installation token (HTTP " + str(status) + ")")
        return None
    return token


def facts_from_github():
    """task number -> (state, pr, merge commit) from GitHub, or None when GitHub could not be read."""
    before = len(ERRORS)
    token = github_token()
    if len(ERRORS) > before:
        return None
    headers = {"X-GitHub-Api-Version": "2022-11-28", "Accept": "application/vnd.github+json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    merged, closed, open_ = {}, {}, set()
    query = urllib.parse.urlencode(
        {"state": "all", "base": BASE_BRANCH, "sort": "updated", "direction": "desc", "per_page": "100"}
    )
    for page in range(1, PAGES + 1):
        url = GITHUB_API + "/repos/" + REPOSITORY + "/pulls?" + query + "&page=" + str(page)
        status, prs = http("GET", url, headers)
        if status != 200 or not isinstance(prs, list):
            problem("GitHub did not list pull requests (HTTP " + str(status) + ")")
            return None
        for pr in prs:
            head = pr.get("head") if isinstance(pr, dict) else None
            base = pr.get("base") if isinstance(pr, dict) else None
            if not isinstance(head, dict) or not isinstance(base, dict):
                continue
            repo = head.get("repo") if isinstance(head.get("repo"), dict) else {}
            name = repo.get("full_name")
            if not isinstance(name, str) or name.lower() != REPOSITORY.lower() or base.get("ref") != BASE_BRANCH:
                continue
            ref = head.get("ref")
            match = BRANCH.fullmatch(ref) if isinstance(ref, str) else None
            number = canonical(pr.get("number"))
            if not match or not number:
                continue
            task = match.group(1)
            if pr.get("merged_at"):
                sha = pr.get("merge_commit_sha")
                merged.setdefault(task, (number, sha if isinstance(sha, str) and SHA.fullmatch(sha) else ""))
            elif pr.get("state") == "closed":
                closed.setdefault(task, number)
            else:
                open_.add(task)
        if len(prs) < 100:
            break
    facts = {task: ("true", pr, sha) for task, (pr, sha) in merged.items()}
    for task, pr in closed.items():
        if task not in facts and task not in open_:
            facts[task] = ("closed", pr, "")
    log("GitHub: " + str(len(merged)) + " merged, " + str(len(facts) - len(merged)) + " closed without merging")
    return facts


def states(kube):
    """task number -> (merged value or None, resourceVersion) of every state ConfigMap."""
    path = "/api/v1/namespaces/" + NAMESPACE + "/configmaps"
    items = kube.list(path, "workflows.argoproj.io/configmap-type=Parameter", "ConfigMaps")
    if items is None:
        return None
    found = {}
    for item in items:
        meta = item.get("metadata") or {}
        name = meta.get("name") or ""
        task = canonical(name[len(STATE_PREFIX):]) if name.startswith(STATE_PREFIX) else None
        if task:
            data = item.get("data") if isinstance(item.get("data"), dict) else {}
            found[task] = (data.get("merged"), meta.get("resourceVersion"))
    return found


def record(kube, task, fact, current):
    """Writes one fact. "true" always wins; "closed" is written only over no state, guarded by the
    resourceVersion read (or by create), so a merge recorded meanwhile is never overwritten."""
    value, pr, sha = fact
    name = STATE_PREFIX + task
    data = {"merged": value, "task-number": task, "pr": pr}
    if sha:
        data["merge-commit"] = sha
    patch = {"metadata": {"labels": STATE_LABELS}, "data": data}
    path = "/api/v1/namespaces/" + NAMESPACE + "/configmaps"
    if current is not None and value == "closed":
        patch["metadata"]["resourceVersion"] = current[1]
    if current is not None or value == "true":
        status, _ = kube.call("PATCH", path + "/" + name, patch, "application/merge-patch+json")
        if status == 200:
            return True
        if status == 409:
            log("task " + task + ": state changed meanwhile, left for the next round")
            return False
        if status == 403:
            log("task " + task + ": not permitted to write " + name + " (not a task of this backlog)")
            return False
        if status != 404:
            problem("task " + task + ": patching its state failed (HTTP " + str(status) + ")")
            return False
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": STATE_LABELS}, "data": data}
    status, _ = kube.call("POST", path, obj)
    if status == 201:
        return True
    if status == 409 and value == "true":
        status, _ = kube.call("PATCH", path + "/" + name, patch, "application/merge-patch+json")
        if status == 200:
            return True
    if status == 409:
        log("task " + task + ": state created meanwhile, left for the next round")
        return False
    problem("task " + task + ": creating its state failed (HTTP " + str(status) + ")")
    return False


def waiting_tasks(status):
    """Task numbers of a Workflow's suspended gate-wait nodes on the merged gate, or None when
    the node status is not in the answer (offloaded)."""
    nodes = status.get("nodes")
    if not isinstance(nodes, dict):
        return None
    tasks = set()
    for node in nodes.values():
        if not isinstance(node, dict) or node.get("type") != "Suspend" or node.get("phase") != "Running":
            continue
        ref = node.get("templateRef") if isinstance(node.get("templateRef"), dict) else {}
        if GATE_TEMPLATE not in (node.get("templateName"), ref.get("template")):
            continue
        params = (node.get("inputs") or {}).get("parameters") or []
        values = {p.get("name"): p.get("value") for p in params if isinstance(p, dict)}
        task = canonical(values.get("task-number"))
        if values.get("gate") == "merged" and task:
            tasks.add(task)
    return tasks


def wake(kube, final):
    """Resumes the merged gate of every Running task Workflow whose task's state is final and
    whose gate-wait node waits (or whose node status is offloaded)."""
    argo = Argo()
    if not argo.ready:
        log("no waker token mounted: no wake-ups (waiting tasks still see their state at their next re-check)")
        return
    path = "/apis/argoproj.io/v1alpha1/namespaces/" + NAMESPACE + "/workflows"
    selector = "pressplay.dev/project=" + PROJECT + ",pressplay.dev/component=task"
    workflows = kube.list(path, selector, "task Workflows")
    if workflows is None:
        return
    targets = set()
    for workflow in workflows:
        name = (workflow.get("metadata") or {}).get("name") or ""
        task = canonical(name[len(TASK_PREFIX):]) if name.startswith(TASK_PREFIX) else None
        status = workflow.get("status") if isinstance(workflow.get("status"), dict) else {}
        if not task or task not in final or status.get("phase") != "Running":
            continue
        waiting = waiting_tasks(status)
        if waiting is None or task in waiting:
            targets.add(task)
    woken = 0
    for task in sorted(targets, key=int):
        node = (
            "templateName=" + GATE_TEMPLATE + ",inputs.parameters.gate.value=merged,"
            "inputs.parameters.task-number.value=" + task
        )
        if argo.resume(NAMESPACE, TASK_PREFIX + task, node):
            woken += 1
    log("woke " + str(woken) + " of " + str(len(targets)) + " waiting task(s) whose state is final")


def main():
    kube = Kube()
    current = states(kube)
    facts = facts_from_github()
    written = 0
    if current is not None and facts is not None:
        for task in sorted(facts, key=int):
            fact, now = facts[task], current.get(task)
            state = now[0] if now else None
            if state == fact[0] or (state in FINAL and fact[0] == "closed"):
                continue
            if record(kube, task, fact, now):
                written += 1
                current[task] = (fact[0], None)
    final = {task for task, (state, _) in (current or {}).items() if state in FINAL}
    wake(kube, final)
    finish("recorded " + str(written) + " state(s); " + str(len(final)) + " task(s) final")


main()
