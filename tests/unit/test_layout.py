"""The source folder must never shadow the standard library's `platform` module."""

import platform
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_import_platform_is_the_standard_library():
    assert Path(platform.__file__).parent == Path(sysconfig.get_paths()["stdlib"])
    assert callable(platform.system) and platform.system()


def test_platform_folder_is_a_source_root_only():
    source_root = REPO / "platform"
    assert not (source_root / "__init__.py").exists()
    assert [p.name for p in source_root.glob("*.py")] == []
    assert (source_root / "profilekit" / "__init__.py").is_file()


def test_package_imports_from_the_source_root():
    import profilekit

    assert Path(profilekit.__file__).resolve().parent == REPO / "platform" / "profilekit"

