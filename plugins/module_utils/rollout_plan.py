# Copyright: (c) 2026, AI Platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A model rollout without downtime, as steps: seed the next model beside the served one, flip the
deployment to it, verify it, prune the previous one; or roll back to the previous one.

The plan is made from three facts read before anything changes: the model the deployment serves
(its pods' `aiplatform.ollama/model` annotation in the HelmRelease), the model asked for, and the
rollout record (a ConfigMap beside the release: `from`, `from_served`, `to`, `phase`), written after
each step. A run stopped after any step is planned again from where it stopped:

* serving `from`, asked for `to` (record at any phase): seed `to` (a no-op once seeded), flip, verify,
  prune;
* serving `to`, record `to` at `flipped` or `verified`: verify, then prune `from`;
* serving `to`, record `pruned`, `rolled-back` or none for it: nothing to do.

A rollback flips to the record's `from` while it is still in the store (not `pruned`), downloading
nothing, and verifies it.
"""

from __future__ import annotations

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import InputError
from ansible_collections.aiplatform.ollama.plugins.module_utils.served_model import ServedModelError, served_model

STEPS = ("seed", "flip", "verify", "prune")
# the phase the record reaches after each step
PHASES = {"seed": "seeded", "flip": "flipped", "verify": "verified", "prune": "pruned"}
PENDING = ("flipped", "verified")
ANNOTATION_MODEL = "aiplatform.ollama/model"
ANNOTATION_SERVED = "aiplatform.ollama/served-model"


class RolloutPlanError(InputError):
    """A rollout that cannot be planned: nothing deployed, nothing to roll back to."""


def deployed_models(helmrelease):
    """(model, served model) the HelmRelease's pods are annotated with; ("", "") when it has none."""
    values = ((helmrelease or {}).get("spec") or {}).get("values") or {}
    annotations = values.get("podAnnotations") or {}
    return annotations.get(ANNOTATION_MODEL, ""), annotations.get(ANNOTATION_SERVED, "")


def plan(target, helmrelease, record=None, rollback=False, prune=True, cpu_limit="1000m", alignment="auto",
         variable="ollama_flux_model"):
    """The rollout's steps for the deployment `helmrelease` (the live object, or None) and the record.

    Returns a dict: `from` and `from_served` (what the deployment serves now, or for a pending prune
    what it served before), `to` and `to_served` (the model it serves afterwards, and the name clients
    call it by, for `cpu_limit` and `alignment`), `steps` (in order, a subset of STEPS), `phases` (the
    record's phase after each step), `prune_models` (the names the prune removes) and `summary`.
    Raises RolloutPlanError.
    """
    record = dict(record or {})
    deployed, deployed_served = deployed_models(helmrelease)
    if not helmrelease:
        raise RolloutPlanError(
            "there is no deployment to roll out: the HelmRelease does not exist. Deploy first (site.yml), "
            "then change the model and run rollout.yml.")
    if not deployed:
        raise RolloutPlanError(
            "the HelmRelease does not name the model its pods serve (the aiplatform.ollama/model pod annotation "
            "of this collection's deployment): deploy it once with deploy.yml, then run rollout.yml.")

    if rollback:
        back, served_back = record.get("from", ""), record.get("from_served", "")
        if record.get("phase") == "rolling-back" and record.get("to") == deployed:
            return _plan(back, served_back, deployed, deployed_served, ["verify"], [],
                         f"finish the rollback from {back} to {deployed}: verify it", rollback=True)
        if not back or record.get("to") != deployed or record.get("phase") == "rolled-back":
            raise RolloutPlanError(
                f"there is nothing to roll back to: the deployment serves {deployed}, and no rollout to it "
                f"is recorded (record: {record or 'none'}). Set {variable} to the model you want and run "
                "rollout.yml without model_rollout_rollback.")
        if record.get("phase") == "pruned":
            raise RolloutPlanError(
                f"{back} is no longer in the store: it was pruned after the rollout to {deployed} was verified, "
                f"so a rollback would download it. Roll forward instead: set {variable}: {back} and run "
                "rollout.yml (it seeds it again beside the served model), or keep the previous model next time "
                "with model_rollout_prune: false.")
        return _plan(deployed, deployed_served, back, served_back, ["flip", "verify"], [],
                     f"roll back from {deployed} to {back}, which is still in the store: nothing is downloaded",
                     rollback=True)

    if not target:
        raise RolloutPlanError(f"{variable} is empty: name the model to roll out, e.g. qwen2.5:72b.")
    if target != deployed:
        try:
            target_served = served_model(target, cpu_limit, alignment)
        except ServedModelError as exc:
            raise RolloutPlanError(f"{variable}: {exc}") from exc
        steps = ["seed", "flip", "verify"] + (["prune"] if prune else [])
        pruned = [deployed, deployed_served] if prune else []
        return _plan(deployed, deployed_served, target, target_served, steps, pruned,
                     f"roll out {target} beside {deployed}: seed it, flip the deployment, verify it"
                     + (f", then prune {deployed}" if prune else f", and keep {deployed} in the store"))

    previous = record.get("from", "")
    if record.get("to") == deployed and previous and previous != deployed and record.get("phase") in PENDING:
        steps = ["verify"] + (["prune"] if prune else [])
        names = [previous, record.get("from_served", "")] if prune else []
        return _plan(previous, record.get("from_served", ""), deployed, deployed_served, steps, names,
                     f"finish the rollout from {previous} to {deployed} (stopped after its "
                     f"{record['phase']} step): verify it" + (f", then prune {previous}" if prune else ""))
    return _plan(deployed, deployed_served, deployed, deployed_served, [], [],
                 f"{deployed} is served: nothing to roll out")


def _plan(source, source_served, target, target_served, steps, prune_models, summary, rollback=False):
    # a rollback is recorded as such from its first step, so that neither a rerun of it nor the next
    # rollout takes it for a rollout to finish (which would prune the model it left)
    phases = {step: ("rolling-back" if step == "flip" else "rolled-back") if rollback else PHASES[step]
              for step in steps}
    return {"from": source, "from_served": source_served, "to": target, "to_served": target_served,
            "steps": steps, "phases": phases, "rollback": rollback,
            "prune_models": [name for name in dict.fromkeys(prune_models) if name], "summary": summary}


def serving_pods(pods, models):
    """The pods annotated as serving one of `models`, stopping ones included (a draining pod still
    answers the requests it holds): ["<pod> (<model>)", ...]."""
    wanted = {name for name in models or [] if name}
    found = []
    for pod in pods or []:
        meta = pod.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        for key in (ANNOTATION_MODEL, ANNOTATION_SERVED):
            if annotations.get(key) in wanted:
                stopping = ", stopping" if meta.get("deletionTimestamp") else ""
                found.append(f"{meta.get('name')} ({annotations[key]}{stopping})")
                break
    return found
