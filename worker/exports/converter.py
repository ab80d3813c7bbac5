"""llama.cpp's own GGUF converters (``convert_hf_to_gguf.py``, ``convert_lora_to_gguf.py``), carried
from a package registry, pinned: the llama-cpp-python sdist on PyPI vendors llama.cpp, and with
it the converters, their ``conversion/`` package and the ``gguf-py`` they are written against
(newer than the ``gguf`` wheel on PyPI). Nothing is downloaded at run time: an install step
(``python -m worker.exports.converter install``, run by the Dockerfile and ``.ci/run``) fetches
that one sdist with pip, checks its hash, and unpacks just those files into
``settings.llama_cpp_dir``; a worker without them fails a GGUF export saying which command to run.

The converters run as subprocesses with the vendored ``gguf-py`` first on ``PYTHONPATH``, so the
``gguf`` wheel TuneDeck itself imports is left alone.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from app.core.config import settings

VERSION = "0.3.36"
SDIST = f"llama_cpp_python-{VERSION}.tar.gz"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
PREFIX = f"llama_cpp_python-{VERSION}/vendor/llama.cpp/"
# What the converters need from the vendored tree (files, or folders ending in "/").
MEMBERS = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion/", "gguf-py/gguf/",
           "LICENSE")
MARKER = "TUNEDECK_CONVERTER_VERSION"  # written last: the folder is complete
INSTALL_COMMAND = "python -m worker.exports.converter install"


class ConverterMissing(RuntimeError):
    """The converters are not installed on this worker."""


def converter_dir() -> Path:
    return settings.resolved_llama_cpp_dir


def installed(folder: Path | None = None) -> bool:
    folder = folder or converter_dir()
    marker = folder / MARKER
    return marker.is_file() and marker.read_text().strip() == VERSION


def require(folder: Path | None = None) -> Path:
    folder = folder or converter_dir()
    if not installed(folder):
        raise ConverterMissing(
            f"llama.cpp's GGUF converter (from llama-cpp-python {VERSION}) is not installed on "
            f"this worker ({folder}): run `{INSTALL_COMMAND}` there, or set "
            "TUNEDECK_LLAMA_CPP_DIR to a folder where it is installed")
    return folder


def run_converter(script: str, args: list[str], *, log_file=None, folder: Path | None = None
                  ) -> None:  # type: ignore[no-untyped-def]
    """Run one of the converters; RuntimeError with its last output lines if it fails."""
    folder = require(folder)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(folder / "gguf-py"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    result = subprocess.run([sys.executable, str(folder / script), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    output = result.stdout.decode("utf-8", "replace")
    if log_file is not None:
        log_file.write(output)
        log_file.flush()
    if result.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-12:])
        raise RuntimeError(f"{script} exited with code {result.returncode}:\n{tail}")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def install(target: Path, *, sdist: Path | None = None) -> Path:
    """Unpack the converters into ``target`` (complete or not at all); ``sdist``: an already
    downloaded llama-cpp-python sdist, else pip downloads it from the package index."""
    if installed(target):
        return target
    with tempfile.TemporaryDirectory(prefix="tunedeck-llama-cpp-") as scratch:
        if sdist is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:",
                            "--no-deps", f"llama-cpp-python=={VERSION}",
                            "-d", scratch], check=True)
            sdist = Path(scratch) / SDIST
        if sha256(sdist) != SDIST_SHA256:
            raise RuntimeError(f"{sdist} is not the llama-cpp-python {VERSION} sdist this "
                               f"TuneDeck was checked with (sha256 {SDIST_SHA256})")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            with tarfile.open(sdist, "r:gz") as archive:
                for member in archive.getmembers():
                    name = member.name.removeprefix(PREFIX)
                    if member.name == name or not member.isfile():
                        continue
                    if any(name == m or (m.endswith("/") and name.startswith(m))
                           for m in MEMBERS):
                        destination = partial / name
                        destination.parent.mkdir(parents=True, exist_ok=True)
                        with archive.extractfile(member) as source, open(destination, "wb") as out:
                            shutil.copyfileobj(source, out)  # type: ignore[arg-type]
            missing = [m for m in MEMBERS if not (partial / m.rstrip("/")).exists()]
            if missing:
                raise RuntimeError(f"{sdist} lacks {', '.join(missing)}")
            (partial / MARKER).write_text(VERSION)
            partial.chmod(0o755)
            shutil.rmtree(target, ignore_errors=True)
            partial.replace(target)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.exports.converter",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    install_cmd = sub.add_parser("install", help="fetch and unpack the pinned converters")
    install_cmd.add_argument("--sdist", type=Path, help="a downloaded llama-cpp-python sdist")
    install_cmd.add_argument("--target", type=Path, help="default: TUNEDECK_LLAMA_CPP_DIR")
    sub.add_parser("check", help="exit 0 when the converters are installed")
    args = parser.parse_args(argv)
    if args.command == "check":
        ok = installed()
        print(f"{converter_dir()}: {'installed' if ok else 'missing'}")
        return 0 if ok else 1
    target = install(args.target or converter_dir(), sdist=args.sdist)
    print(f"llama.cpp converters (llama-cpp-python {VERSION}) in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
