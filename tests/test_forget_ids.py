"""Deletion requests by value: ID lists (string, integer and ClassLabel columns), several filter values, the count
of IDs that match nothing (never the IDs), bad inputs in one line, and an ID-list run through the CLI."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest

from hf_unlearn.errors import UnlearnError
from hf_unlearn.forget import ForgetSpec, TrainingSplit, get_kind, select_forget
from hf_unlearn.forget.matching import parse_values

N_ROWS = 600


@pytest.fixture(scope="module")
def table():
    """600 rows: a string user_id (40 users), an integer camera id, a ClassLabel species and a fine label."""
    rng = np.random.default_rng(0)
    species = datasets.ClassLabel(names=["cat", "dog", "eel"])
    ds = datasets.Dataset.from_dict(
        {"user_id": [f"user-{int(u)}" for u in rng.integers(0, 40, N_ROWS)],
         "camera": rng.integers(0, 12, N_ROWS).tolist(),
         "species": rng.integers(0, 3, N_ROWS).tolist(),
         "fine": [["maple", "oak", "pine", "rose"][int(i)] for i in rng.integers(0, 4, N_ROWS)]},
        features=datasets.Features({"user_id": datasets.Value("string"), "camera": datasets.Value("int64"),
                                    "species": species, "fine": datasets.Value("string")}))
    return TrainingSplit(ds, np.asarray(ds["species"]), species.names)


def test_forgetting_three_users_selects_exactly_their_rows(table):
    spec = ForgetSpec.ids("user_id", ["user-3", "user-17", "user-29"])
    rows = select_forget(spec, table)
    users = np.asarray(table.dataset["user_id"])
    assert rows.tolist() == np.flatnonzero(np.isin(users, ["user-3", "user-17", "user-29"])).tolist()
    assert len(rows) > 30 and spec.describe() == "3 listed user_id values"
    assert spec.to_dict()["id_values"] == 3  # the record keeps a count, not the IDs


def test_a_user_with_no_rows_is_counted_not_listed(table):
    spec = ForgetSpec.ids("user_id", ["user-3", "nobody-here", "user-3"])  # a duplicate counts once
    assert get_kind("ids").matches(spec.fields, table) == {"requested": 2, "unmatched": 1}
    assert "nobody" not in json.dumps(spec.to_dict()) and "nobody" not in spec.describe()


def test_integer_and_class_label_columns_take_their_own_values(table):
    cameras = np.asarray(table.dataset["camera"])
    assert select_forget(ForgetSpec.ids("camera", [4, "7"]), table).tolist() == \
        np.flatnonzero(np.isin(cameras, [4, 7])).tolist()
    species = np.asarray(table.dataset["species"])
    by_name = select_forget(ForgetSpec.ids("species", ["eel"]), table)
    assert by_name.tolist() == np.flatnonzero(species == 2).tolist()
    assert get_kind("ids").matches(ForgetSpec.ids("species", ["eel", "yak"]).fields, table)["unmatched"] == 1
    with pytest.raises(UnlearnError, match="value 1 of the list is not an integer, and column 'camera' holds"):
        select_forget(ForgetSpec.ids("camera", ["seven"]), table)


def test_the_filter_takes_several_values(table):
    """Sub-class forgetting: every fine label in a list."""
    fine = np.asarray(table.dataset["fine"])
    spec = ForgetSpec(filter_column="fine", filter_value=("maple", "oak"))
    assert select_forget(spec, table).tolist() == np.flatnonzero(np.isin(fine, ["maple", "oak"])).tolist()
    assert spec.describe() == "rows where fine is one of 2 values ('maple', 'oak')"
    from hf_unlearn.forget.column_filter import parse_column_value

    assert parse_column_value("fine=maple, oak") == {"filter_column": "fine", "filter_value": ("maple", "oak")}
    assert parse_column_value("fine=maple") == {"filter_column": "fine", "filter_value": "maple"}


def test_a_file_of_100000_ids_is_read_and_matched(table, tmp_path):
    """The timing is scripts/bench_ids.py's; here, that a file that large is read whole and matched right."""
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(f"user-{i}" for i in range(100_000)) + "\n")
    values = parse_values(f"@{path}", "ID")
    assert len(values) == 100_000 and values[:2] == ("user-0", "user-1")
    spec = ForgetSpec.ids("user_id", values)
    assert get_kind("ids").matches(spec.fields, table) == {"requested": 100_000, "unmatched": 100_000 - 40}
    assert path.with_suffix(".json").write_text(json.dumps(["user-1", 2])) and \
        parse_values(f"@{path.with_suffix('.json')}", "ID") == ("user-1", "2")


@pytest.mark.parametrize(("make", "message"), [
    (lambda t, d: select_forget(ForgetSpec.ids("user", ["u"]), t),
     "ID column 'user' not in the dataset; its columns are: user_id, camera, species, fine"),
    (lambda t, d: ForgetSpec.ids("user_id", []), "the list of 'user_id' IDs is empty"),
    (lambda t, d: ForgetSpec("ids", id_column="user_id", id_values=parse_values("  ,  ", "ID")),
     "the list of 'user_id' IDs is empty"),
    (lambda t, d: parse_values(f"@{d / 'photo.png'}", "ID"), "is not a text file: give one ID per line"),
    (lambda t, d: parse_values(f"@{d / 'missing.txt'}", "ID"), "cannot read the ID file"),
    (lambda t, d: ForgetSpec.ids("user_id", "user-3"), "ForgetSpec.ids takes a list of values"),
])
def test_bad_id_requests_get_one_line(table, tmp_path, make, message):
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    with pytest.raises(UnlearnError) as info:
        make(table, tmp_path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_an_id_list_request_runs_through_the_cli(digits, demo_assets, tmp_path, capsys):
    """The digits with a user_id column; three users and one unknown ID, from a file: the report counts the
    unknown one, names none of them, and its forget set is exactly the three users' rows."""
    from hf_unlearn.cli import main

    train = digits["train"].add_column("user_id", [f"u{i % 50}" for i in range(len(digits["train"]))])
    folder = tmp_path / "digits-users"
    folder.mkdir()
    train.to_parquet(str(folder / "train.parquet"))
    digits["test"].to_parquet(str(folder / "test.parquet"))
    (tmp_path / "request.txt").write_text("u3\nu17\nu29\nstranger-42\n")
    out = tmp_path / "out"
    code = main(["run", "--model", str(demo_assets[0]), "--dataset", str(folder), "--forget-ids",
                 f"user_id=@{tmp_path / 'request.txt'}", "--method", "ft", "--epochs", "1", "--quiet",
                 "--output", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["forget"]["kind"] == "ids" and report["forget"]["id_values"] == 4
    assert report["data"]["forget_values"] == {"requested": 4, "unmatched": 1}
    assert report["data"]["n_forget"] == sum(u in ("u3", "u17", "u29") for u in train["user_id"])
    assert "1 of the 4 values asked for match no training row" in printed
    for text in ((out / "report.json").read_text(), (out / "report.md").read_text(), printed):
        assert "stranger" not in text and "u17" not in text


def test_a_box_in_the_app_never_opens_a_path_a_visitor_types():
    """On a public Space a typed "@/etc/passwd" must be a value, not a file the server reads (and leaks)."""
    from hf_unlearn.forget.indices import parse_indices

    assert parse_values("@/etc/passwd, @bob", "ID", files=False) == ("@/etc/passwd", "@bob")
    with pytest.raises(UnlearnError, match="forget index '@/etc/passwd' is not an integer row number"):
        parse_indices("@/etc/passwd", files=False)
    assert get_kind("ids").all_inputs()[2].parse("@/etc/passwd") == {"id_values": ("@/etc/passwd",)}


def test_column_types_are_matched_exactly_or_refused():
    rating = datasets.ClassLabel(names=["1", "2", "3", "4", "5"])  # names that are digits, ids 0..4
    ds = datasets.Dataset.from_dict(
        {"rating": [0, 1, 2, 3, 4, 0], "flag": [True, False, True, False, True, False],
         "score": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]},
        features=datasets.Features({"rating": rating, "flag": datasets.Value("bool"),
                                    "score": datasets.Value("float32")}))
    t = TrainingSplit(ds, np.asarray(ds["rating"]), rating.names)
    assert select_forget(ForgetSpec.ids("rating", ["1"]), t).tolist() == [0, 5]  # the name "1", as --forget-class
    assert select_forget(ForgetSpec.ids("flag", ["true"]), t).tolist() == [0, 2, 4]
    with pytest.raises(UnlearnError, match="ID column 'score' holds float32 values: values are matched exactly"):
        select_forget(ForgetSpec.ids("score", ["0.1"]), t)


def test_a_filter_value_that_matches_nothing_among_several_is_a_typo(table):
    with pytest.raises(UnlearnError, match="1 of the 2 filter values match no row of 'fine': check their spelling"):
        select_forget(ForgetSpec(filter_column="fine", filter_value=("maple", "oka")), table)
