"""Answer extraction per answer kind."""
import pytest

from textopt.tasks import METRICS, extract_choice, extract_number, infer_kind


@pytest.mark.parametrize("text,expected", [
    ("There are 3 apples and 4 pears, so 7 in total.", "7"),
    ("Answer: 12\nI double-checked with 13 items.", "12"),
    ("The answer is 1,250 dollars.", "1250"),
    ("Answer: -4", "-4"),
    ("So we get 6.0", "6"),
    ("I have seven.", "7"),
    ("nothing here", None),
])
def test_extract_number(text, expected):
    assert extract_number(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("Options (A) and (B) ... so the answer is (C).", "(C)"),
    ("Answer: (B)\nnot (D)", "(B)"),
    ("Answer: B", "(B)"),
    ("no option", None),
])
def test_extract_choice(text, expected):
    assert extract_choice(text) == expected


def test_infer_kind():
    assert infer_kind(["(A)", "(B)"]) == "choice"
    assert infer_kind(["3", "-12"]) == "number"
    assert infer_kind(["True", "False"]) == "bool"
    assert infer_kind(["Yes", "No"]) == "yesno"
    assert infer_kind(["valid", "invalid"]) == "validity"
    assert infer_kind(["a b", "c"]) == "text"


def test_labels_take_the_answer_line_over_earlier_mentions():
    yesno = METRICS["yesno"]
    assert yesno("Yes, one might think so. No wait.\nAnswer: No", "No").value == 1.0
    assert yesno("Yes, it is.", "No").extracted == "Yes"
    assert METRICS["text"]("thinking\n] ) }", "] ) }").value == 1.0
