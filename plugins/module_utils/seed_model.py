# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One model of an ollama_store_model task, as the seeder (store_seed.py) tracks it: what the store held before,
what the registry serves, what is to be downloaded and what was done, with its served model; and how that reads
in the task's result (`models`) and diff.
"""

from __future__ import annotations

from ansible_collections.aiplatform.ollama.plugins.module_utils.progress import human_bytes


class ModelSeed:
    """One model of the task: what the store has, what the registry has, what is done about it."""

    def __init__(self, ref, manifest_path, served_ref=None):
        self.ref = ref
        self.manifest_path = manifest_path
        self.served = ServedModel(served_ref) if served_ref else None
        self.before = None  # LocalManifest
        self.after = None  # LocalManifest, or the planned {"digest", "size"} in check mode
        self.remote = None  # RegistryClient.resolve()
        self.manifest = None  # the manifest the store must end up with
        self.todo = []  # [(digest, size)] to download
        self.action = "none"
        self.downloaded = []
        self.removed = []
        self.missing = []
        self.corrupt = {}  # digest -> what was found
        self.written = False  # its manifest was written although the task failed

    @property
    def changed(self):
        """Whether the model itself changes (its served model aside)."""
        return self.action != "none"

    def state(self, entry):
        if entry is None:
            return {}
        if isinstance(entry, dict):
            return dict(entry)
        return {"digest": entry.digest, "size": entry.size}

    def result(self):
        after = self.state(self.after)
        out = dict(
            model=self.ref.full,
            name=self.ref.short,
            action=self.action,
            changed=self.changed or bool(self.served and self.served.changed),
            digest=after.get("digest", ""),
            size=after.get("size", 0),
            manifest_path=self.manifest_path,
            blobs_downloaded=list(self.downloaded),
            blobs_removed=list(self.removed),
            blobs_missing=list(self.missing),
            blobs_corrupt=sorted(self.corrupt),
        )
        if self.remote:
            out["registry_digest"] = self.remote["digest"]
        if self.served:
            out.update(self.served.result())
        return out

    def summary(self, check_mode):
        """One line for a person: the model, what the store holds of it after the task, what was done."""
        after = self.state(self.after)
        if self.action == "none":
            done = "already complete" if after else "not in the store"
        else:
            done = f"would be {self.action}" if check_mode else self.action
        held = f"{after['digest']} ({human_bytes(after['size'])}), " if after else ""
        line = f"{self.ref.short}: {held}{done}"
        if self.served:
            written = "would be written" if check_mode else "written"
            line += f"; served as {self.served.ref.short}, {written if self.served.changed else 'in place'}"
        return line

    def diff(self, where):
        header = f"{self.ref.short} in {where}"
        before = self.state(self.before)
        if before and (self.missing or self.corrupt):
            before.update(blobs_missing=list(self.missing), blobs_corrupt=sorted(self.corrupt))
        after = self.state(self.after)
        diff = {
            "before": dict(before, model=self.ref.full) if before else {},
            "after": dict(after, model=self.ref.full) if after else {},
            "before_header": header,
            "after_header": header,
        }
        if self.served:
            for side, digest in (("before", self.served.before), ("after", self.served.after)):
                if digest is not None:
                    diff[side]["served"] = {"name": self.served.ref.short, "digest": digest}
        return diff


class ServedModel:
    """The thread-aligned model derived from a model of the task, as `ollama create` writes it."""

    def __init__(self, ref):
        self.ref = ref
        self.before = None  # digest of its manifest in the store before the task
        self.after = None  # after the task (planned in check mode; None while unknown)
        self.changed = False
        self.written = False  # some of it was written, also when the task failed

    def result(self):
        return dict(served=self.ref.short, served_changed=self.changed, served_digest=self.after or "")
