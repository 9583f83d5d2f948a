"""The install directory's plan: install, switch, roll back or nothing, decided before anything changes."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter.service_release import service_release

SUM_A = "sha256:" + "a" * 64
SUM_B = "sha256:" + "b" * 64
URL = "https://example.com/v0.19.0/ollama-linux-amd64.tgz"


def test_a_first_install_downloads_and_links():
    plan = service_release("0.18.3", archive={"url": URL, "checksum": "A" * 64})
    assert plan["install"] and plan["flip"] and plan["changed"]
    assert plan["source"] == "url" and plan["location"] == URL
    assert plan["checksum"] == SUM_A          # normalised: prefix added, lower case
    assert plan["previous"] == ""


def test_the_same_version_again_changes_nothing():
    plan = service_release("0.18.3", current="0.18.3", installed={"0.18.3": SUM_A},
                           archive={"url": URL, "checksum": SUM_A})
    assert not plan["install"] and not plan["flip"] and not plan["changed"]


def test_an_upgrade_installs_beside_and_keeps_the_old_as_previous():
    plan = service_release("0.19.0", current="0.18.3", installed={"0.18.3": SUM_A},
                           archive={"src": "/srv/ollama-0.19.0.tgz", "checksum": SUM_B})
    assert plan["install"] and plan["flip"]
    assert plan["source"] == "src" and plan["previous"] == "0.18.3"


def test_an_installed_version_is_switched_to_without_an_archive():
    plan = service_release("0.18.3", current="0.19.0", previous="0.18.3",
                           installed={"0.18.3": SUM_A, "0.19.0": SUM_B})
    assert not plan["install"] and plan["flip"] and plan["previous"] == "0.19.0"


def test_a_rollback_flips_back_once_and_then_holds():
    installed = {"0.18.3": SUM_A, "0.19.0": SUM_B}
    plan = service_release("0.19.0", rollback=True, current="0.19.0", previous="0.18.3", installed=installed)
    assert plan["version"] == "0.18.3" and plan["flip"] and not plan["install"]
    again = service_release("0.19.0", rollback=True, current="0.18.3", previous="0.18.3", installed=installed)
    assert not again["changed"]


def test_the_releases_no_link_will_point_at_are_obsolete():
    installed = {"0.17.0": SUM_A, "0.18.3": SUM_A, "0.19.0": SUM_B}
    upgrade = service_release("0.20.0", current="0.19.0", previous="0.18.3", installed=installed,
                              archive={"url": URL, "checksum": SUM_B})
    assert upgrade["previous"] == "0.19.0" and upgrade["obsolete"] == ["0.17.0", "0.18.3"]
    assert upgrade["message"] == ("install 0.20.0 (upgrade from 0.19.0); remove 0.17.0, 0.18.3 (neither current nor "
                                  "previous)")
    # a steady run removes what an earlier run left, and that alone is a change
    steady = service_release("0.19.0", current="0.19.0", previous="0.18.3", installed=installed)
    assert steady["obsolete"] == ["0.17.0"] and steady["changed"] and not steady["flip"]
    assert not service_release("0.19.0", current="0.19.0", previous="0.18.3",
                               installed={"0.18.3": SUM_A, "0.19.0": SUM_B})["changed"]
    # a rollback keeps the release it leaves, to switch to again without a download
    rollback = service_release("0.19.0", rollback=True, current="0.19.0", previous="0.18.3", installed=installed)
    assert rollback["obsolete"] == []
    # told to keep them: none listed, none said, and a steady run is no change
    kept = service_release("0.19.0", current="0.19.0", previous="0.18.3", installed=installed, remove_obsolete="no")
    assert kept["obsolete"] == [] and not kept["changed"] and kept["message"] == "0.19.0 is installed and current"


def test_a_rollback_without_a_previous_version_is_refused():
    with pytest.raises(AnsibleFilterError, match="ollama_service_rollback is true but there is no previous version"):
        service_release("0.18.3", rollback=True, current="0.18.3", installed={"0.18.3": SUM_A})


@pytest.mark.parametrize("archive,message", [
    ({"url": URL}, "ollama_service_archive_url is set but ollama_service_archive_checksum is '': nothing is unpacked"),
    ({"url": URL, "checksum": "md5:abc"}, "ollama_service_archive_checksum is 'md5:abc'"),
    ({}, "neither ollama_service_archive_url nor ollama_service_archive_src is set"),
    ({"url": URL, "src": "/x.tgz", "checksum": SUM_A}, "give one of them"),
    ({"url": "ftp://example.com/o.tgz", "checksum": SUM_A}, "give an http\\(s\\) or file URL"),
    ({"src": "relative.tgz", "checksum": SUM_A}, "ollama_service_archive_src is 'relative.tgz'"),
])
def test_bad_archive_settings_are_refused(archive, message):
    with pytest.raises(AnsibleFilterError, match=message):
        service_release("0.19.0", current="0.18.3", installed={"0.18.3": SUM_A}, archive=archive)


def test_a_second_archive_under_an_installed_name_is_refused():
    with pytest.raises(AnsibleFilterError, match="one version, one archive"):
        service_release("0.18.3", current="0.18.3", installed={"0.18.3": SUM_A},
                        archive={"url": URL, "checksum": SUM_B})


@pytest.mark.parametrize("version", ["", "../etc", "0.18.3/x", "0.18 3", "-1"])
def test_a_version_that_is_not_a_name_is_refused(version):
    with pytest.raises(AnsibleFilterError, match="ollama_service_version is"):
        service_release(version, archive={"url": URL, "checksum": SUM_A})
