"""Files written atomically: to a temporary name in the same folder, then renamed over the old one.

A crash (or a full disk) mid-write leaves the previous version intact. Also the names of a run's files and
what is refused of them, and the ownership of a run's folder. No torch import here, so the error path of a
bad command line stays fast.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import yaml

from lenet_exp.errors import UserError

_UMASK = os.umask(0)
os.umask(_UMASK)


TEMPORARY_SUFFIX = ".tmp"
FULL_BELOW_BYTES = 2**20  # a write that fails with less free space than this failed for want of space
FULL_BELOW_FILES = 100  # a run makes about 20 files (with the temporary ones): fewer free inodes than this is full
# a disk runs out of files (inodes) too, where df -h shows space left: ENOSPC all the same
FREE_SOME_SPACE = "Free some space (or files, where `df -i` shows none left)"


def disk_full_error(error: Optional[BaseException]) -> Optional[OSError]:
    """The error for want of space (files, or the user's disk quota: a cluster's usual limit) that ``error`` is or
    was raised from (logging's "Unable to configure handler 'file'" carries it as its cause), or None."""
    for _ in range(8):  # a chain no longer than this: a cycle of causes ends too
        if error is None:
            return None
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return error
        error = error.__cause__ or error.__context__
    return None


# each process limit a write may run into: its name, its shell command (a cluster's shell sets them), the limit
PROCESS_LIMITS = {errno.EFBIG: ("the file size limit", "ulimit -f", resource.RLIMIT_FSIZE),
                  errno.EMFILE: ("the open files limit", "ulimit -n", resource.RLIMIT_NOFILE)}


def over_a_limit(error: Optional[BaseException]) -> Optional[str]:
    """What to do where ``error`` (or one it was raised from) is a process limit's (:data:`PROCESS_LIMITS`): "raise
    the file size limit (ulimit -f, now 100 KiB)", or None."""
    for _ in range(8):
        if error is None:
            return None
        if isinstance(error, OSError) and error.errno in PROCESS_LIMITS:
            name, command, kind = PROCESS_LIMITS[error.errno]
            soft = resource.getrlimit(kind)[0]
            now = f"{soft // 1024} KiB" if kind == resource.RLIMIT_FSIZE else str(soft)
            return f"raise {name} ({command}, now {now})"
        error = error.__cause__ or error.__context__
    return None


def room_left(folder: Path) -> Optional[str]:
    """How little room the disk of ``folder`` has left where it is too little for a run ("12 KiB free", "room for
    38 more files"), or None."""
    try:
        free, disk = shutil.disk_usage(folder).free, os.statvfs(folder)
    except OSError:  # gone meanwhile, or not to be looked at: nothing to say of its room
        return None
    files = disk.f_favail if disk.f_files else None  # a file system without a count of them (btrfs) has no limit
    if free < FULL_BELOW_BYTES:
        return f"{free // 1024} KiB free"
    return f"room for {files} more files" if files is not None and files < FULL_BELOW_FILES else None


def is_disk_full(error: BaseException) -> bool:
    """No space left on the device (:func:`disk_full_error`), or a :class:`DiskFull` said so."""
    return isinstance(error, DiskFull) or disk_full_error(error) is not None


class DiskFull(UserError):
    """No space left where a file had to be written; the previous version of the file, if any, is kept."""


def write_atomic(path: Path, write: Callable[[Any], None], binary: bool = True) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it onto ``path``, with the mode of the
    file it replaces (one its user set: `chmod g+w,o-r`). A write the file system refuses raises
    :class:`DiskFull` or :class:`CannotWrite`; the previous file is kept."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    except OSError as error:
        raise write_refused(path, error) from error
    try:
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except OSError:  # a new file: a normal file's mode (mkstemp makes it private)
            mode = 0o666 & ~_UMASK
        os.chmod(tmp, mode)
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")) as file:  # whatever the locale
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        # torch.save reports a full disk as "[enforce fail at inline_container.cc] unexpected pos"
        if isinstance(error, OSError) or (isinstance(error, Exception)
                                          and shutil.disk_usage(path.parent).free < FULL_BELOW_BYTES):
            raise write_refused(path, error) from error
        raise


class CannotWrite(UserError):
    """The file system refused a write other than for space (a file where a folder should be, permissions)."""


def write_refused(path: Path, error: Exception) -> UserError:
    """What to tell of a write to ``path`` that failed: no space, or why else, and what to do."""
    kept = "; its previous version is kept" if path.is_file() else ""
    usage = shutil.disk_usage(_existing(path.parent))  # /proc, /sys and the like: no space at all, and none used
    if is_disk_full(error) or usage.total and usage.free < FULL_BELOW_BYTES:
        return DiskFull(f"No space left on {mount_point(_existing(path.parent))} writing {path}{kept}. "
                        f"{FREE_SOME_SPACE}, then run the same command again to continue.")
    if path.is_dir():
        fix = f"{path} is a folder where a file should be: move it away, then "
    elif (blocker := next((f for f in reversed(path.parents) if f.exists() and not f.is_dir()), None)) is not None:
        fix = f"{blocker} is a file where a folder should be: move it away, then "
    elif getattr(error, "errno", None) in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT):  # ENOENT: /proc
        fix = f"Make {path.parent} a folder you may write in, then "
    elif limit := over_a_limit(error):  # "Check that disk" misled
        fix = f"It is over a limit of this process: {limit}, then "
    else:
        fix = "Check that disk, then "
    return CannotWrite(f"Cannot write {path} ({getattr(error, 'strerror', None) or error}){kept}. {fix}run the same "
                       f"command again, or choose another output directory.")


def _existing(folder: Path) -> Path:
    """The folder, or the nearest of its parents that exists (a failed mkdir leaves none)."""
    return next(parent for parent in (folder, *folder.parents) if parent.is_dir())


def up_from_a_link(folder: Path) -> Optional[Path]:
    """Where ``folder`` goes up (``..``) from a symbolic link, the folder the system takes it to (``link/..``: the
    parent of the link's target), which Hydra, reading the path as written (the link's own parent), does not; else
    None."""
    system = Path(os.path.realpath(folder))
    return system if system != Path(os.path.realpath(os.path.abspath(folder))) else None


def mount_point(folder: Path) -> Path:
    """The mount point of the file system that holds ``folder``: what a user frees space on."""
    folder = folder.resolve()
    device = folder.stat().st_dev
    while folder.parent != folder and folder.parent.stat().st_dev == device:
        folder = folder.parent
    return folder


def remove_temporary_files(folder: Path) -> None:
    """Temporary files of writes that a killed process left behind (only ever in a folder this process owns)."""
    for leftover in Path(folder).glob(f".*{TEMPORARY_SUFFIX}"):
        leftover.unlink(missing_ok=True)


def save_json(path: Path, data: dict) -> None:
    write_atomic(path, lambda f: json.dump(data, f, indent=2, sort_keys=False, default=str), binary=False)


def regular_file(path: Path) -> Path:
    """``path``, or an OSError where it is no regular file: a folder's named pipe (a folder is data, from anyone)
    would hold whoever reads it until a writer came, for ever."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise OSError(errno.EINVAL, "no regular file", str(path))
    return path


YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's: 20x OmegaConf.load, for sweeps of 1,000s


def read_json(path: Path) -> Optional[dict]:
    """The JSON object in ``path``, or None if there is none (missing, unreadable, or no regular file: a pipe's
    reader waits for a writer)."""
    if not Path(path).is_file():
        return None
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError):  # RecursionError: nested deeper than Python reads
        return None
    return data if isinstance(data, dict) else None


def stopped_early(metrics: dict) -> bool:
    """Whether a run's metrics.json says that early stopping ended it: completed before its last epoch."""
    done, given = metrics.get("epochs_done"), metrics.get("epochs")
    return metrics.get("status") == COMPLETED and isinstance(done, int) and isinstance(given, int) and done < given


def someone_elses_metrics(run_dir: Path) -> Optional[str]:
    """What to tell of a metrics.json in ``run_dir`` that no run of ours wrote (each names its task), which a
    run there would write over; None where there is none."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return None
    record = read_json(path)
    if record is None:  # lenet_exp writes it whole or not at all: an edit, or damage
        return (f"{path} cannot be read as a JSON object (empty, cut short or edited), and a run in {run_dir} would "
                f"write over it. Move that file away to let the run there go on from its checkpoints, or choose a "
                f"new output directory.")
    if "task" not in record:
        return (f"{path} is no lenet_exp run's record (it names no task), and a run in {run_dir} would write over it. "
                f"Choose a new output directory, or move that file away.")
    edited = edited_entry(record)
    if edited:
        return (f"{path} holds {edited}={record.get(edited)!r}, which no lenet_exp run writes (an edit?). Move that "
                f"file away to let the run there go on from its checkpoints, or choose a new output directory.")
    return None


METRICS = "metrics.json"  # a run's record: its task, status, config, history and test
# its status: training (or killed outright), ended as each says; a sweep's summary lists each job's
RUNNING, COMPLETED, DIVERGED, FAILED, INTERRUPTED = "running", "completed", "diverged", "failed", "interrupted"
SKIPPED = "skipped"  # a run's outcome only, never recorded: completed already, not trained again
PREDICTION = "prediction.json"  # a task=predict run's result
SWEEP_RECORD = "multirun.yaml"  # what Hydra writes into a sweep's folder: its config, overrides included
# the sweep's summary of its jobs (lenet_exp.sweeps.report): a table, every job's record, means over seeds, a plot
SUMMARY_CSV, SUMMARY_JSON, SUMMARY_MD, SUMMARY_PNG = "summary.csv", "summary.json", "summary.md", "summary.png"
HYDRA_FOLDER = ".hydra"  # where Hydra writes a job's record (hydra.output_subdir, which a run keeps as it is)
SAVED_CONFIG = f"{HYDRA_FOLDER}/config.yaml"  # the job's config as Hydra composed it
SAVED_HYDRA = f"{HYDRA_FOLDER}/hydra.yaml"  # Hydra's own config of the job: its runtime, the options chosen
SAVED_OVERRIDES = f"{HYDRA_FOLDER}/overrides.yaml"  # the job's overrides, as the command line wrote them
HYDRA_RECORD = (SAVED_CONFIG, SAVED_HYDRA, SAVED_OVERRIDES)  # what Hydra writes into it
RUN_LOG = "run.log"  # the run's log lines (Hydra's job log, as run.py sets it up)
CHECKPOINTS = "checkpoints"  # a run's last.pt (what it goes on from) and best.pt (its best epoch on val)
LAST_CHECKPOINT, BEST_CHECKPOINT = f"{CHECKPOINTS}/last.pt", f"{CHECKPOINTS}/best.pt"
RUN_FILES = (*HYDRA_RECORD, RUN_LOG, METRICS)
WRITTEN_ENTRIES = (HYDRA_FOLDER, *RUN_FILES, CHECKPOINTS)  # what a run writes in its folder, besides its events
REPLACE_THE_LINK = "Put a copy of what it points to in its place (cp -rL)"  # a copy of the folder keeps the link


def hydra_record(run_dir: Path, *keys: str) -> Any:
    """The value under ``keys`` of the ``hydra`` node of a run's .hydra/hydra.yaml (Hydra's own config of it: its
    runtime, the options it chose, the overrides), or None where it has none: missing, cut short, edited."""
    try:
        value = yaml.load(regular_file(run_dir / SAVED_HYDRA).read_bytes(), Loader=YAML_LOADER)["hydra"]
        for key in keys:
            value = value[key]
        return value
    except Exception:
        return None


def linked_entry(folder: Path, names) -> Optional[str]:
    """What to tell of a symbolic link among the entries ``names`` of ``folder``, which a run or sweep writes:
    it would write through it, outside the folder (a folder may come from anyone: it is data)."""
    inside = Path(folder).resolve()
    for path in (folder / name for name in names):
        if path.is_symlink() and inside not in path.resolve().parents:
            return (f"{path} is a symbolic link (to {os.readlink(path)}), where lenet_exp writes a file of its own: "
                    f"it would write there, outside {folder}")
    return None


# the types of the metrics.json entries that decide what a run in its folder does
RECORD_TYPES = {"task": str, "status": str, "config": dict, "epochs_done": int, "epochs": int}


def edited_entry(record: dict) -> Optional[str]:
    """The entry of a run's record that the checks of a run in its folder read and no run writes so (an edit),
    which raised in them; None where there is none. A completed training run's record holds its val accuracy."""
    edited = next((key for key, kind in RECORD_TYPES.items() if key in record and not isinstance(record[key], kind)),
                  None)
    if edited or (record.get("task"), record.get("status")) != ("train", COMPLETED):
        return edited
    acc = (record.get("val") if isinstance(record.get("val"), dict) else {}).get("acc")
    return None if isinstance(acc, (int, float)) and not isinstance(acc, bool) else "val"


# ----------------------------------------------------------------------------------- event files
# The suffix of the event file of a run that failed before its TensorBoard run began (a bad value, its data):
# only its HParams session, ended as a failure. The run that starts there next replaces it (record.py); it is
# no sign of training.
BEFORE_TRAINING = ".before_training"


EVENT_FILES = "events.out.tfevents.*"  # what TensorBoard's SummaryWriter writes, by its name


def run_events(log_dir: Path) -> list[Path]:
    """The TensorBoard event files of what a run did in ``log_dir``: a failure's before training left out."""
    return [path for path in Path(log_dir).glob(EVENT_FILES) if not path.name.endswith(BEFORE_TRAINING)]


# ----------------------------------------------------------------------------------- folder locks
LOCK_FILE = ".lock"
_held: dict[Path, Any] = {}  # folder -> its open lock file, for as long as this process owns the folder


def own_folder(folder: Path) -> Optional[str]:
    """Make ``folder`` this process's until :func:`release_folder` or the process's end (an OS lock, so a
    killed run frees it): None when it is ours, else who holds it. Taking it again is a no-op."""
    import fcntl

    folder = Path(folder).resolve()
    if folder in _held:
        return None
    while True:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if (folder / LOCK_FILE).is_symlink():  # a lock of ours, not a file elsewhere to write over
                (folder / LOCK_FILE).unlink()
            lock = open(folder / LOCK_FILE, "a+",
                        opener=lambda path, flags: os.open(path, flags | os.O_NOFOLLOW, 0o666))
        except OSError as error:  # a file where the folder should be, a folder not ours: said as any refused write
            raise write_refused(folder / LOCK_FILE, error) from error
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = folder_holder(folder) or lock.read().strip() or "another process"
            lock.close()
            return holder
        except OSError as error:
            lock.close()
            if error.errno != errno.ENOLCK:
                raise
            raise UserError(f"{folder} is on a file system that gives no file locks ({error.strerror}), and a lock "
                            f"keeps a folder to one run at a time. Write the outputs to a local disk (hydra.run.dir=, "
                            f"hydra.sweep.dir=), or mount this one with locks (NFS: its lock service).") from error
        if the_same_file(lock, folder / LOCK_FILE):
            break
        lock.close()  # its holder deleted it as it let go: a lock of a file no later process opens, so again
    lock.truncate(0)
    lock.write(f"pid {os.getpid()}")
    lock.flush()
    _held[folder] = lock
    return None


def folder_holder(folder: Path) -> Optional[str]:
    """Who holds ``folder`` now, as its lock file names it (``pid N``), or None: the process that last took it,
    if it holds it still, on this machine, as Linux lists the locks held (/proc/locks); one of another pid
    namespace by the pid it has here. Read without touching the lock, which a job starting meanwhile must be
    able to take. (That process may live on without it: a notebook's, whose run has ended, or another process
    given its pid since.)"""
    try:
        lock = regular_file(Path(folder) / LOCK_FILE)
        holder, file = lock.read_text().strip(), lock.stat()
        pid = holder.split()[1]  # "pid N"
        held = Path("/proc/locks").read_text().splitlines()
    except (OSError, IndexError):  # no lock file, none written yet, or no /proc
        return None
    # "1: FLOCK  ADVISORY  WRITE <pid> <major>:<minor>:<inode> 0 EOF" (a waiter's line has "->" after the number)
    locks = [fields for fields in (line.split() for line in held)
             if len(fields) > 5 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == str(file.st_ino)]
    if any(fields[4] == pid for fields in locks):
        return holder
    # a pid of another pid namespace (a container's run, in a folder shared with this machine): the lock of this
    # very file (its device too), by the pid that this machine gives its holder
    device = f"{os.major(file.st_dev):02x}:{os.minor(file.st_dev):02x}:{file.st_ino}"
    return next((f"pid {fields[4]}" for fields in locks if fields[5] == device), None)


def sweep_holding(run_dir: Path) -> Optional[Path]:
    """The sweep folder (its multirun.yaml) that holds ``run_dir`` as a job, or None for a run of its own."""
    return next((folder for folder in Path(run_dir).parents if (folder / SWEEP_RECORD).is_file()), None)


def held_by_another(folder: Path) -> Optional[str]:
    """Who holds ``folder``, where that is another process than this one (:func:`folder_holder`), or None."""
    holder = folder_holder(folder)
    return holder if holder != f"pid {os.getpid()}" else None


@contextlib.contextmanager
def one_process_at_a_time(folder: Path) -> Iterator[None]:
    """What is done within this context on ``folder``, done by one process at a time (a lock of the folder itself,
    which leaves no file; waited for). Where the file system gives no such lock, done as it is."""
    import fcntl

    try:
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        descriptor = None
    try:
        if descriptor is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        if descriptor is not None:
            os.close(descriptor)


def held_folders() -> set[Path]:
    return set(_held)


def the_same_file(opened, path: Path) -> bool:
    """Whether the file ``opened`` is still the one at ``path`` (not deleted, nor replaced, since)."""
    try:
        return os.path.samestat(os.stat(path, follow_symlinks=False), os.fstat(opened.fileno()))
    except OSError:
        return False


def release_folder(folder: Path, delete_lock: bool = False) -> None:
    """Let go of a folder :func:`own_folder` took, and where ``delete_lock``, delete its lock file first (while
    held: one deleted after would be the one that a process waiting for the folder has just locked)."""
    lock = _held.pop(Path(folder).resolve(), None)
    if delete_lock:
        (Path(folder) / LOCK_FILE).unlink(missing_ok=True)
    if lock is not None:
        lock.close()


def last_checkpoint_gone(run_dir: Path) -> Optional[str]:
    """Why a run cannot go on where its checkpoints/last.pt was deleted and its best.pt was not (the two are
    written together, last.pt first), or None."""
    last = run_dir / LAST_CHECKPOINT
    if last.exists() or not (run_dir / BEST_CHECKPOINT).exists():
        return None
    return f"{last}, the checkpoint this run goes on from, is gone (its best.pt is there). {start_over(run_dir)}"


def start_over(run_dir: Path) -> str:
    """The way out where a run's checkpoints cannot take it on."""
    return (f"Delete the folder {run_dir / CHECKPOINTS} to train this run again from the start, or choose a new "
            f"output directory.")


def write_nowhere(stream) -> None:
    """What is written to ``stream`` from now on, and what is still buffered for it at exit, goes to
    /dev/null: its reader (a pipe's, a hung-up terminal) is gone, and each write would fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):  # a stream without a file (a test's StringIO)
        pass
