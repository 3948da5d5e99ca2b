"""Getting data: hashed downloads, the data registry, and cached simulated data sets.

Everything lives in one cache folder, ``$INDI4D_DATA_DIR`` when set, otherwise
the user cache (``pooch.os_cache("indi4d")``, e.g. ``~/.cache/indi4d``)::

    CACHE/downloads/<sha256[:16]>/<file name>        fetch_volume, registry_fetch
    CACHE/simulated/<preset>-seed<seed>-v<version>/  simulated_dataset

Nothing is trusted without its SHA-256: a download is kept only when its hash
is the one asked for, a cached file is re-hashed before it is returned, and a
simulated data set is checked against the hashes in its own ``meta.json``
(which is itself pinned by ``meta.json.sha256``). Everything is written under
a hidden temporary name and renamed when complete, so an interrupted download
or simulation never leaves anything that looks finished.

Examples
--------
>>> path = fetch_volume("https://example.org/scan.tif",               # doctest: +SKIP
...                     sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
>>> data_dir = simulated_dataset(preset="tiny", seed=0)               # doctest: +SKIP
>>> materialise(data_dir, "runs/tiny/data")                           # doctest: +SKIP
"""

import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from urllib.parse import unquote, urlparse

from ._atomic import atomic_path
from .io import _atomic_dir, _usual_permissions

__all__ = [
    "DataError",
    "HashMismatchError",
    "ENV_VAR",
    "REGISTRY_FILE",
    "data_cache_dir",
    "file_sha256",
    "fetch_volume",
    "load_registry",
    "registry_fetch",
    "simulated_dataset",
    "simulated_dataset_dir",
    "verify_dataset",
    "write_hash_sidecar",
    "materialise",
]

#: Environment variable that overrides the cache folder.
ENV_VAR = "INDI4D_DATA_DIR"

#: The project's registry of published volumes (pooch's format), in the
#: source tree beside ``lib/``.
REGISTRY_FILE = Path(__file__).resolve().parents[2] / "data" / "registry.txt"

#: Name of the file that pins ``meta.json``'s own hash in a data set folder.
META_SIDECAR = "meta.json.sha256"

_SCHEMES = ("http://", "https://", "ftp://", "sftp://", "doi:")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class DataError(ValueError):
    """Data could not be fetched, verified or placed; the message names the URL or file."""


class HashMismatchError(DataError):
    """A file's SHA-256 is not the one it was supposed to have."""


# --------------------------------------------------------------------------- basics


def data_cache_dir(cache_dir=None):
    """The cache folder: ``cache_dir``, else ``$INDI4D_DATA_DIR``, else the user cache.

    Parameters
    ----------
    cache_dir : str or Path, optional
        Explicit folder; wins over the environment.

    Returns
    -------
    Path
        Absolute path (not created here).
    """
    if cache_dir is None:
        cache_dir = os.environ.get(ENV_VAR) or None
    if cache_dir is None:
        import pooch

        cache_dir = pooch.os_cache("indi4d")
    return Path(cache_dir).expanduser().resolve()


def file_sha256(path, block_size=2**20):
    """SHA-256 of a file's bytes, as 64 lower-case hex digits.

    Parameters
    ----------
    path : str or Path
    block_size : int
        Bytes read at a time (memory use stays at one block).

    Returns
    -------
    str
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(block_size), b""):
            digest.update(block)
    return digest.hexdigest()


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
    path = url[4:] if url.startswith("doi:") else urlparse(url).path
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
    staging = Path(tempfile.mkdtemp(prefix=".download-", suffix=".part", dir=folder))
    try:
        downloaded = _download(url, fname, staging, progressbar)
        actual = file_sha256(downloaded)
        if actual != expected:
            raise HashMismatchError(
                f"{url}: downloaded file {fname} has sha256 {actual}, expected {expected}; "
                f"deleted, nothing kept in {folder}. The file on the server changed or the known hash is wrong."
            )
        _usual_permissions(downloaded)
        os.replace(downloaded, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
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

    if url.startswith("doi:"):
        downloader = pooch.DOIDownloader(progressbar=progressbar)
    elif url.startswith("ftp://"):
        downloader = pooch.FTPDownloader(progressbar=progressbar)
    elif url.startswith("sftp://"):
        downloader = pooch.SFTPDownloader(progressbar=progressbar)
    else:
        downloader = pooch.HTTPDownloader(progressbar=progressbar)
    output = staging / fname
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
    the URL may be ``doi:...``. See ``data/README.md``.

    Parameters
    ----------
    registry : str or Path, optional
        Default :data:`REGISTRY_FILE` (``data/registry.txt`` of the source tree).

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
        url = parser.urls.get(name)
        if not url:
            raise DataError(f"{path}: entry {name!r} has no URL (expected 'name sha256:<hex> url')")
        entries[name] = {"sha256": _normalise_sha256(known_hash, f"{path}: entry {name!r}"), "url": url}
    return entries


def registry_fetch(name, registry=None, cache_dir=None, progressbar=False):
    """Fetch a registry entry by name (see :func:`load_registry`, :func:`fetch_volume`).

    Parameters
    ----------
    name : str
        Entry name in the registry.
    registry : str or Path, optional
        Registry file; default ``data/registry.txt``.
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


# --------------------------------------------------------------------------- data set folders


def write_hash_sidecar(folder):
    """Pin ``meta.json``'s hash in ``meta.json.sha256`` (``sha256sum -c`` format).

    Parameters
    ----------
    folder : str or Path
        A data set folder holding ``meta.json``.

    Returns
    -------
    Path
        The sidecar file.
    """
    folder = Path(folder)
    sidecar = folder / META_SIDECAR
    with atomic_path(sidecar) as tmp:
        tmp.write_text(f"{file_sha256(folder / 'meta.json')}  meta.json\n")
        _usual_permissions(tmp)
    return sidecar


def verify_dataset(folder, expect=None, require_sidecar=True, progress=False):
    """Check a data set folder against the hashes its ``meta.json`` records.

    Parameters
    ----------
    folder : str or Path
        Holds ``meta.json`` with a ``"files": {name: sha256}`` map (as written
        by :func:`indi4d.simulate.simulate_beamline`) and, for cached sets,
        ``meta.json.sha256``.
    expect : dict, optional
        ``meta.json`` keys that must have these values (e.g. preset, seed).
    require_sidecar : bool
        Count a missing ``meta.json.sha256`` as a problem.
    progress : bool
        Progress bar over the files hashed.

    Returns
    -------
    problems : list of str
        Empty when everything matches; otherwise one line per problem, each
        starting with the offending file.
    """
    from tqdm.auto import tqdm

    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not folder.is_dir():
        return [f"{folder}: no such folder"]
    if not meta_path.is_file():
        return [f"{meta_path}: missing"]
    problems = []
    sidecar = folder / META_SIDECAR
    if sidecar.is_file():
        pinned = sidecar.read_text().split()[:1]
        actual = file_sha256(meta_path)
        if pinned != [actual]:
            problems.append(f"{meta_path}: sha256 {actual} differs from the one pinned in {META_SIDECAR} "
                            f"({pinned[0] if pinned else 'empty'})")
    elif require_sidecar:
        problems.append(f"{sidecar}: missing")
    try:
        meta = json.loads(meta_path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        return problems + [f"{meta_path}: not valid JSON ({exc})"]
    files = meta.get("files") if isinstance(meta, dict) else None
    if not isinstance(files, dict) or not files:
        return problems + [f"{meta_path}: no 'files' map of name -> sha256"]
    for key, value in (expect or {}).items():
        if meta.get(key) != value:
            problems.append(f"{meta_path}: {key} is {meta.get(key)!r}, expected {value!r}")
    for name, expected in tqdm(sorted(files.items()), desc=f"verifying {folder.name}", disable=not progress):
        if name == "meta.json":  # a file cannot hold its own hash
            continue
        path = folder / name
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        actual = file_sha256(path)
        if actual != str(expected).lower().removeprefix("sha256:"):
            problems.append(f"{path}: sha256 {actual}, meta.json records {expected}")
    return problems


# --------------------------------------------------------------------------- simulated data


def simulated_dataset_dir(preset="default", seed=0, cache_dir=None):
    """Where :func:`simulated_dataset` keeps one data set (it may not exist yet).

    Returns
    -------
    Path
        ``CACHE/simulated/<preset>-seed<seed>-v<indi4d version>-<simulator hash>``,
        the hash being the first 10 hex digits of the sha256 of ``simulate.py``,
        so a changed simulator never reuses data made by an older one.
    """
    from . import __version__

    if not isinstance(preset, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", preset):
        raise ValueError(f"preset must be a plain name like 'tiny', got {preset!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    simulator = hashlib.sha256((Path(__file__).parent / "simulate.py").read_bytes()).hexdigest()[:10]
    return data_cache_dir(cache_dir) / "simulated" / f"{preset}-seed{seed}-v{__version__}-{simulator}"


def simulated_dataset(preset="default", seed=0, cache_dir=None, on_mismatch="regenerate", generator=None,
                      progress=False):
    """Return a verified simulated-beamline data set, simulating it only when needed.

    The first call runs the simulation into a hidden temporary folder, checks
    every file against the hashes in the ``meta.json`` it wrote, pins
    ``meta.json`` with ``meta.json.sha256`` and renames the folder into
    place. Later calls re-hash everything and return the folder unchanged.

    Parameters
    ----------
    preset : str
        Simulation preset (``"tiny"``, ``"default"``, ``"paper"``).
    seed : int
        Simulation seed: same preset and seed -> same files.
    cache_dir : str or Path, optional
        Default :func:`data_cache_dir`.
    on_mismatch : {"regenerate", "raise"}
        What to do with a cached set that fails verification (a file
        changed, missing or added to ``meta.json``): simulate it again, or
        raise :class:`DataError` listing the problems.
    generator : callable, optional
        ``generator(out_dir, preset=..., seed=...) -> meta`` that writes the
        files and a ``meta.json`` with a ``"files"`` map; default
        :func:`indi4d.simulate.simulate_beamline`.
    progress : bool
        Progress bar while hashing.

    Returns
    -------
    Path
        ``CACHE/simulated/<preset>-seed<seed>-v<version>/``.

    Raises
    ------
    DataError
        A cached set fails verification and ``on_mismatch="raise"``, or the
        generator wrote files that do not match its own ``meta.json``.
    """
    if on_mismatch not in ("regenerate", "raise"):
        raise ValueError(f"on_mismatch must be 'regenerate' or 'raise', got {on_mismatch!r}")
    final = simulated_dataset_dir(preset, seed, cache_dir)
    expect = {"preset": preset, "seed": seed}
    if final.exists():
        problems = verify_dataset(final, expect=expect, progress=progress)
        if not problems:
            return final
        if on_mismatch == "raise":
            raise DataError(f"{final}: cached simulated data set fails verification:\n  " + "\n  ".join(problems)
                            + "\n(delete the folder or call with on_mismatch='regenerate')")
        warnings.warn(f"{final}: cached data set fails verification ({problems[0]}"
                      f"{' ...' if len(problems) > 1 else ''}); simulating it again", stacklevel=2)

    if generator is None:
        from .simulate import simulate_beamline as generator

    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent))
    try:
        _usual_permissions(staging)
        generator(staging, preset=preset, seed=seed)
        problems = verify_dataset(staging, expect=expect, require_sidecar=False, progress=progress)
        if problems:
            raise DataError(f"{final}: the simulation's files do not match its own meta.json:\n  "
                            + "\n  ".join(problems))
        write_hash_sidecar(staging)
        _swap_into_place(staging, final, expect, progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _swap_into_place(staging, final, expect, progress):
    """Rename ``staging`` to ``final``, replacing a stale ``final``.

    When another process finished the same data set first and it verifies,
    that one is kept and ours discarded.
    """
    try:
        os.rename(staging, final)
        return
    except OSError:
        if not final.exists():
            raise
    if not verify_dataset(final, expect=expect, progress=progress):
        return  # someone else's complete, verified copy
    old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
    os.replace(final, old / final.name)
    os.rename(staging, final)
    shutil.rmtree(old, ignore_errors=True)


def materialise(src_dir, dst_dir, progress=False):
    """Copy a verified data set into a run folder (e.g. ``run_dir/data``), atomically.

    Parameters
    ----------
    src_dir : str or Path
        A data set folder with ``meta.json`` (and its ``"files"`` hashes).
    dst_dir : str or Path
        Destination folder. If it already holds this very data set (same
        ``meta.json``, files verified) nothing is copied; if it holds another
        data set it is replaced; a non-empty folder without ``meta.json`` is
        refused (it is not ours to delete).
    progress : bool
        Progress bar while hashing.

    Returns
    -------
    Path
        ``dst_dir``.

    Raises
    ------
    DataError
        ``src_dir`` fails verification, ``dst_dir`` is ``src_dir`` or inside
        it (or the reverse), or ``dst_dir`` holds unrelated files.
    """
    src, dst = Path(src_dir).resolve(), Path(dst_dir).resolve()
    if src == dst or src in dst.parents or dst in src.parents:
        raise DataError(f"{dst}: refusing to materialise {src} into itself, a sub-folder or a parent")
    problems = verify_dataset(src, require_sidecar=False, progress=progress)
    if problems:
        raise DataError(f"{src}: data set fails verification, not copied:\n  " + "\n  ".join(problems))
    if dst.exists():
        same_meta = (dst / "meta.json").is_file() and file_sha256(dst / "meta.json") == file_sha256(src / "meta.json")
        if same_meta and not verify_dataset(dst, require_sidecar=False, progress=progress):
            return Path(dst_dir)
        if any(dst.iterdir()) and not (dst / "meta.json").is_file():
            raise DataError(f"{dst}: exists and holds files that are not a data set (no meta.json); "
                            "refusing to replace it")
    with _atomic_dir(dst) as staging:
        for path in sorted(src.rglob("*")):
            if path.name.startswith("."):  # temporary files of an unfinished write
                continue
            out = staging / path.relative_to(src)
            if path.is_dir():
                out.mkdir(parents=True, exist_ok=True)
            else:
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, out)
        problems = verify_dataset(staging, require_sidecar=False, progress=progress)
        if problems:
            raise DataError(f"{dst}: copy fails verification:\n  " + "\n  ".join(problems))
    return Path(dst_dir)
