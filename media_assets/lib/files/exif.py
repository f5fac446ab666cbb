"""EXIF fields a catalog user asks for: when, with what camera, where, which way up."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from PIL import Image

_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_MAKE, _MODEL, _ORIENTATION, _DATETIME = 271, 272, 274, 306
_DATETIME_ORIGINAL, _OFFSET_ORIGINAL = 36867, 36881
_LENS_MAKE, _LENS_MODEL = 0xA433, 0xA434


def _parse_time(raw: str | None, offset: str | None) -> datetime | None:
    if not raw or not isinstance(raw, str):
        return None
    try:
        taken = datetime.strptime(raw.strip().rstrip("\x00")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    if offset and isinstance(offset, str) and len(offset) >= 6 and offset[0] in "+-":
        try:
            sign = 1 if offset[0] == "+" else -1
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            return taken.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes)))
        except ValueError:
            pass
    return taken  # naive: EXIF without an offset is local time of the camera


def _degrees(dms, ref) -> float | None:
    try:
        d, m, s = (float(x) for x in dms)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    value = d + m / 60 + s / 3600
    return -value if ref in ("S", "W") else value


def _out_of_range(lat: float | None, lon: float | None) -> str | None:
    """Why a finite position is impossible, or None. NaN (a 0/0 rational: no fix) is left
    to the writer, which stores it as null and says so."""
    if lat is not None and math.isfinite(lat) and not -90 <= lat <= 90:
        return f"latitude {lat:g}° is outside -90..90"
    if lon is not None and math.isfinite(lon) and not -180 <= lon <= 180:
        return f"longitude {lon:g}° is outside -180..180"
    return None


def read_exif(img: Image.Image) -> dict:
    """A small, JSON-safe dict; empty when the image has no EXIF."""
    exif = img.getexif()
    if not exif:
        return {}
    sub = exif.get_ifd(_EXIF_IFD)
    out: dict = {}
    taken = _parse_time(sub.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME),
                        sub.get(_OFFSET_ORIGINAL))
    if taken:
        out["taken_at"] = taken.isoformat()
    camera = " ".join(str(exif[t]).strip("\x00 ") for t in (_MAKE, _MODEL) if exif.get(t))
    if camera:
        out["camera"] = camera
    lens = " ".join(str(sub[t]).strip("\x00 ") for t in (_LENS_MAKE, _LENS_MODEL)
                    if isinstance(sub.get(t), str) and sub[t].strip("\x00 "))
    if lens:
        out["lens"] = lens[:200]
    if exif.get(_ORIENTATION):
        out["orientation"] = int(exif[_ORIENTATION])
    gps = exif.get_ifd(_GPS_IFD)
    if gps and 2 in gps and 4 in gps:
        lat, lon = _degrees(gps[2], gps.get(1)), _degrees(gps[4], gps.get(3))
        wrong = _out_of_range(lat, lon)
        if wrong:
            # A position that cannot be on Earth is no position: null, and why.
            out["gps"] = None
            out["gps_note"] = f"GPS position not stored: {wrong}"
        elif lat is not None and lon is not None:
            out["gps"] = {"lat": round(lat, 7), "lon": round(lon, 7)}
            if 6 in gps:
                try:
                    out["gps"]["alt"] = float(gps[6]) * (-1 if gps.get(5) == 1 else 1)
                except (TypeError, ValueError, ZeroDivisionError):
                    pass
    return out
