"""The store's room: the filesystem a path is on and the space it has."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter.filesystem_room import filesystem_room

MOUNTS = [
    {"mount": "/", "device": "overlay", "size_available": 50 * 2**30},
    {"mount": "/srv/small", "device": "tmpfs", "size_available": 512 * 1024},
    {"mount": "/srv/smaller", "device": "tmpfs", "size_available": 1024},
]


@pytest.mark.parametrize("path,mount", [
    ("/var/lib/ollama/models", "/"),
    ("/srv/small", "/srv/small"),
    ("/srv/small/models/not/yet/created", "/srv/small"),
    ("/srv/smaller/x", "/srv/smaller"),       # a prefix of the name is not a parent
])
def test_the_filesystem_is_the_longest_mount_point_above_the_path(path, mount):
    assert filesystem_room(path, MOUNTS)["mount"] == mount


def test_room_counts_what_the_store_already_holds():
    result = filesystem_room("/srv/small/models", MOUNTS, present_bytes=1000)
    assert result["available"] == 512 * 1024 and result["room"] == 512 * 1024 + 1000


def test_no_mount_facts_is_refused():
    with pytest.raises(AnsibleFilterError, match="no mount holds /var/lib/ollama"):
        filesystem_room("/var/lib/ollama", [])


# recorded in the molecule host (podman, a 512k tmpfs), which Ansible's mount facts leave out
DF = """\
Filesystem       1-blocks        Used    Available Capacity Mounted on
overlay      270582394880 38510718976 231055892480      15% /
tmpfs              524288           0       524288       0% /srv/small
shm              64000000           0     64000000       0% /dev/shm
"""


def test_df_output_gives_the_tmpfs_the_mount_facts_miss():
    result = filesystem_room("/srv/small/models", DF)
    assert result == {"mount": "/srv/small", "device": "tmpfs", "available": 524288, "room": 524288}
    assert filesystem_room("/var/lib/ollama/models", DF)["available"] == 231055892480
