"""The build fails loudly: a page whose cell raises stops `jupyter-book build` with the
page and the error named. Runs a one-page book with the project's own configuration."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PAGE = """---
jupytext:
  text_representation:
    format_name: myst
kernelspec:
  display_name: Python 3
  name: python3
---

# A page that breaks

```{code-cell} ipython3
x = 1
```

```{code-cell} ipython3
raise ValueError("the model exploded: 42")
```
"""


def test_failing_cell_fails_the_build_and_names_page_and_error(tmp_path):
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    (tmp_path / "book").mkdir()
    shutil.copy(ROOT / "book" / "references.bib", tmp_path / "book" / "references.bib")
    (tmp_path / "book" / "broken_page.md").write_text(PAGE)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/broken_page\n")
    jb = Path(sys.executable).parent / "jupyter-book"
    done = subprocess.run([str(jb), "build", str(tmp_path), "--warningiserror",
                           "--keep-going"], capture_output=True, text=True, timeout=300)
    log = done.stdout + done.stderr
    assert done.returncode != 0
    assert "broken_page" in log
    assert "the model exploded: 42" in log
    assert (not (tmp_path / "_build" / "html" / "book" / "broken_page.html").exists()
            or "the model exploded" not in (
                tmp_path / "_build/html/book/broken_page.html").read_text())
