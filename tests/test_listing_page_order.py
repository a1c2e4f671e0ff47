"""A page picked without sorting the whole folder is exactly that slice of the sorted folder."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings, strategies as st

from engine.files import SharedFolders, _page

NAMES = st.text(alphabet="aAbBßéÉ.-_ 0zZ", min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(st.lists(NAMES, unique=True, max_size=120), st.lists(NAMES, unique=True, max_size=120),
       st.integers(0, 250), st.integers(1, 60))
def test_page_equals_the_slice_of_the_full_sort(dirs: list[str], files: list[str], start: int,
                                                size: int) -> None:
    ordered = [n for *_, n in sorted([(0, n.casefold(), n) for n in dirs] +
                                     [(1, n.casefold(), n) for n in files])]
    assert _page((dirs, files), start, start + size) == ordered[start:start + size]


def test_pages_of_a_real_folder_cover_it_once_folders_first(tmp_path: Path) -> None:
    for i in range(7):
        (tmp_path / f"Dir{i}").mkdir()
    for i in range(40):
        (tmp_path / f"{'ABab'[i % 4]}file{i:02d}").write_text("x")
    shared = SharedFolders([tmp_path])
    seen = []
    for offset in range(0, 60, 9):
        listing = shared.list_directory(str(tmp_path), offset, 9)
        assert listing.total == 47
        seen += [(item["type"], item["name"]) for item in listing.items]
    assert [t for t, _ in seen] == ["directory"] * 7 + ["file"] * 40
    names = [n for _, n in seen]
    assert len(set(names)) == 47
    assert names[7:] == sorted(names[7:], key=lambda n: (n.casefold(), n))
