# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Show the progress of a long download in the normal ansible-playbook output.

A module cannot print while it runs, so the action plugin of a downloading module (ollama_model,
ollama_store_model) starts the module as an asynchronous job, and while the job runs reads the
progress file the module keeps on the managed host (module_utils/progress.py) and prints one line
(percentage, bytes, rate, ETA) every `progress_interval` seconds. The module takes the option
`progress_interval` (it only documents it); the action plugin names the progress file in the job's
environment (PROGRESS_FILE_ENV). Each action plugin is a subclass naming what it does.
"""

from __future__ import annotations

import json
import secrets
import shlex
import time

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.aiplatform.ollama.plugins.module_utils.progress import PROGRESS_FILE_ENV, progress_line

display = Display()

# async_wrapper kills the job after this long; a download that slow has other problems
_JOB_LIMIT = 7 * 24 * 3600
_POLL_DELAYS = (0.25, 0.5, 1.0, 1.0, 2.0)
# seconds a job may take to write its first status file (async_wrapper writes it before the module starts)
_STATUS_GRACE = 60.0
_MARK = "--aiplatform.ollama progress--"
_JOB_KEYS = ("ansible_job_id", "started", "finished", "results_file", "_ansible_suppress_tmpdir_delete")


class ProgressAction(ActionBase):
    """Runs the task's module as an asynchronous job and prints its progress; plain when there is none to show."""

    _supports_check_mode = True
    _supports_async = True
    # the verb of the progress lines ("<host>: pulling <model>: 6.4% ...")
    progress_verb = "downloading"

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = self._task.args
        try:
            interval = float(args.get("progress_interval", 10) or 0)
        except (TypeError, ValueError):
            raise AnsibleActionFail(
                "progress_interval must be a number of seconds, got {!r}".format(args.get("progress_interval"))
            ) from None
        plain = (
            self._task.async_val
            or self._task.check_mode
            or interval <= 0
            or args.get("state", "present") == "absent"
            or self._connection.always_pipeline_modules
        )
        if plain:
            wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
            result.update(self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)
            return result
        result.update(self._run_with_progress(task_vars, interval))
        return result

    def _async_status(self, jid, async_dir, task_vars):
        try:
            return self._execute_module(
                module_name="ansible.legacy.async_status",
                task_vars=task_vars,
                module_args={"jid": jid, "mode": "status", "_async_dir": async_dir},
            )
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

    def _peek(self, job_path, progress_path):
        """One shell round trip: is the job done, and the latest progress. Module runs cost far more."""
        quoted_job, quoted_progress = shlex.quote(job_path), shlex.quote(progress_path)
        cmd = f"cat {quoted_job} 2>/dev/null; printf '\\n{_MARK}\\n'; cat {quoted_progress} 2>/dev/null; true"
        out = to_text(self._low_level_execute_command(cmd, sudoable=True).get("stdout") or "")
        job_text, _mark, progress_text = out.partition(_MARK)
        try:
            job = json.loads(job_text)
        except ValueError:
            job = None  # async_wrapper has not written its first status yet
        # async_wrapper writes {"started": ..., "finished": false} while running, the module's result after
        finished = isinstance(job, dict) and ("started" not in job or bool(job.get("finished")))
        try:
            progress = json.loads(progress_text)
        except ValueError:
            progress = None  # not written yet, or already removed at the end of the download
        return job is not None, finished, progress

    def _run_with_progress(self, task_vars, interval):
        host = task_vars.get("inventory_hostname", "") if task_vars else ""
        async_dir = self._remote_expand_user(self.get_shell_option("async_dir", default="~/.ansible_async"))
        # The job is told this very path: left as "~/...", async_wrapper expands it with the job's $HOME,
        # which need not be the home this expansion found (a runner or container that sets its own
        # HOME), and the poll below would wait for a status file written elsewhere.
        self._connection._shell.set_option("async_dir", async_dir)
        progress_path = self._connection._shell.join_path(
            async_dir, f"{self._task.action.split('.')[-1]}.{secrets.token_hex(8)}.progress.json"
        )
        # the task's own environment entries come first; the progress file is added for this job only
        environment = self._task.environment
        self._task.environment = list(environment or []) + [{PROGRESS_FILE_ENV: progress_path}]
        self._task.async_val = _JOB_LIMIT
        try:
            job = self._execute_module(task_vars=task_vars, wrap_async=True)
        finally:
            self._task.async_val = 0
            self._task.environment = environment
        jid = job.get("ansible_job_id")
        if job.get("failed") or not jid:
            return job

        job_path = self._connection._shell.join_path(async_dir, jid)
        # lines are due on a fixed schedule, so a slow check never stretches the interval
        started = time.monotonic()
        next_print = started + interval
        polls = 0
        while True:
            delay = _POLL_DELAYS[min(polls, len(_POLL_DELAYS) - 1)]
            time.sleep(max(0.05, min(delay, next_print - time.monotonic())))
            polls += 1
            seen, finished, progress = self._peek(job_path, progress_path)
            if finished:
                break
            if not seen and time.monotonic() - started > _STATUS_GRACE:
                # async_wrapper writes its status file first thing: without one there is nothing to wait for
                raise AnsibleActionFail(
                    f"the asynchronous job {jid} of this task wrote no status file at {job_path} within "
                    f"{_STATUS_GRACE:g}s, so its end cannot be seen. Check that the async_dir of the shell "
                    "plugin is writable there, or run the task with progress_interval: 0"
                )
            if time.monotonic() >= next_print:
                next_print = max(next_print + interval, time.monotonic())
                if progress:
                    display.display(f"{host}: {self.progress_verb} {progress_line(progress)}")

        # the result goes through async_status once, parsed like any module result
        status = self._async_status(jid, async_dir, task_vars)
        self._low_level_execute_command(f"rm -f {shlex.quote(job_path)}", sudoable=True)
        for key in _JOB_KEYS:
            status.pop(key, None)
        for key in ("stdout", "stderr", "stdout_lines", "stderr_lines"):
            if not status.get(key):
                status.pop(key, None)
        return status
