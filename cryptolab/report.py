"""Reports: run a notebook headless with papermill, then export a self-contained HTML page.

    render_report("03_market_report", {"symbol": "BTCUSDT", ...}, Path("reports"))

writes ``reports/<notebook>_<parameter values>.ipynb`` (the executed notebook) and ``.html``
(code hidden, Plotly figures interactive with plotly.js inlined once: no CDN, works offline).
The source notebook is never executed in place: the output always goes to another file.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptolab.errors import CryptolabError

log = logging.getLogger(__name__)

PLOTLY_MIMETYPE = "application/vnd.plotly.v1+json"
NOTEBOOKS = "notebooks"

# The lab template without the CDN scripts (RequireJS, MathJax, Mermaid): the page is read
# offline, and these reports need none of them.
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block extra_css %}
<style type="text/css">
  body.jp-Notebook { max-width: 1180px; margin: 0 auto; padding: 24px 32px; }
  body.jp-Notebook .jp-RenderedHTMLCommon table { font-size: 13px; }
  body.jp-Notebook .jp-RenderedHTMLCommon td,
  body.jp-Notebook .jp-RenderedHTMLCommon th { padding: 3px 10px; text-align: left; }
</style>
{% endblock extra_css %}
"""
_TEMPLATE_NAME = "cryptolab_report.html.j2"


class ReportError(CryptolabError):
    """A report could not be produced: missing notebook, failing cell, bad output path."""


@dataclass(frozen=True)
class ReportFiles:
    notebook: Path
    html: Path
    seconds: float


def notebooks_dir() -> Path:
    """``./notebooks`` if it exists, else the notebooks of the source checkout cryptolab runs
    from."""
    here = Path.cwd() / NOTEBOOKS
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[1] / NOTEBOOKS


def find_notebook(name: str | Path) -> Path:
    """A notebook by path, or by name (``03_market_report``) in :func:`notebooks_dir`."""
    candidate = Path(name)
    if candidate.suffix == ".ipynb" and candidate.is_file():
        return candidate.resolve()
    folder = notebooks_dir()
    path = folder / f"{candidate.stem}.ipynb"
    if path.is_file():
        return path.resolve()
    known = ", ".join(sorted(p.stem for p in folder.glob("*.ipynb"))) or "none"
    raise ReportError(f"no notebook {str(name)!r} in {folder} (available: {known})")


def _slug(value: Any) -> str:
    """A parameter value as a file-name part: 2026-11-01T00:30:00Z -> 20261101T003000Z."""
    return re.sub(r"[^A-Za-z0-9.]+", "", str(value).replace(" ", "T")) or "none"


def report_stem(notebook: Path, parameters: Mapping[str, Any], naming: Sequence[str]) -> str:
    """``<notebook>_<value>_<value>...`` over the ``naming`` parameters that are set."""
    parts = [notebook.stem] + [_slug(parameters[k]) for k in naming if parameters.get(k)]
    return "_".join(parts)


def _require_notebook_tools() -> None:
    try:
        import nbconvert  # noqa: F401
        import papermill  # noqa: F401
    except ImportError as exc:
        raise ReportError(
            f"{exc.name} is not installed: install the notebooks extra, "
            "pip install -e '.[notebooks]' (make bootstrap does)"
        ) from exc


def execute(
    notebook: Path,
    output: Path,
    parameters: Mapping[str, Any],
    cwd: Path | None = None,
    progress: bool = False,
    kernel_name: str | None = None,
) -> None:
    """Run ``notebook`` with ``parameters`` into ``output`` (never onto itself)."""
    _require_notebook_tools()
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from papermill.exceptions import PapermillExecutionError

    if output.resolve() == notebook.resolve():
        raise ReportError(f"refusing to execute {notebook} in place: choose another output")
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=dict(parameters),
            cwd=str(cwd) if cwd else None,
            progress_bar=progress,
            kernel_name=kernel_name,
        )
    except PapermillExecutionError as exc:
        evalue = re.sub(r"\x1b\[[0-9;]*m", "", str(exc.evalue))
        raise ReportError(
            f"{notebook.name} failed in cell {exc.exec_count}: {exc.ename}: {evalue} "
            f"(the executed notebook, with the error, is {output})"
        ) from None
    except NoSuchKernel as exc:
        raise ReportError(
            f"no Jupyter kernel {exc.name!r} for {notebook.name}: run `make bootstrap` (the "
            "virtualenv provides 'python3'), or `make lab` to register 'cryptolab'"
        ) from exc


def _plotly_to_html(nb: Any) -> None:
    """Give every Plotly output an HTML rendering; plotly.js is inlined in the first only."""
    import plotly.io as pio

    count = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            figure = output.get("data", {}).get(PLOTLY_MIMETYPE)
            if figure is None:
                continue
            output["data"]["text/html"] = pio.to_html(
                figure,
                include_plotlyjs=count == 0,
                full_html=False,
                div_id=f"figure-{count + 1}",
                config={"displaylogo": False, "responsive": True},
            )
            count += 1


def to_html(executed: Path, html: Path, title: str | None = None) -> None:
    """Export an executed notebook as one self-contained HTML page, code hidden."""
    _require_notebook_tools()
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)
    _plotly_to_html(nb)
    if title:
        nb.metadata["title"] = title
    exporter = HTMLExporter(
        template_name="lab",
        template_file=_TEMPLATE_NAME,
        extra_loaders=[jinja2.DictLoader({_TEMPLATE_NAME: _TEMPLATE})],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    body, _ = exporter.from_notebook_node(nb)
    html.write_text(body, encoding="utf-8")


def render_report(
    notebook: str | Path,
    parameters: Mapping[str, Any],
    out_dir: Path,
    naming: Sequence[str] | None = None,
    cwd: Path | None = None,
    progress: bool = False,
) -> ReportFiles:
    """Execute ``notebook`` with ``parameters`` into ``out_dir`` and export it to HTML. Files are
    named by the notebook and the ``naming`` parameters (default: all of them, in order)."""
    source = find_notebook(notebook)
    stem = report_stem(source, parameters, list(naming or parameters))
    out_dir = Path(out_dir)
    executed, html = out_dir / f"{stem}.ipynb", out_dir / f"{stem}.html"
    started = time.perf_counter()
    log.info("report notebook=%s output=%s", source.name, executed)
    execute(source, executed, parameters, cwd=cwd, progress=progress)
    to_html(executed, html, title=stem)
    seconds = time.perf_counter() - started
    log.info("report written html=%s seconds=%.1f", html, seconds)
    return ReportFiles(executed, html, seconds)
