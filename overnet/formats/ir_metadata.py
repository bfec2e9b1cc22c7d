"""overnet's metadata in an OpenVINO IR ``.xml``: written by the IR export
(``overnet.export.openvino_ir``) into the IR's ``rt_info``, read by the runtime (the
openvino backend, and the overscale head of any model file). Reading needs no OpenVINO.
"""

from __future__ import annotations

from pathlib import Path

from overnet.errors import ModelLoadError

#: rt_info section of an IR that holds overnet's metadata (keys without the "overnet." prefix)
IR_METADATA_SECTION = "overnet"


def read_ir_metadata(path: Path) -> dict[str, str]:
    """``overnet.*`` keys of an IR ``.xml``: its rt_info "overnet" section, else the ONNX
    metadata that ``openvino.convert_model`` carried over (rt_info "framework")."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise ModelLoadError(f"{path} is not a readable OpenVINO IR .xml ({exc})") from exc
    info = root.find("rt_info")
    if root.tag != "net" or info is None:
        return {}
    ours = info.find(IR_METADATA_SECTION)
    if ours is not None:
        return {f"overnet.{e.tag}": e.get("value", "") for e in ours}
    framework = info.find("framework")
    entries = [] if framework is None else framework
    return {e.tag: e.get("value", "") for e in entries if e.tag.startswith("overnet.")}
