"""`reportgen params`: the audit on the command line, claims checked, exit codes."""

import json


def test_wrong_claim_exits_1_with_a_one_line_diff(cli):
    code, _out, err = cli("params", "lenet5_256", "--expect", "44190")
    assert code == 1
    assert err.strip() == ("lenet5_256: expected 44,190, counted 44,426: bias terms 236 — did you leave out biases?")


def test_right_claims_exit_0(cli):
    assert cli("params", "lenet5_256", "--expect", "44426")[0] == 0
    assert cli("params", "lenet5", "--expect-no-bias", "61470")[0] == 0
    assert cli("params", "cnn_1x1", "--expect-no-bias", "60540")[0] == 0


def test_table_shows_formulas_and_torchinfo_check(cli):
    code, out, _err = cli("params", "lenet5_regularized")
    assert code == 0
    assert "(5·5·1 + 1)·6 = 156" in out and "2·6 = 12 (+12 running stats" in out
    assert "62,158" in out and "BatchNorm adds:     452" in out and "torchinfo total: 62,158 ✓" in out


def test_module_class_syntax_and_json(cli):
    code, out, _err = cli("params", "reportgen.models.lenet:LeNet5?padding=0", "--format", "json")
    assert code == 0
    audit = json.loads(out)
    assert audit["total"] == 44_426 and audit["without_bias"] == 44_190 and audit["matches_torchinfo"]


def test_wrong_input_shape_names_the_layer(cli):
    # the class, not the registered `lenet5`, which adapts to the input shape (a 32×32 image needs no padding)
    code, _out, err = cli("params", "reportgen.models.lenet:LeNet5", "--input", "1x32x32")
    assert code == 2 and "classifier.1" in err and "Linear" in err and err.count("\n") == 1


def test_match_mlp_suggests_widths_within_half_a_percent(cli):
    code, out, _err = cli("params", "lenet5", "--match-mlp", "2")
    line = out.strip().splitlines()[-1]
    assert code == 0 and line.startswith("MLP with about as many parameters as lenet5 (61,706): mlp?hidden=[")
    achieved = int(line.split("→ ")[1].split(" ")[0].replace(",", ""))
    assert abs(achieved - 61_706) / 61_706 < 0.005
