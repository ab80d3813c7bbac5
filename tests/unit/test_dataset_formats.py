"""Dataset parsing, TRL type detection, validation and length statistics, on real files."""

from __future__ import annotations

import csv
import io
import json
from itertools import product
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.demo_data.make_sft_demo import OUTPUT as SFT_DEMO
from app.demo_data.make_sft_demo import make_rows, to_jsonl
from app.domain.datasets.formats import (
    FORMAT_COLUMNS,
    STRATEGY_FORMATS,
    DatasetError,
    check_format_for_strategy,
    detect_format,
    length_stats,
    parse_dataset,
    rows_for_preview,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"
BAD, GOOD = FIXTURES / "bad_inputs", FIXTURES / "good"

# Each file in bad_inputs/ (its name is the upload's file name) → facts its error must state.
BAD_INPUTS = {
    "empty.jsonl": ["the file is empty"],
    "whitespace_only.jsonl": ["the file is empty"],
    "latin1.jsonl": ["not UTF-8", "0xe9", "offset 15", "save it as UTF-8"],
    "utf16_bom.jsonl": ["UTF-16", "save it as UTF-8"],
    "utf16_no_bom.jsonl": ["NUL bytes", "UTF-8"],
    "invalid_json_line.jsonl": ["line 3 is not valid JSON", "Expecting ',' delimiter"],
    "line_is_list.jsonl": ["line 2 is a list, not an object"],
    "missing_completion.jsonl": ["row 2", "missing column 'completion'"],
    "missing_prompt.jsonl": ["row 1", "missing column 'prompt'"],
    "duplicate_header.csv": ["duplicate column 'prompt' in the CSV header"],
    "null_completion.jsonl": ["row 3: column 'completion' is null"],
    "null_completion.parquet": ["row 2: column 'completion' is null"],
    "empty_prompt.jsonl": ["row 2: column 'prompt' is empty"],
    "whitespace_completion.jsonl": ["row 1: column 'completion' is empty"],
    "empty_cell.csv": ["row 1 (line 2): column 'completion' is empty"],
    "prompt_is_number.jsonl": ["row 1: column 'prompt' is a number (42), expected text"],
    "bad_role.jsonl": ["message 2 has role 'bot'", "system, user, assistant, tool"],
    "message_without_role.jsonl": ["message 1 has no role"],
    "content_not_string.jsonl": ["column 'messages' message 1 content is a list"],
    "message_not_object.jsonl": ["message 1 is text, expected an object"],
    "messages_not_list.jsonl": ["column 'messages' is text, expected a list of messages"],
    "messages_empty_list.jsonl": ["column 'messages' is an empty list"],
    "messages_bad_json_cell.csv": ["column 'messages'", "starts with '[' but is not valid JSON"],
    "conversational_completion_is_text.jsonl": ["column 'completion' is text, expected a list"],
    "parquet_named_jsonl.jsonl": [
        "the file is Parquet but is named .jsonl",
        "rename it to .parquet",
    ],
    "csv_named_jsonl.jsonl": ["looks like CSV but is named .jsonl", "rename it to .csv"],
    "jsonl_named_csv.csv": ["looks like JSON but is named .csv", "rename it to .jsonl"],
    "no_rows.parquet": ["the Parquet file has no rows"],
    "truncated.parquet": ["corrupt or truncated"],
    "png_named_jsonl.jsonl": ["PNG image"],
    "gzip_named_jsonl.jsonl": ["gzip", "decompress"],
    "notes.txt": ["unsupported file type '.txt'", ".jsonl, .json, .csv or .parquet"],
    "sheet.xlsx": ["Excel", "export the sheet as CSV"],
    "dataset": ["no extension"],
    "mixed_formats.jsonl": ["row 2", "missing column 'prompt'", "['messages']"],
    "preference_missing_chosen.jsonl": ["row 2", "missing column 'chosen'"],
    "no_recognised_columns.csv": [
        "no recognised columns: found ['foo', 'bar']",
        "prompt/completion, messages",
    ],
    "alpaca_columns.jsonl": ["no recognised columns", "'instruction' → 'prompt'"],
    "ragged_row.csv": ["row 2 (line 3) has 3 fields but the header has 2"],
    "unclosed_quote.csv": ["unclosed quote", "opened on line 2"],
    "header_only.csv": ["header but no data rows"],
    "empty_header_name.csv": ["column 2 of the CSV header is empty"],
    "array_item_not_object.json": ["item 2 of the JSON array is text"],
    "invalid_json_array.json": ["not valid JSON", "line 3 column 33"],
    "empty_json_array.json": ["JSON array is empty"],
    "pretty_printed_object.json": ["one JSON object spread over several lines"],
}


def test_every_bad_input_file_has_an_expectation() -> None:
    assert sorted(path.name for path in BAD.iterdir()) == sorted(BAD_INPUTS)


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_refused_with_the_key_fact(name: str) -> None:
    with pytest.raises(DatasetError) as caught:
        parse_dataset(BAD / name, filename=name)
    for fact in BAD_INPUTS[name]:
        assert fact in str(caught.value)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write(tmp_path: Path, rows: list[dict], file_format: str) -> Path:
    path = tmp_path / f"upload.{file_format}"
    if file_format == "jsonl":
        lines = (json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        path.write_text("".join(lines), encoding="utf-8")
    elif file_format == "json":
        path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    elif file_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(list(rows[0]))
        for row in rows:
            writer.writerow([json.dumps(v) if isinstance(v, list) else v for v in row.values()])
        path.write_text(buffer.getvalue(), encoding="utf-8")
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.mark.parametrize(
    ("format", "source"), list(product(FORMAT_COLUMNS, ["jsonl", "csv", "json", "parquet"]))
)
def test_each_format_reads_the_same_from_every_file_type(tmp_path, format, source) -> None:
    expected = _rows(GOOD / f"{format}.jsonl")
    committed = GOOD / f"{format}.{source}"
    path = committed if committed.exists() else _write(tmp_path, expected, source)
    parsed = parse_dataset(path, filename=path.name)
    assert (parsed.format, parsed.file_format) == (format, source)
    assert parsed.rows == expected
    assert parsed.columns == list(expected[0])


@pytest.mark.parametrize(
    "name", ["bom.jsonl", "bom.csv", "crlf.jsonl", "crlf.csv", "blank_lines.jsonl", "array.json"]
)
def test_bom_crlf_blank_lines_and_arrays_read_as_plain_rows(name: str) -> None:
    parsed = parse_dataset(GOOD / name, filename=name)
    assert parsed.columns == ["prompt", "completion"]
    assert parsed.rows == _rows(GOOD / "prompt_completion.jsonl")


def test_csv_quoted_fields_keep_newlines_and_quotes() -> None:
    parsed = parse_dataset(GOOD / "multiline.csv", filename="multiline.csv")
    assert parsed.rows == [
        {
            "prompt": "Write a haiku\nabout rain",
            "completion": 'Soft rain, "hush" now\nroofs hum\nthe gutters sing',
        },
        {"prompt": "plain", "completion": "one line"},
    ]


def test_csv_text_that_merely_starts_with_a_bracket_stays_text(tmp_path: Path) -> None:
    rows = [{"prompt": "[INST] hi", "completion": "[1, 2]"}]
    parsed = parse_dataset(_write(tmp_path, rows, "csv"), filename="x.csv")
    assert (parsed.format, parsed.rows) == ("prompt_completion", rows)


def test_tab_separated_csv_and_upper_case_extension(tmp_path: Path) -> None:
    path = tmp_path / "upload"
    path.write_text("prompt\tcompletion\nThe sky is\t blue.\n", encoding="utf-8")
    parsed = parse_dataset(path, filename="DATA.CSV")
    assert parsed.rows == [{"prompt": "The sky is", "completion": " blue."}]


def test_extra_columns_are_kept_and_filled_where_a_json_row_omits_them(tmp_path: Path) -> None:
    path = tmp_path / "u.jsonl"
    path.write_text('{"prompt": "2+2?", "answer": 4}\n{"prompt": "3+3?"}\n', encoding="utf-8")
    parsed = parse_dataset(path, filename="grpo.jsonl")
    assert parsed.format == "prompt_only"
    assert parsed.columns == ["prompt", "answer"]
    assert parsed.rows == [{"prompt": "2+2?", "answer": 4}, {"prompt": "3+3?", "answer": None}]


def test_pandas_index_column_is_not_data(tmp_path: Path) -> None:
    path = tmp_path / "u.parquet"
    pd.DataFrame({"text": ["a", "b"]}, index=[7, 9]).to_parquet(path)
    assert parse_dataset(path, filename="u.parquet").columns == ["text"]


def test_errors_after_blank_lines_name_row_and_line(tmp_path: Path) -> None:
    path = tmp_path / "u.jsonl"
    path.write_text('{"text": "a"}\n\n{"text": 5}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"^row 2 \(line 3\): column 'text' is a number"):
        parse_dataset(path, filename="u.jsonl")


@pytest.mark.parametrize("file_format", ["jsonl", "csv", "json", "parquet"])
def test_oversized_row_names_the_row_and_the_limit(tmp_path, file_format) -> None:
    rows = [{"prompt": f"question {i}", "completion": "answer"} for i in range(15)]
    rows[11]["completion"] = "x" * 1_200_000
    path = _write(tmp_path, rows, file_format)
    with pytest.raises(DatasetError, match=r"^row 12 .*over the 1 MB per-row limit") as caught:
        parse_dataset(path, filename=path.name)
    if file_format != "csv":  # CSV stops reading the field at the limit, so has no size
        assert "row 12 is 1.2 MB, over the 1 MB per-row limit" in str(caught.value)


def test_row_limit_counts_utf8_bytes_not_characters(tmp_path: Path) -> None:
    path = _write(tmp_path, [{"text": "é" * 300_000}], "jsonl")  # 300k chars, 600 kB
    parse_dataset(path, filename="u.jsonl", max_row_bytes=700_000)
    with pytest.raises(DatasetError, match="row 1 is 600 KB, over the 500 KB per-row limit"):
        parse_dataset(path, filename="u.jsonl", max_row_bytes=500_000)


@pytest.mark.parametrize("file_format", ["jsonl", "csv", "json", "parquet"])
def test_row_count_limit(tmp_path: Path, file_format: str) -> None:
    path = _write(tmp_path, [{"text": f"t{i}"} for i in range(3)], file_format)
    assert len(parse_dataset(path, filename=path.name, max_rows=3).rows) == 3
    with pytest.raises(DatasetError, match="more than 2 rows"):
        parse_dataset(path, filename=path.name, max_rows=2)


MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"prompt": "p", "completion": "c"}, "prompt_completion"),
        ({"prompt": MESSAGES, "completion": MESSAGES}, "conversational_prompt_completion"),
        ({"messages": MESSAGES}, "messages"),
        ({"text": "t"}, "text"),
        ({"prompt": "p", "answer": "42"}, "prompt_only"),
        ({"prompt": MESSAGES, "answer": "42"}, "prompt_only"),
        ({"prompt": "p", "chosen": "a", "rejected": "b"}, "preference"),
        (
            {"prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES},
            "conversational_preference",
        ),
        ({"prompt": "p", "completion": "c", "messages": MESSAGES}, "prompt_completion"),
    ],
)
def test_detect_format(row: dict, expected: str) -> None:
    assert detect_format(list(row), row) == expected


def test_detect_format_lists_what_it_found_and_what_it_wants() -> None:
    with pytest.raises(DatasetError, match=r"found \['question', 'x'\].*'question' → 'prompt'"):
        detect_format(["question", "x"], {"question": "q", "x": 1})


@pytest.mark.parametrize(("format", "strategy"), list(product(FORMAT_COLUMNS, STRATEGY_FORMATS)))
def test_strategy_accepts_exactly_its_formats(format: str, strategy: str) -> None:
    if format in STRATEGY_FORMATS[strategy]:
        check_format_for_strategy(format, strategy)
    else:
        with pytest.raises(DatasetError, match=f"^{strategy.upper()} needs"):
            check_format_for_strategy(format, strategy)


def test_sft_on_a_prompt_only_file_names_the_columns_it_needs(tmp_path: Path) -> None:
    path = _write(tmp_path, [{"prompt": "Capital of France?", "response": "Paris"}], "csv")
    parsed = parse_dataset(path, filename="u.csv")
    assert parsed.format == "prompt_only"
    with pytest.raises(DatasetError) as caught:
        check_format_for_strategy(parsed.format, "sft", columns=parsed.columns)
    assert "prompt and completion columns" in str(caught.value)
    assert "'response'" in str(caught.value)
    with pytest.raises(DatasetError, match="DPO needs prompt, chosen and rejected"):
        check_format_for_strategy(parsed.format, "dpo")
    with pytest.raises(ValueError, match="unknown strategy") as unknown:
        check_format_for_strategy(parsed.format, "ppo")
    assert not isinstance(unknown.value, DatasetError)


def words(text: str) -> int:
    return len(text.split())


def test_length_stats_per_field_and_total() -> None:
    rows = [{"prompt": "a b", "completion": "c"}, {"prompt": "a b c d", "completion": "e f"}]
    stats = length_stats(rows, "prompt_completion", words)
    assert stats["num_rows"] == 2
    assert stats["fields"]["prompt"]["tokens"] == {
        "min": 2,
        "mean": 3.0,
        "median": 3.0,
        "p95": 3.9,
        "max": 4,
    }
    assert stats["fields"]["completion"]["chars"]["max"] == 3
    assert stats["fields"]["total"]["tokens"] == {
        "min": 3,
        "mean": 4.5,
        "median": 4.5,
        "p95": 5.85,
        "max": 6,
    }
    json.dumps(stats)  # stored as a JSON column


def test_length_stats_messages_and_preference_totals() -> None:
    chat = [
        {
            "messages": [
                {"role": "user", "content": "one two"},
                {"role": "assistant", "content": "three"},
            ]
        }
    ]
    assert length_stats(chat, "messages", words)["fields"]["messages"]["tokens"]["max"] == 3
    pref = [{"prompt": "p", "chosen": "a b c", "rejected": "a"}]
    assert length_stats(pref, "preference", words)["fields"]["total"]["tokens"]["max"] == 4


def test_length_stats_batches_the_tokenizer_on_100k_rows() -> None:
    rows = [{"text": "word " * (i % 50)} for i in range(100_000)]
    calls: list[int] = []

    def batch(texts: list[str]) -> list[int]:
        calls.append(len(texts))
        return [words(text) for text in texts]

    stats = length_stats(rows, "text", count_tokens_batch=batch)
    assert sum(calls) == 100_000 and max(calls) <= 1024
    assert stats == length_stats(rows, "text", words)
    assert stats["fields"]["text"]["tokens"]["max"] == 49


def test_length_stats_needs_a_counter_and_handles_no_rows() -> None:
    with pytest.raises(TypeError):
        length_stats([], "text")
    assert length_stats([], "text", words)["fields"]["text"]["tokens"]["max"] == 0


def test_rows_for_preview_stringifies_and_truncates() -> None:
    rows = [
        {
            "prompt": "x" * 2000,
            "messages": MESSAGES + [{"role": "assistant", "content": "yo"}],
            "answer": 42,
            "meta": {"k": "é"},
            "none": None,
        }
    ] * 5
    preview = rows_for_preview(rows, 2)
    assert len(preview) == 2
    assert len(preview[0]["prompt"]) == 500 and preview[0]["prompt"].endswith("…")
    assert preview[0]["messages"] == "user: hi\nassistant: yo"
    assert preview[0]["answer"] == "42" and preview[0]["none"] == ""
    assert preview[0]["meta"] == '{"k": "é"}'


def test_demo_sft_dataset_is_what_the_script_makes_and_parses() -> None:
    assert SFT_DEMO.read_text(encoding="utf-8") == to_jsonl(make_rows())
    parsed = parse_dataset(SFT_DEMO, filename=SFT_DEMO.name)
    assert (parsed.format, len(parsed.rows)) == ("prompt_completion", 150)
    assert len({row["prompt"] for row in parsed.rows}) == 150
    check_format_for_strategy(parsed.format, "sft")


def test_unclosed_quote_is_reported_where_it_opened(tmp_path: Path) -> None:
    # Issue 17: the reader only fails at the end of the file (line 5); the quote opened on 3.
    path = tmp_path / "quote.csv"
    path.write_text('prompt,completion\na,b\n"c,d\ne,f\ng,h\n')
    with pytest.raises(DatasetError, match="opened on line 3 never closes"):
        parse_dataset(path, filename="quote.csv")
    # A quote closed too late: the row it broke is named by its first line.
    path.write_text('prompt,completion\na,b\n"c,d\ne,f\n"g,h\n')
    with pytest.raises(DatasetError, match="row that starts on line 3"):
        parse_dataset(path, filename="quote.csv")
