"""Rasterise PASCAL VOC's sparse annotations (as distributed by the GatedCRF-loss repo, used by TEL) into label
PNGs that ``VOCSparseDataset`` reads (255 = unlabelled, 0 = background, 1..20 the VOC classes).

Inputs (download them yourself; nothing is fetched here):

- ``voc_scribbles.zip``: one ScribbleSup XML per image, ``<annotation><size><width/><height/></size>
  <polygon><tag>CLASS</tag><point><X/><Y/></point>...</polygon>...</annotation>``; class tags use the short
  names of :data:`VOC_SPARSE_CLASSES`. Each polyline is drawn 3 px wide with round joints plus a 3 px disc at
  every vertex (TEL's rasteriser).
- ``voc_whats_the_point.json`` (object clicks) and ``voc_whats_the_point_bg_from_scribbles.json``
  (background clicks): ``{image name: [{"cls": int, "x": int, "y": int}, ...]}``; each click is a 3 px disc.

Usage::

    python -m apro_affinity.mmseg.convert_voc_sparse scribbles --zip voc_scribbles.zip --out VOC2012/scribbles
    python -m apro_affinity.mmseg.convert_voc_sparse points --fg voc_whats_the_point.json \
        --bg voc_whats_the_point_bg_from_scribbles.json --images VOC2012/JPEGImages --out VOC2012/points
"""

from __future__ import annotations

import argparse
import json
import os
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
from PIL import Image, ImageDraw

from vlzoo.data import DataError, image_size, write_label_png

__all__ = [
    "VOC_SPARSE_CLASSES",
    "IGNORE_INDEX",
    "parse_scribble_xml",
    "rasterize_scribbles",
    "rasterize_clicks",
    "convert_scribbles",
    "convert_points",
    "main",
]

VOC_SPARSE_CLASSES: tuple[str, ...] = (
    "background", "plane", "bike", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "table",
    "dog", "horse", "motorbike", "person", "plant", "sheep", "sofa", "train", "monitor",
)
"""Class tags of the ScribbleSup XML files, in VOC label order (index = label value)."""

IGNORE_INDEX = 255
STROKE_WIDTH = 3


def parse_scribble_xml(data: bytes, name: str) -> tuple[int, int, list[tuple[int, list[tuple[int, int]]]]]:
    """Parse one ScribbleSup XML.

    Args:
        data: the XML bytes.
        name: the record name, for error messages.

    Returns:
        ``(width, height, polylines)`` with polylines ``[(class index, [(x, y), ...]), ...]``.

    Raises:
        DataError: malformed XML, unknown class tag, missing size, or no polyline.
    """
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise DataError(name, f"invalid XML: {exc}") from exc
    index = {c: i for i, c in enumerate(VOC_SPARSE_CLASSES)}
    size = root.find("size")
    if root.tag != "annotation" or size is None:
        raise DataError(name, "expected <annotation> with a <size> element")
    try:
        width, height = int(size.findtext("width")), int(size.findtext("height"))
    except (TypeError, ValueError):
        raise DataError(name, "<size> needs integer <width> and <height>") from None
    polylines = []
    for k, polygon in enumerate(root.findall("polygon")):
        tag = polygon.findtext("tag")
        if tag not in index:
            raise DataError(name, f"unknown class tag {tag!r}; expected one of {list(VOC_SPARSE_CLASSES)}",
                            f"polygon {k}")
        try:
            points = [(int(p.findtext("X")), int(p.findtext("Y"))) for p in polygon.findall("point")]
        except (TypeError, ValueError):
            raise DataError(name, "every <point> needs integer <X> and <Y>", f"polygon {k}") from None
        if not points:
            raise DataError(name, "polygon without points", f"polygon {k}")
        polylines.append((index[tag], points))
    if not polylines:
        raise DataError(name, "no scribble in the file")
    return width, height, polylines


def _disc(draw: ImageDraw.ImageDraw, x: float, y: float, value: int, width: int) -> None:
    r = width / 2
    draw.ellipse((x - r, y - r, x + r, y + r), fill=value)


def rasterize_scribbles(polylines: list[tuple[int, list[tuple[int, int]]]], width: int, height: int,
                        stroke_width: int = STROKE_WIDTH) -> np.ndarray:
    """(height, width) uint8 label map: 255 everywhere except the drawn scribbles (later ones on top)."""
    img = Image.new("L", (width, height), color=IGNORE_INDEX)
    draw = ImageDraw.Draw(img)
    for value, points in polylines:
        if len(points) > 1:
            draw.line(points, fill=value, width=stroke_width, joint="curve")
        for x, y in points:
            _disc(draw, x, y, value, stroke_width)
    return np.asarray(img, dtype=np.uint8)


def rasterize_clicks(clicks: list[tuple[int, tuple[int, int]]], width: int, height: int,
                     stroke_width: int = STROKE_WIDTH) -> np.ndarray:
    """(height, width) uint8 label map with one small disc per click (a single pixel if width is 1)."""
    img = Image.new("L", (width, height), color=IGNORE_INDEX)
    draw = ImageDraw.Draw(img)
    for value, (x, y) in clicks:
        if stroke_width > 1:
            _disc(draw, x, y, value, stroke_width)
        else:
            draw.point((x, y), fill=value)
    return np.asarray(img, dtype=np.uint8)


def convert_scribbles(zip_path: str | os.PathLike, out_dir: str | os.PathLike) -> int:
    """Write ``out_dir/<name>.png`` for every XML in ``voc_scribbles.zip``; returns the count."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    with zipfile.ZipFile(zip_path) as archive:
        for member in sorted(archive.namelist()):
            if not member.endswith(".xml"):
                continue
            name = Path(member).stem
            width, height, polylines = parse_scribble_xml(archive.read(member), f"{zip_path}:{member}")
            write_label_png(out / f"{name}.png", rasterize_scribbles(polylines, width, height))
            count += 1
    return count


def _read_clicks(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(path, f"cannot read clicks JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise DataError(path, "expected an object {image name: [clicks]}")
    return data


def convert_points(fg_json: str | os.PathLike, bg_json: str | os.PathLike, image_dir: str | os.PathLike,
                   out_dir: str | os.PathLike, image_suffix: str = ".jpg") -> int:
    """Write ``out_dir/<name>.png`` for every image named in the object-click file; returns the count."""
    fg, bg = _read_clicks(Path(fg_json)), _read_clicks(Path(bg_json))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in sorted(fg):
        clicks = []
        for source, path in ((fg, fg_json), (bg, bg_json)):
            for k, click in enumerate(source.get(name, [])):
                if not (isinstance(click, dict) and {"cls", "x", "y"} <= set(click)):
                    raise DataError(path, "a click needs 'cls', 'x' and 'y'", f"{name}[{k}]")
                if not 0 <= int(click["cls"]) < len(VOC_SPARSE_CLASSES):
                    raise DataError(path, f"class {click['cls']} is outside 0..20", f"{name}[{k}]")
                clicks.append((int(click["cls"]), (int(click["x"]), int(click["y"]))))
        size = image_size(Path(image_dir) / f"{name}{image_suffix}")
        write_label_png(out / f"{name}.png", rasterize_clicks(clicks, size.width, size.height))
    return len(fg)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m apro_affinity.mmseg.convert_voc_sparse", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="kind", required=True)
    s = sub.add_parser("scribbles", help="voc_scribbles.zip -> label PNGs")
    s.add_argument("--zip", required=True, type=Path)
    s.add_argument("--out", required=True, type=Path)
    p = sub.add_parser("points", help="What's-the-point clicks -> label PNGs")
    p.add_argument("--fg", required=True, type=Path)
    p.add_argument("--bg", required=True, type=Path)
    p.add_argument("--images", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    if args.kind == "scribbles":
        n = convert_scribbles(args.zip, args.out)
    else:
        n = convert_points(args.fg, args.bg, args.images, args.out)
    print(f"wrote {n} label PNGs to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
