"""systemd-analyze security's score as the role and the benchmark read it."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter.systemd_exposure import systemd_exposure

# recorded from systemd 252 (Debian 12) on the unit the role writes, columns narrowed
ANALYZE = """\
  NAME                              DESCRIPTION                                                        EXPOSURE
\u2717 RootDirectory=/RootImage=         Service runs within the host's root directory                           0.1
\u2713 User=/DynamicUser=                Service runs under a static non-root user identity
\u2717 PrivateNetwork=                   Service has access to the host's network                                0.5
\u2717 IPAddressDeny=                    Service defines IP address allow list with only localhost entries       0.1
\u2713 UMask=                            Files created by service are accessible only by service's own user

\u2192 Overall exposure level for ollama.service: 0.9 SAFE \U0001f600
"""


def test_the_score_and_the_exposed_settings_are_read():
    result = systemd_exposure(ANALYZE)
    assert result["unit"] == "ollama.service"
    assert result["score"] == 0.9 and result["verdict"] == "SAFE"
    assert [row["setting"] for row in result["exposed"]] == ["RootDirectory=/RootImage=", "PrivateNetwork=",
                                                             "IPAddressDeny="]
    assert result["exposed"][1]["exposure"] == 0.5


def test_output_without_a_score_is_refused():
    with pytest.raises(AnsibleFilterError, match="no 'Overall exposure level' line"):
        systemd_exposure("Unit ollama.service not found.")
