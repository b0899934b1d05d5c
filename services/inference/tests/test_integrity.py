"""What is deserialized is what was verified; no file in a run directory can hang or flood the
loader; a model archive that inflates past its bound is refused with bounded memory."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from artifact_contract import file_digests, read_manifest, write_manifest

import inference.loader
from inference.errors import StartupRefusal
from inference.loader import load_model
from inference.settings import MIB, Settings
from tests.conftest import RECORD, copy_run

INFERENCE = Path(sys.executable).parent / "inference"


def republish(run_dir: Path) -> None:
    """Rewrite the manifest's digests for the files as they are now (an artifact made so)."""
    write_manifest(run_dir, replace(read_manifest(run_dir), files=file_digests(run_dir)))


def run_limited(code: str, *args: str, address_space: int, timeout: float = 60) -> dict[str, Any]:
    """Run ``code`` in a child Python whose address space is capped; it prints one JSON line."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=cap,
        env=env,
        check=False,
    )
    assert result.stdout, result.stderr[-2000:]
    answer: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return answer


LOAD_IN_CHILD = """
import json, sys
from inference.errors import StartupRefusal
from inference.loader import load_model
from inference.settings import Settings
settings = Settings.from_env({"MODEL_DIR": sys.argv[1], "MODEL_CACHE_DIR": sys.argv[2],
                              "MODEL_MAX_INFLATED_BYTES": sys.argv[3]})
try:
    load_model(settings)
    outcome = {"loaded": True}
except StartupRefusal as exc:
    outcome = {"code": exc.code, "message": exc.message}
except MemoryError as exc:
    outcome = {"code": "MemoryError", "message": str(exc)}
# VmHWM: this process image's peak RSS (ru_maxrss would include the parent's, from before exec)
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({**outcome, "peak_mib": int(hwm.split()[1]) // 1024}))
"""


def test_the_bytes_deserialized_are_the_bytes_verified(
    ridge_run: Path, hgb_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11: swapping model.skops between the digest check and the load served the
    swapped model under the pinned MODEL_SHA256. The swap is made right after verification."""
    run_dir = copy_run(ridge_run, tmp_path / "run")
    reference = load_model(Settings(model_dir=ridge_run, model_cache_dir=tmp_path / "c"))
    verify = inference.loader.verify

    def verify_then_swap(*args: Any) -> Any:
        verified = verify(*args)
        shutil.copyfile(hgb_run / "model.skops", run_dir / "model.skops")
        return verified

    monkeypatch.setattr(inference.loader, "verify", verify_then_swap)
    model = load_model(
        Settings(
            model_dir=run_dir,
            model_cache_dir=tmp_path / "cache",
            model_sha256=reference.manifest_sha256,
        )
    )
    assert (run_dir / "model.skops").read_bytes() == (hgb_run / "model.skops").read_bytes()
    row = np.array([[RECORD[name] for name in model.feature_names]], dtype=np.float64)
    assert model.predict(row) == reference.predict(row)  # the verified ridge, not the swap


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["fifo", "link-to-dev-zero"])
def test_a_manifest_that_is_not_a_regular_file_is_refused_at_once(
    ridge_run: Path, tmp_path: Path, kind: str
) -> None:
    """Issue 11: a FIFO (or a link to /dev/zero) as manifest.json hung the loader."""
    run_dir = copy_run(ridge_run, tmp_path / "run")
    (run_dir / "manifest.json").unlink()
    if kind == "fifo":
        os.mkfifo(run_dir / "manifest.json")
    else:
        (run_dir / "manifest.json").symlink_to("/dev/zero")
    # In a child with a deadline and a memory cap: without the fix it hangs, or reads forever.
    outcome = run_limited(
        LOAD_IN_CHILD,
        str(run_dir),
        str(tmp_path / "cache"),
        str(MIB),
        address_space=4096 * MIB,
        timeout=30,
    )
    assert outcome["code"] == "integrity_error"
    assert "regular file" in outcome["message"] or "symbolic link" in outcome["message"]


def skops_bomb(model_file: Path, inflated: int) -> None:
    """Replace the first array of a real skops file by one of ``inflated`` bytes of zeros,
    deflated to about a thousandth of that."""
    with zipfile.ZipFile(model_file) as original:
        members = [(info, original.read(info)) for info in original.infolist()]
    target = next(info.filename for info, _ in members if info.filename.endswith(".npy"))
    with zipfile.ZipFile(model_file, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as bomb:
        for info, data in members:
            if info.filename != target:
                bomb.writestr(info.filename, data)
                continue
            with bomb.open(target, "w", force_zip64=True) as stream:
                count = inflated // 8
                header = {"descr": "<f8", "fortran_order": False, "shape": (count,)}
                np.lib.format.write_array_header_1_0(stream, header)
                zeros = bytes(MIB)
                for _ in range(inflated // MIB):
                    stream.write(zeros)


@pytest.mark.slow
def test_a_skops_file_that_inflates_past_the_bound_is_refused_in_bounded_memory(
    ridge_run: Path, tmp_path: Path
) -> None:
    """Issue 11: a 2 MB model.skops inflating to a 2 GiB array was accepted. Here 256 MiB of
    zeros in a ~0.3 MB file, against a 64 MiB MODEL_MAX_INFLATED_BYTES."""
    run_dir = copy_run(ridge_run, tmp_path / "run")
    skops_bomb(run_dir / "model.skops", 256 * MIB)
    assert (run_dir / "model.skops").stat().st_size < 2 * MIB
    republish(run_dir)
    outcome = run_limited(
        LOAD_IN_CHILD,
        str(run_dir),
        str(tmp_path / "cache"),
        str(64 * MIB),
        address_space=4096 * MIB,
    )
    assert outcome["code"] == "unsafe_archive", outcome
    assert "inflates to more than 67108864 bytes (MODEL_MAX_INFLATED_BYTES)" in outcome["message"]
    assert outcome["peak_mib"] < 400, "the check itself must not inflate the bomb in memory"


def test_the_inflated_bound_is_configurable(ridge_run: Path, tmp_path: Path) -> None:
    settings = Settings.from_env({"MODEL_MAX_INFLATED_BYTES": "1000"})
    assert settings.max_inflated_bytes == 1000
    with pytest.raises(StartupRefusal, match="MODEL_MAX_INFLATED_BYTES") as refused:
        load_model(
            Settings(model_dir=ridge_run, model_cache_dir=tmp_path / "c", max_inflated_bytes=1000)
        )
    assert refused.value.code == "unsafe_archive"
