"""Reading one table file (.csv, .parquet or .jsonl) so that every later error can name the file and the row.

CSV and JSONL cells are read as text (ids such as "007" must stay intact); parquet keeps its native types,
and `as_text` turns any column into clean strings when a text column is wanted.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from zsrec.errors import DataValidationError

SUPPORTED_SUFFIXES = (".csv", ".parquet", ".jsonl")


def _data_row(position: int) -> str:
    return f"row {position + 1}"


@dataclass(frozen=True)
class Table:
    """A table as read from one source, plus how to point a user at one of its rows.

    Attributes:
        frame: the rows, in source order.
        source: what the user knows the table as (a file path, or a file plus a key for JSON adapters).
        locate: frame position (0-based) -> place in the source, e.g. "row 3" or "line 7";
            rows are 1-based data rows (a CSV header is not counted).
    """

    frame: pd.DataFrame
    source: str
    locate: Callable[[int], str] = _data_row

    def where(self, position: int, column: str | None = None) -> str:
        """'items.csv row 3, column title': where the frame row at `position` lives."""
        place = f"{self.source} {self.locate(position)}"
        return place if column is None else f"{place}, column '{column}'"


def read_table(path: str | Path) -> Table:
    """Read one table file; a structurally unreadable file raises DataValidationError naming it."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _READERS:
        raise DataValidationError(
            f"{path}: unsupported file type '{path.suffix or '(none)'}'; expected one of "
            + ", ".join(SUPPORTED_SUFFIXES)
        )
    if not path.is_file():
        raise DataValidationError(f"file not found: {path}")
    if path.stat().st_size == 0:
        raise DataValidationError(f"{path} is empty (0 bytes)")
    table = _READERS[suffix](path)
    if len(table.frame) == 0:
        raise DataValidationError(f"{path} has no data rows (only a header or blank lines)")
    return table


def decode_utf8(data: bytes, source: str | Path) -> str:
    """Bytes -> text; anything not UTF-8 is refused, naming the byte offset and line of the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DataValidationError(
            f"{source} is not valid UTF-8: byte 0x{data[err.start]:02x} at byte offset {err.start} "
            f"(line {line}); "
            "re-save the file as UTF-8"
        ) from None
    return text.removeprefix(
        "\ufeff"
    )  # a byte-order mark (Excel exports) is not part of the first column name


def _read_csv(path: Path) -> Table:
    text = decode_utf8(path.read_bytes(), path)
    if not text.strip():
        raise DataValidationError(f"{path} is empty (only whitespace)")
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataValidationError(f"cannot parse {path} as CSV: {err}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return Table(frame, str(path))


def _read_parquet(path: Path) -> Table:
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as err:
        raise DataValidationError(f"cannot read {path} as parquet: {err}") from None
    if not isinstance(frame.index, pd.RangeIndex):  # an index saved by pandas is data (e.g. item_id)
        frame = frame.reset_index()
    frame.columns = [str(c).strip() for c in frame.columns]
    return Table(frame.reset_index(drop=True), str(path))


def parse_json(text: str, path: Path, line: int | None = None) -> object:
    """`json.loads(text)`; invalid JSON raises DataValidationError naming the file, line and column (`line`:
    the text's line in the file, where the text is one line of it)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        number = err.lineno if line is None else line
        raise DataValidationError(f"{path} line {number}: invalid JSON ({err.msg} at column {err.colno})") from None


def _read_jsonl(path: Path) -> Table:
    text = decode_utf8(path.read_bytes(), path)
    records: list[dict[str, object]] = []
    line_numbers: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        record = parse_json(line, path, number)
        if not isinstance(record, dict):
            raise DataValidationError(
                f"{path} line {number}: expected a JSON object per line, got {type(record).__name__}"
            )
        records.append(record)
        line_numbers.append(number)
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    frame = pd.DataFrame({str(c).strip(): frame[c].map(_json_cell_text) for c in frame.columns})
    lines = np.asarray(line_numbers, dtype=np.int64)
    return Table(frame, str(path), locate=lambda position: f"line {lines[position]}")


def _json_cell_text(value: object) -> str:
    """One JSON value as text: ids like 7 become "7", null and absent keys become ""."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


_READERS: dict[str, Callable[[Path], Table]] = {
    ".csv": _read_csv,
    ".parquet": _read_parquet,
    ".jsonl": _read_jsonl,
}


def as_text(column: pd.Series) -> pd.Series:
    """Any column as stripped strings with "" for missing values (integral floats lose their ".0").

    Parquet and adapters hand over native types; ids and text must compare equal to the same values read
    from CSV or JSONL, so native 7 and 7.0 become "7" and booleans "true"/"false" (as JSON writes them).
    """
    if pd.api.types.is_bool_dtype(column):
        return column.map({True: "true", False: "false"}).fillna("").astype(str)
    if pd.api.types.is_integer_dtype(column):
        if column.isna().any():  # nullable integers
            return column.astype(object).map(lambda v: "" if pd.isna(v) else str(v)).astype(str)
        return column.astype(str)
    if pd.api.types.is_float_dtype(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = np.isfinite(values)
        integral = finite & (np.mod(values, 1.0, where=finite, out=np.zeros_like(values)) == 0.0)
        text = [
            str(int(v)) if is_int else ("" if np.isnan(v) else repr(float(v)))
            for v, is_int in zip(values, integral, strict=True)
        ]
        return pd.Series(text, index=column.index, dtype=str)
    if pd.api.types.is_datetime64_any_dtype(column):
        return column.map(lambda v: "" if pd.isna(v) else v.isoformat()).astype(str)
    if pd.api.types.is_string_dtype(column) and not pd.api.types.is_object_dtype(column):
        return column.fillna("").astype(str).str.strip()
    return (
        column.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
        .astype(str)
        .str.strip()
    )
