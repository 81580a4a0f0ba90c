"""A real single-node Slurm cluster on loopback, for tests: Debian's Slurm 22.05, munge and MariaDB.

Everything it writes (configuration, state, accounting database, logs, sockets) lives in one new
temporary folder, removed at the end; clients find it through ``SLURM_CONF``. Ports are spare ones picked at start. Each
daemon runs in the foreground as a child of this process, and :func:`single_node_cluster` stops
exactly those children, by PID; nothing system-wide is started, stopped or overwritten. Installed
Debian packages stay installed. The node is declared with the CPUs, memory and GPUs asked for,
whatever the machine has (``SlurmdParameters=config_overrides``): tests may declare more CPUs than
exist, and placeholder GPUs.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import typing as tp

PACKAGES = ("slurm-wlm", "munge", "slurmdbd", "mariadb-server")
PROGRAMS = ("slurmctld", "slurmd", "slurmdbd", "munged", "mariadbd", "mysql_install_db", "sbatch", "sacct", "srun")
CLUSTER = "mmdcheck"
# The machine's own name, as on a real cluster: jobs of several tasks rendezvous at the first node
# of SLURM_JOB_NODELIST (Dora's MASTER_ADDR), which must resolve.
NODE = socket.gethostname().split(".")[0]
PARTITION = "check"


class ClusterUnavailable(RuntimeError):
    """Slurm cannot run here (not root, no apt); the message says why."""


def missing_programs() -> tp.List[str]:
    return [program for program in PROGRAMS if shutil.which(program) is None]


def install_packages() -> None:
    """Installs Debian's Slurm, munge and MariaDB when a program is missing (needs root and apt-get)."""
    if not missing_programs():
        return
    if os.geteuid() != 0:
        raise ClusterUnavailable(f"not root, and {', '.join(missing_programs())} missing: "
                                 f"install {' '.join(PACKAGES)} or run as root")
    if shutil.which("apt-get") is None:
        raise ClusterUnavailable("no apt-get to install " + " ".join(PACKAGES))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    # policy-rc.d keeps the packages' own services from starting system-wide daemons.
    subprocess.run(["apt-get", "install", "-y", "-qq", *PACKAGES], check=True, env=env)
    if missing_programs():
        raise ClusterUnavailable(f"{', '.join(missing_programs())} still missing after apt-get install")


def spare_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(check: tp.Callable[[], bool], what: str, timeout: float, logs: tp.Sequence[Path] = ()) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.5)
    tails = "\n".join(f"--- {log}:\n{log.read_text(errors='replace')[-2000:]}" for log in logs if log.exists())
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")


def _succeeds(command: tp.Sequence[str], env: dict) -> bool:
    return subprocess.run(command, env=env, capture_output=True).returncode == 0


def _placeholder_gpus(root: Path, gpus: int) -> str:
    """gres.conf lines for ``gpus`` GPUs that are character devices like /dev/null (Slurm needs a
    device file per GPU); jobs see CUDA_VISIBLE_DEVICES, and CUDA finds no GPU."""
    (root / "dev").mkdir(exist_ok=True)
    lines = []
    for index in range(gpus):
        device = root / "dev" / f"placeholder_gpu{index}"
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        lines.append(f"NodeName={NODE} Name=gpu File={device}")
    return "\n".join(lines) + "\n"


def _write_configs(root: Path, ports: dict, munge_socket: Path, cpus: int, memory_mb: int, gpus: int = 0) -> Path:
    host = socket.gethostname().split(".")[0]
    auth = f"AuthType=auth/munge\nAuthInfo=socket={munge_socket}\n"
    (root / "etc" / "plugstack.conf").write_text("")
    gres = ""
    if gpus:
        (root / "etc" / "gres.conf").write_text(_placeholder_gpus(root, gpus))
        gres = f" Gres=gpu:{gpus}"
    slurm_conf = root / "etc" / "slurm.conf"
    slurm_conf.write_text(f"""ClusterName={CLUSTER}
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ports['ctld']}
SlurmdPort={ports['slurmd']}
SlurmUser=root
SlurmdUser=root
{auth}CredType=cred/munge
PlugStackConfig={root / 'etc' / 'plugstack.conf'}
StateSaveLocation={root / 'state'}
SlurmdSpoolDir={root / 'spool'}
SlurmctldPidFile={root / 'run' / 'slurmctld.pid'}
SlurmdPidFile={root / 'run' / 'slurmd.pid'}
SlurmctldLogFile={root / 'log' / 'slurmctld.log'}
SlurmdLogFile={root / 'log' / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={ports['dbd']}
AccountingStoragePass={munge_socket}
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName={NODE} NodeAddr=127.0.0.1 NodeHostname={host} CPUs={cpus} RealMemory={memory_mb}{gres} State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
""")
    dbd_conf = root / "etc" / "slurmdbd.conf"
    dbd_conf.write_text(f"""{auth}DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={ports['dbd']}
SlurmUser=root
PidFile={root / 'run' / 'slurmdbd.pid'}
LogFile={root / 'log' / 'slurmdbd.log'}
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={ports['mysql']}
StorageUser=root
StorageLoc=slurm_acct_db
""")
    dbd_conf.chmod(0o600)
    return slurm_conf


@contextlib.contextmanager
def single_node_cluster(cpus: int = 2, memory_mb: int = 8000, gpus: int = 0) -> tp.Iterator[tp.Dict[str, str]]:
    """Starts munged, MariaDB, slurmdbd, slurmctld and slurmd with all their files in a new temporary folder.

    ``gpus`` > 0 declares that many placeholder GPUs (:func:`_placeholder_gpus`), so that jobs asking
    for GPUs (Dora's ``gpus: N``: N tasks) are scheduled on a machine without any; they run on CPU.

    Yields:
        The environment variables clients need (``SLURM_CONF``), to add to ``os.environ``.
    """
    install_packages()
    try:
        socket.gethostbyname(NODE)
    except OSError as error:
        raise RuntimeError(f"this machine's name {NODE!r} does not resolve ({error}): jobs of several tasks could "
                           "not rendezvous; add it to /etc/hosts") from error
    # World-traversable (unlike pytest's tmp_path), as munged runs as the munge user.
    root = Path(tempfile.mkdtemp(prefix="audiocraft_mmd-slurm-"))
    root.chmod(0o755)
    for folder in ("etc", "state", "spool", "run", "log", "munge", "mysql"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    ports = {name: spare_port() for name in ("ctld", "slurmd", "dbd", "mysql")}
    munge_user = pwd.getpwnam("munge")
    munge_socket = root / "munge" / "munge.socket"
    slurm_conf = _write_configs(root, ports, munge_socket, cpus, memory_mb, gpus)
    env = {**os.environ, "SLURM_CONF": str(slurm_conf)}
    daemons: tp.List[subprocess.Popen] = []

    def start(command: tp.Sequence[str], log: Path, **kwargs) -> None:
        with open(log, "ab") as out:
            daemons.append(subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, **kwargs))

    try:
        # munge: its key and folder belong to the munge user, which munged runs as.
        key = root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        (root / "munge").chmod(0o700)
        for path in (root / "munge", key):
            os.chown(path, munge_user.pw_uid, munge_user.pw_gid)
        start(["munged", "--foreground", "--force", f"--socket={munge_socket}", f"--key-file={key}",
               f"--pid-file={root / 'munge' / 'munged.pid'}", f"--seed-file={root / 'munge' / 'munged.seed'}",
               f"--log-file={root / 'munge' / 'munged.log'}"],
              root / "log" / "munged.out", user=munge_user.pw_uid, group=munge_user.pw_gid)
        wait_for(munge_socket.exists, "munged's socket", 30, [root / "munge" / "munged.log"])
        (root / "munge").chmod(0o755)  # clients (running as root) connect to the socket

        # MariaDB on a spare loopback port, grant tables off: nothing but slurmdbd talks to it.
        data = root / "mysql" / "data"
        subprocess.run(["mysql_install_db", f"--datadir={data}", "--user=root",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True, env=env)
        start(["mariadbd", "--no-defaults", f"--datadir={data}", "--user=root", "--skip-grant-tables",
               "--bind-address=127.0.0.1", f"--port={ports['mysql']}", f"--socket={root / 'mysql' / 'mysqld.sock'}",
               f"--pid-file={root / 'mysql' / 'mysqld.pid'}"], root / "log" / "mariadb.log")
        wait_for(lambda: _port_open(ports["mysql"]), "MariaDB", 60, [root / "log" / "mariadb.log"])

        start(["slurmdbd", "-D"], root / "log" / "slurmdbd.out")
        wait_for(lambda: _port_open(ports["dbd"]), "slurmdbd", 60, [root / "log" / "slurmdbd.log"])
        start(["slurmctld", "-D", "-i"], root / "log" / "slurmctld.out")
        wait_for(lambda: _succeeds(["sinfo"], env), "slurmctld", 60, [root / "log" / "slurmctld.log"])
        start(["slurmd", "-D", "-N", NODE], root / "log" / "slurmd.out")
        wait_for(lambda: _node_idle(env), f"node {NODE} to be idle", 60,
                 [root / "log" / "slurmd.log", root / "log" / "slurmctld.log"])
        wait_for(lambda: _succeeds(["sacct", "-n", "-X"], env), "sacct (accounting)", 60,
                 [root / "log" / "slurmdbd.log"])
        yield {"SLURM_CONF": str(slurm_conf)}
    finally:
        if len(daemons) >= 5:  # slurmd runs: end its jobs first, or their processes outlive it
            _cancel_jobs(env)
        for daemon in reversed(daemons):  # slurmd first, munged last
            daemon.terminate()
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        shutil.rmtree(root, ignore_errors=True)


def _cancel_jobs(env: dict, timeout: float = 60) -> None:
    """Cancels every job of the cluster and waits until none is left."""
    jobs = subprocess.run(["squeue", "-h", "-o", "%A"], env=env, capture_output=True, text=True).stdout.split()
    if not jobs:
        return
    subprocess.run(["scancel", *jobs], env=env, capture_output=True)
    deadline = time.time() + timeout
    while time.time() < deadline and subprocess.run(["squeue", "-h"], env=env, capture_output=True,
                                                   text=True).stdout.strip():
        time.sleep(0.5)


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _node_idle(env: dict) -> bool:
    state = subprocess.run(["sinfo", "-h", "-n", NODE, "-o", "%t"], env=env, capture_output=True, text=True)
    return state.returncode == 0 and state.stdout.strip() in ("idle", "mix", "alloc")
