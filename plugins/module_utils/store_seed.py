# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The seeder behind ollama_store_model: one run over the models a task names, in one store.

The module checks its options and hands the model references to StoreSeeder, which plans (what the store
holds against what the registry serves), downloads what is missing under the store's lock, verifies or
repairs, removes, writes the served models, and shapes the result and the diff the module returns. The
module object is passed whole for what belongs to the task (its params, check and diff mode, warnings),
as kubernetes.core's k8s module hands itself to its runner.
"""

from __future__ import annotations

import contextlib
import os
import time

from ansible_collections.aiplatform.ollama.plugins.module_utils.blob_download import DownloadFailed
from ansible_collections.aiplatform.ollama.plugins.module_utils.derived_model import DerivedModelError, derive
from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import CollectionError
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_registry import (
    RegistryBlobSource,
    RegistryClient,
    RegistryError,
    download_fix,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.ollama_store import (
    OllamaStore,
    StoreError,
    descriptors,
    digest_hex,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.progress import (
    DownloadProgress,
    ProgressFile,
    human_bytes,
)
from ansible_collections.aiplatform.ollama.plugins.module_utils.seed_model import ModelSeed
from ansible_collections.aiplatform.ollama.plugins.module_utils.store_writers import describe, partial_writers

# the order of significance of the actions, for the task's one `action` when it names several models
_ACTIONS = ("removed", "repaired", "seeded")


class SeedError(CollectionError):
    """A run that failed: the message says which model, which store and what was written.

    The `error` context is the cause's (a StoreError, RegistryError, ...) when there is one; `extra`
    holds further keys of the failed task's result.
    """

    def __init__(self, msg, cause=None, extra=None, **context):
        if isinstance(cause, CollectionError):
            context = dict(cause.details(), **context)
        super().__init__(msg, **context)
        self.extra = extra or {}


class StoreSeeder:
    """One run of the module over the models it names, sharing one store lock and one download."""

    def __init__(self, module, refs, served_refs):
        self.module = module
        self.params = module.params
        self.store = OllamaStore(self.params["path"])
        self.models = [ModelSeed(ref, self.store.manifest_path(ref), served) for ref, served in zip(refs, served_refs)]
        self.clients = {}
        self.report = ProgressFile.from_environment()
        self.stats = dict(bytes_transferred=0, seconds=0.0, bytes_per_second=0.0)
        self.freed = None

    @property
    def names(self):
        return ", ".join(m.ref.short for m in self.models)

    # -- results ------------------------------------------------------------------------------

    def results(self):
        results = [m.result() for m in self.models]
        first = dict(results[0])
        first.pop("changed")
        actions = [m.action for m in self.models if m.changed]
        out = dict(
            first,
            changed=bool(actions) or any(m.served.changed for m in self.models if m.served),
            action=next((a for a in _ACTIONS if a in actions), "none"),
            blobs_downloaded=list(dict.fromkeys(d for r in results for d in r["blobs_downloaded"])),
            blobs_removed=list(dict.fromkeys(d for r in results for d in r["blobs_removed"])),
            blobs_missing=list(dict.fromkeys(d for r in results for d in r["blobs_missing"])),
            blobs_corrupt=list(dict.fromkeys(d for r in results for d in r["blobs_corrupt"])),
            models=results,
            **self.stats,
        )
        if self.freed is not None:
            out["bytes_freed"] = self.freed
        out["summary"] = [m.summary(self.module.check_mode) for m in self.models]
        if self.params["state"] != "absent":
            out["summary"].append(self.download_summary())
        return out

    def download_summary(self):
        moved = self.stats["bytes_transferred"]
        if not moved:
            return "nothing to download"
        if self.module.check_mode:
            return f"would download {human_bytes(moved)}"
        return (f"downloaded {human_bytes(moved)} in {self.stats['seconds']} s "
                f"({human_bytes(self.stats['bytes_per_second'])}/s)")

    def failed(self, err):
        """The result of a run that stopped on `err`, without its message."""
        self.report.remove()
        extra = err.extra if isinstance(err, SeedError) else {}
        # a failed run vouches only for the manifests it wrote (the models complete before it stopped);
        # every other model reads as it was before, with nothing done
        for model in self.models:
            if not model.written:
                model.action, model.after = "none", model.before
            if model.served and not model.served.written:
                model.served.changed, model.served.after = False, model.served.before
        return dict(self.results(), error=err.details(), **extra)

    def finish(self, msg=None):
        """The result of a run that succeeded."""
        out = self.results()
        if msg:
            out["msg"] = msg
        if self.module._diff:
            diffs = [m.diff(self.store.root) for m in self.models]
            out["diff"] = diffs[0] if len(diffs) == 1 else diffs
        return out

    def run(self):
        state = self.params["state"]
        if state == "absent":
            out = self.absent()
        elif state == "verified":
            out = self.verified()
        else:
            out = self.present(latest=state == "latest")
        if self.params.get("prune"):
            out.update(self.prune_unreferenced(out))
        return out

    def prune_unreferenced(self, out):
        """After the state's work, remove every complete blob no manifest references (what a removed or
        moved model left), under the store lock so no seeder is writing: the keys to add to `out`."""
        found, reason = self.store.unreferenced()
        if reason:
            raise SeedError(f"not pruning {self.store.root}: {reason}. Fix or remove that manifest, then run again.")
        if found and not self.module.check_mode:
            with self.locked("prune"):
                # read again under the lock: a seeder that held it may have written a manifest using them
                found, reason = self.store.unreferenced()
                if reason:
                    raise SeedError(f"not pruning {self.store.root}: {reason}")
                self.refuse_partial_writers()
                removed, freed, _kept = self.store.prune([digest for digest, _size in found])
        else:
            removed, freed = [d for d, _s in found], sum(size for _d, size in found)
        return dict(changed=out["changed"] or bool(removed), blobs_pruned=removed,
                    bytes_freed=out.get("bytes_freed", 0) + freed)

    def refuse_partial_writers(self):
        """A pull in progress (a server's, which takes no store lock) has complete blobs no manifest names yet."""
        writers = partial_writers(self.store.blobs_dir)
        if writers:
            raise SeedError(
                f"not pruning {self.store.root}: a download is in progress ({describe(writers)}), and the blobs it "
                "has completed are named by no manifest until it ends. Let it finish (or stop that server), then "
                "run again; nothing was removed",
                kind="busy", path=self.store.root,
            )

    # -- reading ------------------------------------------------------------------------------

    def local(self, model):
        try:
            return self.store.read_manifest(model.ref)
        except StoreError as err:
            if err.kind == "corrupt":
                self.module.warn(f"{err}; seeding {model.ref.short} replaces it")
                return None
            raise SeedError(f"reading the store {self.store.root} for {model.ref.short}: {err}", err) from err

    def client(self, host):
        if host not in self.clients:
            self.clients[host] = RegistryClient.from_params(host, self.params)
        return self.clients[host]

    def resolve(self, model):
        try:
            model.remote = self.client(model.ref.host).resolve(model.ref.repository, model.ref.tag)
        except RegistryError as err:
            raise SeedError(f"seeding {model.ref.short} into {self.store.root}: {err}{download_fix(err)}; nothing "
                            "was written", err) from err
        return model.remote

    def complete(self, entry):
        return entry is not None and not self.store.missing(entry.manifest)

    def current(self, model, entry):
        """Whether the store's manifest is the one the registry serves (either digest Ollama may list)."""
        remote = model.remote
        return entry is not None and digest_hex(entry.digest) in (
            digest_hex(remote["digest"]),
            digest_hex(remote["ollama_digest"]),
        )

    def plan(self, model, latest):
        """What seeding `model` takes; model.todo empty when the store holds what is asked."""
        entry = model.before = self.local(model)
        if not latest and self.complete(entry):
            model.after, model.todo, model.action = entry, [], "none"
            return
        remote = model.remote or self.resolve(model)
        if latest and self.complete(entry) and self.current(model, entry):
            model.after, model.todo, model.action = entry, [], "none"
            return
        model.manifest = remote["manifest"]
        model.todo = self.store.missing(model.manifest)
        model.action = "seeded"
        model.after = {"digest": remote["ollama_digest"], "size": remote["size"]}

    # -- writing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, what):
        """The store's lock around the writes of `what` (the state). A StoreError met while taking or holding it
        fails the run naming the state, the models and the store; a SeedError passes as it is."""

        def waiting(holder, waited):
            self.report.waiting_for_lock(self.names, holder, waited)

        try:
            with self.store.lock(timeout=self.params["lock_timeout"], holder=f"ollama_store_model {what} {self.names}",
                                 waiting=waiting):
                yield
        except StoreError as err:
            if err.kind == "locked":
                raise SeedError(f"{err}; nothing was written", err) from err
            raise SeedError(f"{self.params['state']} {self.names} in {self.store.root}: {err}", err) from err

    def writable(self):
        """Fail before anything is written (check mode too: the run would fail) when the store cannot be."""
        reason = self.store.unwritable_reason()
        if reason:
            raise SeedError(f"cannot seed {self.names} into {self.store.root}: {reason}; nothing was written",
                            kind="unwritable", path=self.store.root)

    def free_space(self, needed):
        try:
            self.store.require_free(needed, f"seeding {self.names} into {self.store.root}")
        except StoreError as err:
            raise SeedError(str(err), err) from err

    def download(self, wanted):
        """Download [(model, digest, size)] in parallel parts, each blob once; fails naming the blob and model."""
        blobs, owner = [], {}
        for model, digest, size in wanted:
            key = digest_hex(digest)
            if key in owner:
                continue
            owner[key] = model
            client = self.client(model.ref.host)
            blobs.append((digest, size, RegistryBlobSource(client, model.ref.repository, digest, size)))
        if not blobs:
            return
        needed = sum(size - self.store.partial_bytes(digest, size) for digest, size, _src in blobs)
        progress = DownloadProgress(needed)

        def status(number, digest, size, connections):
            return f"blob {number}/{len(blobs)} {digest[:19]} ({human_bytes(size)}), {connections} connections"

        def advance(count, downloader):
            progress.add(count)
            current = downloader.current()
            if current and self.report.due():
                number, job = current
                progress.status = status(number, job.digest, job.size, downloader.active_connections)
                self.report.write(progress.snapshot(self.names))

        first = min(blobs, key=lambda blob: blob[1])  # the downloader starts with the smallest
        progress.status = status(1, first[0], first[1], 0)
        self.report.write(progress.snapshot(self.names), force=True)
        started = time.monotonic()
        try:
            received = self.store.download_blobs(
                blobs,
                advance,
                max_connections=self.params["max_connections"],
                parts=self.params["parts"],
                part_size=self.params["part_size"],
            )
        except DownloadFailed as err:
            self.stats["bytes_transferred"] = err.transferred
            self.write_complete_manifests()
            model = owner[digest_hex(err.digest)]
            if isinstance(err.cause, StoreError):
                raise SeedError(self.explain(err.cause, model, err.digest, err.size), err.cause,
                                extra=dict(store_error=err.cause.kind)) from err
            raise SeedError(
                f"downloading blob {err.digest} of {model.ref.short} from registry {model.ref.host}: {err.cause}; "
                f"the manifest was not written, a rerun resumes{self.written_note()}",
                err.cause, digest=err.digest,
            ) from err
        finally:
            self.report.remove()
        seconds = time.monotonic() - started
        transferred = sum(received.values())
        self.stats.update(
            bytes_transferred=transferred,
            seconds=round(seconds, 3),
            bytes_per_second=round(transferred / seconds, 1) if seconds > 0 else 0.0,
        )
        for model, digest, _size in wanted:
            model.downloaded.append(digest)

    def explain(self, err, model, digest, size):
        where = f"blob {digest} ({human_bytes(size)}) of {model.ref.short} from registry {model.ref.host}"
        written = self.written_note()
        if err.kind == "digest":
            return (
                f"{where} failed verification: its content has sha256 {err.found}, not {digest}. The registry "
                "(or a proxy or CDN in between) served corrupt data; the partial file was removed and the "
                f"manifest of {model.ref.short} was not written. Repair the registry's copy (push the model again) "
                f"and run again{written}"
            )
        if err.kind == "disk_full":
            return (
                f"no space left in {self.store.root} while writing {where} ({self.free()} free): grow the volume "
                f"or free space, then run again; the download resumes from the -partial file and the manifest "
                f"was not written{written}"
            )
        if err.kind in ("short", "size"):
            return (
                f"{where}: {err}. The connection broke off or the registry sent the wrong length; the manifest "
                f"was not written, run again to resume{written}"
            )
        return f"{where}: {err}; the manifest was not written{written}"

    def free(self):
        try:
            return human_bytes(self.store.free_bytes())
        except OSError:
            return "unknown"

    def write_manifest(self, model):
        try:
            self.store.write_manifest(model.ref, model.manifest)
        except StoreError as err:
            raise SeedError(f"writing the manifest of {model.ref.short} into {self.store.root}: {err}", err) from err
        model.written = True
        model.after = self.store.read_manifest(model.ref)

    def write_complete_manifests(self):
        """After a failed download: the models whose blobs all arrived are written all the same."""
        for model in self.models:
            if model.manifest and model.action != "none" and not self.store.missing(model.manifest):
                self.write_manifest(model)

    def written_note(self):
        done = [m.ref.short for m in self.models if m.written]
        return f" ({', '.join(done)} complete and written)" if done else ""

    def prune_replaced(self, model):
        """Blobs of the manifest a moved tag replaced, that no manifest uses any more (as `ollama pull` prunes)."""
        if model.before is None or self.current(model, model.before):
            return
        removed, _freed, kept = self.store.prune([d for d, _s in descriptors(model.before.manifest)])
        if kept:
            self.module.warn(f"kept the blobs of the former manifest of {model.ref.short}: {kept}")
        model.removed = removed

    # -- states -------------------------------------------------------------------------------

    def present(self, latest):
        for model in self.models:
            self.plan(model, latest)
            if model.served:
                self.plan_served(model)
        todo = [m for m in self.models if m.changed]
        served = [m for m in self.models if m.served and m.served.changed]
        if not todo and not served:
            return self.finish()
        self.writable()
        if self.module.check_mode:
            return self.check_report(todo, served)
        self.free_space(self.needed(todo))
        with self.locked("latest" if latest else "present"):
            # another seeder may have written some of it while this one waited
            for model in todo:
                self.plan(model, latest)
            todo = [m for m in self.models if m.changed]
            self.download([(m, d, s) for m in todo for d, s in m.todo])
            for model in todo:
                self.write_manifest(model)
                if latest:
                    self.prune_replaced(model)
            # from the models as the store now holds them, each complete
            for model in self.models:
                if model.served:
                    self.write_served(model)
        return self.finish()

    # -- the served model ---------------------------------------------------------------------

    def derive_served(self, model):
        """The served model of `model`, from its base as the store holds it now."""
        try:
            base = self.store.read_manifest(model.ref)
            return derive(self.store, model.ref, base and base.manifest, {"num_thread": self.params["num_thread"]})
        except (DerivedModelError, StoreError) as err:
            raise SeedError(f"deriving {model.served.ref.short} (num_thread {self.params['num_thread']}) from "
                            f"{model.ref.short}: {err}; {model.served.ref.short} was not written{self.written_note()}",
                            err) from err

    def served_manifest(self, model):
        """The served model's manifest in the store, None when there is none or it is unreadable (then replaced)."""
        try:
            return self.store.read_manifest(model.served.ref)
        except StoreError as err:
            if err.kind != "corrupt":
                where = f"{self.store.root} for {model.served.ref.short}"
                raise SeedError(f"reading the store {where}: {err}", err) from err
            self.module.warn(f"{err}; writing {model.served.ref.short} replaces it")
            return None

    def plan_served(self, model):
        """Whether the served model would be written; with its base still to be seeded its bytes are not known yet."""
        served = model.served
        current = self.served_manifest(model)
        served.before = current.digest if current else None
        if model.changed:
            served.after, served.changed = None, True
            return
        derived = self.derive_served(model)
        served.after = derived.manifest_digest
        served.changed = served.before != served.after or any(
            not self.store.blob_complete(digest, len(body)) for digest, body in derived.blobs)

    def write_served(self, model):
        """Write the served model's blobs, then its manifest, where the store does not hold those bytes already;
        the blobs of the manifest it replaces that no other manifest uses go, as `ollama create` prunes them."""
        served = model.served
        derived = self.derive_served(model)
        current = self.served_manifest(model)
        served.before = current.digest if current else None
        try:
            written = self.store.put_model(served.ref, derived.blobs, derived.manifest)
        except StoreError as err:
            raise SeedError(f"writing {served.ref.short} into {self.store.root}: {err}; it was not written"
                            f"{self.written_note()}", err) from err
        served.after, served.changed, served.written = derived.manifest_digest, written, written
        if current and served.before != served.after:
            _removed, _freed, kept = self.store.prune([d for d, _s in descriptors(current.manifest)])
            if kept:
                self.module.warn(f"kept the blobs of the former {served.ref.short}: {kept}")

    def needed(self, models):
        blobs = {digest_hex(d): (d, s) for m in models for d, s in m.todo}
        return sum(s - self.store.partial_bytes(d, s) for d, s in blobs.values())

    def check_report(self, models, served=()):
        needed = self.needed(models)
        for model in models:
            model.downloaded = [d for d, _s in model.todo]
        self.stats["bytes_transferred"] = needed
        what = "repair" if self.params["state"] == "verified" else "seed"
        said = []
        if models:
            said.append(f"would {what} {', '.join(m.ref.short for m in models)} in {self.store.root}: "
                        f"{human_bytes(needed)} to download")
        if served:
            said.append(f"would write {', '.join(m.served.ref.short for m in served)} (num_thread "
                        f"{self.params['num_thread']}) into {self.store.root}")
        return self.finish(msg="; ".join(said))

    def verified(self):
        # without a repair, a store that does not exist holds nothing to verify: no lock, nothing created for it
        if self.module.check_mode or not (self.params["repair"] or os.path.isdir(self.store.root)):
            return self.verify_all()
        with self.locked("verified"):
            return self.verify_all()

    def verify_all(self):
        check = self.module.check_mode
        for model in self.models:
            model.before = self.local(model)
            if model.before is not None:
                self.verify(model)
        broken = [m for m in self.models if m.before is None or m.missing or m.corrupt]
        for model in self.models:
            if model not in broken:
                model.after = model.before
        if not broken:
            return self.finish()
        if not self.params["repair"]:
            raise SeedError(
                "; ".join(self.damage(m) for m in broken) + ". Set repair: true to download what is missing or "
                "corrupt again (the corrupt files are removed first)",
                kind="damaged", path=self.store.root,
            )
        for model in broken:
            if model.before is None:
                self.plan(model, latest=False)  # not in the store at all: repaired by seeding it
            else:
                model.manifest = model.before.manifest
                broken_blobs = set(model.missing) | set(model.corrupt)
                model.todo = [(d, s) for d, s in descriptors(model.manifest) if d in broken_blobs]
                model.after = model.before
            model.action = "repaired"
        self.writable()
        if check:
            return self.check_report(broken)
        self.free_space(self.needed(broken))
        for model in broken:
            for digest in model.corrupt:
                self.store.remove_blob(digest)
        self.download([(m, d, s) for m in broken for d, s in m.todo])
        for model in broken:
            if model.before is None:
                self.write_manifest(model)
            else:
                model.after = self.store.read_manifest(model.ref)
        return self.finish()

    def verify(self, model):
        blobs = descriptors(model.before.manifest)
        progress = DownloadProgress(sum(s for _d, s in blobs))

        def advance(count):
            progress.add(count)
            if self.report.due():
                self.report.write(progress.snapshot(model.ref.short))

        try:
            for number, (digest, size) in enumerate(blobs, 1):
                progress.status = f"verifying blob {number}/{len(blobs)} {digest[:19]} ({human_bytes(size)})"
                self.report.write(progress.snapshot(model.ref.short), force=True)
                status, found = self.store.verify_blob(digest, size, advance)
                if status == "missing":
                    model.missing.append(digest)
                elif status == "corrupt":
                    model.corrupt[digest] = found
        except StoreError as err:
            raise SeedError(f"verifying {model.ref.short} in {self.store.root}: {err}", err) from err
        finally:
            self.report.remove()

    def damage(self, model):
        if model.before is None:
            return self.store.absent_message(model.ref)
        parts = []
        if model.missing:
            parts.append("missing: " + ", ".join(model.missing))
        if model.corrupt:
            parts.append("corrupt: " + ", ".join(f"{d} ({found})" for d, found in model.corrupt.items()))
        return f"{model.ref.short} in {self.store.root} has blobs {'; '.join(parts)}"

    def absent(self):
        for model in self.models:
            model.before = self.local(model)
            if model.before is not None or os.path.lexists(model.manifest_path):
                model.action = "removed"
        if self.module.check_mode or not any(m.changed for m in self.models):
            return self.finish()
        self.freed = 0
        with self.locked("absent"):
            for model in [m for m in self.models if m.changed]:
                self.remove(model)
        return self.finish()

    def remove(self, model):
        try:
            removed, freed, kept = self.store.remove(model.ref)
        except StoreError as err:
            raise SeedError(f"removing {model.ref.short} from {self.store.root}: {err}", err) from err
        if kept:
            self.module.warn(f"removed the manifest of {model.ref.short} but kept its blobs: {kept}")
        model.removed = removed
        self.freed += freed
