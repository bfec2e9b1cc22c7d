"""Video super-resolution: files through a streaming pipeline, or frames through an iterator.

    from overnet.runtime import Upscaler, open_session
    from overnet.video import EncodeOptions, Trim, upscale_frames, upscale_video

    with open_session("x2.onnx") as session:
        up = Upscaler(session)
        result = upscale_video("in.mp4", "out.mp4", up, EncodeOptions(codec="libx265"))
        print(result.describe())
        for sr in upscale_frames(my_frames, up):  # numpy HxWx3 uint8/uint16 in and out
            ...

Needs PyAV (``pip install 'overnet[video]'``), imported on first use: importing this
package imports numpy and overnet.runtime only, never av or torch.
"""

from overnet.video.decode import Trim
from overnet.video.encode import CODECS, DEFAULT_CODEC, EncodeOptions
from overnet.video.frames import upscale_frames
from overnet.video.pipeline import upscale_video
from overnet.video.probe import VIDEO_SUFFIXES, VideoFacts, is_video_file, probe_video
from overnet.video.report import VideoReport, VideoResult

__all__ = [
    "CODECS",
    "DEFAULT_CODEC",
    "VIDEO_SUFFIXES",
    "EncodeOptions",
    "Trim",
    "VideoFacts",
    "VideoReport",
    "VideoResult",
    "is_video_file",
    "probe_video",
    "upscale_frames",
    "upscale_video",
]
