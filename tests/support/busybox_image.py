"""Test images built from the Debian busybox-static binary, as OCI image layouts (a directory
or a tarball), for the kubelet's runtime tests, registry tests and the e2e scenarios.

``build_layout(target, ref, ...)`` writes an OCI image layout whose base layer holds
``/bin/busybox`` with a symlink per applet (sh, sleep, httpd, wget, ...), ``/etc/passwd`` and
``/etc/group`` (root, nobody 65534, and ``app`` 1000), and the usual empty directories.
``extra_layers`` adds layers of small files, so a "5-layer image" is one call.  ``user`` sets
the config's User (a non-root image), ``entrypoint``/``cmd``/``env``/``workdir`` the rest of
the config.  ``build_tarball`` packs the same layout into a tarball that
``pybernetes image import`` and ``ImageStore.import_archive`` take; ``skopeo copy
oci:DIR:TAG docker://...`` pushes the directory form to a registry.

Nothing here needs root; layer tarballs record files as owned by 0:0.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
from pathlib import Path

BUSYBOX = "/usr/bin/busybox"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"
EPOCH = 1_700_000_000


def available() -> bool:
    return os.access(BUSYBOX, os.X_OK)


@functools.cache
def applets() -> tuple[str, ...]:
    out = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True, text=True).stdout
    return tuple(sorted({name for name in out.split() if name and "/" not in name and name != "busybox"}))


def _info(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _layer(files: dict[str, bytes | str], dirs: tuple[str, ...] = (), symlinks: dict[str, str] | None = None,
           executables: tuple[str, ...] = ()) -> bytes:
    """An uncompressed layer tarball (deterministic: sorted, fixed mtimes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in sorted(dirs):
            tar.addfile(_info(d, tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755))
        for name, target in sorted((symlinks or {}).items()):
            info = _info(name, tarfile.SYMTYPE, 0o777)
            info.linkname = target
            tar.addfile(info)
        for name, data in sorted(files.items()):
            raw = data.encode() if isinstance(data, str) else data
            tar.addfile(_info(name, mode=0o755 if name in executables else 0o644, size=len(raw)), io.BytesIO(raw))
    return buf.getvalue()


def base_layer() -> bytes:
    with open(BUSYBOX, "rb") as f:
        binary = f.read()
    links = {f"bin/{name}": "busybox" for name in applets()}
    dirs = ("bin", "etc", "tmp", "proc", "sys", "dev", "root", "var", "var/www", "home", "home/app", "usr",
            "usr/bin", "sbin")
    links.update({"usr/bin/env": "../../bin/busybox", "sbin/init": "../bin/busybox"})
    return _layer({"bin/busybox": binary, "etc/passwd": PASSWD, "etc/group": GROUP}, dirs, links,
                  executables=("bin/busybox",))


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_layout(target: Path | str, ref: str = "pybernetes.test/busybox:1", *, user: str = "",
                 entrypoint: list[str] | None = None, cmd: list[str] | None = None,
                 env: list[str] | None = None, workdir: str = "",
                 extra_layers: list[dict[str, bytes | str]] | None = None, compress: bool = True) -> dict:
    """Write an OCI image layout directory at ``target``; returns ``{"manifest": digest,
    "config": digest, "layers": [digests], "ref": ref, "tag": tag}``.  ``ref``'s tag is the
    layout's ``org.opencontainers.image.ref.name`` (the whole ref is in
    ``io.containerd.image.name``, which the image store reads first)."""
    target = Path(target)
    blobs = target / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> str:
        digest = _digest(data)
        (blobs / digest[7:]).write_bytes(data)
        return digest

    raw_layers = [base_layer()] + [_layer(files, tuple(sorted({str(Path(n).parent) for n in files} - {"."})))
                                   for files in extra_layers or []]
    descriptors, diff_ids = [], []
    for raw in raw_layers:
        diff_ids.append(_digest(raw))
        blob = gzip.compress(raw, mtime=0) if compress else raw
        descriptors.append({"mediaType": OCI_LAYER_GZIP if compress else "application/vnd.oci.image.layer.v1.tar",
                            "digest": put(blob), "size": len(blob)})
    config = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EPOCH)),
        "architecture": "amd64", "os": "linux",
        "config": {"Env": env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   **({"Entrypoint": entrypoint} if entrypoint else {}),
                   "Cmd": cmd if cmd is not None else ["sh"],
                   **({"User": user} if user else {}),
                   **({"WorkingDir": workdir} if workdir else {})},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "busybox_image.py"} for _ in raw_layers],
    }
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_digest = put(config_bytes)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
                "layers": descriptors}
    manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
    manifest_digest = put(manifest_bytes)
    tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else "latest"
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [{"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest_bytes),
                            "annotations": {"io.containerd.image.name": ref,
                                            "org.opencontainers.image.ref.name": tag}}]}
    (target / "index.json").write_text(json.dumps(index))
    (target / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return {"manifest": manifest_digest, "config": config_digest, "layers": [d["digest"] for d in descriptors],
            "ref": ref, "tag": tag}


def build_tarball(path: Path | str, ref: str = "pybernetes.test/busybox:1", **kw) -> dict:
    """``build_layout`` packed into a tarball at ``path`` (its layout directory beside it)."""
    path = Path(path)
    layout = path.with_name(path.name + ".layout")
    info = build_layout(layout, ref, **kw)
    with tarfile.open(path, "w") as tar:
        for name in ("oci-layout", "index.json"):
            tar.add(layout / name, arcname=name)
        for blob in sorted((layout / "blobs" / "sha256").iterdir()):
            tar.add(blob, arcname=f"blobs/sha256/{blob.name}")
    return info
