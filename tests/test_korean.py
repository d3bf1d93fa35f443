"""The Korean report reads in Korean: every visible word of a real rendered report (HTML and Markdown)
is Korean or on an allowlist of names, units and code; particles fit the word before them; every
sentence the code generates has a catalogue entry; checklist, conclusion and tables agree."""

from __future__ import annotations

import ast
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import idx_run_args, requires_fashion, write_idx_dataset

from reportgen.report.i18n import Message, final_consonant, particle, translator
from reportgen.run.recorded_text import PATTERNS, recorded_message

ROOT = Path(__file__).resolve().parent.parent
KO = json.loads((ROOT / "reportgen" / "templates" / "i18n" / "ko.json").read_text("utf-8"))

# Words a Korean report keeps in Latin letters: proper names, libraries, units, code values, the
# abbreviations Korean writing uses as they are, and the names published benchmarks give their models.
ALLOWED = {
    "mcnemar",
    "pytorch",
    "torch",
    "torchvision",
    "torchinfo",
    "python",
    "lecun",
    "guo",  # Guo et al. 2017, the calibration paper
    "et",
    "al",
    "adam",
    "sgd",
    "rmsprop",
    "debian",
    "idx",
    "readme",
    "html",
    "git",
    "sha256",
    "cpu",
    "cuda",
    "gpu",
    "reportgen",
    "linux",
    "fashion",
    "mnist",
    "lenet",
    "mlp",
    "cnn",
    "bn",
    "fc",
    "conv",
    "elu",
    "nan",
    "inf",
    "p",
    "a",
    "b",
    "k",
    "m",
    "fp32",
    "tf32",
    "bf16",
    "fp16",
    "s",
    "ms",
    "kib",
    "mib",
    "mac",
    "macs",
    "flop",
    "flops",  # units ("PyTorch FLOP 계산기": the counter named by what it counts)
    "f",  # F1 (점수): Korean writing keeps the name
}
LAYER_TYPES = {
    "Linear",
    "Conv2d",
    "MaxPool2d",
    "AvgPool2d",
    "Flatten",
    "Dropout",
    "Dropout2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "ReLU",
    "Tanh",
    "Sigmoid",
    "Sequential",
}  # class names, as the Type column shows them
CODE = [
    re.compile(p)
    for p in (
        r"\b\w+Executor\b",
        r"\b(?:aten|prims)\.\w+",  # a PyTorch op a MAC check names (aten.native_batch_norm)
        r"\b(?:Linux|Darwin|Windows)-\S+",  # the executor's class, the platform string
        r"\b[A-Za-z]\w*_\w+\b",
        r"\b(?:[A-Z][a-z]+){3,}\b",  # identifiers: state_dict, cross_entropy, FlopCounterMode
        r"dataset-fashion-mnist",  # the Debian package's name
        r"runs/\S+",
        r"output/\S+",
        r"/\S+",  # paths
        r"\S+\.(?:html|py|toml|json|csv|svg|png|gz|tex)\b",  # file names
        r"seeds = \[[^\]]*\]",
        r"\[train\]",
        r"models\[\]\.base",  # spec keys quoted in sentences
        r"\b[0-9a-f]{12,}\b",  # hashes, commit ids
        r"\b\w*\d\w*\b",  # anything with a digit: 1x28x28, 3.12.1, 000-lenet5
    )
]


class VisibleText(HTMLParser):
    """Text a reader sees: element text and alt/title attributes, never <script>, <style> or <pre>/<code>
    (code and the resolved spec are shown as they are)."""

    HIDDEN = frozenset({"script", "style", "pre", "code"})

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.HIDDEN:
            self.hidden += 1
        self.parts += [value for name, value in attrs if name in ("alt", "title") and value]

    def handle_endtag(self, tag):
        if tag in self.HIDDEN:
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


def visible_html(path: Path) -> str:
    parser = VisibleText()
    parser.feed(path.read_text("utf-8"))
    return "\n".join(parser.parts)


def visible_markdown(path: Path) -> str:
    text = path.read_text("utf-8")
    text = re.sub(r"```.*?```", " ", text, flags=re.DOTALL)  # code blocks
    text = re.sub(r"`[^`]*`", " ", text)  # code spans
    text = re.sub(r"\]\([^)]*\)", "]", text)  # link and image targets
    text = re.sub(r"<[^>]+>", " ", text)  # inline HTML tags (<details>, <br>)
    return text.replace("\\", "")


def english_words(text: str, names: set[str]) -> set[str]:
    """Latin-letter words of `text` that are neither allowed nor part of a name the user gave."""
    for name in sorted(names, key=len, reverse=True):  # as whole words: run id "f" is not every f
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])", " ", text)
    for pattern in CODE:
        text = pattern.sub(" ", text)
    return {
        w
        for w in re.findall(r"[A-Za-z][A-Za-z_']*", text)
        if w.lower().strip("'") not in ALLOWED and w not in LAYER_TYPES
    }


def report_names(output: Path) -> set[str]:
    """What the user or the data named: model labels and registry names, trial ids, class names, the
    spec's name and notes (only the default experiment's are translated), cover fields."""
    summary = json.loads((output / "summary.json").read_text("utf-8"))
    spec = summary["spec"]
    names = {row["model"] for row in summary["comparison"]} | {row["trial_id"] for row in summary["comparison"]}
    names.add(summary["run_id"])
    names |= {m.get("name", "") for m in spec.get("models", [])} | {spec.get("name", ""), spec.get("notes", "")}
    return {n for n in names if n and n not in KO}


def assert_korean(output: Path) -> None:
    names = report_names(output)
    found = {"report.html": english_words(visible_html(output / "report.html"), names)}
    if (output / "report.md").exists():
        found["report.md"] = english_words(visible_markdown(output / "report.md"), names)
    assert found == {name: set() for name in found}, found
    assert "(가)" not in visible_html(output / "report.html")


# ------------------------------------------------------------------ particles


@pytest.mark.parametrize(
    "word, subject, topic, object_, with_, direction",
    [
        ("LeNet-5", "가", "는", "를", "와", "로"),  # 5 오
        ("MLP", "가", "는", "를", "와", "로"),  # P 피
        ("CNN", "이", "은", "을", "과", "으로"),  # N 엔
        ("LeNet-5 + BN + Dropout", "이", "은", "을", "과", "으로"),  # 드롭아웃
        ("MLP 784-75-32-10", "이", "은", "을", "과", "으로"),  # 10 십
        ("모델", "이", "은", "을", "과", "로"),  # ㄹ takes 로
        ("사과", "가", "는", "를", "와", "로"),
        ("LeNet", "이", "은", "을", "과", "으로"),  # 르넷
        ("SGD", "가", "는", "를", "와", "로"),
        ("Adam", "이", "은", "을", "과", "으로"),  # 아담
        ("LeNet-5 (LeCun et al. 1998)", "이", "은", "을", "과", "로"),  # 팔, read past ")"
        ("91.30%", "가", "는", "를", "와", "로"),  # 퍼센트
        ("0.50", "이", "은", "을", "과", "으로"),  # 오 영: decimals digit by digit
        ("100", "이", "은", "을", "과", "으로"),  # 백
        ("7", "이", "은", "을", "과", "로"),  # 칠
    ],
)
def test_particles_follow_the_word_as_read_aloud(word, subject, topic, object_, with_, direction):
    assert [particle(word, spec) for spec in ("이/가", "은/는", "을/를", "와/과", "으로/로")] == [
        subject,
        topic,
        object_,
        with_,
        direction,
    ]


@pytest.mark.parametrize(
    "letter, final", [("L", True), ("M", True), ("N", True), ("R", True), ("P", False), ("T", False), ("X", False)]
)
def test_letters_read_by_name(letter, final):
    assert bool(final_consonant(f"DATA-{letter}")) is final


@pytest.mark.parametrize(
    "digit, final",
    [
        ("0", True),
        ("1", True),
        ("2", False),
        ("3", True),
        ("4", False),
        ("5", False),
        ("6", True),
        ("7", True),
        ("8", True),
        ("9", False),
    ],
)
def test_digits_read_as_numbers(digit, final):
    assert bool(final_consonant(f"model-{digit}")) is final


def test_a_word_with_no_readable_end_keeps_both_forms():
    assert particle("→", "이/가") == "이(가)" and particle("…", "으로/로") == "(으)로"


def test_catalogue_placeholders_choose_the_particle():
    translate = translator("ko")
    key = "{a} and {b} ({acc_a} vs {acc_b}) are not significantly different on this test set (McNemar p = {p})."
    assert translate(key, a="MLP", b="CNN", acc_a="1%", acc_b="2%", p="0.5").startswith("MLP와 CNN은 ")
    assert translate(key, a="CNN", b="LeNet-5", acc_a="1%", acc_b="2%", p="0.5").startswith("CNN과 LeNet-5는 ")
    assert translator("en")(key, a="MLP", b="CNN", acc_a="1%", acc_b="2%", p="0.5").startswith("MLP and CNN (")


def test_no_korean_entry_leaves_both_particles_in():
    assert [value for value in KO.values() if re.search(r"[이은을와과]\([가는를과와]\)|\(으\)로", value)] == []


def test_english_an_older_run_recorded_is_read_as_messages_and_nothing_else_is():
    translate = translator("ko")
    assert (
        translate.render(recorded_message("2·6 = 12 (+12 running stats, not trainable)"))
        == "2·6 = 12 (+ 이동 평균·분산 12개, 학습 대상 아님)"
    )
    assert translate.render(recorded_message("no affine parameters (+10 running stats, not trainable)")).startswith(
        "아핀 파라미터 없음"
    )
    assert translate.render(recorded_message("IDX files in /data/x")) == "/data/x의 IDX 파일"
    assert recorded_message("my better") == Message("my better")  # a user's text is never read as "{winner} better"
    assert translate.render("IDX files in /data/x") == "IDX files in /data/x"  # text is never matched: only messages
    assert all(key in KO for key in PATTERNS)


def test_message_values_are_translated_before_the_sentence():
    message = Message(
        "{model}: not shown to help — {reason}",
        {
            "model": "X",
            "reason": Message(
                "not trained alike ({differences}): the before/after comparison is refused",
                {
                    "differences": [
                        Message(
                            "{setting} {model_value} vs {base_value}",
                            {"setting": Message("epochs"), "model_value": 4, "base_value": 1},
                        )
                    ]
                },
            ),
        },
    )
    assert message.render(translator("ko")) == (
        "X: 효과가 입증되지 않음 — 같은 조건으로 훈련되지 않았습니다 (에포크 수 4 대 1): 개선 전후 비교를 하지 않습니다"
    )
    assert message.render(translator("en")) == (
        "X: not shown to help — not trained alike (Epochs 4 vs 1): the before/after comparison is refused"
    )


# ------------------------------------------------------------------ catalogue coverage


def _module_messages(path: Path) -> set[str]:
    """String literals the module hands to the translator: translate("…"), Message("…"), Finding(_, _, "…"),
    and the values of its message tables (UPPER_CASE dicts and strings)."""
    tree, found = ast.parse(path.read_text("utf-8")), set()

    def literal(node) -> str | None:
        try:
            value = ast.literal_eval(node)
        except ValueError:
            return None
        return value if isinstance(value, str) else None

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            argument = {"translate": 0, "Message": 0, "Finding": 2, "_": 0}.get(name)
            if argument is not None and len(node.args) > argument:
                found.add(literal(node.args[argument]))
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets):
            if isinstance(node.value, ast.Dict) and node.targets[0].id in ("EFFECTS", "EFFECT_SENTENCES"):
                found |= {literal(v) for v in node.value.values}
            elif node.targets[0].id == "SINGLE_SEED":
                found.add(literal(node.value))
    return found - {None}


@pytest.mark.parametrize(
    "module",
    [
        "report/checklist.py",
        "report/findings.py",
        "report/conclusions.py",
        "report/render.py",
        "report/plots.py",
        "report/regularization.py",
        "report/lenet.py",
    ],
)
def test_every_generated_sentence_has_a_korean_entry(module):
    messages = _module_messages(ROOT / "reportgen" / module)
    assert messages or module == "report/render.py"
    assert sorted(m for m in messages if m not in KO and re.search(r"[a-z]{3}", m)) == []


def test_every_template_literal_and_checklist_item_has_a_korean_entry():
    import tomllib

    import jinja2

    # Jinja's own extraction: it sees a message split over adjacent string literals as the one key it is
    # (a call with keyword arguments comes out as a tuple: the message, then None per keyword)
    i18n = jinja2.Environment(extensions=["jinja2.ext.i18n"])
    literals = {
        text
        for template in (ROOT / "reportgen" / "templates").glob("*.j2")
        for _line, _function, message in i18n.extract_translations(template.read_text("utf-8"))
        for text in ([message] if isinstance(message, str) else message)
        if text
    }
    checklist = tomllib.loads((ROOT / "reportgen" / "checklists" / "assignment.toml").read_text("utf-8"))
    literals |= {item["text"] for item in checklist["items"]} | {checklist["title"]}
    assert sorted(literals - KO.keys()) == []


def test_default_experiment_title_and_notes_have_korean_entries():
    import tomllib

    from reportgen.spec import DEFAULT_NAME

    spec = tomllib.loads((ROOT / "reportgen" / "default_spec.toml").read_text("utf-8"))
    assert spec["name"] in KO and spec["notes"] in KO
    assert DEFAULT_NAME in KO  # the title of a run of one's own models on the embedded spec


def test_korean_terms_stay_distinct():
    """규제 is regularization, 정규화 is normalization (input mean/std, batch normalization); epochs are
    에포크 everywhere, a trial is 시행 and a run 실행."""
    values = "\n".join(KO.values())
    assert "epoch" not in values.lower() and "Epoch" not in values
    regularization = [v for k, v in KO.items() if re.search(r"[Rr]egulari[sz]", k)]
    assert regularization and all("규제" in v and "정규화" not in v for v in regularization)
    normalization = [v for k, v in KO.items() if re.search(r"[Nn]ormali[sz]", k)]
    assert normalization and all("정규화" in v for v in normalization)
    assert all("실험" not in v for k, v in KO.items() if "trial" in k)
    assert all("검증" not in v for k, v in KO.items() if "validation" not in k.lower())  # 검증: validation only
    assert "하십시오" not in values and "비교 표" not in values  # one register (-세요), one spelling (비교표)


# ------------------------------------------------------------------ real reports


def small_run(cli, workdir: Path, data: Path, run_id: str, *extra: str) -> Path:
    code, _out, err = cli(
        "run",
        *idx_run_args(data, epochs=2),
        "--lang",
        "ko",
        "--run-id",
        run_id,
        *extra,
    )
    assert code == 0, err
    return workdir / "output" / run_id


@pytest.mark.slow
def test_a_korean_report_has_no_english_outside_names_and_code(workdir, cli, tmp_path):
    output = small_run(cli, workdir, write_idx_dataset(tmp_path / "idx"), "ko")  # the default experiment's models
    assert_korean(output)
    html = visible_html(output / "report.html")
    assert "시드 한 개" in html and "seeds = [0, 1, 2]" in html  # one seed: said, and what to do


@pytest.mark.slow
@requires_fashion
def test_the_default_experiment_in_korean_on_fashion_mnist(workdir, cli):
    code, _out, err = cli(
        "run",
        "--train-subset",
        "600",
        "--test-subset",
        "200",
        "--epochs",
        "1",
        "--batch-size",
        "100",
        "--executor",
        "local",
        "--no-pdf",
        "--lang",
        "ko",
        "--run-id",
        "f",
    )
    assert code == 0, err
    output = workdir / "output" / "f"
    assert_korean(output)
    html = visible_html(output / "report.html")
    assert "LeNet-5, 파라미터 수를 맞춘 MLP, 규제한 LeNet-5 비교" in html and "Debian 패키지" in html
    assert "이동 평균·분산" in html and "LeNet-5와 MLP 분류 과제" in html


# ------------------------------------------------------------------ one story on every page


@pytest.mark.slow
def test_checklist_conclusion_and_tables_agree(workdir, cli, tmp_path):
    """Which model is better and whether a difference is significant: the McNemar table decides, and the
    checklist's regularization line and the conclusion say the same."""
    output = small_run(cli, workdir, write_idx_dataset(tmp_path / "idx"), "agree", "--lang", "en")
    assert json.loads((output / "summary.json").read_text("utf-8"))["before_after"]
    summary = json.loads((output / "summary.json").read_text("utf-8"))
    conclusion = " ".join(summary["conclusion"])
    for row in summary["mcnemar"]:
        if row["significant"]:
            assert f"{row['winner']} is more accurate than {row['loser']}" in conclusion
        else:  # never called better: the conclusion names only significant winners (issue 36: significant first)
            assert f"{row['a']} is more accurate than {row['b']}" not in conclusion
            assert f"{row['b']} is more accurate than {row['a']}" not in conclusion
    helped = next(i for i in summary["checklist"]["items"] if i["check"] == "regularization_helped")
    for row in summary["before_after"]:
        test = next(t for t in summary["mcnemar"] if {t["a"], t["b"]} == {row["model"], row["base"]})
        significance = (
            f"{'significant' if test['significant'] else 'not significant'}, McNemar p = {test['p_value']:.3g}"
        )
        assert f"({significance})" in helped["evidence"]
        verdict, reason = helped["evidence"].split(" — ", 1)  # "<model>: helped — <reason>"
        sentence = {"helped": "helped", "hurt": "hurt", "not shown to help": "is not shown to have helped"}
        said = sentence[verdict.split(": ", 1)[1]]
        assert f"Regularization ({row['model']} vs {row['base']}) {said}: {reason}." in conclusion
    next_steps = " ".join(step["text"] for step in summary["report"]["next_steps"])  # apart from the conclusion
    assert "rest on one seed" in conclusion and "seeds = [0, 1, 2]" in next_steps
