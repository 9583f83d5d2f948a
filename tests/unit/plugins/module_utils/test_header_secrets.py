"""Which headers carry credentials, and that a module's output never holds their values: AnsibleModule's own
masking (no_log values) on its real exit, failure and syslog paths, no server involved. The integration test
(test_header_secrets_gateway.py) runs the modules through ansible-playbook -vvv against a real gateway."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiplatform.ollama.plugins.module_utils.header_secrets import (
    HeaderRedactingModule,
    credential_values,
    hide_credential_headers,
    is_credential_header,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_api import OLLAMA_COMMON_ARGS, OllamaClient
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_http import check_headers

ROOT = Path(__file__).resolve().parents[4]
SECRET = "s3cr3t-token"


@pytest.mark.parametrize("name", [
    "Authorization", "authorization", "AUTHORIZATION", "Proxy-Authorization", "Cookie", "Set-Cookie",
    "X-Api-Key", "Api-Key", "apikey", "x_api_key", "X-API-KEY", "XApiKey", "X-Auth-Token", "X-Auth", "Auth",
    "PRIVATE-TOKEN", "X-Vault-Token", "X-Amz-Security-Token", "X-Access-Token", "X-AccessToken", "X-Csrf-Token",
    "Ocp-Apim-Subscription-Key", "X-Goog-Api-Key", "X-Functions-Key", "X-Client-Secret", "X-Password",
    "X-Session-Id", "SessionId", "X-Credentials", "X-Hub-Signature", "X-Jwt-Assertion", "X-Authn-User",
    "X-Upstream-Authentication",
])
def test_credential_headers(name):
    assert is_credential_header(name)


@pytest.mark.parametrize("name", [
    "Accept", "Accept-Encoding", "Content-Type", "User-Agent", "X-Request-Id", "X-Trace-Id", "X-Forwarded-For",
    "OpenAI-Organization", "X-Tenant", "Cache-Control", "Range", "X-Model-Route", "Host",
])
def test_ordinary_headers(name):
    assert not is_credential_header(name)


def test_values_to_mask_are_the_credential_values_and_the_credentials_after_their_scheme():
    headers = {"Authorization": f"Bearer {SECRET}", "x-api-key": "k3y", "Cookie": "sid=abc; theme=dark",
               "X-Trace-Id": "trace-42", "Accept": "application/json"}
    assert credential_values(headers) == {f"Bearer {SECRET}", SECRET, "k3y", "sid=abc; theme=dark", "theme=dark"}


def test_values_to_mask_of_odd_values():
    # numbers as Ansible stringifies a no_log number; empty and boolean values would mask everything alike
    assert credential_values({"X-Api-Key": 12345, "X-Auth": "", "X-Token": True, "Session": None}) == {"12345"}
    assert credential_values({"Authorization": "  Bearer  "}) == {"  Bearer  "}
    assert credential_values({"Authorization": [f"Bearer {SECRET}"]}) == {f"Bearer {SECRET}", SECRET}
    assert credential_values({}) == credential_values(None) == set()


def test_values_to_mask_of_headers_given_as_text():
    # a dict option also takes k=v and JSON text; text it cannot read is refused by validation: masked whole
    assert credential_values("X-Api-Key=k3y, Accept=text/plain") == {"k3y"}
    assert credential_values(json.dumps({"Authorization": f"Basic {SECRET}"})) == {f"Basic {SECRET}", SECRET}
    assert credential_values(f"Authorization=Bearer {SECRET}") == {f"Authorization=Bearer {SECRET}"}


def test_hide_credential_headers_adds_to_the_modules_no_log_values():
    module = type("Module", (), {"params": {"headers": {"Authorization": f"Bearer {SECRET}"}},
                                 "no_log_values": {"other"}})()
    hide_credential_headers(module)
    assert module.no_log_values == {"other", f"Bearer {SECRET}", SECRET}


@pytest.mark.parametrize(("headers", "says"), [
    ({"Authorization": f"Bearer {SECRET}\r\nX-Injected: 1"}, "the value of Authorization has a line break"),
    ({"Authorization": f"Bearer {SECRET}\x00"}, "line break or NUL"),
    ({"X-Api-Key": f"{SECRET}\u4e2d"}, "the value of X-Api-Key has characters outside Latin-1"),
    ({"X-Api-Key": [SECRET]}, "the value of X-Api-Key is a list; give a string"),
    ({"X-Api-Key": None}, "is a NoneType"),
    ({"Bad:Name": SECRET}, "'Bad:Name' is not an HTTP header name"),
])
def test_headers_http_cannot_send_are_refused_without_their_value(headers, says):
    with pytest.raises(ValueError) as err:
        check_headers(headers)
    assert says in str(err.value) and SECRET not in str(err.value)
    with pytest.raises(ValueError):
        OllamaClient(headers=headers)


def test_headers_http_can_send_pass():
    check_headers({"Authorization": f"Bearer {SECRET}", "X-Count": 3, "X-Latin": "caf\u00e9", "Accept": ""})
    check_headers(None)


# -- the module class, on AnsibleModule's real output paths --------------------------------------------


def _run(args, capsys, monkeypatch, spec=None):
    """Create HeaderRedactingModule with args, warn and exit; (what it printed, as JSON; the syslog lines;
    the warnings as AnsibleModule got them, which since 2.19 its result masking passes over)."""
    logged, warned = [], []
    monkeypatch.setattr(AnsibleModule, "log", lambda self, msg, log_args=None: logged.append(msg))
    monkeypatch.setattr(AnsibleModule, "warn", lambda self, warning, *args, **kwargs: warned.append(warning))
    with patch_module_args(args), pytest.raises(SystemExit):
        module = HeaderRedactingModule(argument_spec=spec or dict(OLLAMA_COMMON_ARGS), supports_check_mode=True)
        module.warn(f"sent {module.params['headers']}")
        token = module.params["headers"]["Authorization"].split()[-1]
        module.exit_json(changed=False, msg=f"the server saw the token {token}", sent=module.params["headers"])
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1]), logged, warned


def test_invocation_results_warnings_and_syslog_mask_credentials(capsys, monkeypatch):
    headers = {"Authorization": f"Bearer {SECRET}", "X-Trace-Id": "trace-42"}
    result, logged, warned = _run({"headers": headers}, capsys, monkeypatch)
    text = json.dumps(result) + " ".join(logged + warned)
    assert SECRET not in text, text
    shown = result["invocation"]["module_args"]["headers"]
    assert shown == {"Authorization": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER", "X-Trace-Id": "trace-42"}
    assert result["sent"] == shown
    assert result["msg"] == "the server saw the token ********"
    # the whole value masked, or (ansible-core before 2.19, which masks in no particular order) its token
    masked = re.compile(r"'Authorization': '(Bearer )?\*{8}', 'X-Trace-Id': 'trace-42'")
    assert len(warned) == 1 and masked.search(warned[0]), warned
    assert masked.search(logged[0]), logged


def test_a_failed_validation_masks_credentials_too(capsys, monkeypatch):
    # AnsibleModule validates (and fails) while it is being created, before a module could add no_log values
    args = {"headers": {"Authorization": f"Bearer {SECRET}"}, "no_such_option": 1}
    with patch_module_args(args), pytest.raises(SystemExit):
        HeaderRedactingModule(argument_spec=dict(OLLAMA_COMMON_ARGS))
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["failed"] and "no_such_option" in result["msg"], result
    assert SECRET not in json.dumps(result), result


def test_headers_text_the_option_refuses_is_masked_whole(capsys, monkeypatch):
    args = {"headers": f"Authorization=Bearer {SECRET}"}
    with patch_module_args(args), pytest.raises(SystemExit):
        HeaderRedactingModule(argument_spec=dict(OLLAMA_COMMON_ARGS))
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["failed"] and SECRET not in json.dumps(result), result


def _written_options(tree):
    """Option names a module writes out itself: keywords of dict(...) calls and keys of {...} literals."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
            names |= {kw.arg for kw in node.keywords if kw.arg}
        elif isinstance(node, ast.Dict):
            names |= {key.value for key in node.keys if isinstance(key, ast.Constant)}
    return names


def test_every_module_taking_headers_creates_a_header_redacting_module():
    """A module whose options include `headers` (OLLAMA_COMMON_ARGS, or its own) must be created as
    HeaderRedactingModule: a plain AnsibleModule would print the credentials in `invocation`."""
    takers = []
    for path in sorted((ROOT / "plugins" / "modules").glob("*.py")):
        tree = ast.parse(path.read_text())
        names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        if "OLLAMA_COMMON_ARGS" in names or "headers" in _written_options(tree):
            takers.append(path.stem)
            assert "HeaderRedactingModule" in names and "AnsibleModule" not in names, path.name
    assert set(takers) >= {"ollama_info", "ollama_health", "ollama_concurrency", "ollama_model"}, takers
