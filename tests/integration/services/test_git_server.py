"""The git server is the real thing: git-http-backend behind nginx and fcgiwrap, cloned over HTTP."""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.services.git_server import GitServer, fcgiwrap_bin, run_git
from tests.services.nginx import nginx_bin


@pytest.fixture
def git_server(tmp_path):
    if not fcgiwrap_bin() or not nginx_bin():
        pytest.fail("fcgiwrap and nginx are needed for the git server: run `make setup`")
    with GitServer.start(tmp_path / "git") as server:
        yield server


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that name text: fcgiwrap's socket, nginx's conf, a CGI."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def test_published_directory_clones_and_fetches_over_http(git_server, tmp_path):
    source = tmp_path / "source"
    (source / "apps").mkdir(parents=True)
    (source / "kustomization.yaml").write_text("resources: [apps/ollama.yaml]\n")
    (source / "apps" / "ollama.yaml").write_text("kind: HelmRelease\n")

    url, first = git_server.publish("fleet", source, "first")
    assert url == f"{git_server.url}/git/fleet.git"
    assert url.startswith("http://127.0.0.1:")

    clone = tmp_path / "clone"
    run_git("clone", "--quiet", url, clone)
    assert (clone / "kustomization.yaml").read_text() == "resources: [apps/ollama.yaml]\n"
    assert (clone / "apps" / "ollama.yaml").read_text() == "kind: HelmRelease\n"
    assert run_git("rev-parse", "HEAD", cwd=clone).stdout.strip() == first
    assert run_git("symbolic-ref", "--short", "HEAD", cwd=clone).stdout.strip() == "main"
    log = run_git("log", "--format=%an <%ae>|%cn|%s", cwd=clone).stdout.splitlines()
    assert log == ["aiplatform-tests <tests@aiplatform.invalid>|aiplatform-tests|first"]

    # a second publish is a new commit on top: a changed file, a removed one, a new one
    (source / "apps" / "ollama.yaml").write_text("kind: HelmRelease\nmetadata: {name: ollama}\n")
    (source / "kustomization.yaml").unlink()
    (source / "README").write_text("fleet\n")
    url_again, second = git_server.publish("fleet", source, "second")
    assert url_again == url
    assert second != first

    run_git("fetch", "--quiet", "origin", cwd=clone)
    assert run_git("rev-parse", "origin/main", cwd=clone).stdout.strip() == second
    assert run_git("rev-parse", "origin/main~1", cwd=clone).stdout.strip() == first
    files = run_git("ls-tree", "-r", "--name-only", "origin/main", cwd=clone).stdout.split()
    assert files == ["README", "apps/ollama.yaml"]
    assert run_git("show", "origin/main:apps/ollama.yaml", cwd=clone).stdout.endswith("{name: ollama}\n")

    # source-controller's go-git speaks protocol v0, where the git CLI above spoke v2
    v0 = tmp_path / "clone-v0"
    run_git("-c", "protocol.version=0", "clone", "--quiet", "--branch", "main", url, v0)
    assert run_git("rev-parse", "HEAD", cwd=v0).stdout.strip() == second
    assert (v0 / "README").read_text() == "fleet\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give the repository to another user")
def test_repository_of_another_user_is_served(git_server, tmp_path):
    """safe.directory=* in the CGI's environment: git would refuse a repository it does not own."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "file").write_text("content\n")
    url, sha = git_server.publish("foreign", source, "one")
    for path in [git_server.repos / "foreign.git", *(git_server.repos / "foreign.git").rglob("*")]:
        os.lchown(path, 65534, 65534)
    run_git("clone", "--quiet", url, tmp_path / "clone")
    assert run_git("rev-parse", "HEAD", cwd=tmp_path / "clone").stdout.strip() == sha


def test_missing_repository_is_a_clean_not_found(git_server, tmp_path):
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{git_server.url}/git/missing.git/info/refs?service=git-upload-pack", timeout=60)
    assert err.value.code == 404

    result = run_git("clone", f"{git_server.url}/git/missing.git", tmp_path / "missing", check=False)
    assert result.returncode == 128
    assert "not found" in result.stderr
    assert not (tmp_path / "missing").exists()


def test_server_is_read_only_over_http(git_server, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "file").write_text("one\n")
    url, sha = git_server.publish("readonly", source, "only")
    clone = tmp_path / "clone"
    run_git("clone", "--quiet", url, clone)
    (clone / "file").write_text("two\n")
    run_git("commit", "--quiet", "-am", "pushed", cwd=clone)

    push = run_git("push", "origin", "HEAD:main", cwd=clone, check=False)
    assert push.returncode != 0
    assert run_git("ls-remote", url, "refs/heads/main").stdout.split()[0] == sha


def test_no_process_survives_the_context(tmp_path):
    if not fcgiwrap_bin() or not nginx_bin():
        pytest.fail("fcgiwrap and nginx are needed for the git server: run `make setup`")
    workdir = tmp_path / "git"
    source = tmp_path / "source"
    source.mkdir()
    (source / "file").write_text("content\n")
    with GitServer.start(workdir) as server:
        url, _ = server.publish("repo", source, "one")
        run_git("clone", "--quiet", url, tmp_path / "clone")
        processes = list(server.processes)
        assert {p.name for p in processes} == {"fcgiwrap", "nginx-git"}
        assert all(p.group_alive() for p in processes)
        assert _processes_mentioning(str(workdir))
    assert not [p.name for p in processes if p.group_alive()]
    assert _processes_mentioning(str(workdir)) == []
    shutil.rmtree(workdir)  # nothing holds the work directory any more
