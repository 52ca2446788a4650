"""ckptlint.reader.compression: streams decoded as their loaders decode them, bounded."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import pickle
import sys
import zlib

import pytest

from ckptlint.reader import compression as C

PAYLOAD = pickle.dumps({"weights": list(range(2000))}, protocol=2)
HALF = len(PAYLOAD) // 2


def _lzma_alone(data: bytes, dict_size: int) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_ALONE,
                         filters=[{"id": lzma.FILTER_LZMA1, "dict_size": dict_size}])


def _compressors():
    out = {"gzip": gzip.compress, "zlib": zlib.compress, "bz2": bz2.compress,
           "xz": lzma.compress, "lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE)}
    try:
        import lz4.frame

        out["lz4"] = lz4.frame.compress
    except ImportError:
        pass
    try:
        import zstandard

        out["zstd"] = lambda d: zstandard.ZstdCompressor().compress(d)
    except ImportError:
        pass
    return out


@pytest.mark.parametrize("codec", sorted(_compressors()))
def test_each_codec_is_recognised_by_content_and_decoded(codec):
    data = _compressors()[codec](PAYLOAD)
    assert C.codecs_of(data[:64]) == [codec]
    out = C.decompress(io.BytesIO(data), codec, 1 << 20)
    assert out.read() == PAYLOAD and out.error is None and out.alternatives() == [("", 0, len(PAYLOAD))]


@pytest.mark.parametrize("dict_size", [1 << 15, 3 << 20, 1 << 16, 1 << 26])
def test_lzma_with_any_dictionary_size_liblzma_accepts(dict_size):
    data = _lzma_alone(PAYLOAD, dict_size)
    assert C.codecs_of(data[:13]) == ["lzma"]
    assert C.decompress(io.BytesIO(data), "lzma", 1 << 20).read() == PAYLOAD


def test_lzma_header_liblzma_refuses_is_not_taken_for_lzma():
    bad = bytearray(_lzma_alone(PAYLOAD, 1 << 16))
    bad[1:5] = (12345).to_bytes(4, "little")  # neither 2^n nor 2^n + 2^(n-1)
    assert C.codecs_of(bytes(bad[:13])) == []


@pytest.mark.parametrize("codec", ["gzip", "lz4", "zstd"])
def test_several_streams_give_the_first_alone_as_an_alternative(codec):
    compress = _compressors().get(codec)
    if compress is None:
        pytest.skip(f"{codec} module not installed")
    data = compress(PAYLOAD[:HALF]) + compress(PAYLOAD[HALF:])
    out = C.decompress(io.BytesIO(data), codec, 1 << 20)
    assert out.streams == 2 and out.read() == PAYLOAD
    alternatives = out.alternatives()
    assert [(start, end) for _, start, end in alternatives] == [(0, len(PAYLOAD)), (0, HALF)]
    assert "first stream only" in alternatives[1][0]


@pytest.mark.parametrize("codec", ["bz2", "xz"])
def test_several_streams_of_codecs_every_loader_reads_whole_have_one_alternative(codec):
    compress = _compressors()[codec]
    out = C.decompress(io.BytesIO(compress(PAYLOAD[:HALF]) + compress(PAYLOAD[HALF:])), codec, 1 << 20)
    assert out.streams == 2 and out.read() == PAYLOAD and len(out.alternatives()) == 1


def test_trailing_garbage_ends_the_content_and_a_cut_stream_is_an_error():
    data = gzip.compress(PAYLOAD)
    out = C.decompress(io.BytesIO(data + b"not gzip at all"), "gzip", 1 << 20)
    assert out.read() == PAYLOAD and out.error is None
    cut = C.decompress(io.BytesIO(data[:-40]), "gzip", 1 << 20)
    assert "truncated" in cut.error and PAYLOAD.startswith(cut.read())


def test_bytes_that_only_look_compressed_raise_not_compressed():
    with pytest.raises(C.NotCompressed):
        C.decompress(io.BytesIO(b"BZh" + PAYLOAD), "bz2", 1 << 20)


def test_joblib_zfile():
    data = b"ZF" + hex(len(PAYLOAD)).encode().ljust(19) + zlib.compress(PAYLOAD)
    assert C.codecs_of(data[:32]) == ["joblib-zfile"]
    assert C.decompress(io.BytesIO(data), "joblib-zfile", 1 << 20).read() == PAYLOAD


@pytest.mark.parametrize("codec", sorted(_compressors()))
def test_a_bomb_stops_at_the_limit(codec, monkeypatch):
    """Counted, not timed: the output never exceeds the limit, whatever the ratio, and the
    content beyond SPILL bytes lives in a temporary file, not in memory."""
    monkeypatch.setattr(C, "SPILL", 1 << 16)
    data = _compressors()[codec](b"\0" * (16 << 20))
    out = C.decompress(io.BytesIO(data), codec, 1 << 20)
    assert out.size == 1 << 20 and "limit" in out.error
    assert out.content._rolled  # spilled to disk
    assert len(out.read()) == 1 << 20


def test_a_missing_codec_module_names_the_module(monkeypatch):
    monkeypatch.setitem(sys.modules, "lz4", None)
    monkeypatch.setitem(sys.modules, "lz4.frame", None)
    with pytest.raises(C.CodecMissing) as info:
        C.decompress(io.BytesIO(b"\x04\x22\x4d\x18" + b"\0" * 20), "lz4", 1 << 20)
    assert info.value.module == "lz4" and "pip install lz4" in str(info.value)
    for name in ("compression.zstd", "compression", "backports.zstd", "pyzstd", "zstandard"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(C.CodecMissing) as info:
        C.decompress(io.BytesIO(b"\x28\xb5\x2f\xfd" + b"\0" * 20), "zstd", 1 << 20)
    assert info.value.module == "zstandard"


def test_zstd_through_the_zstandard_module_alone(monkeypatch):
    """DCP prefers `zstandard`: with only that module, frames and limits work the same."""
    zstandard = pytest.importorskip("zstandard")
    for name in ("compression.zstd", "compression", "backports.zstd", "pyzstd"):
        monkeypatch.setitem(sys.modules, name, None)
    c = zstandard.ZstdCompressor()
    out = C.decompress(io.BytesIO(c.compress(PAYLOAD[:HALF]) + c.compress(PAYLOAD[HALF:])), "zstd", 1 << 20)
    assert out.read() == PAYLOAD and out.streams == 2
    bomb = C.decompress(io.BytesIO(c.compress(b"\0" * (16 << 20))), "zstd", 1 << 20)
    assert bomb.size == 1 << 20 and "limit" in bomb.error


def test_a_byte_range_of_a_file_is_decoded_alone():
    data = b"junk before" + gzip.compress(PAYLOAD) + b"junk after"
    start = len(b"junk before")
    out = C.decompress(io.BytesIO(data), "gzip", 1 << 20, start, len(data) - len(b"junk after"))
    assert out.read() == PAYLOAD and out.error is None


def test_dcp_transform_descriptors():
    assert C.codec_of_transform("stream.zstd/1") == "zstd"
    assert C.codec_of_transform("stream.zstd/2") is None and C.codec_of_transform("stream.lz4/1") is None
