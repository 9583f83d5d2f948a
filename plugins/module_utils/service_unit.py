# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The hardened systemd unit that runs Ollama as a service on a host without Kubernetes.

Every input is checked here, before the role writes anything, and every refusal names the variable,
what was found and the fix. The unit is the one the role writes, byte for byte, so the unit tests
read what a host gets.

Why the sandbox is what it is:
- ProtectSystem=strict with ReadWritePaths for the state directory only: the model store is
  read-only to the server, as the cluster path mounts it (OLLAMA_NOPRUNE, no pull at start); the
  role seeds it before the server starts.
- The threads come from the CPUs the unit may use (CPUQuota, AllowedCPUs) by k8s_quantity.num_thread,
  the formula of the cluster path, so the served model `<model>-t<N>` is the same derivation.
- IPAddressDeny=any with loopback allowed, plus the client networks the user names when the port is
  exposed beyond loopback (which ollama_service_allow_remote must allow).
- MemoryDenyWriteExecute: Ollama's Go server and its llama.cpp CPU runner map no writable and
  executable memory (the molecule scenario runs real inference under it); a build with a JIT backend
  can turn it off.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.aiplatform.ollama.plugins.module_utils.errors import InputError
from ansible_collections.aiplatform.ollama.plugins.module_utils.k8s_quantity import (
    QuantityError,
    cpu_millicores,
    memory_bytes,
    num_thread,
)

DEFAULT_PORT = 11434
# a path goes into the unit unquoted, where systemd splits lists at whitespace and expands % specifiers
_PATH = re.compile(r"^/[A-Za-z0-9._/+-]*\Z")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}\Z")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_CPUSET = re.compile(r"^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*\Z")
_DURATION = re.compile(r"^(-1|[0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h)?([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))*)\Z")
# the variables the role passes, named in refusals
VARIABLES = {
    "host": "ollama_service_host",
    "allow_remote": "ollama_service_allow_remote",
    "ip_address_allow": "ollama_service_ip_address_allow",
    "cpus": "ollama_service_cpus",
    "cpuset": "ollama_service_cpuset",
    "memory_max": "ollama_service_memory_max",
    "install_dir": "ollama_service_install_dir",
    "state_dir": "ollama_service_state_dir",
    "store_path": "ollama_service_store_path",
    "user": "ollama_service_user",
    "num_parallel": "ollama_service_num_parallel",
    "context_length": "ollama_service_context_length",
    "keep_alive": "ollama_service_keep_alive",
    "max_loaded_models": "ollama_service_max_loaded_models",
    "environment": "ollama_service_environment",
}


class ServiceUnitError(InputError):
    """A service setting the unit cannot be written with; the message names the variable and the fix."""


def listen_address(host, allow_remote=False):
    """(address, port, loopback) of OLLAMA_HOST; refuses an exposed port unless allow_remote.

    `host` is `ADDRESS`, `ADDRESS:PORT` or `[IPV6]:PORT` (no scheme: the server binds it).
    """
    var = VARIABLES["host"]
    text = str(host or "").strip()
    if not text or "/" in text or "://" in text or any(c.isspace() for c in text):
        raise ServiceUnitError(
            f"{var} is {host!r}: give the address Ollama binds, with an optional port, e.g. 127.0.0.1:11434 "
            "(no scheme, no path)"
        )
    address, port = text, DEFAULT_PORT
    if text.startswith("["):
        match = re.match(r"^\[([0-9A-Fa-f:.]+)\](?::([0-9]+))?\Z", text)
        if not match:
            raise ServiceUnitError(f"{var} is {host!r}: write an IPv6 address as [ADDRESS]:PORT, e.g. [::1]:11434")
        address, port = match.group(1), int(match.group(2) or DEFAULT_PORT)
    elif text.count(":") == 1:
        address, port_text = text.split(":")
        if not port_text.isdigit():
            raise ServiceUnitError(f"{var} is {host!r}: the port must be a number, e.g. 127.0.0.1:11434")
        port = int(port_text)
    elif text.count(":") > 1:
        raise ServiceUnitError(f"{var} is {host!r}: write an IPv6 address as [ADDRESS]:PORT, e.g. [::1]:11434")
    if not 1 <= port <= 65535:
        raise ServiceUnitError(f"{var} is {host!r}: the port must be between 1 and 65535")
    if address == "localhost":
        loopback = True
    else:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise ServiceUnitError(
                f"{var} is {host!r}: give an IP address to bind (127.0.0.1, ::1, a host address) rather than a "
                "name, so the exposure of the port is known"
            ) from None
        loopback = ip.is_loopback
    if not loopback and not allow_remote:
        raise ServiceUnitError(
            f"{var} is {host!r}, which exposes Ollama's unauthenticated API beyond this host's loopback. "
            f"Fix: bind 127.0.0.1:{port} (the default) and put a gateway in front, or set "
            f"{VARIABLES['allow_remote']}: true and list the client networks in {VARIABLES['ip_address_allow']}"
        )
    return address, port, loopback


def _path(name, value):
    text = str(value or "")
    if not _PATH.match(text) or "/../" in text + "/" or "/./" in text + "/" or text.rstrip("/") == "":
        raise ServiceUnitError(
            f"{VARIABLES[name]} is {value!r}: give an absolute path of letters, digits and . _ - + / only "
            "(no spaces, no .. components, not /), e.g. /var/lib/ollama"
        )
    return text.rstrip("/")


# hidden or private to the service by ProtectHome= and PrivateTmp=
_HIDDEN = ("/home", "/root", "/run/user", "/tmp", "/var/tmp")


def _data_path(name, value):
    path = _path(name, value)
    if any(path == hidden or path.startswith(hidden + "/") for hidden in _HIDDEN):
        raise ServiceUnitError(
            f"{VARIABLES[name]} is {value!r}, which the sandbox hides from the service (ProtectHome, PrivateTmp). "
            "Fix: use a directory under /var/lib or /srv, e.g. /var/lib/ollama"
        )
    return path


def _positive_int(name, value):
    if isinstance(value, bool) or not str(value).strip().isdigit() or int(str(value).strip()) < 1:
        raise ServiceUnitError(f"{VARIABLES[name]} is {value!r}: give a whole number of at least 1")
    return int(str(value).strip())


def _cpuset_count(cpuset):
    text = str(cpuset or "").replace(" ", "")
    if not text:
        return None
    if not _CPUSET.match(text):
        raise ServiceUnitError(
            f"{VARIABLES['cpuset']} is {cpuset!r}: give CPU numbers and ranges, e.g. 0-3 or 0,2,4-7 (empty: any CPU)"
        )
    cpus = set()
    for part in text.split(","):
        first, last = (part.split("-") + [""])[:2]
        low, high = int(first), int(last or first)
        if high < low:
            raise ServiceUnitError(f"{VARIABLES['cpuset']} is {cpuset!r}: the range {part} runs backwards")
        cpus.update(range(low, high + 1))
    return len(cpus)


def cpu_plan(cpus="", cpuset="", physical_cores=None, numa_nodes=1):
    """The CPU quota (percent of one CPU, or None) and Ollama's num_thread for the CPUs the unit may use.

    The quota and the CPU set both bound the unit; num_thread counts the whole CPUs of the smaller, capped
    by the host's physical cores of one NUMA node, with the cluster path's formula.
    """
    millicores = None
    if str(cpus or "").strip():
        try:
            millicores = cpu_millicores(cpus)
        except QuantityError as err:
            raise ServiceUnitError(
                f"{VARIABLES['cpus']} is {cpus!r}: {err}; give the CPUs the service may use, e.g. 2 or 1500m "
                "(empty: the whole host)"
            ) from None
        if millicores < 1000:
            raise ServiceUnitError(
                f"{VARIABLES['cpus']} is {cpus!r}, less than one whole CPU: Ollama runs at least one thread, "
                "which a quota below one CPU stops for part of every period. Fix: give at least 1"
            )
    in_set = _cpuset_count(cpuset)
    limits = [m for m in (millicores, in_set * 1000 if in_set else None) if m is not None]
    limit = f"{min(limits)}m" if limits else ""
    try:
        threads = num_thread(limit, physical_cores, numa_nodes)
    except QuantityError as err:
        raise ServiceUnitError(f"{VARIABLES['cpus']}: {err}") from None
    # CPUQuota is a whole percentage of one CPU: round up so the quota never falls below the limit.
    quota = None
    if millicores is not None:
        quota = (millicores + 9) // 10
    return {"cpu_quota_pct": quota, "num_thread": threads, "cpu_limit": limit}


MIB = 1024**2


def _memory(value, model_memory_bytes=None):
    if str(value).strip() == "auto":
        needs = [int(n) for n in (model_memory_bytes or []) if n]
        if not needs:
            raise ServiceUnitError(
                f"{VARIABLES['memory_max']} is auto but no model was sized (the preflight is off or there are no "
                "models): give the memory the service may use, e.g. 8Gi"
            )
        # the largest model's need as the sizing (with its headroom) computes it, whole MiB
        return max(512 * MIB, -(-max(needs) // MIB) * MIB)
    try:
        size = memory_bytes(value)
    except QuantityError as err:
        raise ServiceUnitError(
            f"{VARIABLES['memory_max']} is {value!r}: {err}; give the memory the service may use, e.g. 8Gi"
        ) from None
    if size < 256 * 1024**2:
        raise ServiceUnitError(
            f"{VARIABLES['memory_max']} is {value!r}: below 256Mi the server itself does not start; give the "
            "model's need (the preflight reports it), e.g. 8Gi"
        )
    return size


def _environment(extra):
    if not isinstance(extra, dict):
        raise ServiceUnitError(f"{VARIABLES['environment']} is {extra!r}: give a mapping of NAME: value")
    env = {}
    for key, value in extra.items():
        text = "" if value is None else str(value)
        if not _ENV_KEY.match(str(key)) or any(c in text for c in '"\\\n\r%$'):
            raise ServiceUnitError(
                f"{VARIABLES['environment']} has {key!r}: {text!r}: names are letters, digits and _, values one "
                'line without " \\ % or $ (systemd would interpret them)'
            )
        env[str(key)] = text
    return env


def _ip_allow(entries, loopback):
    if entries in (None, ""):
        entries = []
    if not isinstance(entries, (list, tuple)):
        raise ServiceUnitError(f"{VARIABLES['ip_address_allow']} is {entries!r}: give a list of networks")
    allowed = []
    for entry in entries:
        text = str(entry).strip()
        if text not in ("any", "localhost", "link-local", "multicast"):
            try:
                text = str(ipaddress.ip_network(text, strict=False))
            except ValueError:
                raise ServiceUnitError(
                    f"{VARIABLES['ip_address_allow']} has {entry!r}: give networks such as 10.0.0.0/8 or "
                    "192.0.2.10 (or any)"
                ) from None
        allowed.append(text)
    if not loopback and not allowed:
        raise ServiceUnitError(
            f"{VARIABLES['host']} exposes the port beyond loopback, but {VARIABLES['ip_address_allow']} is empty, "
            "so the unit would still refuse every remote client. Fix: list the client networks, e.g. "
            "['10.0.0.0/8'], or ['any']"
        )
    return allowed


def render_unit(settings, physical_cores=None, numa_nodes=1, model_memory_bytes=None):
    """The unit text and what it implies; `settings` holds the role's values under VARIABLES' keys.

    `physical_cores` and `numa_nodes` are the host's (node_profile_facts), `model_memory_bytes` the sizing's
    need of each model, from which memory_max `auto` takes the largest.

    Returns {unit, num_thread, cpu_quota_pct, cpu_limit, memory_max_bytes, address, port, url, environment}.
    """
    s = dict(settings or {})
    address, port, loopback = listen_address(s.get("host", "127.0.0.1:11434"), bool(s.get("allow_remote")))
    install_dir = _path("install_dir", s.get("install_dir"))
    state_dir = _data_path("state_dir", s.get("state_dir"))
    store = _data_path("store_path", s.get("store_path"))
    if store in (state_dir, install_dir) or store.startswith(install_dir + "/"):
        raise ServiceUnitError(
            f"{VARIABLES['store_path']} is {store!r}: the store must be apart from the install directory "
            f"({install_dir}) and not the state directory itself; e.g. {state_dir}/models"
        )
    user = str(s.get("user") or "")
    if not _USER.match(user) or user == "root":
        raise ServiceUnitError(
            f"{VARIABLES['user']} is {user!r}: give a system user name (lower-case letters, digits, _ and -), "
            "not root: the service runs unprivileged"
        )
    cpu = cpu_plan(s.get("cpus", ""), s.get("cpuset", ""), physical_cores, numa_nodes)
    memory_max = _memory(s.get("memory_max"), model_memory_bytes)
    parallel = _positive_int("num_parallel", s.get("num_parallel", 1))
    context = _positive_int("context_length", s.get("context_length", 4096))
    max_loaded = _positive_int("max_loaded_models", s.get("max_loaded_models", 1))
    keep_alive = str(s.get("keep_alive", "24h")).strip()
    if not _DURATION.match(keep_alive):
        raise ServiceUnitError(
            f"{VARIABLES['keep_alive']} is {keep_alive!r}: give a Go duration such as 5m or 24h, or -1 to keep "
            "the model loaded"
        )
    allowed = _ip_allow(s.get("ip_address_allow"), loopback)
    bind = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    environment = {
        "HOME": state_dir,
        "OLLAMA_HOST": bind,
        "OLLAMA_MODELS": store,
        "OLLAMA_NOPRUNE": "1",
        "OLLAMA_KEEP_ALIVE": keep_alive,
        "OLLAMA_NUM_PARALLEL": str(parallel),
        "OLLAMA_CONTEXT_LENGTH": str(context),
        "OLLAMA_MAX_LOADED_MODELS": str(max_loaded),
    }
    for key, value in _environment(s.get("environment") or {}).items():
        if key in environment:
            raise ServiceUnitError(
                f"{VARIABLES['environment']} sets {key}, which the role derives: set its own variable instead "
                f"(OLLAMA_HOST: {VARIABLES['host']}, OLLAMA_MODELS: {VARIABLES['store_path']}, ...)"
            )
        environment[key] = value
    mdwe = s.get("memory_deny_write_execute", True)
    lines = [
        "# Managed by aiplatform.ollama.ollama_service: changes here are overwritten.",
        "[Unit]",
        "Description=Ollama LLM inference server",
        "Documentation=https://github.com/ollama/ollama",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=exec",
        f"ExecStart={install_dir}/current/bin/ollama serve",
        f"User={user}",
        f"Group={user}",
        f"WorkingDirectory={state_dir}",
        *(f'Environment="{key}={value}"' for key, value in environment.items()),
        "Restart=on-failure",
        "RestartSec=3",
        "TimeoutStopSec=30",
        "",
        "# resources: the CPUs num_thread is aligned to, the memory the sizing found",
        *([f"CPUQuota={cpu['cpu_quota_pct']}%"] if cpu["cpu_quota_pct"] else []),
        *([f"AllowedCPUs={str(s.get('cpuset')).replace(' ', '')}"] if str(s.get("cpuset") or "").strip() else []),
        f"MemoryMax={memory_max}",
        "MemorySwapMax=0",
        "LimitMEMLOCK=infinity",
        "LimitNOFILE=65536",
        "",
        "# sandbox",
        "ProtectSystem=strict",
        f"ReadWritePaths={state_dir}",
        f"ReadOnlyPaths={store}",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "DevicePolicy=closed",
        "PrivateUsers=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "ProtectProc=invisible",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        *(["MemoryDenyWriteExecute=yes"] if mdwe else []),
        "RemoveIPC=yes",
        "UMask=0027",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "IPAddressDeny=any",
        f"IPAddressAllow={' '.join(['localhost', *allowed])}",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged @resources",
        "SystemCallErrorNumber=EPERM",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    client_host = "127.0.0.1" if address in ("0.0.0.0", "localhost") else "::1" if address == "::" else address
    url_host = f"[{client_host}]" if ":" in client_host else client_host
    return {
        "unit": "\n".join(lines),
        "num_thread": cpu["num_thread"],
        "cpu_quota_pct": cpu["cpu_quota_pct"],
        "cpu_limit": cpu["cpu_limit"],
        "memory_max_bytes": memory_max,
        "address": address,
        "port": port,
        "loopback": loopback,
        "url": f"http://{url_host}:{port}",
        "environment": environment,
    }
