"""examples/notebook.ipynb, executed by a real Jupyter kernel (nbclient + ipykernel) on a small subset."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from conftest import requires_fashion
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "notebook.ipynb"


def outputs_html(cell) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in cell.get("outputs", []))


@pytest.mark.slow
@requires_fashion
def test_example_notebook_runs_and_shows_the_report_inline(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    (parameters,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    parameters.source = "EPOCHS = 1\nSUBSET = 500\nPDF = False"  # papermill-style: the tagged cell is replaced
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    audit_cell, report_cell, table_cell = (
        c
        for c in notebook.cells
        if c.cell_type == "code"
        and ("reportgen.audit" in c.source or c.source.startswith("report") or "report.table" in c.source)
    )
    assert "61,706" in outputs_html(audit_cell)  # the notebook's own LeNet-5, audited
    inline = outputs_html(report_cell)
    assert "reportgen-inline" in inline and "LeNet-5" in inline and "MLP" in inline
    assert "<svg" in inline  # the curves
    assert "LeNet-5 and MLP classification assignment" in inline  # the checklist
    assert "final_test_acc" in outputs_html(table_cell)
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and (tmp_path / "output" / runs[0].name / "report.html").exists()
