"""Hashed downloads of published volumes, and the project's registry of them.

A download is kept only when its SHA-256 is the one asked for, and a cached
copy is re-hashed before it is handed out::

    CACHE/downloads/<sha256[:16]>/<file name>
"""

import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..files import discard_temp, file_sha256, make_temp, remove_stale_temps, usual_permissions
from ..package_data import REGISTRY_FILE
from .cache import DataError, HashMismatchError, data_cache_dir

_SCHEMES = ("http://", "https://", "ftp://", "sftp://", "doi:", "file://")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _normalise_sha256(sha256, source):
    """Accept ``"<hex>"`` or ``"sha256:<hex>"``; refuse other algorithms and junk."""
    if sha256 is None:
        raise DataError(f"{source}: a known SHA-256 is required (got None); compute it with indi4d.data.file_sha256")
    text = str(sha256).strip().lower()
    if ":" in text:
        algorithm, text = text.split(":", 1)
        if algorithm != "sha256":
            raise DataError(f"{source}: only sha256 hashes are accepted, got {algorithm}:...")
    if not _HEX64.match(text):
        raise DataError(f"{source}: {sha256!r} is not a SHA-256 (64 hex digits)")
    return text


def _file_name_from_url(url):
    """Last path component of an http(s)/ftp URL or of ``doi:10.xxx/.../name``."""
    path = url[4:] if url.startswith("doi:") else urlparse(url).path  # file:///a/b.zip -> /a/b.zip
    return unquote(path.rstrip("/").rsplit("/", 1)[-1])


# --------------------------------------------------------------------------- downloads


def fetch_volume(url_or_doi, sha256, fname=None, cache_dir=None, progressbar=False, on_mismatch="redownload"):
    """Download a published file once, check its SHA-256, return the cached path.

    Parameters
    ----------
    url_or_doi : str
        ``http(s)://``, ``ftp://``, ``sftp://`` URL, or a DOI of a data
        repository record followed by the file name, as pooch understands it:
        ``"doi:10.5281/zenodo.1234567/scan_lq.tif"`` (Zenodo, figshare, Dataverse).
    sha256 : str
        The file's known SHA-256 (``"<hex>"`` or ``"sha256:<hex>"``). Required.
    fname : str, optional
        Name to store it under; default the last component of the URL.
    cache_dir : str or Path, optional
        Default :func:`data_cache_dir`.
    progressbar : bool
        Show pooch's download progress bar.
    on_mismatch : {"redownload", "raise"}
        What to do when a cached copy no longer has the known hash
        (corrupted or edited): download it again, or raise.

    Returns
    -------
    Path
        ``CACHE/downloads/<sha256[:16]>/<fname>``; its content has the
        requested hash. When that is already so, no request is made.

    Raises
    ------
    HashMismatchError
        The download (or, with ``on_mismatch="raise"``, the cached copy) has
        another hash. The message names the URL and file and gives the
        expected and actual hashes. A wrong download is deleted: nothing is
        left in the cache under the final name.
    DataError
        Bad arguments, or the download failed (HTTP error, unreachable host).
    """
    url = str(url_or_doi).strip()
    if not url.lower().startswith(_SCHEMES):
        raise DataError(f"{url}: not a URL or DOI this can fetch (expected one of {', '.join(_SCHEMES)})")
    expected = _normalise_sha256(sha256, url)
    if on_mismatch not in ("redownload", "raise"):
        raise ValueError(f"on_mismatch must be 'redownload' or 'raise', got {on_mismatch!r}")
    fname = fname or _file_name_from_url(url)
    if not fname or fname in (".", "..") or "/" in fname or "\\" in fname:
        raise DataError(f"{url}: cannot take a file name from it ({fname!r}); pass fname='name.tif'")
    # Content-addressed folder: two URLs for the same bytes share one copy,
    # two different files with one name do not collide.
    folder = data_cache_dir(cache_dir) / "downloads" / expected[:16]
    target = folder / fname
    remove_stale_temps(target)  # what a killed download of this file left behind

    if target.exists():
        actual = file_sha256(target)
        if actual == expected:
            return target
        if on_mismatch == "raise":
            raise HashMismatchError(
                f"{target}: cached copy of {url} has sha256 {actual}, expected {expected}; "
                "it was changed or corrupted after download (delete it or use on_mismatch='redownload')"
            )
        warnings.warn(f"{target}: cached copy has sha256 {actual}, expected {expected}; downloading it again",
                      stacklevel=2)
        target.unlink()

    folder.mkdir(parents=True, exist_ok=True)
    staging = make_temp(target, directory=True)
    try:
        downloaded = _download(url, fname, staging, progressbar)
        actual = file_sha256(downloaded)
        if actual != expected:
            raise HashMismatchError(
                f"{url}: downloaded file {fname} has sha256 {actual}, expected {expected}; "
                f"deleted, nothing kept in {folder}. The file on the server changed or the known hash is wrong."
            )
        usual_permissions(downloaded)
        os.replace(downloaded, target)
    finally:
        discard_temp(staging)
        if not any(folder.iterdir()):
            folder.rmdir()
    return target


def _download(url, fname, staging, progressbar):
    """Fetch ``url`` into ``staging/fname`` with a pooch downloader.

    The downloader is called directly (not ``pooch.retrieve``): the hash is
    checked by the caller, and retrieve would log advice to copy an
    unchecked hash.
    """
    import pooch
    import requests

    output = staging / fname
    if url.startswith("file://"):  # a file shipped with the project: copied, then hashed like a download
        source = Path(unquote(urlparse(url).path))
        if not source.is_file():
            raise DataError(f"{url}: no such file")
        shutil.copyfile(source, output)
        return output
    if url.startswith("doi:"):
        downloader = pooch.DOIDownloader(progressbar=progressbar)
    elif url.startswith("ftp://"):
        downloader = pooch.FTPDownloader(progressbar=progressbar)
    elif url.startswith("sftp://"):
        downloader = pooch.SFTPDownloader(progressbar=progressbar)
    else:
        downloader = pooch.HTTPDownloader(progressbar=progressbar)
    try:
        downloader(url, str(output), None)
    except requests.exceptions.RequestException as exc:
        raise DataError(f"{url}: download failed ({exc})") from exc
    except (OSError, ValueError) as exc:  # unsupported DOI repository, file not in the record, ...
        raise DataError(f"{url}: download failed ({exc})") from exc
    return output


# --------------------------------------------------------------------------- registry


def load_registry(registry=None):
    """Read a registry file in pooch's format.

    One entry a line, ``name sha256:<hex> url`` (``#`` starts a comment);
    the URL may be ``doi:...``, or a path relative to the registry file for a
    file shipped with it (returned as a ``file://`` URL). See ``data/README.md``.

    Parameters
    ----------
    registry : str or Path, optional
        Default :data:`~indi4d.package_data.REGISTRY_FILE` (shipped with the package).

    Returns
    -------
    dict
        ``name -> {"sha256": hex, "url": url}``.

    Raises
    ------
    DataError
        Missing file, a malformed line, a missing URL or a non-sha256 hash,
        naming the registry file.
    """
    import pooch

    path = Path(registry) if registry is not None else REGISTRY_FILE
    if not path.is_file():
        raise DataError(f"{path}: registry file not found")
    # pooch parses the file; it needs a (never used) cache path and base URL.
    parser = pooch.create(path=tempfile.gettempdir(), base_url="", registry={})
    try:
        parser.load_registry(path)
    except OSError as exc:
        raise DataError(f"{path}: malformed registry ({exc})") from exc
    entries = {}
    for name, known_hash in parser.registry.items():
        _check_entry_name(name, path)
        url = parser.urls.get(name)
        if not url:
            raise DataError(f"{path}: entry {name!r} has no URL (expected 'name sha256:<hex> url')")
        if not url.lower().startswith(_SCHEMES):  # a path beside the registry (pretrained/...)
            url = (path.resolve().parent / url).as_uri()
        entries[name] = {"sha256": _normalise_sha256(known_hash, f"{path}: entry {name!r}"), "url": url}
    return entries


def _check_entry_name(name, registry):
    """A registry name becomes a file name in the cache (and its stem a folder): refuse ``...zip``, ``a/b``, ``.x``."""
    stem = Path(name).stem
    if (name.startswith(".") or "/" in name or "\\" in name or not stem.strip(".")
            or not re.fullmatch(r"[A-Za-z0-9._+-]+", name)):
        raise DataError(f"{registry}: entry name {name!r} is not a plain file name (letters, digits, '._+-', not "
                        "starting with a dot, with a non-empty stem); rename the entry")


def registry_fetch(name, registry=None, cache_dir=None, progressbar=False):
    """Fetch a registry entry by name (see :func:`load_registry`, :func:`fetch_volume`).

    Parameters
    ----------
    name : str
        Entry name in the registry.
    registry : str or Path, optional
        Registry file; default the package's (:data:`~indi4d.package_data.REGISTRY_FILE`).
    cache_dir : str or Path, optional
    progressbar : bool

    Returns
    -------
    Path
        The verified cached file.

    Raises
    ------
    KeyError
        Unknown name; the known names are listed.
    """
    entries = load_registry(registry)
    if name not in entries:
        where = registry if registry is not None else REGISTRY_FILE
        raise KeyError(f"{where}: no entry {name!r}; entries: {', '.join(sorted(entries)) or 'none'}")
    entry = entries[name]
    return fetch_volume(entry["url"], entry["sha256"], fname=Path(name).name, cache_dir=cache_dir,
                        progressbar=progressbar)
