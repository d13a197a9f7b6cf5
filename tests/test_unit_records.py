"""Unit tests of agentedit.records: the shapes an edit may take, validation and file import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentedit.errors import DuplicateEditError, EditError, ImportFormatError
from agentedit.records import (MAX_TEXT_CHARS, build_record, build_records, make_statement, read_edit_file,
                               relation_template, validate_namespace)
from agentedit.types import EditRecord


# -- shapes ------------------------------------------------------------------------------------
def test_benchmark_shape_builds_statement_relation_and_conflict_key() -> None:
    rec = build_record({"prompt": "The Eiffel Tower is located in", "subject": "Eiffel Tower", "target_new": "Rome",
                        "target_old": "Paris"})
    assert rec.statement == "The Eiffel Tower is located in Rome."
    assert rec.relation == "The {} is located in"
    assert rec.target_new == "Rome" and rec.target_old == "Paris"
    assert rec.namespace == "default" and rec.status == "active"
    assert rec.id.startswith("e_")
    assert rec.conflict_key == ("default", "eiffel tower", "the {} is located in")


def test_benchmark_prompt_with_slot_is_filled_with_subject() -> None:
    rec = build_record({"prompt": "{} plays the", "subject": "Toko Yasuda", "target_new": "piano"})
    assert rec.prompt == "Toko Yasuda plays the"
    assert rec.statement == "Toko Yasuda plays the piano."
    assert rec.relation == "{} plays the"


def test_prompt_slot_without_subject_is_an_error() -> None:
    with pytest.raises(EditError, match="slot but no subject"):
        build_record({"prompt": "{} plays the", "target_new": "piano"})


def test_requested_rewrite_shape_is_unwrapped() -> None:
    case = {
        "case_id": 7,
        "requested_rewrite": {"prompt": "The mother tongue of {} is", "subject": "Danielle Darrieux",
                              "target_new": {"str": "English"}, "target_true": {"str": "French"}},
        "rephrase_prompt": "Danielle Darrieux speaks",
    }
    rec = build_record(case)
    assert rec.subject == "Danielle Darrieux"
    assert rec.prompt == "The mother tongue of Danielle Darrieux is"
    assert rec.target_new == "English" and rec.target_old == "French"
    assert rec.statement == "The mother tongue of Danielle Darrieux is English."
    assert rec.relation == "The mother tongue of {} is"
    assert rec.metadata["case_id"] == 7
    assert rec.metadata["rephrase_prompt"] == "Danielle Darrieux speaks"


def test_requested_rewrite_list_of_several_is_refused() -> None:
    rw = {"prompt": "{} is in", "subject": "X", "target_new": {"str": "Y"}}
    with pytest.raises(EditError, match="several rewrites"):
        build_record({"requested_rewrite": [rw, rw]})


def test_statement_shape_derives_relation_from_statement_and_target() -> None:
    rec = build_record({"statement": "  Alice's   manager is Bob. ", "subject": "Alice", "target_new": "Bob"})
    assert rec.statement == "Alice's manager is Bob."  # whitespace normalised
    assert rec.prompt is None
    assert rec.relation == "{}'s manager is"


def test_statement_without_subject_has_no_conflict_key() -> None:
    rec = build_record({"fact": "The office moved to Lyon."})
    assert rec.statement == "The office moved to Lyon."
    assert rec.relation is None and rec.conflict_key is None


def test_relation_template_and_make_statement() -> None:
    assert relation_template("Where is the eiffel tower?", "Eiffel Tower") == "Where is the {}?"
    assert relation_template("The capital of France is", "Germany") is None
    assert make_statement("Who is the CEO of Acme?", "Jane") == "Who is the CEO of Acme? Jane."
    assert make_statement("The CEO of Acme is ", "Jane") == "The CEO of Acme is Jane."


def test_edit_record_object_is_accepted() -> None:
    src = build_record({"prompt": "The CEO of Acme is", "subject": "Acme", "target_new": "Jane", "id": "acme-ceo"})
    again = build_record(src)
    assert again.id == "acme-ceo" and again.statement == src.statement and again.relation == src.relation


# -- validation errors -------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["", "   ", "\n\t"])
def test_empty_target_new_is_refused(target: str) -> None:
    with pytest.raises(EditError, match="target_new is empty or only whitespace"):
        build_record({"prompt": "The CEO of Acme is", "target_new": target})


def test_missing_target_with_prompt_is_refused() -> None:
    with pytest.raises(EditError, match="target_new is missing"):
        build_record({"prompt": "The CEO of Acme is"})


def test_neither_prompt_nor_statement_is_refused() -> None:
    with pytest.raises(EditError, match="either prompt \\+ target_new or a statement"):
        build_record({"subject": "Acme"})
    with pytest.raises(EditError, match="prompt is missing"):
        build_record({"target_new": "Jane"})


def test_100kb_statement_is_refused_with_length_and_limit() -> None:
    with pytest.raises(EditError) as exc:
        build_record({"statement": "x" * 100_000})
    msg = str(exc.value)
    assert "statement is 100,000 characters long" in msg
    assert f"limit is {MAX_TEXT_CHARS:,}" in msg


def test_statement_at_the_limit_is_accepted() -> None:
    assert len(build_record({"statement": "y" * MAX_TEXT_CHARS}).statement) == MAX_TEXT_CHARS


@pytest.mark.parametrize("field,value,typename", [
    ("target_new", 42, "int"),
    ("prompt", {"text": "x"}, "dict"),
    ("statement", 3.5, "float"),
    ("subject", True, "bool"),
])
def test_wrong_types_are_refused(field: str, value: object, typename: str) -> None:
    data = {"prompt": "The CEO of Acme is", "target_new": "Jane", field: value}
    with pytest.raises(EditError, match=f"{field} must be a string, got {typename}"):
        build_record(data)


def test_non_mapping_edit_is_refused() -> None:
    with pytest.raises(EditError, match="must be an object/dict, got list"):
        build_record(["The CEO of Acme is", "Jane"])  # type: ignore[arg-type]


def test_validity_times_are_checked() -> None:
    # valid_from/valid_until are compared with the current UTC time as ISO-8601 strings; a value that is
    # not a timestamp ("tomorrow") would silently keep the edit out of every answer forever.
    ok = build_record({"statement": "A fact.", "valid_from": "2030-01-01T02:00:00+02:00", "valid_until": "2031-01-01"})
    assert ok.valid_from == "2030-01-01T00:00:00.000000+00:00"  # normalised to UTC, comparable with stored times
    assert ok.valid_until == "2031-01-01T00:00:00.000000+00:00"  # a date alone means midnight UTC
    with pytest.raises(EditError, match="valid_from"):
        build_record({"statement": "A fact.", "valid_from": "tomorrow"})
    with pytest.raises(EditError, match="not before valid_until"):
        build_record({"statement": "A fact.", "valid_from": "2031-01-01", "valid_until": "2030-01-01"})


def test_metadata_must_be_an_object() -> None:
    with pytest.raises(EditError, match="metadata must be an object"):
        build_record({"statement": "A fact.", "metadata": ["x"]})


def test_unknown_fields_are_named() -> None:
    with pytest.raises(EditError) as exc:
        build_record({"statement": "A fact.", "colour": "red", "answer": "x"})
    assert "unknown field(s) answer, colour" in str(exc.value)


@pytest.mark.parametrize("ns", ["has space", "-leading", "x" * 65, "sl/ash", 5])
def test_invalid_namespace_is_refused(ns: object) -> None:
    with pytest.raises(EditError, match="invalid namespace"):
        build_record({"statement": "A fact.", "namespace": ns})
    with pytest.raises(EditError, match="invalid namespace"):
        validate_namespace(ns)


def test_empty_namespace_is_invalid_and_a_missing_field_means_the_default() -> None:
    with pytest.raises(EditError, match="invalid namespace ''"):
        validate_namespace("")
    with pytest.raises(EditError, match="invalid namespace ''"):
        build_record({"statement": "A fact.", "namespace": ""}, namespace="team")
    assert build_record({"statement": "A fact.", "namespace": None}, namespace="team").namespace == "team"
    assert build_record({"statement": "A fact."}, namespace="team").namespace == "team"


def test_valid_namespace_is_used() -> None:
    assert build_record({"statement": "A fact."}, namespace="team-a.v2").namespace == "team-a.v2"
    assert build_record({"statement": "A fact.", "namespace": "other"}, namespace="team-a").namespace == "other"


@pytest.mark.parametrize("edit_id", ["with space", "-x", "a/b", "x" * 129, 17])
def test_invalid_id_is_refused(edit_id: object) -> None:
    with pytest.raises(EditError, match="invalid id"):
        build_record({"statement": "A fact.", "id": edit_id})


def test_duplicate_id_in_batch_names_both_positions() -> None:
    items = [{"statement": "Fact one.", "id": "a"}, {"statement": "Fact two.", "id": "b"},
             {"statement": "Fact three.", "id": "a"}]
    with pytest.raises(DuplicateEditError) as exc:
        build_records(items)
    msg = str(exc.value)
    assert "edit #2" in msg and "edit #0" in msg and "'a'" in msg


def test_batch_error_names_the_bad_position() -> None:
    items = [{"statement": "Fine."}, {"statement": "Fine too."}, {"prompt": "The CEO is", "target_new": " "}]
    with pytest.raises(EditError, match=r"^edit #2: target_new is empty"):
        build_records(items)


def test_batch_error_uses_labels() -> None:
    with pytest.raises(EditError, match=r"^edit line 9: "):
        build_records([{"statement": ""}], labels=["line 9"])


def test_build_records_returns_editrecords_in_order() -> None:
    recs = build_records([{"statement": f"Fact {i}."} for i in range(3)], namespace="ns1")
    assert [r.statement for r in recs] == ["Fact 0.", "Fact 1.", "Fact 2."]
    assert all(isinstance(r, EditRecord) and r.namespace == "ns1" for r in recs)
    assert len({r.id for r in recs}) == 3


# -- files ---------------------------------------------------------------------------------------
def _jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def test_jsonl_invalid_line_37_is_named(tmp_path: Path) -> None:
    lines = [json.dumps({"statement": f"Fact number {i}."}) for i in range(1, 37)]
    lines.append('{"statement": "broken",')  # line 37
    lines.append(json.dumps({"statement": "After."}))
    path = _jsonl(tmp_path / "edits.jsonl", lines)
    with pytest.raises(ImportFormatError) as exc:
        read_edit_file(path)
    assert "line 37" in str(exc.value)
    assert "edits.jsonl" in str(exc.value)


def test_jsonl_line_that_is_not_an_object_is_named(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "edits.jsonl", [json.dumps({"statement": "A."}), "[1, 2]"])
    with pytest.raises(ImportFormatError, match="line 2 is a JSON list"):
        read_edit_file(path)


def test_jsonl_labels_skip_blank_lines(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "edits.jsonl", [json.dumps({"statement": "A."}), "", json.dumps({"statement": "B."})])
    items, labels = read_edit_file(path)
    assert [i["statement"] for i in items] == ["A.", "B."]
    assert labels == ["line 1", "line 3"]


def test_non_utf8_file_names_encoding_and_line(tmp_path: Path) -> None:
    path = tmp_path / "edits.jsonl"
    path.write_bytes(b'{"statement": "ok"}\n{"statement": "caf\xe9"}\n')
    with pytest.raises(ImportFormatError) as exc:
        read_edit_file(path)
    msg = str(exc.value)
    assert "UTF-8" in msg and "line 2" in msg and "0xe9" in msg


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="no such file"):
        read_edit_file(tmp_path / "nope.jsonl")


def test_csv_import(tmp_path: Path) -> None:
    path = tmp_path / "edits.csv"
    path.write_text("prompt,subject,target_new,statement\n"
                    "The CEO of Acme is,Acme,Jane,\n"
                    ",,,The office moved to Lyon.\n", "utf-8")
    items, labels = read_edit_file(path)
    assert items == [{"prompt": "The CEO of Acme is", "subject": "Acme", "target_new": "Jane"},
                     {"statement": "The office moved to Lyon."}]
    assert labels == ["line 2", "line 3"]
    recs = build_records(items, labels=labels)
    assert recs[0].statement == "The CEO of Acme is Jane." and recs[0].relation == "The CEO of {} is"


def test_csv_without_header(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("", "utf-8")
    with pytest.raises(ImportFormatError, match="no header row"):
        read_edit_file(path)


def test_json_list_and_edits_object_import(tmp_path: Path) -> None:
    data = [{"prompt": "The CEO of Acme is", "subject": "Acme", "target_new": "Jane"}, {"statement": "B."}]
    p1 = tmp_path / "a.json"
    p1.write_text(json.dumps(data), "utf-8")
    items, labels = read_edit_file(p1)
    assert items == data and labels == ["#0", "#1"]
    p2 = tmp_path / "b.json"
    p2.write_text(json.dumps({"edits": data}), "utf-8")
    assert read_edit_file(p2)[0] == data


def test_json_of_wrong_shape(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    p.write_text(json.dumps([1, 2]), "utf-8")
    with pytest.raises(ImportFormatError, match="expected a JSON list of edit objects"):
        read_edit_file(p)
    p.write_text("[{", "utf-8")
    with pytest.raises(ImportFormatError, match="not valid JSON .* line 1"):
        read_edit_file(p)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_bytes("\ufeff".encode("utf-8") + json.dumps({"statement": "Café opens."}).encode("utf-8") + b"\n")
    items, _ = read_edit_file(p)
    assert items == [{"statement": "Café opens."}]
