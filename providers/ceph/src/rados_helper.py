"""The provider's in-process view of a Ceph cluster, through the librados
and librbd Python bindings that the `ceph` and `rbd` CLIs ship with.

Two commands, each one process and one connection:

- `mon`: sends one command to the monitors, as the `ceph` CLI does, but
  without the CLI's download and parsing of every command description on
  each call (five times its CPU time). stdin: the command as JSON.
  stdout: the monitors' answer.
- `images`: everything a refresh needs about every image of some pools:
  size, object size, features, data pool, parent, image-meta (the
  `strata-id` tag and the `conf_rbd_qos_*` per-image overrides) and
  snapshots. It asks each image's header through the `rbd` object class,
  with the same calls the Linux kernel's RBD client makes, all in flight
  at once; opening an image with librbd (what `rbd ls -l` does per image)
  costs about 5 ms of CPU each, this a few hundred microseconds.
  stdin: a JSON list of pool names. stdout: {pool: [image, ...]}; a pool
  that does not exist is left out.

argv: command conf user keyring timeout (paths and names only, never a
key; an empty conf means librados' default search, $CEPH_CONF included).
stderr: what went wrong, naming the pool or image. Exit status: the errno,
as the CLIs'.
"""
import json
import os
import queue
import struct
import sys

import rados

command, conf, user, keyring, timeout = sys.argv[1:6]
# Unreachable monitors, lost OSDs and a full pool all block: every wait
# is bounded.
options = {"client_mount_timeout": timeout, "rados_mon_op_timeout": timeout, "rados_osd_op_timeout": timeout}
if keyring:
    options["keyring"] = keyring

CEPH_NOSNAP = 0xFFFFFFFFFFFFFFFE
RBD_PROTECTION_STATUS_PROTECTED = 2


class Failed(Exception):
    """A failure with the errno the process exits with."""

    def __init__(self, errno, message):
        super().__init__(message)
        self.errno = errno


def connect():
    cluster = rados.Rados(name="client." + (user or "admin"))
    try:
        cluster.conf_read_file(conf or None)
    except rados.ObjectNotFound:
        # Like the CLIs: no configuration file at the default places is not
        # an error by itself (the connect says what is missing).
        if conf:
            raise
    cluster.conf_parse_env()
    for key, value in options.items():
        cluster.conf_set(key, value)
    cluster.connect(timeout=int(timeout))
    return cluster


class Decoder:
    """Ceph's wire encoding (src/include/encoding.h): little-endian
    integers, strings and maps prefixed by a u32 length, versioned structs
    by (version, compat, u32 length)."""

    def __init__(self, data):
        self.data, self.at = data, 0

    def take(self, fmt):
        (value,) = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return value

    def u8(self):
        return self.take("<B")

    def u32(self):
        return self.take("<I")

    def u64(self):
        return self.take("<Q")

    def i64(self):
        return self.take("<q")

    def blob(self):
        n = self.u32()
        self.at += n
        return self.data[self.at - n:self.at]

    def string(self):
        return self.blob().decode("utf-8", "replace")

    def struct_start(self):
        """Skips a versioned struct's header; returns where it ends."""
        self.u8(), self.u8()
        n = self.u32()
        return self.at + n


def snap_id(n):
    return struct.pack("<Q", n)


def list_images(cluster, pools):
    import rbd

    replies = queue.Queue()
    waiting = 0
    images = {}

    def ask(ioctx, image, method, data, then):
        """One `rbd` class call on the image's header, in flight at once
        with all the others; `then` decodes the answer into the image."""
        nonlocal waiting
        waiting += 1

        def done(completion, out):
            replies.put((image, method, completion.get_return_value(), out, then, ioctx))

        ioctx.aio_execute("rbd_header." + image["id"], "rbd", method, data, 65536, oncomplete=done)

    def parent_of(image, ioctx, out):
        d = Decoder(out)
        d.struct_start()
        pool_id, namespace, image_id, snap = d.i64(), d.string(), d.string(), d.u64()
        if pool_id >= 0:
            image["_parent"] = (pool_id, namespace, image_id, snap)
            # A flattened v2 clone keeps the link (for its snapshots) but
            # its head has no overlap with the parent any more.
            ask(ioctx, image, "parent_overlap_get", snap_id(CEPH_NOSNAP), overlap)

    def overlap(image, ioctx, out):
        if not out or Decoder(out).u8() == 0:
            image.pop("_parent", None)

    def features(image, ioctx, out):
        image["features_mask"] = Decoder(out).u64()

    def size(image, ioctx, out):
        d = Decoder(out)
        order, image["size"] = d.u8(), d.u64()
        image["object_size"] = 1 << order

    def data_pool(image, ioctx, out):
        image["_data_pool"] = Decoder(out).i64()

    def metadata(image, ioctx, out):
        d = Decoder(out)
        image["meta"] = {d.string(): d.blob().decode("utf-8", "replace") for _ in range(d.u32())}

    def snapshots(image, ioctx, out):
        d = Decoder(out)
        d.u64()  # the snapshot sequence
        for _ in range(d.u32()):
            snapshot = {"id": d.u64()}
            image["snapshots"].append(snapshot)
            ask(ioctx, image, "get_snapshot_name", snap_id(snapshot["id"]), lambda i, c, o, s=snapshot: s.update(name=Decoder(o).string()))
            ask(ioctx, image, "get_size", snap_id(snapshot["id"]), lambda i, c, o, s=snapshot: s.update(size=Decoder(o[1:]).u64()))
            ask(
                ioctx,
                image,
                "get_protection_status",
                snap_id(snapshot["id"]),
                lambda i, c, o, s=snapshot: s.update(protected=Decoder(o).u8() == RBD_PROTECTION_STATUS_PROTECTED),
            )

    ioctxs = {}
    for pool in pools:
        try:
            ioctx = cluster.open_ioctx(pool)
        except rados.ObjectNotFound:
            continue
        ioctxs[pool] = ioctx
        try:
            listed = rbd.RBD().list2(ioctx)
        except rbd.Error as e:
            raise Failed(getattr(e, "errno", None) or 5, "images of pool %s: %s" % (pool, e))
        images[pool] = []
        for entry in listed:
            image = {"name": entry["name"], "id": entry["id"], "pool": pool, "snapshots": [], "meta": {}}
            images[pool].append(image)
            ask(ioctx, image, "get_size", snap_id(CEPH_NOSNAP), size)
            ask(ioctx, image, "get_features", snap_id(CEPH_NOSNAP) + b"\x01", features)
            ask(ioctx, image, "get_data_pool", b"", data_pool)
            ask(ioctx, image, "parent_get", b"", parent_of)
            ask(ioctx, image, "metadata_list", struct.pack("<IQ", 0, 1024), metadata)
            ask(ioctx, image, "get_snapcontext", b"", snapshots)

    gone = set()
    while waiting:
        image, method, ret, out, then, ioctx = replies.get()
        waiting -= 1
        if ret == -2:
            # Removed since the listing (or a snapshot since its context).
            gone.add(id(image))
            continue
        if ret == -8 and method in ("parent_get", "parent_overlap_get", "get_data_pool"):
            continue  # ENOEXEC: not a clone (no layering feature), no data pool
        if ret < 0:
            spec = "%s/%s" % (image["pool"], image["name"])
            raise Failed(-ret, "image %s: %s: %s" % (spec, method, os.strerror(-ret)))
        try:
            then(image, ioctx, out)
        except (struct.error, UnicodeError) as e:
            raise Failed(5, "image %s/%s: unexpected answer to %s: %s" % (image["pool"], image["name"], method, e))

    pool_names = {}

    def pool_name(pool_id):
        if pool_id not in pool_names:
            pool_names[pool_id] = cluster.pool_reverse_lookup(pool_id)
        return pool_names[pool_id]

    result = {}
    for pool, listed in images.items():
        result[pool] = []
        for image in listed:
            if id(image) in gone:
                continue
            image["features"] = rbd.RBD().features_to_string(image.pop("features_mask", 0)).split(",")
            data_pool_id = image.pop("_data_pool", -1)
            image["data_pool"] = pool_name(data_pool_id) if data_pool_id >= 0 else None
            parent = image.pop("_parent", None)
            if parent:
                image["parent"] = parent_spec(cluster, ioctxs, pool_name, parent)
            image["snapshots"] = [s for s in image["snapshots"] if "name" in s]
            del image["pool"]
            result[pool].append(image)
    return result


def parent_spec(cluster, ioctxs, pool_name, parent):
    """`{pool, image, snapshot}` of a clone's parent, by name."""
    pool_id, namespace, image_id, snap = parent
    pool = pool_name(pool_id)
    if pool not in ioctxs:
        ioctxs[pool] = cluster.open_ioctx(pool)
    ioctx = ioctxs[pool]
    if namespace:
        ioctx.set_namespace(namespace)
    _, name = ioctx.execute("rbd_directory", "rbd", "dir_get_name", struct.pack("<I", len(image_id)) + image_id.encode(), 4096)
    _, snapshot = ioctx.execute("rbd_header." + image_id, "rbd", "get_snapshot_name", snap_id(snap), 4096)
    if namespace:
        ioctx.set_namespace("")
    return {"pool": pool, "image": Decoder(name).string(), "snapshot": Decoder(snapshot).string()}


try:
    cluster = connect()
    if command == "mon":
        ret, out, status = cluster.mon_command(sys.stdin.read(), b"", timeout=int(timeout))
        if status:
            sys.stderr.write(status + "\n")
        sys.stdout.buffer.write(out)
    elif command == "images":
        ret = 0
        json.dump(list_images(cluster, json.load(sys.stdin)), sys.stdout)
    else:
        raise Failed(22, "unknown command " + command)
except Failed as e:
    sys.stderr.write(str(e) + "\n")
    sys.exit(e.errno)
except rados.Error as e:
    sys.stderr.write(str(e) + "\n")
    sys.exit(getattr(e, "errno", None) or 110)
cluster.shutdown()
sys.exit(-ret if ret < 0 else ret)
