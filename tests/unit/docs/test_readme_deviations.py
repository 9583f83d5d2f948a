"""The README's "Deviations from the seed" table says what the inventories ship: each row's seed values
are the seed's, its value is the one both inventories set, and no deviation goes unlisted."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.seed_table import DEVIATIONS, SEED_TABLE

ROOT = Path(__file__).resolve().parents[3]
# the inventory variable each seed key comes from
VARIABLES = {"OLLAMA_MEMORY_LIMIT": "ollama_flux_memory_limit", "OLLAMA_MEMORY_REQUEST": "ollama_flux_memory_request",
             "OLLAMA_STORAGE_SIZE": "ollama_flux_storage_size", "OLLAMA_CPU_LIMIT": "ollama_flux_cpu_limit",
             "OLLAMA_CPU_REQUEST": "ollama_flux_cpu_request", "OLLAMA_MODEL": "ollama_flux_model",
             "OLLAMA_CHART_VERSION": "ollama_flux_chart_version", "OLLAMA_HOST": "ollama_flux_client_host"}


def readme_rows() -> dict:
    text = (ROOT / "README.md").read_text()
    found = re.search(r"^#+ Deviations from the seed\n(.*?)(?=^#|\Z)", text, flags=re.M | re.S)
    assert found, "README.md has no section \"Deviations from the seed\""
    section = found.group(1)
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`OLLAMA_"):
            rows[cells[0].strip("`")] = {"dev": cells[1], "prod": cells[2], "ours": cells[3]}
    assert rows, "the README's \"Deviations from the seed\" section has no table of OLLAMA_* rows"
    return rows


def inventory(environment: str) -> dict:
    return yaml.safe_load((ROOT / "inventories" / environment / "group_vars" / "all" / "ollama_flux.yml").read_text())


def test_the_table_lists_every_deviation_with_the_seed_values():
    rows = readme_rows()
    assert set(rows) == {key for changes in DEVIATIONS.values() for key in changes}
    for key, row in rows.items():
        assert row["dev"] == SEED_TABLE["dev"][key] and row["prod"] == SEED_TABLE["prod"][key], key
        assert row["ours"] == DEVIATIONS["dev"][key] == DEVIATIONS["prod"][key], key


def test_the_inventories_ship_the_seed_table_with_those_deviations():
    for environment, seed in SEED_TABLE.items():
        shipped = inventory(environment)
        for key, value in seed.items():
            assert str(shipped[VARIABLES[key]]) == DEVIATIONS[environment].get(key, value), (environment, key)
