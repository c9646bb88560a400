"""The documentation against the code: every study field of the schema is in the study-file
reference with its default and allowed values, and every relative link of README.md and
docs/*.md points at a file (and a heading) that exists. Plain text parsing: no network, no
Keras."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from sweep.study.fields import REQUIRED, Bad
from sweep.study.schema import SCHEMA, SUBFIELDS, TOP

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "study-file.md"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250  # what it is, two commands, a tour, the command table, links


FENCE = re.compile(r"^ *```.*?^ *```[^\n]*$", re.M | re.S)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _outside_code(text: str) -> str:
    """The text less fenced code blocks (kept as blank lines, so rows stay rows)."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def _schema_fields() -> dict[str, tuple]:
    """Every field a study file may hold, by its dotted name: ``name``, ``model.kernel``,
    ``training.augment.flip``; each to its ``(validator, default)``."""
    fields = dict(TOP)
    for section, keys in SCHEMA.items():
        fields |= {f"{section}.{key}": spec for key, spec in keys.items()}
    for parent, keys in SUBFIELDS.items():
        fields |= {f"{parent}.{key}": spec for key, spec in keys.items()}
    return fields


FIELDS = _schema_fields()


def _cells(line: str) -> list[str]:
    """A markdown table row's cells (``\\|`` inside a cell is not a separator)."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def _reference_rows() -> dict[str, list[str]]:
    """The table rows of the reference's "Field reference" section whose first cell is one
    backticked name: name -> the other cells (meaning, type / allowed values, default)."""
    text = _outside_code(REFERENCE.read_text())
    section = re.search(r"^## Field reference$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, f"no '## Field reference' section in {REFERENCE.name}"
    rows = {}
    for line in section.group(1).splitlines():
        if not line.startswith("|"):
            continue
        first, *rest = _cells(line)
        match = re.fullmatch(r"`([a-z_.]+)`", first)
        if match:
            assert match.group(1) not in rows, f"{match.group(1)}: two rows in {REFERENCE.name}"
            rows[match.group(1)] = rest
    return rows


ROWS = _reference_rows()


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_every_schema_field_has_a_row_in_the_study_file_reference(field):
    # a field added to sweep/study/schema.py without a line in docs/study-file.md fails here
    assert field in ROWS, f"`{field}` is in the schema but not in docs/study-file.md's tables"
    meaning, allowed, default = ROWS[field]
    assert meaning and allowed and default, f"{field}: an empty cell in {ROWS[field]}"


def test_the_reference_names_no_field_the_schema_lacks():
    assert sorted(set(ROWS) - set(FIELDS)) == []


def _same(documented, default) -> bool:
    if isinstance(default, list) and len(default) == 1 and not isinstance(documented, list):
        documented = [documented]  # one_or_list fields: `val_accuracy` is [val_accuracy]
    return (documented == default
            and isinstance(documented, bool) == isinstance(default, bool))


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_the_reference_gives_each_field_its_schema_default(field):
    if field not in ROWS:
        pytest.skip("no row (reported by the test above)")
    cell, default = ROWS[field][2], FIELDS[field][1]
    if default is REQUIRED:
        assert cell == "required", f"{field}: required, but the reference says {cell!r}"
        return
    shown = re.fullmatch(r"`([^`]*)`.*", cell)
    assert shown, f"{field}: the default cell {cell!r} starts with no `value`"
    documented = yaml.safe_load(shown.group(1))
    assert _same(documented, default), f"{field}: the reference says {documented!r}, " \
                                       f"the schema {default!r}"


def _choices(validator) -> list[str]:
    """The words a choice field takes, from the validator's own message (``one of a, b``);
    [] for other fields."""
    if validator is None:
        return []
    try:
        validator(object())
    except Bad as bad:
        message = str(bad)
    else:
        return []
    if not message.startswith("one of "):
        return []
    return message.removeprefix("one of ").split(", or a list of them")[0].split(", ")


@pytest.mark.parametrize("field", sorted(f for f, (check, _) in FIELDS.items() if _choices(check)))
def test_the_reference_lists_every_allowed_word_of_a_choice_field(field):
    if field not in ROWS:
        pytest.skip("no row (reported by the test above)")
    allowed = ROWS[field][1]
    missing = [w for w in _choices(FIELDS[field][0]) if f"`{w}`" not in allowed]
    assert missing == [], f"{field}: {missing} not in {allowed!r}"


# Links: [text](target) outside code; GitHub's anchors for the headings of a page.

def slug(heading: str) -> str:
    """GitHub's anchor for a heading: link text kept, lowercase, every character but letters,
    digits, '-', '_' and spaces dropped, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a page; a repeated heading gets -1, -2, ... as on GitHub."""
    found, seen = set(), {}
    for line in _outside_code(page.read_text()).splitlines():
        match = re.match(r"#{1,6} +(.+?) *#* *$", line)
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    text = re.sub(r"`[^`\n]*`", "", _outside_code(page.read_text()))  # not in inline code
    return [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def test_slugs_follow_githubs_rules():
    assert slug("Growing a study") == "growing-a-study"
    assert slug("What `--workers auto` (the default) chooses") == \
        "what---workers-auto-the-default-chooses"
    assert slug("`training.augment`") == "trainingaugment"
    assert slug("Many machines: PostgreSQL") == "many-machines-postgresql"
    assert slug("oneDNN kernels on this CPU (issue 15, session 4)") == \
        "onednn-kernels-on-this-cpu-issue-15-session-4"


def test_the_pages_have_links_to_check():
    # the checks below would pass on pages whose links the pattern no longer finds
    assert "docs/study-file.md" in links(ROOT / "README.md")
    assert any("#" in t for page in PAGES for t in links(page))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_at_a_file_and_heading_that_exist(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no file {dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading '#{anchor}' in {dest}")
    assert broken == []


def test_the_readme_stays_short():
    # the manual lives in docs/; the README says what sweep is and where to read on
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"
