"""A container's imageID as containerd reports it: the repo digest it was pulled as
(``repo@sha256:<manifest>``), else the image id (an imported image)."""

from __future__ import annotations

from pybernetes.kubelet.pod_status import container_status
from pybernetes.kubelet.runtime.image_format import repo_digest_for
from pybernetes.kubelet.runtime.protocol import ContainerConfig, ContainerState, ContainerStatus

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


def test_the_repo_digest_of_the_references_repository_is_chosen() -> None:
    digests = [f"docker.io/library/alpine@{OTHER}", f"docker.io/library/busybox@{DIGEST}"]
    assert repo_digest_for("busybox:1", digests) == f"docker.io/library/busybox@{DIGEST}"
    assert repo_digest_for("docker.io/library/busybox", digests) == f"docker.io/library/busybox@{DIGEST}"
    assert repo_digest_for(f"busybox@{DIGEST}", digests) == f"docker.io/library/busybox@{DIGEST}"
    assert repo_digest_for("127.0.0.1:5000/x/busybox:1", [f"127.0.0.1:5000/x/busybox@{DIGEST}"]) == \
        f"127.0.0.1:5000/x/busybox@{DIGEST}"


def test_another_repository_or_none() -> None:
    assert repo_digest_for("mirror.local/busybox:1", [f"docker.io/library/busybox@{DIGEST}"]) == \
        f"docker.io/library/busybox@{DIGEST}"  # the first, as containerd shows
    assert repo_digest_for("busybox:1", []) == ""
    assert repo_digest_for("Not A Reference!", []) == ""


def _status(image_digest: str) -> ContainerStatus:
    return ContainerStatus("c1", "s1", ContainerConfig(name="main", image="busybox:1"), ContainerState.RUNNING, 1,
                           started_at=1, image_ref="sha256:" + "ef" * 32, image_digest=image_digest)


def test_pod_status_shows_the_repo_digest_else_the_image_id() -> None:
    def shown(image_digest: str) -> str:
        return container_status({"name": "main", "image": "busybox:1"}, [_status(image_digest)], waiting=None,
                                ready=True, started=True, runtime_name="runc", messages={})["imageID"]

    assert shown(f"docker.io/library/busybox@{DIGEST}") == f"docker.io/library/busybox@{DIGEST}"
    assert shown("") == "sha256:" + "ef" * 32
