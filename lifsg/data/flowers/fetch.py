"""Download of the official Oxford 102 Flowers files: :func:`fetch_flowers`."""

import hashlib
import http.client
import urllib.error
import urllib.request
from pathlib import Path

from ..common import DataError, atomic_write, log
from .files import BASE_URL, CHUNK, FILES, flowers_instructions, md5_of

DOWNLOAD_TIMEOUT_S = 10


def fetch_flowers(data_dir="data/flowers", timeout=DOWNLOAD_TIMEOUT_S):
    """Put the three official files into ``data_dir``, verified; return the folder.

    Files already there with the official md5 are kept. Others (missing, damaged, unreadable)
    are downloaded from the official site (``timeout`` seconds per network operation) and
    replace them atomically; after the first network failure no further download is tried.
    If anything is still missing or wrong, raises DataError with exactly which file to place
    where.
    """
    data_dir = Path(data_dir)
    todo = []
    for name, expected in FILES.items():
        path = data_dir / name
        if path.is_file():
            try:
                digest = md5_of(path)
            except DataError as err:
                digest = f"unknown ({err})"
            if digest == expected:
                log(f"{path}: present, md5 verified")
                continue
            log(f"{path}: md5 {digest} is not the official {expected}; fetching it again")
        todo.append(name)
    failed, network_down = [], None
    for name in todo:
        if network_down is not None:
            failed.append(name)
            continue
        try:
            _download(BASE_URL + name, data_dir / name, FILES[name], timeout)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            log(f"download of {BASE_URL}{name} failed ({err})")
            failed.append(name)
            if not isinstance(err, urllib.error.HTTPError):
                network_down = err
                log("the official site is unreachable from here; not trying the other files")
        except DataError as err:
            log(str(err))
            failed.append(name)
    if failed:
        raise DataError(
            f"could not fetch {', '.join(failed)} into {data_dir}.\n"
            + flowers_instructions(data_dir, failed)
        )
    log(f"Oxford 102 Flowers files verified in {data_dir}")
    return data_dir


def _download(url, target, expected_md5, timeout):
    """Stream ``url`` into ``target`` (atomically), checking the md5 before it is kept."""
    log(f"downloading {url} (timeout {timeout} s)")
    target.parent.mkdir(parents=True, exist_ok=True)

    def write(f):
        digest = hashlib.md5(usedforsecurity=False)
        with urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(CHUNK):
                digest.update(chunk)
                f.write(chunk)
        if digest.hexdigest() != expected_md5:
            raise DataError(f"{url}: md5 {digest.hexdigest()}, expected {expected_md5}")

    atomic_write(target, write)
