"""Issue #26: `reportgen.audit(model)` in a notebook shows the MACs as `reportgen params` prints them, with the
table's column names in the chosen language."""

from __future__ import annotations

from fixtures_nets import CellLoop

import reportgen

LENET_MACS = 416_520  # tests/test_cost.py works it out layer by layer


def test_the_notebook_audit_shows_macs_with_korean_column_names():
    shown = reportgen.audit("lenet5", (1, 28, 28), lang="ko")
    page = shown._repr_html_()
    assert "<th>층</th>" in page and "<th>곱셈-덧셈 계산식</th>" in page and "<th>MACs</th>" in page
    assert "이미지당 합계: 416,520 MACs = 833,040 FLOPs" in page and "PyTorch FLOP 계산기: 833,040 FLOPs ✓" in page
    assert "28·28·6·5·5·1 = 117,600" in page
    assert "이미지당 MACs 합계: 416,520 (= 833,040 FLOPs)" in repr(shown)  # as `params --lang ko` prints it
    assert shown.macs.total == LENET_MACS and shown.total == 61_706


def test_a_layer_called_in_a_loop_shows_the_sum_of_its_calls():
    table = reportgen.audit(CellLoop(), (5, 10)).table
    row = table[table["layer"] == "cell"].iloc[0]
    assert row["macs"] == 5 * (80 * 10 + 80 * 20)  # five steps of 2,400, not the last step alone
