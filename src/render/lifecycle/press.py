

# ---- press: start a new run of the project -------------------------------------------------
# The run has one fixed name (the merge wake-up addresses it). A finished run is deleted (its
# uid as a precondition, so a newer run is never deleted) and the new one created from the
# orchestrator WorkflowTemplate; a run still going is left alone and this press fails, with
# the reason as its message (shown in the Argo UI).

NAMESPACE = ENV["NAMESPACE"]
RUN = ENV["RUN"]
MANIFEST = json.loads(ENV["RUN_MANIFEST"])
PRESS = ENV.get("PRESS_NAME", "")
WAIT = int(ENV.get("DELETE_WAIT_SECONDS", "120"))
POLL = float(ENV.get("POLL_SECONDS", "2"))


def main():
    kube = Kube()
    path = "/apis/argoproj.io/v1alpha1/namespaces/" + NAMESPACE + "/workflows"
    status, run = kube.call("GET", path + "/" + RUN)
    if status == 200 and isinstance(run, dict):
        phase = (run.get("status") or {}).get("phase") or "Pending"
        uid = (run.get("metadata") or {}).get("uid")
        if phase not in PHASES_DONE:
            finish(
                "not started: the run " + RUN + " is still " + phase + ". Let it finish, or stop it "
                "(argo stop " + RUN + "), then press play again.",
                failed=True,
            )
        log("deleting the finished run " + RUN + " (" + phase + ")")
        options = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background",
                   "preconditions": {"uid": uid}}
        status, _ = kube.call("DELETE", path + "/" + RUN, options)
        if status == 409:
            finish("not started: the run " + RUN + " was replaced meanwhile (another press?)", failed=True)
        if status not in (200, 202, 404):
            finish("not started: deleting the finished run " + RUN + " failed (HTTP " + str(status) + ")", failed=True)
        deadline = time.time() + WAIT
        while True:
            status, gone = kube.call("GET", path + "/" + RUN)
            if status == 404:
                break
            if status == 200 and isinstance(gone, dict) and (gone.get("metadata") or {}).get("uid") != uid:
                finish("not started: another press started " + RUN + " meanwhile", failed=True)
            if time.time() > deadline:
                finish("not started: the finished run " + RUN + " is still being deleted after "
                       + str(WAIT) + " s (finalizers?)", failed=True)
            time.sleep(POLL)
    elif status != 404:
        finish("not started: reading the run " + RUN + " failed (HTTP " + str(status) + ")", failed=True)
    if PRESS:
        MANIFEST.setdefault("metadata", {}).setdefault("annotations", {})["pressplay.dev/pressed-by"] = PRESS
    status, created = kube.call("POST", path, MANIFEST)
    if status == 201:
        uid = (created.get("metadata") or {}).get("uid") if isinstance(created, dict) else None
        finish("started the run " + RUN + " (uid " + str(uid) + ")")
    if status == 409:
        finish("not started: another press created " + RUN + " first", failed=True)
    finish("not started: creating the run " + RUN + " failed (HTTP " + str(status) + ")", failed=True)


main()
