from __future__ import annotations

from pathlib import Path

import pytest

from artifact_contract import IntegrityError, ManifestError, verify_run_dir, write_manifest

from .conftest import make_manifest


def test_a_complete_run_verifies(run_dir: Path) -> None:
    digest = write_manifest(run_dir, make_manifest(run_dir))
    assert verify_run_dir(run_dir).model_version == "v001"
    assert verify_run_dir(run_dir, expected_manifest_sha256=digest.upper()).model_version == "v001"


def test_a_changed_byte_is_found(run_dir: Path) -> None:
    write_manifest(run_dir, make_manifest(run_dir))
    (run_dir / "model.skops").write_bytes(b"model-bytez")
    with pytest.raises(IntegrityError, match=r"model.skops has sha256 [0-9a-f]{64}, the manifest"):
        verify_run_dir(run_dir)


def test_missing_and_extra_files_are_found(run_dir: Path) -> None:
    write_manifest(run_dir, make_manifest(run_dir))
    (run_dir / "notes.txt").write_text("hello")
    with pytest.raises(IntegrityError, match=r"not listed in the manifest: notes\.txt"):
        verify_run_dir(run_dir)
    (run_dir / "notes.txt").unlink()
    (run_dir / "MLmodel").unlink()
    with pytest.raises(IntegrityError, match="missing: MLmodel"):
        verify_run_dir(run_dir)


def test_wrong_expected_digest_is_refused(run_dir: Path) -> None:
    write_manifest(run_dir, make_manifest(run_dir))
    with pytest.raises(IntegrityError, match=r"expected 0{64} \(MODEL_SHA256\)"):
        verify_run_dir(run_dir, expected_manifest_sha256="0" * 64)


def test_version_file_must_agree(run_dir: Path) -> None:
    (run_dir / "model_version.txt").write_text("v002\n")
    write_manifest(run_dir, make_manifest(run_dir))
    with pytest.raises(IntegrityError, match=r"model_version\.txt says v002, manifest says v001"):
        verify_run_dir(run_dir)


def test_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"no manifest\.json"):
        verify_run_dir(tmp_path)
