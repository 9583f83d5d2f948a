"""The seed's configuration table (ollama-service-catalog.md) and what the shipped inventories change.

The seed's memory and storage cannot hold its own model, qwen2.5:72b; the inventories ship sizes
the preflight passes, and the README's "Deviations from the seed" table lists them. Tests compare
what renders with `inventory_table()`, and the README's table with DEVIATIONS.
"""

from __future__ import annotations

# verbatim
SEED_TABLE = {
    "dev": {
        "OLLAMA_CHART_VERSION": "1.53.0",
        "OLLAMA_CPU_LIMIT": "1000m",
        "OLLAMA_CPU_REQUEST": "500m",
        "OLLAMA_HOST": "http://agentgateway-proxy.agentgateway-system.svc.cluster.local:9080",
        "OLLAMA_MEMORY_LIMIT": "3Gi",
        "OLLAMA_MEMORY_REQUEST": "2Gi",
        "OLLAMA_MODEL": "qwen2.5:72b",
        "OLLAMA_STORAGE_SIZE": "5Gi",
    },
    "prod": {
        "OLLAMA_CHART_VERSION": "1.53.0",
        "OLLAMA_CPU_LIMIT": "2000m",
        "OLLAMA_CPU_REQUEST": "500m",
        "OLLAMA_HOST": "http://agentgateway-proxy.agentgateway-system.svc.cluster.local:9080",
        "OLLAMA_MEMORY_LIMIT": "4Gi",
        "OLLAMA_MEMORY_REQUEST": "2Gi",
        "OLLAMA_MODEL": "qwen2.5:72b",
        "OLLAMA_STORAGE_SIZE": "10Gi",
    },
}

# the same in both environments: qwen2.5:72b is the same model in both
DEVIATIONS = {
    environment: {"OLLAMA_MEMORY_LIMIT": "52Gi", "OLLAMA_MEMORY_REQUEST": "52Gi", "OLLAMA_STORAGE_SIZE": "100Gi"}
    for environment in SEED_TABLE
}


def inventory_table() -> dict:
    """The seed's table with the deviations applied: what inventories/dev and inventories/prod ship."""
    return {env: {**values, **DEVIATIONS[env]} for env, values in SEED_TABLE.items()}
