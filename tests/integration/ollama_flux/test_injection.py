"""Names and values cannot inject: every role checks model names with the modules' parser, and object
names and GitOps paths with the dns_label and repo_path filters, before it writes or applies anything;
the seed Job's script takes its names from its environment, so the script that runs in the pod is the
same text whatever the model is."""

from __future__ import annotations

import pytest

from tests.playbook import PROJECT_ROOT, ROLE_OBJECTS_PLAYBOOK, run_playbook

HOSTILE = {
    "command-substitution": "$(touch /tmp/pwned)",
    "backticks": "`id`",
    "double-quote": 'qwen2.5"; id; "',
    "single-quote": "qwen2.5'",
    "jinja": "{{ lookup('pipe', 'id') }}",
    "flux-placeholder": "${OLLAMA_MODEL}",
    "newline": "qwen2.5\nid",
    "path-traversal": "../../../etc/passwd",
}
# Names whose newline sits at the edge of a part: each part once passed its check (a regex '$' also
# matches before a final newline), and the whole was stripped, so these reached a shell script whole.
EDGE_NEWLINES = {
    "leading-newline": "\nreboot",
    "newline-before-a-path": "x\n/bin/reboot",
    "newline-before-the-tag": "qwen2.5\n:latest",
}


@pytest.mark.parametrize("name", list(HOSTILE.values()), ids=list(HOSTILE))
def test_deploy_refuses_the_model_name_and_writes_nothing(run_deploy, tmp_path, name):
    target = tmp_path / "repo"
    run = run_deploy("dev", {"ollama_flux_mode": "gitops", "ollama_flux_gitops_dir": str(target),
                             "ollama_flux_model": name})
    assert run.returncode != 0
    assert "ollama_flux_model: model name" in run.said, run.output[-3000:]
    assert not target.exists()


# Not pre-seeded, the otwld chart pastes the model name into the text of its own postStart script
# (`/bin/ollama pull <name>`, and with chart_create `FROM <name>` in an unquoted here-document), where
# Flux substitutes ${OLLAMA_MODEL} from cluster-vars: only model_ref's refusal keeps a shell out of it.
POST_START = {**HOSTILE, **EDGE_NEWLINES}


@pytest.mark.parametrize("name", list(POST_START.values()), ids=list(POST_START))
@pytest.mark.parametrize("mode", ["gitops", "apply"])
def test_the_charts_post_start_script_never_gets_a_hostile_name(work_tree_collections, tmp_path, mode, name):
    target = tmp_path / "repo"
    objects = tmp_path / "objects.json"
    if mode == "gitops":
        run = run_playbook(work_tree_collections, "deploy.yml", "dev",
                           {"preflight_mode": "off", "ollama_flux_mode": "gitops",
                            "ollama_flux_gitops_dir": str(target), "ollama_flux_models_preseeded": False,
                            "ollama_flux_model": name})
    else:
        # what apply mode would send, computed without a cluster (tests/playbook.py role_objects)
        playbook = tmp_path / "objects.yml"
        playbook.write_text(ROLE_OBJECTS_PLAYBOOK.format(
            role="ollama_flux", objects=PROJECT_ROOT / "roles" / "ollama_flux" / "vars" / "objects.yml",
            expression="__ollama_flux_values_computed", dest=objects))
        run = run_playbook(work_tree_collections, str(playbook), "dev",
                           {"ollama_flux_models_preseeded": False, "ollama_flux_model": name})
    assert run.returncode != 0
    assert "ollama_flux_model: model name" in run.said, run.output[-3000:]
    assert not target.exists() and not objects.exists()


# the object names and GitOps paths each role writes into manifests, scripts and files
NAMES = {
    "ollama_flux_namespace": "deploy.yml",
    "ollama_flux_pvc_name": "deploy.yml",
    "ollama_flux_gitops_app_path": "deploy.yml",
    "model_cache_namespace": "seed_models.yml",
    "model_cache_pvc_name": "seed_models.yml",
    "model_cache_gitops_app_path": "seed_models.yml",
}


@pytest.mark.parametrize("variable", list(NAMES))
@pytest.mark.parametrize("value", list(HOSTILE.values()), ids=list(HOSTILE))
def test_names_and_paths_are_refused_naming_the_variable(work_tree_collections, tmp_path, variable, value):
    target = tmp_path / "repo"
    extra = {"ollama_flux_mode": "gitops", "ollama_flux_gitops_dir": str(target), "model_cache_mode": "gitops",
             "model_cache_gitops_dir": str(target), "preflight_mode": "off", variable: value}
    run = run_playbook(work_tree_collections, NAMES[variable], "dev", extra)
    assert run.returncode != 0
    rule = "not a path inside the repository" if variable.endswith("_path") else "not a DNS label"
    assert f"{variable} is " in run.said and rule in run.said, run.output[-3000:]
    assert not target.exists()


MODEL_NAMES = {**HOSTILE, **EDGE_NEWLINES}


@pytest.mark.parametrize("name", list(MODEL_NAMES.values()), ids=list(MODEL_NAMES))
def test_seed_refuses_the_model_name_before_seeding_anything(work_tree_collections, tmp_path, tiny_model, name):
    store = tmp_path / "store"
    # a good name first: it must not be seeded either, since the bad one is found before any download;
    # no preflight, which would refuse the name first: this is model_cache's own check
    run = run_playbook(work_tree_collections, "seed_models.yml", "local",
                       {"model_cache_path": str(store), "model_cache_models": [tiny_model.ref, name],
                        "model_cache_insecure": True, "preflight_mode": "off"})
    assert run.returncode != 0
    assert "model_cache_models: model name" in run.said, run.output[-3000:]
    assert not store.exists()


@pytest.mark.parametrize("name", list(MODEL_NAMES.values()), ids=list(MODEL_NAMES))
def test_seed_refuses_a_model_to_remove_before_seeding_anything(work_tree_collections, tmp_path, tiny_model, name):
    store = tmp_path / "store"
    run = run_playbook(work_tree_collections, "seed_models.yml", "local",
                       {"model_cache_path": str(store), "model_cache_models": [tiny_model.ref],
                        "model_cache_absent_models": [name], "model_cache_insecure": True, "preflight_mode": "off"})
    assert run.returncode != 0
    assert "model_cache_absent_models: model name" in run.said, run.output[-3000:]
    assert not store.exists()


# A lone ${NAME} is what Flux fills from cluster-vars and is accepted; a placeholder with anything
# around it, escaped or with a shell default is not.
GITOPS_MODELS = {
    **{case: name for case, name in MODEL_NAMES.items() if case != "flux-placeholder"},
    "placeholder-and-text": "${OLLAMA_MODEL}x",
    "two-placeholders": "${OLLAMA_MODEL}${OLLAMA_QUOTE}",
    "escaped-placeholder": "$${OLLAMA_MODEL}",
    "placeholder-with-default": "${OLLAMA_MODEL:-qwen2.5}",
    "lower-case-placeholder": "${ollama_model}",
    "placeholder-and-newline": "${OLLAMA_MODEL}\nid",
}


@pytest.mark.parametrize("name", list(GITOPS_MODELS.values()), ids=list(GITOPS_MODELS))
def test_the_rendered_seed_job_refuses_a_model_and_writes_nothing(work_tree_collections, tmp_path, name):
    target = tmp_path / "repo"
    run = run_playbook(work_tree_collections, "seed_models.yml", "dev",
                       {"model_cache_mode": "gitops", "model_cache_gitops_dir": str(target), "preflight_mode": "off",
                        "model_cache_gitops_models": ["${OLLAMA_MODEL}", name]})
    assert run.returncode != 0
    assert "model_cache_gitops_models is " in run.said, run.output[-3000:]
    assert "neither a model reference nor one Flux placeholder alone" in run.said
    assert not target.exists()


def test_the_rendered_seed_job_takes_a_lone_placeholder_and_a_model_reference(work_tree_collections, tmp_path):
    target = tmp_path / "repo"
    run = run_playbook(work_tree_collections, "seed_models.yml", "dev",
                       {"model_cache_mode": "gitops", "model_cache_gitops_dir": str(target), "preflight_mode": "off",
                        "model_cache_gitops_models": ["${OLLAMA_MODEL}", "registry.example.com:5000/team/m:v1"]})
    assert run.returncode == 0, run.output[-3000:]
    rendered = "\n".join(path.read_text() for path in target.rglob("*.yaml"))
    assert "${OLLAMA_MODEL} registry.example.com:5000/team/m:v1" in rendered
