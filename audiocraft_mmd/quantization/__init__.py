"""Per-codebook views of AudioCraft quantizers."""

from .streams import STREAM_SOURCES, CapturedStreams, capture_streams, frozen_codebooks, register_stream_source

__all__ = ["STREAM_SOURCES", "CapturedStreams", "capture_streams", "frozen_codebooks", "register_stream_source"]
