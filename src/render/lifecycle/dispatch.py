

# ---- dispatch: start the task Workflows whose dependencies are merged ------------------------
# One Workflow per task (<project>-task-<n>, from WorkflowTemplate STAGES), owned by the run.
# 1. Reads the run; without a Running run there is nothing to do (mode verdict: it is gone).
# 2. Reads the task graph (GRAPH_DIR/<k>/tasks.json), the run's task Workflows (by labels) and
#    the task state ConfigMaps.
# 3. Sorts every task: merged, failed (its Workflow failed, or succeeded without a merge), open
#    (its Workflow goes), ready (no Workflow yet, every dependency merged), held (a dependency
#    failed or is held), or waiting.
# 4. mode dispatch/check: creates the ready tasks' Workflows in graph order while fewer than
#    MAX_OPEN are open. The run is finished when nothing is open and nothing is ready.
# 5. mode dispatch: wakes the run's end-wait when finished; always exits 0 (it runs in a task's
#    exit handler, whose failure would fail the task). mode check: exits 0 when finished, else 1.
#    mode verdict: exits 0 when every task merged, else 1 naming the failed and held tasks.
# SELF/SELF_STATUS: the Workflow whose exit handler this is, and its status (it is still
# Running while its exit handler runs).

PROJECT = ENV["PROJECT"]
NAMESPACE = ENV["NAMESPACE"]
RUN = ENV["RUN"]
STAGES = ENV["STAGES"]
STATE_PREFIX = ENV["STATE_PREFIX"]
TASK_PREFIX = ENV.get("TASK_PREFIX") or PROJECT + "-task-"
END_TEMPLATE = ENV.get("END_TEMPLATE") or "end-wait"
GRAPH_DIR = ENV.get("GRAPH_DIR", "/graph").rstrip("/")
GRAPH_MAPS = int(canonical(ENV.get("GRAPH_MAPS", "1")) or "1")
MAX_OPEN = max(1, int(canonical(ENV.get("MAX_OPEN", "1")) or "1"))
MODE = ENV.get("MODE", "dispatch")
SELF = ENV.get("SELF", "")
SELF_STATUS = ENV.get("SELF_STATUS", "")
WORKFLOWS = "/apis/argoproj.io/v1alpha1/namespaces/" + NAMESPACE + "/workflows"
LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
TEMPLATE_NAME = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_.]{0,127}")
OPEN_PHASES = ("", "Pending", "Running")
LIMIT = 1024


def clean(text, size=160):
    """Cluster text fit for a message: one line, no Argo tag, at most `size` characters."""
    text = re.sub(r"\s+", " ", str(text or "")).strip().replace("{", "(").replace("}", ")")
    return text if len(text) <= size else text[: size - 1] + "…"


def listing(items, size=400):
    """Items joined with ", ", cut to about `size` characters with "… and k more"."""
    out = []
    for index, item in enumerate(items):
        rest = len(items) - index
        if out and len(", ".join(out + [item])) > size:
            return ", ".join(out) + " … and " + str(rest) + " more"
        out.append(item)
    return ", ".join(out)


def conclude(message, failed=False):
    """finish(), with the message within LIMIT bytes; mode dispatch always exits 0."""
    if ERRORS:
        message = message + " (" + str(len(ERRORS)) + " problem(s), first: " + ERRORS[0] + ")"
        failed = failed or MODE != "dispatch"
        del ERRORS[:]
    if MODE == "dispatch":
        failed = False
    data = message.encode()
    if len(data) > LIMIT:
        message = data[: LIMIT - 3].decode(errors="ignore") + "…"
    finish(message, failed)


def records():
    """The task records of the graph, in schedule order; None when the graph cannot be read."""
    found, seen = [], set()
    for k in range(GRAPH_MAPS):
        path = GRAPH_DIR + "/" + str(k) + "/tasks.json"
        try:
            with open(path) as f:
                chunk = json.load(f)
        except (OSError, ValueError):
            problem("the task graph " + path + " cannot be read")
            return None
        if not isinstance(chunk, list):
            problem("the task graph " + path + " is not a list")
            return None
        for item in chunk:
            number = canonical(item.get("number")) if isinstance(item, dict) else None
            deps = item.get("deps") if isinstance(item, dict) else None
            entrypoint = item.get("entrypoint") if isinstance(item, dict) else None
            parameters = item.get("parameters") if isinstance(item, dict) else None
            if (
                not number
                or not isinstance(deps, list)
                or not all(canonical(d) for d in deps)
                or not isinstance(entrypoint, str)
                or not TEMPLATE_NAME.fullmatch(entrypoint)
                or not isinstance(parameters, list)
                or not all(
                    isinstance(p, dict) and isinstance(p.get("name"), str) and isinstance(p.get("value"), str)
                    for p in parameters
                )
            ):
                problem("the task graph " + path + " holds a malformed record")
                continue
            if number in seen:
                continue
            seen.add(number)
            found.append(
                {
                    "number": number,
                    "deps": [canonical(d) for d in deps],
                    "entrypoint": entrypoint,
                    "parameters": [{"name": p["name"], "value": p["value"]} for p in parameters],
                }
            )
    return found


def task_workflows(kube, uid):
    """task number -> (phase, message) of the run's task Workflows; None when not listed."""
    selector = "pressplay.dev/project=" + PROJECT + ",pressplay.dev/component=task"
    items = kube.list(WORKFLOWS, selector, "task Workflows")
    if items is None:
        return None
    found = {}
    for item in items:
        meta = item.get("metadata") or {}
        labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
        name = meta.get("name") or ""
        task = canonical(name[len(TASK_PREFIX):]) if name.startswith(TASK_PREFIX) else None
        if not task or labels.get("pressplay.dev/run") != uid:
            continue
        status = item.get("status") if isinstance(item.get("status"), dict) else {}
        phase = status.get("phase") or ""
        if name == SELF and SELF_STATUS:
            phase = SELF_STATUS
        found[task] = (phase if isinstance(phase, str) else "", status.get("message"))
    return found


def states(kube):
    """task number -> merged value of every state ConfigMap; None when not listed."""
    path = "/api/v1/namespaces/" + NAMESPACE + "/configmaps"
    items = kube.list(path, "workflows.argoproj.io/configmap-type=Parameter", "state ConfigMaps")
    if items is None:
        return None
    found = {}
    for item in items:
        name = (item.get("metadata") or {}).get("name") or ""
        task = canonical(name[len(STATE_PREFIX):]) if name.startswith(STATE_PREFIX) else None
        if task:
            data = item.get("data") if isinstance(item.get("data"), dict) else {}
            found[task] = data.get("merged")
    return found


def classify(tasks, workflows, merged):
    """task number -> merged, failed, open, ready, held or waiting."""
    kind = {}
    for task in tasks:
        number = task["number"]
        phase = workflows[number][0] if number in workflows else None
        if merged.get(number) == "true":
            kind[number] = "merged"
        elif phase in ("Failed", "Error", "Succeeded"):
            kind[number] = "failed"
        elif phase is not None:
            kind[number] = "open"
    for task in tasks:
        number = task["number"]
        if number not in kind and all(merged.get(d) == "true" for d in task["deps"]):
            kind[number] = "ready"
    changed = True
    while changed:
        changed = False
        for task in tasks:
            number = task["number"]
            if number not in kind and any(kind.get(d) in ("failed", "held") for d in task["deps"]):
                kind[number] = "held"
                changed = True
    for task in tasks:
        kind.setdefault(task["number"], "waiting")
    return kind


def manifest(task, uid):
    number = task["number"]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": TASK_PREFIX + number,
            "namespace": NAMESPACE,
            "labels": {
                "app.kubernetes.io/managed-by": "pressplay",
                "pressplay.dev/project": PROJECT,
                "pressplay.dev/component": "task",
                "pressplay.dev/task-number": number,
                "pressplay.dev/run": uid,
            },
            "ownerReferences": [
                {
                    "apiVersion": "argoproj.io/v1alpha1",
                    "kind": "Workflow",
                    "name": RUN,
                    "uid": uid,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": {
            "workflowTemplateRef": {"name": STAGES},
            "entrypoint": task["entrypoint"],
            "arguments": {"parameters": task["parameters"]},
        },
    }


def start(kube, tasks, kind, uid):
    """Creates the ready tasks' Workflows in graph order while fewer than MAX_OPEN are open;
    returns how many it created."""
    opened = sum(1 for k in kind.values() if k == "open")
    started = 0
    for task in tasks:
        number = task["number"]
        if kind[number] != "ready":
            continue
        if opened >= MAX_OPEN:
            break
        status, _ = kube.call("POST", WORKFLOWS, manifest(task, uid))
        if status == 201:
            log("task " + number + ": started " + TASK_PREFIX + number)
            started += 1
        elif status == 409:
            log("task " + number + ": " + TASK_PREFIX + number + " exists already (counted as open)")
        else:
            problem("task " + number + ": creating its Workflow failed (HTTP " + str(status) + ")")
            continue
        kind[number] = "open"
        opened += 1
    return started


def count(kind, which):
    return sum(1 for k in kind.values() if k == which)


def verdict(tasks, kind, workflows):
    if all(kind[t["number"]] == "merged" for t in tasks):
        conclude("all " + str(len(tasks)) + " tasks merged")
    failed = []
    for task in tasks:
        number = task["number"]
        if kind[number] != "failed":
            continue
        phase, message = workflows.get(number, ("", None))
        reason = clean(message, 120) or ("succeeded without a merge" if phase == "Succeeded" else "")
        failed.append("task " + number + (" (" + reason + ")" if reason else ""))
    parts = []
    if failed:
        parts.append("failed: " + listing(failed, 500))
    for which, label in (("held", "held back: "), ("open", "still open: "), ("ready", "not started: "),
                         ("waiting", "still waiting: ")):
        numbers = [t["number"] for t in tasks if kind[t["number"]] == which]
        if numbers:
            parts.append(label + listing(numbers, 200))
    conclude("; ".join(parts), failed=True)


def main():
    if MODE not in ("dispatch", "check", "verdict"):
        conclude("unknown mode " + clean(MODE, 40), failed=True)
    kube = Kube()
    status, run = kube.call("GET", WORKFLOWS + "/" + RUN)
    if status == 404 or (status == 200 and isinstance(run, dict)):
        phase = ((run or {}).get("status") or {}).get("phase") if status == 200 else None
        if phase != "Running":
            if MODE == "verdict":
                conclude("the run is gone", failed=True)
            conclude("no run " + RUN + " going (" + str(phase or "none") + "): nothing to do")
    else:
        problem("reading the run " + RUN + " failed (HTTP " + str(status) + ")")
        conclude("nothing done", failed=True)
    uid = (run.get("metadata") or {}).get("uid")
    if not isinstance(uid, str) or not LABEL_VALUE.fullmatch(uid):
        problem("the run " + RUN + " has no usable uid")
        conclude("nothing done", failed=True)
    tasks = records()
    workflows = task_workflows(kube, uid)
    merged = states(kube)
    if tasks is None or workflows is None or merged is None:
        conclude("nothing done: the graph, the task Workflows or their states cannot be read", failed=True)
    kind = classify(tasks, workflows, merged)
    if MODE == "verdict":
        verdict(tasks, kind, workflows)
    started = start(kube, tasks, kind, uid)
    finished = count(kind, "open") == 0 and count(kind, "ready") == 0
    if MODE == "check":
        if finished:
            conclude(
                "finished: " + str(count(kind, "merged")) + " merged, " + str(count(kind, "failed"))
                + " failed, " + str(count(kind, "held")) + " held, " + str(count(kind, "waiting")) + " waiting"
            )
        conclude(
            "pending: " + str(count(kind, "open")) + " open, " + str(count(kind, "ready")) + " ready, "
            + str(count(kind, "waiting")) + " waiting",
            failed=True,
        )
    message = (
        "started " + str(started) + " task(s); " + str(count(kind, "open")) + " open, "
        + str(count(kind, "merged")) + " merged, " + str(count(kind, "failed")) + " failed, "
        + str(count(kind, "held")) + " held"
    )
    if finished:
        argo = Argo()
        if not argo.ready:
            problem("the run is finished but no waker token is mounted: its end-wait waits for its timeout")
        else:
            woken = argo.resume(NAMESPACE, RUN, "templateName=" + END_TEMPLATE)
            outcomes = {True: "woke the run", False: "the run did not wait (yet)"}
            outcome = outcomes.get(woken, "the run could not be woken")
            message += "; finished: " + outcome
    conclude(message)


main()
