"""The directory libOpenNI2 is loaded from must be this user's alone: a directory another uid
planted under /tmp, one others can write, or a symlink in its place is refused
(``DRV_UNSAFE_LIBRARY_DIR``) before ``dlopen`` could run a library from it."""

from __future__ import annotations

import os
import stat

import pytest

openni = pytest.importorskip("drivers.openni")


@pytest.fixture
def fresh_tmp(tmp_path, monkeypatch):
    """The default location, moved into a test directory: no XDG_RUNTIME_DIR, tmp = ``tmp_path``."""
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(openni.tempfile, "gettempdir", lambda: str(tmp_path))
    return tmp_path


def plant(d, uid: int) -> None:
    """What another user would leave: the directory layout, with a library of theirs."""
    (d / "openni2").mkdir(parents=True)
    (d / "evil.so").write_bytes(b"\x7fELF not really")
    (d / "openni2" / "libOpenNI2.so").symlink_to(d / "evil.so")
    for p in (d, d / "openni2"):
        os.chown(p, uid, uid)
        os.chmod(p, 0o700)
    os.lchown(d / "openni2" / "libOpenNI2.so", uid, uid)


def test_created_private_and_reused(fresh_tmp):
    d = openni.prepare_library_dir()
    assert d == fresh_tmp / f"capture-agent-{os.getuid()}" / "openni2"
    for p in (d, d.parent):
        st = os.lstat(p)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.geteuid()
    assert (d / "libOpenNI2.so").resolve().name == "libOpenNI2.so.0"
    assert openni.prepare_library_dir() == d


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to plant a directory as another uid")
def test_a_directory_planted_by_another_uid_is_refused(fresh_tmp):
    plant(fresh_tmp / f"capture-agent-{os.getuid()}", 4343)
    with pytest.raises(openni.UnsafeLibraryDir, match="uid 4343") as exc:
        openni.prepare_library_dir()
    assert exc.value.code == "DRV_UNSAFE_LIBRARY_DIR"


def test_a_directory_others_can_write_is_refused_one_only_readable_is_tightened(fresh_tmp):
    d = fresh_tmp / f"capture-agent-{os.getuid()}"
    d.mkdir(mode=0o700)
    os.chmod(d, 0o777)
    with pytest.raises(openni.UnsafeLibraryDir, match="0777"):
        openni.prepare_library_dir()
    os.chmod(d, 0o755)                               # as an older version left it
    openni.prepare_library_dir()
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700


def test_a_symlink_in_place_of_the_directory_is_refused(fresh_tmp, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    os.chmod(elsewhere, 0o700)
    (fresh_tmp / f"capture-agent-{os.getuid()}").symlink_to(elsewhere)
    with pytest.raises(openni.UnsafeLibraryDir, match="not a directory of ours"):
        openni.prepare_library_dir()


def test_a_wrong_link_inside_our_own_directory_is_replaced(fresh_tmp):
    d = openni.prepare_library_dir()
    (d / "libOpenNI2.so").unlink()
    (d / "libOpenNI2.so").symlink_to(fresh_tmp / "evil.so")
    assert openni.prepare_library_dir() == d
    assert (d / "libOpenNI2.so").resolve().name == "libOpenNI2.so.0"


def test_a_redistribution_others_can_write_is_refused(tmp_path):
    (tmp_path / "libOpenNI2.so").write_bytes(b"")
    os.chmod(tmp_path, 0o777)
    with pytest.raises(openni.UnsafeLibraryDir, match="redistribution"):
        openni.prepare_library_dir(redist=tmp_path)
