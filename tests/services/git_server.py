"""A real git smart-HTTP server, so Flux's source-controller can clone a GitRepository from this machine.

git's own `git-http-backend` does the protocol work, run as a CGI program by fcgiwrap behind nginx
(Python's http.server CGI support is gone in 3.15, and a hand-written server would not be the real
thing). Repositories are bare ones under `<workdir>/repos`, served read-only at
`http://127.0.0.1:<port>/git/<name>.git`: git-http-backend refuses receive-pack without REMOTE_USER,
which this server never sets, so content arrives only through `publish()`, over the filesystem.

Every git command, here and in the CGI, runs with the user's and the system's git configuration
switched off, so a developer's ~/.gitconfig can neither change nor be changed by the tests.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from .nginx import nginx
from .process import ManagedProcess, Service, ServiceError, free_port

GIT_HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"
BRANCH = "main"
# fcgiwrap children: each runs one CGI request at a time, and a test may have the git CLI and
# source-controller fetching at once
FCGI_CHILDREN = 4
# fcgiwrap's preforking parent dies at once on SIGTERM, so its children, dying too, become zombies
# of PID 1, which may reap them late or never (a container's init), and a zombie still counts in
# `ManagedProcess.group_alive`. This reaper leads the process group instead: a child subreaper
# (prctl PR_SET_CHILD_SUBREAPER), it inherits the orphans (children, CGIs in flight) and waits for
# every one before it exits. It also ends with fcgiwrap, so a crash shows as the service exiting.
REAPER = """\
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
signal.signal(signal.SIGTERM, lambda *_: None)  # the whole group gets it; this one waits instead
signal.signal(signal.SIGINT, lambda *_: None)
main = os.posix_spawnp(sys.argv[1], sys.argv[1:], os.environ, setsigdef=(signal.SIGPIPE,))  # Python ignores it
code = 1
while True:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        break
    if pid == main:
        code = os.waitstatus_to_exitcode(status)
        os.killpg(0, signal.SIGTERM)  # fcgiwrap is gone: its children go too
sys.exit(code if code >= 0 else 128 - code)
"""
# a sun_path holds 108 bytes; pytest's tmp_path can come close, so a longer path moves to /tmp
MAX_SOCKET_PATH = 100

# No ~/.gitconfig, no /etc/gitconfig: the tests neither depend on nor touch the user's setup.
# safe.directory=*: the published directories and the repositories may belong to another user.
HERMETIC_GIT_ENV = {
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "safe.directory",
    "GIT_CONFIG_VALUE_0": "*",
    "GIT_TERMINAL_PROMPT": "0",  # a 401 must fail the command, never wait for a password
    "LC_ALL": "C",  # error messages the tests can match
}
# Fixed identity, so commits never depend on who runs the tests.
IDENTITY_ENV = {
    "GIT_AUTHOR_NAME": "aiplatform-tests",
    "GIT_AUTHOR_EMAIL": "tests@aiplatform.invalid",
    "GIT_COMMITTER_NAME": "aiplatform-tests",
    "GIT_COMMITTER_EMAIL": "tests@aiplatform.invalid",
}

# The CGI's environment is these FastCGI parameters plus fcgiwrap's own (emptied by `env -i`), so
# the hermetic git settings are repeated here. GIT_PROTOCOL carries the client's Git-Protocol header
# (protocol v2 of the git CLI); go-git, which source-controller uses, speaks v0 and sends none.
SERVER = """\
    listen 127.0.0.1:{port};
    client_max_body_size 0;
    location = /ready {{ return 204; }}
    location ~ ^/git(/.*)$ {{
      fastcgi_pass unix:{socket};
      fastcgi_param SCRIPT_FILENAME {backend};
      fastcgi_param GIT_PROJECT_ROOT {repos};
      fastcgi_param GIT_HTTP_EXPORT_ALL 1;
      fastcgi_param PATH_INFO $1;
      fastcgi_param QUERY_STRING $query_string;
      fastcgi_param REQUEST_METHOD $request_method;
      fastcgi_param CONTENT_TYPE $content_type;
      fastcgi_param CONTENT_LENGTH $content_length;
      fastcgi_param GIT_PROTOCOL $http_git_protocol;
      fastcgi_param REMOTE_ADDR $remote_addr;
      fastcgi_param SERVER_PROTOCOL $server_protocol;
      fastcgi_param GATEWAY_INTERFACE CGI/1.1;
      fastcgi_param GIT_CONFIG_GLOBAL /dev/null;
      fastcgi_param GIT_CONFIG_NOSYSTEM 1;
      fastcgi_param GIT_CONFIG_COUNT 1;
      fastcgi_param GIT_CONFIG_KEY_0 safe.directory;
      fastcgi_param GIT_CONFIG_VALUE_0 "*";
    }}"""

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*")


def git_env(extra: dict | None = None) -> dict:
    """The environment for every git command of the tests: no inherited GIT_* variable (a GIT_DIR
    from a hook would redirect the command), the user's configuration off, a fixed identity."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    return {**env, **HERMETIC_GIT_ENV, **IDENTITY_ENV, **(extra or {})}


def run_git(*args: str | Path, cwd: Path | None = None, check: bool = True,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run git hermetically (see git_env); a failure raises with git's own stderr in the message."""
    result = subprocess.run(["git", *map(str, args)], cwd=cwd, env=git_env(env), stdin=subprocess.DEVNULL,
                            capture_output=True, text=True)
    if check and result.returncode != 0:
        raise ServiceError(f"git {' '.join(map(str, args))} failed ({result.returncode}):\n{result.stderr}")
    return result


def fcgiwrap_bin() -> str | None:
    return shutil.which("fcgiwrap", path=os.environ.get("PATH", "") + ":/usr/sbin")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class GitServer(Service):
    """nginx + fcgiwrap + git-http-backend. Use `GitServer.start(workdir)` as a context manager."""

    def __init__(self, workdir: Path):
        super().__init__()
        self.workdir = Path(workdir)
        self.repos = self.workdir / "repos"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.socket = self.workdir / "fcgiwrap.sock"
        self._socket_dir: str | None = None
        self._lock = threading.Lock()  # one publish at a time: each commit's parent is the last one

    def _start(self) -> None:
        fcgiwrap = fcgiwrap_bin()
        if not fcgiwrap:
            raise FileNotFoundError("fcgiwrap is not installed: run `make setup`")
        if not os.access(GIT_HTTP_BACKEND, os.X_OK):
            raise FileNotFoundError(f"{GIT_HTTP_BACKEND} is missing: install git")
        self.repos.mkdir(parents=True, exist_ok=True)
        if len(str(self.socket)) > MAX_SOCKET_PATH:
            self._socket_dir = tempfile.mkdtemp(prefix="git-server-")
            self._stack.callback(shutil.rmtree, self._socket_dir, ignore_errors=True)
            self.socket = Path(self._socket_dir) / "fcgiwrap.sock"
        self.socket.unlink(missing_ok=True)  # a socket left by an earlier run would make bind fail
        # env -i: fcgiwrap hands its own environment on to the CGI, and the test session's must not
        # reach git there; -p: this fcgiwrap runs git-http-backend and nothing else, whatever
        # SCRIPT_FILENAME says. The reaper in front collects the preforked children (see REAPER).
        argv = [sys.executable, "-c", REAPER, "env", "-i", "PATH=/usr/bin:/bin", "LC_ALL=C",
                fcgiwrap, "-c", str(FCGI_CHILDREN), "-p", GIT_HTTP_BACKEND, "-s", f"unix:{self.socket}"]
        # its stop ends the whole group: the children and any running CGI
        wrapper = self._spawn("fcgiwrap", argv)
        self._wait_socket(wrapper)
        server = SERVER.format(port=self.port, socket=self.socket, backend=GIT_HTTP_BACKEND, repos=self.repos)
        self._keep(self._stack.enter_context(
            nginx("nginx-git", self.workdir / "nginx", server, ready_url=self.url + "/ready")))
        self._check_backend()

    def _wait_socket(self, proc: ManagedProcess, timeout: float = 30.0) -> None:
        """Wait until fcgiwrap accepts connections on its socket; fail with its log if it exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.proc.poll() is not None:
                raise ServiceError(f"fcgiwrap exited with {proc.proc.returncode}:\n{proc.log_tail()}")
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                try:
                    sock.connect(str(self.socket))
                    return
                except OSError:
                    pass
            time.sleep(0.1)
        raise ServiceError(f"fcgiwrap did not listen on {self.socket} within {timeout}s:\n{proc.log_tail()}")

    def _check_backend(self) -> None:
        """One request through the whole chain: git-http-backend answers 404 for a repository that does
        not exist, while a broken nginx -> fcgiwrap -> CGI link shows as 502 or 403."""
        probe = f"{self.url}/git/.readiness-probe.git/info/refs?service=git-upload-pack"
        try:
            urllib.request.urlopen(probe, timeout=30).close()
            status = 200
        except urllib.error.HTTPError as err:
            status = err.code
        if status != 404:
            raise ServiceError(f"git-http-backend answered {status} instead of 404 for a missing repository:\n"
                               + self.logs())

    def logs(self, lines: int = 40) -> str:
        """The processes' logs, and nginx's own error and access logs (which its output does not hold)."""
        nginx_dir = self.workdir / "nginx"
        return "\n".join([super().logs(lines),
                          f"--- nginx-git error.log ---\n{_tail(nginx_dir / 'error.log', lines)}",
                          f"--- nginx-git access.log ---\n{_tail(nginx_dir / 'access.log', lines)}"])

    def repo_url(self, name: str) -> str:
        return f"{self.url}/git/{name}.git"

    def publish(self, name: str, source_dir: Path, message: str) -> tuple[str, str]:
        """Make `<name>.git` hold exactly source_dir's files as a new commit on main; return (clone URL, sha).

        The tree is built in an index of its own, fresh each time, so files gone from source_dir are
        gone from the commit; the commit is new even when nothing changed, as a new push would be.
        source_dir itself is the work tree, nothing is copied: its .gitignore files apply as in a checkout.
        """
        if not _NAME.fullmatch(name) or name.endswith(".git") or ".." in name:
            raise ValueError(f"not a repository name: {name!r}")
        source_dir = Path(source_dir).resolve()
        if not source_dir.is_dir():
            raise NotADirectoryError(source_dir)
        bare = self.repos / f"{name}.git"
        with self._lock:
            if not (bare / "HEAD").exists():
                bare.parent.mkdir(parents=True, exist_ok=True)
                run_git("init", "--quiet", "--bare", f"--initial-branch={BRANCH}", bare)
                # as GitHub and GitLab do: a client may fetch a commit by its sha, not only a branch
                run_git("--git-dir", bare, "config", "uploadpack.allowReachableSHA1InWant", "true")
            with tempfile.TemporaryDirectory(prefix="git-publish-") as scratch:
                env = {"GIT_DIR": str(bare), "GIT_WORK_TREE": str(source_dir),
                       "GIT_INDEX_FILE": str(Path(scratch) / "index")}
                run_git("add", "--all", ".", cwd=source_dir, env=env)
                tree = run_git("write-tree", env=env).stdout.strip()
                parent = run_git("rev-parse", "--verify", "--quiet", f"refs/heads/{BRANCH}",
                                 check=False, env=env).stdout.strip()
                parents = ["-p", parent] if parent else []
                sha = run_git("commit-tree", tree, *parents, "-m", message, env=env).stdout.strip()
                # the old value guards the update: nothing else may have moved the branch meanwhile
                run_git("update-ref", "-m", f"publish: {message}", f"refs/heads/{BRANCH}", sha, parent, env=env)
        return self.repo_url(name), sha
