"""Per-codebook views of codec quantizers (AudioCraft's, ours, the ``encodec`` package's)."""

from .adapters import STREAM_ADAPTERS, StreamAdapter, adapter_for, register_stream_adapter
from .streams import STREAM_SOURCES, CapturedStreams, capture_streams, frozen_codebooks, register_stream_source
from . import encodec_package  # noqa: F401  (registers the "encodec_package" adapter)

__all__ = ["STREAM_ADAPTERS", "STREAM_SOURCES", "CapturedStreams", "StreamAdapter", "adapter_for", "capture_streams",
           "frozen_codebooks", "register_stream_adapter", "register_stream_source"]
