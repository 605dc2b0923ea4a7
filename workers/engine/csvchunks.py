"""CSV text parsed by Arrow in large pieces, one per core side by side, over a bounded window.

``pyarrow.csv.read_csv`` is the fastest reader at hand but reads a whole
file; its streaming sibling is slower per row. This reads the file in pieces
of a few megabytes cut at line ends and hands each piece to ``read_csv`` on
a thread of its own, so a pass costs what one ``read_csv`` of the file costs
while memory stays bounded by the piece size times the cores. A line end
inside a quoted field cannot be told from a row end without parsing, so from
the first piece that holds a quote on, the rest goes through the quote-aware
streaming reader instead.
"""

from __future__ import annotations

import csv
import ctypes
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, cast

import numpy as np

from workers.engine.arrays import Array
from workers.engine.errors import InvalidDataset

__all__ = ["BLOCK_BYTES", "CsvChunks", "column_array"]

#: Bytes of CSV text per piece.
BLOCK_BYTES = 16 << 20
_BOM = b"\xef\xbb\xbf"


def column_array(table: Any, name: str) -> Any:
    """One column of a piece as a single Arrow array (a table's column may come in chunks)."""
    column = table.column(name)
    return column.combine_chunks() if hasattr(column, "combine_chunks") else column


#: Bytes searched back from a piece's end for its last line end before searching all of it.
_TAIL = 1 << 16


def _after_last_line_end(text: Array) -> int:
    """Offset just past the last ``\n`` in ``text``; 0 when there is none.

    Lines are short next to a piece, so the last line end is nearly always in
    the piece's last few kilobytes: only a huge line costs a full search.
    """
    size = len(text)
    tail = max(0, size - _TAIL)
    ends = np.flatnonzero(text[tail:] == 10)
    if ends.size:
        return tail + int(ends[-1]) + 1
    ends = np.flatnonzero(text[:tail] == 10)
    return int(ends[-1]) + 1 if ends.size else 0


def _memchr() -> Callable[[int, int, int], int | None] | None:
    """The C library's ``memchr``: a byte search at memory speed without a temporary array."""
    try:
        libc = ctypes.CDLL(None)
        memchr = libc.memchr
    except (OSError, AttributeError):  # pragma: no cover - a platform without a loadable C library
        return None
    memchr.restype = ctypes.c_void_p
    memchr.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    return cast(Callable[[int, int, int], "int | None"], memchr)


_MEMCHR = _memchr()


def _holds_quote(buffer: Any, text: Array, size: int) -> bool:
    """Whether the first ``size`` bytes of the Arrow ``buffer`` (viewed as ``text``) hold a ``"``."""
    if _MEMCHR is not None:
        return _MEMCHR(buffer.address, 34, size) is not None
    return bool((text[:size] == 34).any())


def _piece_memory_pool() -> Any:
    """The Arrow memory pool for pieces parsed side by side: jemalloc, else the system allocator.

    Through pyarrow's default pool (mimalloc), parsing pieces on several
    threads at once kept about 700 MB of freed memory for a 585 MB file
    (measured); jemalloc and the system allocator hand it back (55–90 MB).
    """
    import pyarrow as pa

    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # pragma: no cover - a pyarrow built without jemalloc
        return pa.system_memory_pool()


class CsvChunks:
    """Iterate over a CSV file as Arrow tables, one per piece of text.

    Parameters
    ----------
    path:
        The file (UTF-8, optional BOM, header row).
    convert:
        ``pyarrow.csv.ConvertOptions`` for every piece (column types,
        included columns, missing-value spellings).
    block_bytes:
        Text per piece.
    threads:
        Parse pieces side by side, one per core (each on one thread), handed
        on in file order. Without, one piece at a time on the calling
        thread: a little less CPU and memory, more wall time on an idle
        machine.

    After iterating, :attr:`names` holds the header and :attr:`quotes` the
    number of quote characters in the data rows (odd: the file ends inside a
    quoted field).
    """

    def __init__(self, path: str, convert: Any, *, block_bytes: int = BLOCK_BYTES, threads: bool = True) -> None:
        self.path = path
        self.threads = threads
        self.convert = convert
        self.block_bytes = block_bytes
        self.names: list[str] | None = None
        self.quotes = 0

    def __iter__(self) -> Iterator[Any]:
        import pyarrow.csv as pacsv

        self._rest: tuple[int, bool] | None = None
        if not self.threads:
            for piece in self._pieces(None):
                read = pacsv.ReadOptions(column_names=self.names, use_threads=False)
                yield pacsv.read_csv(piece, read_options=read, convert_options=self.convert)
        else:
            yield from self._parse_side_by_side()
        if self._rest is not None:
            offset, header = self._rest
            yield from self._stream(offset, header=header)

    def _parse_side_by_side(self) -> Iterator[Any]:
        """Each piece parsed on one thread, one piece per core at a time, handed on in file order.

        Whole pieces side by side keep every core parsing, where one
        multithreaded parse per piece leaves cores idle at each piece's end
        and while the next piece is read. At most one piece more than there
        are threads is held, parsed or not, which bounds the memory.
        """
        import pyarrow.csv as pacsv

        pool = _piece_memory_pool()
        workers = max(1, min(os.cpu_count() or 1, 8))
        pending: deque[Future[Any]] = deque()
        with ThreadPoolExecutor(workers, thread_name_prefix="csv-piece") as parsers:
            try:
                for piece in self._pieces(pool):
                    read = pacsv.ReadOptions(column_names=self.names, use_threads=False)
                    pending.append(
                        parsers.submit(
                            pacsv.read_csv, piece, read_options=read, convert_options=self.convert, memory_pool=pool
                        )
                    )
                    del piece
                    if len(pending) > workers:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:
                for future in pending:
                    future.cancel()

    def _pieces(self, pool: Any) -> Iterator[Any]:
        """The data rows as Arrow buffers cut at line ends; sets ``_rest`` where the streaming reader takes over."""
        import pyarrow as pa

        with open(self.path, "rb") as fh:
            first = fh.read(min(self.block_bytes, 1 << 20))
            start = len(_BOM) if first.startswith(_BOM) else 0
            end = first.find(b"\n", start)
            line = first[start : end if end >= 0 else len(first)]
            if end < 0 or not line.strip() or line.count(b'"') % 2:
                # A blank first line, a header spanning lines or a huge one: the streaming reader takes it all.
                self._rest = (0, True)
                return
            try:
                self.names = next(csv.reader([line.rstrip(b"\r").decode("utf-8")]))
            except UnicodeDecodeError:
                from workers.engine.csvfile import utf8_error

                raise InvalidDataset(utf8_error(self.path)) from None
            offset = end + 1
            fh.seek(offset)
            carry = b""  # the partial line after a piece's last line end
            while True:
                # The text goes straight into a buffer Arrow owns: no large Python bytes
                # (whose freed memory the allocator keeps), and nothing of Python's for
                # Arrow's worker threads to release after the interpreter has shut down.
                buffer = pa.allocate_buffer(len(carry) + self.block_bytes, memory_pool=pool)
                view = memoryview(buffer).cast("B")
                view[: len(carry)] = carry
                size = len(carry) + fh.readinto(view[len(carry) :])
                at_end = size == len(carry)
                text = np.frombuffer(buffer, dtype=np.uint8, count=size)
                cut = size if at_end else _after_last_line_end(text)
                if cut == 0 and not at_end:  # no line end yet: read on with a bigger buffer
                    carry = bytes(view[:size])
                    continue
                if cut and _holds_quote(buffer, text, cut):
                    self._rest = (offset, False)
                    return
                carry = bytes(view[cut:size])
                if cut > 64 or bytes(view[:cut]).strip():  # a few blank lines alone make no piece
                    yield buffer.slice(0, cut)
                offset += cut
                del text, view, buffer
                if at_end:
                    return

    def _stream(self, offset: int, *, header: bool) -> Iterator[Any]:
        import pyarrow.csv as pacsv

        with open(self.path, "rb") as counter:
            counter.seek(offset)
            if header:
                counter.readline()
            while block := counter.read(self.block_bytes):
                self.quotes += block.count(b'"')
        read = pacsv.ReadOptions(
            block_size=self.block_bytes, column_names=None if header else self.names, use_threads=self.threads
        )
        fh = open(self.path, "rb")  # noqa: SIM115 - closed with the reader below
        try:
            fh.seek(offset)
            with pacsv.open_csv(
                fh,
                read_options=read,
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=self.convert,
            ) as reader:
                if self.names is None:
                    self.names = list(reader.schema.names)
                yield from reader
        finally:
            fh.close()
