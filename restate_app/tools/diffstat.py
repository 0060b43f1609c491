"""What a workspace changed, counted: from a patch's text (no git) or from git's numstat."""

from __future__ import annotations

from pydantic import BaseModel


class DiffStat(BaseModel):
    """What the workspace changed against its base commit."""

    files: list[str] = []
    added: int = 0
    removed: int = 0

    @property
    def files_changed(self) -> int:
        return len(self.files)


def summary_of(patch: str) -> DiffStat | None:
    """Files changed and lines added and removed, read from a patch's text (no git); None
    when the patch has binary hunks, whose lines only git can count."""
    if "\nGIT binary patch\n" in patch:
        return None
    files: list[str] = []
    added = removed = 0
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            files.append(line.rsplit(" b/", 1)[-1])
        elif line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return DiffStat(files=files, added=added, removed=removed)


def parse_numstat(out: bytes) -> DiffStat:
    """`added<TAB>removed<TAB>path<NUL>` records; binary files count no lines."""
    stat = DiffStat()
    for record in out.decode("utf-8", errors="replace").split("\0"):
        parts = record.split("\t", 2)
        if len(parts) != 3:
            continue
        added, removed, name = parts
        stat.files.append(name)
        stat.added += int(added) if added.isdigit() else 0
        stat.removed += int(removed) if removed.isdigit() else 0
    return stat
