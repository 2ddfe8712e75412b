"""segengine/_codes.py mirrors csrc/common/seg_codes.h: same enums, same names, same values."""

import re

from segengine import _codes, _cuda

# header enum -> (Python enum, prefix of the header's member names)
MIRRORS = {
    "Normalization": (_codes.Normalization, "NORM_"),
    "UnaryKind": (_codes.UnaryKind, "UNARY_"),
    "Reduction": (_codes.Reduction, "REDUCTION_"),
    "ImageDType": (_codes.ImageDType, "DTYPE_"),
    "MoveKind": (_codes.MoveKind, "MOVE_"),
}


def _header_enums() -> dict[str, dict[str, int]]:
    text = (_cuda.csrc_dir() / "common" / "seg_codes.h").read_text()
    enums = {}
    for name, body in re.findall(r"enum\s+(\w+)\s*:\s*int\s*\{([^}]*)\}", text):
        members = re.findall(r"(\w+)\s*=\s*(-?\d+)", body)
        assert members, f"enum {name} has no explicit values"
        enums[name] = {k: int(v) for k, v in members}
    return enums


def test_every_header_enum_is_mirrored():
    assert set(_header_enums()) == set(MIRRORS)


def test_names_and_values_agree():
    for name, members in _header_enums().items():
        py, prefix = MIRRORS[name]
        assert all(k.startswith(prefix) for k in members), name
        assert {k[len(prefix):]: v for k, v in members.items()} == {m.name: int(m) for m in py}, name


def test_a_changed_value_would_be_caught(monkeypatch):
    # the comparison above is not vacuous: a Python enum with one value moved differs
    members = _header_enums()["Reduction"]
    moved = {k[len("REDUCTION_"):]: v for k, v in members.items()}
    moved["SUM"] += 1
    assert moved != {m.name: int(m) for m in _codes.Reduction}
