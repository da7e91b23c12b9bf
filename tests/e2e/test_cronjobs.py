"""CronJobs on the real clock, driven with the real kubectl: Jobs on a
one-minute schedule under each concurrency policy, history limits, and
`kubectl create job --from=cronjob/…`. Pods run on a hollow node (`kiso
hollow`): one with the hollow exit-code annotation finishes, one without runs
until deleted. The schedule's arithmetic (time zones, deadlines, missed
times) is unit-tested on a fake clock (src/controller/cronjob_controller_test.cc)."""
import json

import pytest

from conftest import Hollow, Kubectl, Server, wait_for

CRONJOB = """
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {name}
spec:
  schedule: "* * * * *"
  concurrencyPolicy: {policy}
  successfulJobsHistoryLimit: 1
  jobTemplate:
    metadata:
      labels: {{cron: {name}}}
    spec:
      template:
        metadata:
          annotations: {annotations}
        spec:
          restartPolicy: Never
          containers:
          - name: task
            image: busybox
"""


@pytest.fixture(scope="module")
def cluster():
    server = Server()
    hollow = Hollow(server, 1, prefix="cron")
    yield server
    hollow.stop()
    server.stop()


@pytest.fixture(scope="module")
def kctl(cluster):
    return Kubectl(cluster)


def jobs(kctl, name):
    items = json.loads(kctl("get", "jobs", "-l", f"cron={name}", "-o", "json"))["items"]
    return sorted((j for j in items if not j["metadata"].get("deletionTimestamp")),
                  key=lambda j: j["metadata"]["name"])


def running(job):
    return not any(c["status"] == "True" for c in job.get("status", {}).get("conditions", []))


def test_schedule_policies_history_and_a_job_from_a_cronjob(kctl):
    finishes = '{kiso.dev/hollow-exit-code: "0"}'
    for name, policy, annotations in [("done", "Allow", finishes), ("allow", "Allow", "{}"),
                                      ("forbid", "Forbid", "{}"), ("replace", "Replace", "{}")]:
        kctl("apply", "-f", "-", input=CRONJOB.format(name=name, policy=policy, annotations=annotations))
    # A suspended one, for Jobs made by hand: its history holds only those (a
    # Job by hand from "done" would share its history with the scheduled ones
    # and, finishing in the same second as one, be the older by name and go).
    suspended = CRONJOB.format(name="manual", policy="Allow", annotations=finishes).replace(
        "  schedule:", "  suspend: true\n  schedule:")
    kctl("apply", "-f", "-", input=suspended)
    # Invalid schedules and zones are refused with the field named.
    bad = kctl.run("create", "cronjob", "bad", "--image=busybox", "--schedule=61 * * * *", check=False)
    assert bad.returncode != 0 and "spec.schedule" in bad.stderr and "above maximum" in bad.stderr
    bad_zone = CRONJOB.format(name="zone", policy="Allow", annotations="{}").replace(
        "  schedule:", "  timeZone: Mars/Olympus_Mons\n  schedule:")
    refused = kctl.run("apply", "-f", "-", input=bad_zone, check=False)
    assert refused.returncode != 0 and "unknown time zone Mars/Olympus_Mons" in refused.stderr

    # A Job from the CronJob's template, now (kubectl's own generator).
    kctl("create", "job", "by-hand", "--from=cronjob/manual")
    manual = json.loads(kctl("get", "job", "by-hand", "-o", "json"))
    assert manual["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    kctl("wait", "--for=condition=complete", "job/by-hand", "--timeout=60s", timeout=90)

    # The first minute: one Job each.
    first = wait_for(lambda: all(jobs(kctl, n) for n in ("allow", "forbid", "replace")) and
                     {n: jobs(kctl, n)[0]["metadata"]["name"] for n in ("allow", "forbid", "replace")},
                     timeout=90, what="each CronJob's first Job")
    # The status follows its Job (written after it).
    cj = wait_for(lambda: (c := json.loads(kctl("get", "cronjob", "allow", "-o", "json"))) and
                  c.get("status", {}).get("lastScheduleTime") and c, timeout=30,
                  what="allow's status")
    assert cj["status"]["active"][0]["name"] == first["allow"]
    assert cj["status"]["lastScheduleTime"].endswith(":00Z")
    job = jobs(kctl, "allow")[0]
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert "batch.kubernetes.io/cronjob-scheduled-timestamp" in job["metadata"]["annotations"]

    # The second minute: Allow runs a second Job beside the first; Replace swaps its Job.
    wait_for(lambda: len(jobs(kctl, "allow")) == 2, timeout=90, what="allow's second Job")
    wait_for(lambda: [j["metadata"]["name"] for j in jobs(kctl, "replace")] not in ([], [first["replace"]]),
             timeout=30, what="replace's new Job")
    replaced = jobs(kctl, "replace")
    assert len(replaced) == 1 and replaced[0]["metadata"]["name"] != first["replace"]
    # Forbid: still its first, still running.
    forbid = jobs(kctl, "forbid")
    assert [j["metadata"]["name"] for j in forbid] == [first["forbid"]] and running(forbid[0])
    # Two runs of "done" finished; one kept (successfulJobsHistoryLimit: 1), the last success noted.
    wait_for(lambda: len(jobs(kctl, "done")) == 1 and
             json.loads(kctl("get", "cronjob", "done", "-o", "json"))["status"].get("lastSuccessfulTime"),
             timeout=60, what="done's history trimmed to one")
    assert "done" in kctl("get", "cronjobs")
    # Suspended: two minutes passed and nothing scheduled; the Job by hand kept.
    assert [j["metadata"]["name"] for j in jobs(kctl, "manual")] == ["by-hand"]

    kctl("delete", "cronjob", "done", "allow", "forbid", "replace", "manual", "--timeout=60s",
         timeout=90)
    # The CronJobs' Jobs go with them (owner references; the Job made by hand
    # has one too).
    wait_for(lambda: not json.loads(kctl("get", "jobs", "-o", "json"))["items"], timeout=60,
             what="the Jobs garbage-collected")
