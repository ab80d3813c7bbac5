"""#18 item 3: a tiny Parquet file whose rows decode to gigabytes (one 1.2 MB string, dictionary-
encoded or compressed, repeated on every row) is refused at its first row in bounded memory and
time: sizes come from the Parquet metadata and Arrow, rows are read in bounded batches."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[2]
VALUE = "x" * 1_200_000
# Read in a fresh interpreter so its peak memory is the reader's alone (imports included).
READ = """
import json, sys
from pathlib import Path
from app.domain.datasets.formats import DatasetError, parse_dataset
try:
    parse_dataset(Path(sys.argv[1]), filename="bomb.parquet")
    message = None
except DatasetError as exc:
    message = str(exc)
# VmHWM: this process's own peak (ru_maxrss would carry the parent's across exec).
status = Path("/proc/self/status").read_text()
peak_mb = int(next(l for l in status.splitlines() if l.startswith("VmHWM")).split()[1]) / 1024
print(json.dumps({"message": message, "peak_mb": peak_mb}))
"""


def _bomb(path: Path, *, dictionary: bool) -> Path:
    if dictionary:  # 1,000 rows pointing at one value: 797 bytes on disk
        rows = 1000
        prompts = pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()),
                                                 pa.array([VALUE]))
    else:  # plain-encoded, each row a compressed copy
        rows = 100
        prompts = pa.array([VALUE] * rows)
    table = pa.table({"prompt": prompts, "completion": ["a"] * rows})
    pq.write_table(table, path, compression="zstd", use_dictionary=dictionary)
    return path


@pytest.mark.parametrize("dictionary", [True, False], ids=["dictionary", "compressed"])
def test_parquet_bomb_is_refused_at_row_1_in_bounded_memory(tmp_path, dictionary) -> None:
    path = _bomb(tmp_path / "bomb.parquet", dictionary=dictionary)
    assert path.stat().st_size < 200_000  # 797 bytes with the dictionary
    done = subprocess.run([sys.executable, "-c", READ, str(path)], cwd=ROOT, text=True,
                          capture_output=True, timeout=120, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["message"] is not None, "the bomb was accepted"
    assert "row 1" in result["message"] and "per-row limit" in result["message"]
    # Decoding every row costs 1.2 GB; the interpreter with pyarrow and numpy is ~150 MB.
    assert result["peak_mb"] < 400, result
