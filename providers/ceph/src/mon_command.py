"""Sends one command to the Ceph monitors, as the `ceph` CLI does, through
the same librados bindings, but without the CLI's download and parsing of
every command description on each call (five times its CPU time).

argv: conf user keyring timeout (paths and names only, never a key; an
empty conf means librados' default search, $CEPH_CONF included).
stdin: the command as JSON. stdout: the answer. stderr: the monitor's
status text. Exit status: the errno, as the `ceph` CLI's.
"""
import sys

import rados

conf, user, keyring, timeout = sys.argv[1:5]
options = {"client_mount_timeout": timeout, "rados_mon_op_timeout": timeout}
if keyring:
    options["keyring"] = keyring
try:
    cluster = rados.Rados(name="client." + (user or "admin"))
    try:
        cluster.conf_read_file(conf or None)
    except rados.ObjectNotFound:
        # Like the CLI: no configuration file at the default places is not
        # an error by itself (the connect says what is missing).
        if conf:
            raise
    cluster.conf_parse_env()
    for key, value in options.items():
        cluster.conf_set(key, value)
    cluster.connect(timeout=int(timeout))
    ret, out, status = cluster.mon_command(sys.stdin.read(), b"", timeout=int(timeout))
except rados.Error as e:
    sys.stderr.write(str(e) + "\n")
    sys.exit(getattr(e, "errno", None) or 110)
sys.stdout.buffer.write(out)
if status:
    sys.stderr.write(status + "\n")
cluster.shutdown()
sys.exit(-ret if ret < 0 else ret)
