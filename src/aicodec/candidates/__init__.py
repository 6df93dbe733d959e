"""Candidates: codec source files written in the contract, with their origin and hash."""

from __future__ import annotations

import hashlib
from pathlib import Path

from aicodec.errors import ValidationError


def code_hash(source: str) -> str:
    """SHA-256 (hex) of a candidate's UTF-8 source: its identity in the store."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def read_candidate(path: Path) -> str:
    """A candidate file's source text; ValidationError when missing, too large or not UTF-8."""
    from aicodec.candidates.contract import MAX_SOURCE_BYTES

    try:
        size = Path(path).stat().st_size
        if size > MAX_SOURCE_BYTES and Path(path).is_file():
            raise ValidationError(
                f"{path}: {size} bytes, over the {MAX_SOURCE_BYTES}-byte limit for a codec"
            )
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ValidationError(f"{path}: is a folder, not a codec file") from None
    except UnicodeDecodeError:
        raise ValidationError(f"{path}: not UTF-8 Python source") from None
    except OSError as exc:
        raise ValidationError(f"{path}: cannot be read ({exc.strerror})") from None
