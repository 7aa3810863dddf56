"""The Chinese edition, course/zh/: the English chapters with the same code and translated prose.

For every course/zh/NAME.ipynb:
- course/NAME.ipynb exists: the Chinese chapter translates an English one of the same name;
- the cells are the English cells, in the same order: the same sequence of cell types (so the same number of
  markdown cells), code cells byte-identical, every cell's metadata identical (the `exercise` tag and the
  `exercise_id` among them), the notebook's metadata identical;
- every markdown cell is translated: it holds Chinese text and is not the English text;
- the first cell names the English version, ../NAME.ipynb, and only the first cell links to an English chapter;
  every other relative link resolves (a chapter link to a course/zh/ chapter of an English chapter's name, the
  glossary as ../glossary.md);
- bold and italic render: Markdown does not read `**` as emphasis where a Chinese punctuation mark sits just
  inside it and a letter just outside (`**注意：**下面` shows its asterisks);
- the course's source notes are never "the seed": no "the seed", and 种子 only as 随机种子 (a random seed).

README.zh-CN.md: the set-up commands are README.md's, character for character; its links resolve, its chapter
links lead to course/zh/ chapters of English chapters' names and cover every Chinese chapter; its emphasis
renders and it never says "the seed".

tests/test_notebooks.py checks that these notebooks are committed clean and that their exercise cells are
registered and solved (the last test below checks that it does). The English chapters run as shipped, and nbval
runs the first Chinese one (the root conftest.py says why the rest would only repeat them).
"""

import re
from pathlib import Path

import mistune
import nbformat
import pytest

from tests import test_notebooks
from tests.test_notebooks import COURSE, ROOT, ZH_NOTEBOOKS

CJK_LETTER = re.compile(r"[\u4e00-\u9fff]")
LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)")
MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]*\$", re.S)
CODE_HTML = re.compile(r"<code>.*?</code>|<pre>.*?</pre>", re.S)
# A literal asterisk left beside a non-ASCII character in the rendered text is emphasis Markdown did not see.
LOST_EMPHASIS = re.compile(r"\*\*|\*[^\x00-\x7f]|[^\x00-\x7f]\*")
SEED_FOR_NOTES = re.compile(r"\bthe seed\b|\bseed's\b|(?<!随机)种子", re.I)
SHELL_BLOCK = re.compile(r"```bash\n(.*?)```", re.S)
README_ZH = ROOT / "README.zh-CN.md"


def _name(path: Path) -> str:
    return path.relative_to(COURSE).as_posix()


def _english(zh_path: Path) -> Path:
    return COURSE / zh_path.name


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _markdown(nb) -> list[tuple[int, str]]:
    return [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"]


def _rendered_text(markdown: str) -> str:
    """The HTML Markdown makes of a cell, without math and code (where asterisks are literal)."""
    html = mistune.create_markdown()(MATH.sub("", markdown))
    return CODE_HTML.sub("", html)


chapters = pytest.mark.parametrize("notebook", ZH_NOTEBOOKS, ids=_name)


def test_there_are_chinese_chapters():
    names = {p.name for p in ZH_NOTEBOOKS}
    assert {"00_start_here.ipynb", "01_problem.ipynb"} <= names, f"course/zh/ holds only {sorted(names)}"


@chapters
def test_has_an_english_counterpart(notebook):
    assert _english(notebook).exists(), (
        f"{_name(notebook)} has no English chapter course/{notebook.name}: a Chinese chapter keeps its English name")


@chapters
def test_same_cells_same_code_same_metadata(notebook):
    zh, en = _read(notebook), _read(_english(notebook))
    assert [c.cell_type for c in zh.cells] == [c.cell_type for c in en.cells], (
        f"{_name(notebook)}: the sequence of cell types differs from course/{notebook.name} "
        f"({len(_markdown(zh))} vs {len(_markdown(en))} markdown cells of {len(zh.cells)} vs {len(en.cells)}); "
        "translate each markdown cell in place, add or remove none")
    for i, (z, e) in enumerate(zip(zh.cells, en.cells, strict=True)):
        if e.cell_type == "code":
            assert z.source == e.source, (
                f"{_name(notebook)} cell {i}: code differs from course/{notebook.name} (code stays byte-identical)")
        assert z.metadata == e.metadata, (
            f"{_name(notebook)} cell {i}: metadata {dict(z.metadata)} differs from the English {dict(e.metadata)}")
    assert zh.metadata == en.metadata, f"{_name(notebook)}: notebook metadata differs from course/{notebook.name}"


# What a code cell could read from the folder it runs in (course/ for the English chapters, course/zh/ here).
FOLDER_DEPENDENT = re.compile(r"""\.\./|["']\./|os\.getcwd|Path\.cwd|Path\(["']\.?["']\)|os\.listdir\(\)""")


@chapters
def test_code_does_not_depend_on_its_folder(notebook):
    # With the same code and no relative path, a Chinese chapter runs as its English one does; the root conftest.py
    # therefore has nbval execute only the first Chinese chapter.
    for i, cell in enumerate(_read(notebook).cells):
        if cell.cell_type == "code":
            found = FOLDER_DEPENDENT.search(cell.source)
            assert not found, (f"{_name(notebook)} cell {i}: {found.group(0)!r} depends on the folder the notebook "
                               "runs in; reach files through wmlib (assets_dir(), a temporary folder) instead")


@chapters
def test_markdown_is_translated(notebook):
    english = dict(_markdown(_read(_english(notebook))))
    for i, source in _markdown(_read(notebook)):
        assert CJK_LETTER.search(source), f"{_name(notebook)} cell {i} has no Chinese text:\n{source[:200]}"
        assert source != english.get(i), f"{_name(notebook)} cell {i} is the English cell, untranslated"


@chapters
def test_links(notebook):
    cells = _markdown(_read(notebook))
    first_cell = cells[0][1]
    assert f"](../{notebook.name})" in first_cell, (
        f"{_name(notebook)}: the first cell does not link to the English version, ../{notebook.name}")
    for k, (i, source) in enumerate(cells):
        for target in LINK_TARGET.findall(source):
            if re.match(r"[a-z]+:|#", target):
                continue
            path = (notebook.parent / target.split("#")[0]).resolve()
            where = f"{_name(notebook)} cell {i}: link {target!r}"
            if path.parent == COURSE.resolve() and path.suffix == ".ipynb":
                assert k == 0, f"{where} leads to an English chapter; link the Chinese one ({path.name})"
            if path.parent == notebook.parent.resolve() and path.suffix == ".ipynb":
                assert (COURSE / path.name).exists(), f"{where}: there is no chapter course/{path.name}"
            else:
                assert path.exists(), f"{where} leads nowhere (course/zh/ is one folder deeper than course/)"


@chapters
def test_emphasis_renders(notebook):
    for i, source in _markdown(_read(notebook)):
        html = _rendered_text(source)
        lost = LOST_EMPHASIS.search(html)
        assert not lost, (
            f"{_name(notebook)} cell {i}: Markdown leaves {lost.group()!r} as text in "
            f"...{html[max(0, lost.start() - 40):lost.end() + 40]}...; put Chinese punctuation outside ** and *")


@chapters
def test_source_notes_are_never_the_seed(notebook):
    for i, source in _markdown(_read(notebook)):
        found = SEED_FOR_NOTES.search(source)
        assert not found, (
            f"{_name(notebook)} cell {i} says {found.group()!r}: the course's source notes are never 'the seed' "
            "(种子 is a random seed, 随机种子); say what the claim is (一份常见的学习总结说……)")


def test_readme_zh_has_the_same_commands():
    english, chinese = SHELL_BLOCK.findall((ROOT / "README.md").read_text()), SHELL_BLOCK.findall(README_ZH.read_text())
    assert english[:2] and chinese[:2] == english[:2], (
        f"README.zh-CN.md's first two bash blocks {chinese[:2]} are not README.md's set-up commands {english[:2]}")


def test_readme_zh_links_and_text():
    text = README_ZH.read_text()
    chapters = set()
    for target in LINK_TARGET.findall(text):
        if re.match(r"[a-z]+:|#", target):
            continue
        path = (ROOT / target.split("#")[0]).resolve()
        if path.parent == (COURSE / "zh").resolve():
            chapters.add(path.name)
            assert (COURSE / path.name).exists(), f"README.zh-CN.md links {target}, which has no English chapter"
        else:
            assert path.exists(), f"README.zh-CN.md links {target}, which does not exist"
    missing = sorted({p.name for p in ZH_NOTEBOOKS} - chapters)
    assert not missing, f"README.zh-CN.md's chapter map does not link course/zh/ chapters {missing}"
    assert not LOST_EMPHASIS.search(_rendered_text(text)), "README.zh-CN.md: some ** or * does not render"
    assert not SEED_FOR_NOTES.search(text), "README.zh-CN.md calls the course's source 'the seed' (种子)"


def test_the_checks_that_would_catch_a_bad_translation_can_fail():
    """The render and seed checks flag what they are meant to flag, and pass the right spelling."""
    assert LOST_EMPHASIS.search(_rendered_text("**注意：**下面"))
    assert not LOST_EMPHASIS.search(_rendered_text("**注意**：下面，*斜体*。`a ** b` 和 $a * b$"))
    assert SEED_FOR_NOTES.search("这份种子笔记说") and SEED_FOR_NOTES.search("As the seed says")
    assert not SEED_FOR_NOTES.search("换一个随机种子 (`seed=1`) 再运行")
    assert FOLDER_DEPENDENT.search('open("../assets/x")') and FOLDER_DEPENDENT.search("Path.cwd() / 'data'")
    assert not FOLDER_DEPENDENT.search("work = Path(tempfile.mkdtemp())  # x / 2")


def test_notebook_checks_cover_the_chinese_edition():
    covered = {
        test: [p for mark in getattr(test_notebooks, test).pytestmark if mark.name == "parametrize"
               for p in mark.args[1]]
        for test in ("test_notebook_is_committed_clean", "test_exercise_cells_are_registered_and_solved")
    }
    for test, notebooks in covered.items():
        missing = [_name(p) for p in ZH_NOTEBOOKS if p not in notebooks]
        assert not missing, f"tests/test_notebooks.py::{test} does not check {missing}"
