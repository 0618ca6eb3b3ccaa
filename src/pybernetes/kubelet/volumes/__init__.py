"""Pod volumes on the node: ``VolumeManager`` (manager.py) sets up, refreshes and tears down a
pod's volumes and turns a container's volumeMounts into runtime mounts; ``VolumeError`` is
what it raises; ``LocalPathReclaimer`` (localpath.py) deletes the data of released local-path
volumes on this node.  One module per plugin family: emptydir, hostpath, configmap_secret,
downwardapi, projected, pvc; atomic_writer, subpath, ownership and mountutil are shared."""

from pybernetes.kubelet.volumes.common import VolumeError
from pybernetes.kubelet.volumes.localpath import LocalPathReclaimer
from pybernetes.kubelet.volumes.manager import VolumeManager

__all__ = ["LocalPathReclaimer", "VolumeError", "VolumeManager"]
